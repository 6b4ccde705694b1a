"""Per-user defaults chosen in a chat front end (/settings): kind and quality."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.errors import InvalidRequest
from core.jobs import QUALITIES
from core.models import UserPrefs, utcnow


@dataclass(frozen=True)
class Prefs:
    kind: str = "video"
    quality: str = "best"


class PrefsService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get(self, source: str, user_id: str) -> Prefs:
        async with self.sessions() as session:
            row = await session.get(UserPrefs, (source, str(user_id)))
        return Prefs(row.kind, row.quality) if row else Prefs()

    async def set(
        self, source: str, user_id: str, *, kind: str | None = None, quality: str | None = None
    ) -> Prefs:
        if kind is not None and kind not in ("video", "audio"):
            raise InvalidRequest("Kind must be video or audio.")
        if quality is not None and quality not in QUALITIES:
            raise InvalidRequest("Unknown quality.")
        async with self.sessions() as session, session.begin():
            row = await session.get(UserPrefs, (source, str(user_id)), with_for_update=True)
            if row is None:
                row = UserPrefs(
                    source=source, user_id=str(user_id), kind="video", quality="best", updated_at=utcnow()
                )
                session.add(row)
            if kind is not None:
                row.kind = kind
            if quality is not None:
                row.quality = quality
            row.updated_at = utcnow()
            return Prefs(row.kind, row.quality)
