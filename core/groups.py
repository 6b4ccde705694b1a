"""A group chat's own settings, changed by its admins in a chat front end (/groupsettings)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import GroupSettings, utcnow


@dataclass(frozen=True)
class GroupPrefs:
    # Act on every link posted in the group; off: only on links addressed to the bot (a mention, a reply to
    # it, a command), so a busy group is not flooded with downloads nobody asked for.
    every_link: bool = False


class GroupSettingsService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get(self, source: str, chat_id: str) -> GroupPrefs:
        async with self.sessions() as session:
            row = await session.get(GroupSettings, (source, str(chat_id)))
        return GroupPrefs(bool(row.every_link)) if row else GroupPrefs()

    async def set(self, source: str, chat_id: str, *, every_link: bool, by: str | None = None) -> GroupPrefs:
        async with self.sessions() as session, session.begin():
            row = await session.get(GroupSettings, (source, str(chat_id)), with_for_update=True)
            if row is None:
                row = GroupSettings(
                    source=source, chat_id=str(chat_id), every_link=False, updated_at=utcnow()
                )
                session.add(row)
            row.every_link = every_link
            row.updated_by = by
            row.updated_at = utcnow()
            return GroupPrefs(bool(row.every_link))
