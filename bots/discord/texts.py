"""What the bot writes: progress, results and errors, as Discord message text."""

from __future__ import annotations

import discord

from core.errors import human_size
from core.render import status_text
from core.schemas import JobView

MAX_TITLE = 200


def title_of(view: JobView) -> str:
    title = " ".join((view.title or view.url).split())
    if len(title) > MAX_TITLE:
        title = title[: MAX_TITLE - 1] + "…"
    return f"**{discord.utils.escape_markdown(title)}**"


def progress_text(view: JobView) -> str:
    """The title in bold, then the shared status lines (status word, bar, percent, sizes, speed, ETA)."""
    title_lines = (view.title or view.url).count("\n") + 1
    return "\n".join([title_of(view), *status_text(view).split("\n")[title_lines:]])


def done_text(view: JobView) -> str:
    return f"{title_of(view)} · {human_size(view.filesize)}" if view.filesize else title_of(view)


def link_text(view: JobView, link: str, expires_at: float) -> str:
    size = f" ({human_size(view.filesize)})" if view.filesize else ""
    return (
        f"{title_of(view)}{size}\nToo large to attach here. Download it: {link}\n"
        f"The link expires <t:{int(expires_at)}:R>."
    )


def error_text(view: JobView) -> str:
    message = view.error.message if view.error else "The download failed."
    return f"{title_of(view)}\n{message}"


def cancelled_text(view: JobView) -> str:
    return f"{title_of(view)}\nCancelled."


def same_text(a: JobView, b: JobView) -> bool:
    return a.terminal == b.terminal and progress_text(a) == progress_text(b)
