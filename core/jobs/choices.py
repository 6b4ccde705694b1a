"""What a person may ask for, and its checks: kind, quality, audio type, a format id, subtitle languages."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from core.errors import InvalidRequest
from core.i18n import N_, ngettext

if TYPE_CHECKING:
    from core.cuts.sections import Section
    from core.cuts.sponsorblock import SponsorChoice

log = logging.getLogger(__name__)

Kind = Literal["video", "audio"]
Source = Literal["api", "telegram", "discord", "cli", "web"]

# The file formats an audio job can end as (yt-dlp's FFmpegExtractAudio codecs that carry tags and a cover).
AUDIO_FORMATS = ("m4a", "mp3", "opus")


@dataclass(frozen=True)
class SubmitRequest:
    """One person's ask. `target` is whatever the front end needs to deliver the result later."""

    text: str
    source: Source
    user_id: str
    kind: Kind = "video"
    quality: str = "best"
    target: dict[str, Any] = field(default_factory=dict)
    # Where to POST the request's final state (http(s), same address rules as the link itself).
    callback_url: str | None = None
    # The same key from the same user within 24 h returns the first request instead of a new one.
    idempotency_key: str | None = None
    # A format_id the link offers (JobService.formats); an unknown one fails the job with unknown_format.
    format_id: str | None = None
    # Subtitle languages: embedded in an mp4 video and stored as .srt; missing ones don't fail the job.
    subtitles: tuple[str, ...] = ()
    # An audio job's file format (AUDIO_FORMATS; None: the source's own when it is one of them, else the
    # operator's MEDIABOT_AUDIO_FORMAT). Not used for video.
    audio_format: str | None = None
    # A video every phone plays (H.264 + AAC in MP4, core.media.playable): chats ask for it, the API when told.
    # Not used for audio.
    playable: bool = False
    # A clip of the media (core.cuts.sections); `animation` makes it a soundless loop (Telegram's /gif).
    section: Section | None = None
    animation: bool = False
    # Each chapter as an item of its own, delivered like a playlist's.
    split_chapters: bool = False
    # Sponsor segments removed or marked as chapters (core.cuts.sponsorblock).
    sponsorblock: SponsorChoice | None = None


QUALITIES = {"best", "2160", "1440", "1080", "720", "480", "360", "240", "144"}
_FORMAT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX_SUBTITLE_LANGS = 8


def check_choices(format_id: str | None, subtitles: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """A format id and subtitle languages as a person typed them: checked, languages deduplicated."""
    if format_id is not None and not _FORMAT_ID.match(format_id):
        raise InvalidRequest(N_("A format id is up to 128 letters, digits, dots, dashes or underscores."))
    langs = tuple(dict.fromkeys(lang.strip() for lang in subtitles if lang.strip()))
    if len(langs) > MAX_SUBTITLE_LANGS:
        raise InvalidRequest(
            ngettext(
                "Ask for at most {n} subtitle language.",
                "Ask for at most {n} subtitle languages.",
                MAX_SUBTITLE_LANGS,
            ).format(n=MAX_SUBTITLE_LANGS)
        )
    bad = [lang for lang in langs if not _LANG.match(lang)]
    if bad:
        raise InvalidRequest(f'"{bad[0][:20]}" is not a language code (like en, de or pt-BR).')
    return format_id, langs


def quality_order(q: str) -> int:
    return -1 if q == "best" else -int(q)
