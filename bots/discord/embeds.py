"""The embed on the message that delivers a finished download: title, uploader, duration, size, the
thumbnail, and links to subtitle files that were not attached."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from core.i18n import _
from core.jobs.views import JobView
from core.words import human_duration, human_size

MAX_TITLE = 256
MAX_FIELD = 1024
MAX_URL = 2000
MAX_DESCRIPTION = 4096


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def media_embed(
    sent: JobView,
    source: JobView | None = None,
    *,
    thumbnail: str | None = None,
    subtitle_links: Sequence[tuple[str, str]] = (),
) -> discord.Embed:
    """The embed for `sent` (the file delivered: the download itself or a copy made to fit); details a copy
    lacks come from `source`, the download it was made from. `subtitle_links`: (language, link) pairs."""
    source = source or sent
    title = sent.title or source.title or sent.url
    url = (
        source.url if source.url.startswith(("http://", "https://")) and len(source.url) <= MAX_URL else None
    )
    embed = discord.Embed(title=_cut(title, MAX_TITLE), url=url)
    uploader = sent.uploader or source.uploader
    if uploader:
        embed.add_field(name=_("Uploader"), value=_cut(uploader, MAX_FIELD))
    duration = sent.duration or source.duration
    if duration:
        embed.add_field(name=_("Duration"), value=human_duration(duration))
    if sent.filesize:
        embed.add_field(name=_("Size"), value=human_size(sent.filesize))
    if thumbnail:
        embed.set_thumbnail(url=thumbnail)
    if subtitle_links:
        lines = [f"[{lang}]({link})" for lang, link in subtitle_links]
        head = _("Subtitles:")
        text = f"{head} " + " · ".join(lines)
        # Too many long links for a description: the ones that fit; the file's own message says the rest.
        while len(text) > MAX_DESCRIPTION and lines:
            lines.pop()
            text = f"{head} " + " · ".join(lines)
        if lines:
            embed.description = text
    return embed
