"""Per-user defaults chosen in a chat front end (/settings, /subs): kind, quality, whether to be asked for a
format, subtitle languages, what to do with sponsor segments, inline mode."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import UserPrefs, utcnow
from core.errors import InvalidRequest
from core.i18n import N_, supported
from core.jobs.choices import QUALITIES, check_choices

SPONSOR_DEFAULTS = ("keep", "remove", "mark")


@dataclass(frozen=True)
class Prefs:
    kind: str = "video"
    quality: str = "best"
    ask_format: bool = False  # answer a link with the formats it offers
    subtitles: tuple[str, ...] = ()  # languages asked for with every link
    language: str | None = None  # the locale picked with /language; None: the person's app's
    # Sponsor segments of a plain link (one that asks for no clip or split): "keep", "remove" or "mark".
    sponsorblock: str = "keep"
    inline: bool = True  # answer their inline queries (@bot LINK in any chat)


def _prefs(row: UserPrefs) -> Prefs:
    langs = tuple(lang for lang in (row.subtitles or "").split(",") if lang)
    return Prefs(
        row.kind, row.quality, bool(row.ask_format), langs, language=row.language or None,
        sponsorblock=row.sponsorblock or "keep", inline=row.inline is not False,
    )  # fmt: skip


class PrefsService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def get(self, source: str, user_id: str) -> Prefs:
        async with self.sessions() as session:
            row = await session.get(UserPrefs, (source, str(user_id)))
        return _prefs(row) if row else Prefs()

    async def set(
        self,
        source: str,
        user_id: str,
        *,
        kind: str | None = None,
        quality: str | None = None,
        ask_format: bool | None = None,
        subtitles: Sequence[str] | None = None,
        language: str | None = None,
        sponsorblock: str | None = None,
        inline: bool | None = None,
    ) -> Prefs:
        """Change what is given (None: keep); `language=""` goes back to the person's app's language."""
        if kind is not None and kind not in ("video", "audio"):
            raise InvalidRequest(N_("Kind must be video or audio."))
        if quality is not None and quality not in QUALITIES:
            raise InvalidRequest(N_("Unknown quality."))
        if sponsorblock == "off":
            sponsorblock = "keep"
        if sponsorblock is not None and sponsorblock not in SPONSOR_DEFAULTS:
            raise InvalidRequest('SponsorBlock must be "remove", "mark" or "off".')
        langs = check_choices(None, subtitles)[1] if subtitles is not None else None
        if langs is not None and len(",".join(langs)) > 64:
            raise InvalidRequest(N_("Too many subtitle languages."))
        if language and supported(language) != language:
            raise InvalidRequest(N_("Unknown language."))
        async with self.sessions() as session, session.begin():
            row = await session.get(UserPrefs, (source, str(user_id)), with_for_update=True)
            if row is None:
                row = UserPrefs(
                    source=source, user_id=str(user_id), kind="video", quality="best", ask_format=False,
                    subtitles="", inline=True, updated_at=utcnow(),
                )  # fmt: skip
                session.add(row)
            if kind is not None:
                row.kind = kind
            if quality is not None:
                row.quality = quality
            if ask_format is not None:
                row.ask_format = ask_format
            if langs is not None:
                row.subtitles = ",".join(langs)
            if language is not None:
                row.language = language or None
            if sponsorblock is not None:
                row.sponsorblock = None if sponsorblock == "keep" else sponsorblock
            if inline is not None:
                row.inline = inline
            row.updated_at = utcnow()
            return _prefs(row)
