"""A platform's own handle for a file it already holds (Telegram's file_id), per media variant: the next
request for the same media is answered by resending the handle, with no download and no upload."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import DeliveryCache, utcnow
from core.jobs.keys import dedup_key
from core.net import extract_url, normalize_url


@dataclass(frozen=True)
class DeliveryRef:
    file_ref: str
    file_type: str  # video | audio | document


def variant_key(
    text: str,
    kind: str,
    quality: str,
    format_id: str | None = None,
    subtitles: Sequence[str] = (),
    audio_format: str | None = None,
    playable: bool = False,
    variant: str | None = None,
) -> str:
    """The cache key of the media variant a message asks for (same rules as job coalescing); `variant`: a
    clip, chapter split or sponsor removal of it (core.jobs.derived)."""
    quality = "best" if kind == "audio" else (quality or "best")
    return dedup_key(
        normalize_url(extract_url(text)), kind, quality, variant, format_id=format_id,
        subtitles=sorted(set(subtitles)), audio_format=audio_format, playable=playable and kind == "video",
    )  # fmt: skip


_LINK_OF_KEY = re.compile(r"^(?P<url>.+?)\|(?P<kind>video|audio):")


class DeliveryCacheService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self._dialect = sessions.kw["bind"].dialect.name

    async def get(self, platform: str, key: str) -> DeliveryRef | None:
        async with self.sessions() as session:
            row = await session.scalar(
                select(DeliveryCache).where(
                    DeliveryCache.platform == platform, DeliveryCache.variant_key == key
                )
            )
        return DeliveryRef(row.file_ref, row.file_type) if row else None

    async def put(self, platform: str, key: str, ref: DeliveryRef) -> None:
        if self._dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(DeliveryCache).values(
            platform=platform,
            variant_key=key,
            file_ref=ref.file_ref,
            file_type=ref.file_type,
            created_at=utcnow(),
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=["platform", "variant_key"],
            set_={"file_ref": ref.file_ref, "file_type": ref.file_type, "created_at": utcnow()},
        )
        async with self.sessions() as session, session.begin():
            await session.execute(stmt)

    async def link_of(self, platform: str, file_ref: str) -> tuple[str, str] | None:
        """The link and kind a file the platform holds was made from (a reply to a delivered video names
        it by its file_ref), None when it isn't one of ours."""
        async with self.sessions() as session:
            key = await session.scalar(
                select(DeliveryCache.variant_key)
                .where(DeliveryCache.platform == platform, DeliveryCache.file_ref == file_ref)
                .limit(1)
            )
        found = _LINK_OF_KEY.match(key) if key else None
        if found is None:
            return None
        return found["url"], found["kind"]

    async def forget(self, platform: str, key: str) -> None:
        from sqlalchemy import delete

        async with self.sessions() as session, session.begin():
            await session.execute(
                delete(DeliveryCache).where(
                    DeliveryCache.platform == platform, DeliveryCache.variant_key == key
                )
            )
