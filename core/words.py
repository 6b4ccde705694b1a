"""Numbers and states in words people read: sizes, durations, limits, progress bars and status lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # for types only: core.errors imports this, and a download child needs no database models
    from core.jobs.views import JobView


def human_size(num_bytes: float) -> str:
    """Sizes as people write them: 3.1 GB, 512 KB."""
    value = float(num_bytes)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            if unit == "B":
                return f"{int(value)} B"
            return f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1000
    raise AssertionError("unreachable")


def human_limit(limit: int) -> str:
    """A size limit as the platform states it: Discord's are whole MiB, and it calls 10 MiB "10 MB"."""
    mib = 1024 * 1024
    return f"{limit // mib} MB" if limit and limit % mib == 0 else human_size(limit)


def human_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs:02d} s" if secs else f"{minutes} min"
    return f"{secs} s"


STATUS_WORDS = {
    "queued": "Queued",
    "running": "Downloading",
    "done": "Done",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


def bar(percent: float | None, width: int = 12) -> str:
    if percent is None:
        return "[" + "·" * width + "]"
    filled = max(0, min(width, round(width * percent / 100)))
    return "[" + "█" * filled + "░" * (width - filled) + "]"


def progress_line(view: JobView, width: int = 12) -> str:
    """`[██████░░░░░░] 52% · 14 MB / 27 MB · 2.1 MB/s · ETA 6 s`"""
    p = view.progress
    parts = [f"{bar(p.percent, width)} {p.percent:.0f}%" if p.percent is not None else bar(None, width)]
    if p.downloaded_bytes:
        size = human_size(p.downloaded_bytes)
        if p.total_bytes:
            size += f" / {human_size(p.total_bytes)}"
        parts.append(size)
    if p.speed:
        parts.append(f"{human_size(p.speed)}/s")
    if p.eta is not None and view.status == "running" and p.eta > 0:
        parts.append(f"ETA {human_duration(p.eta)}")
    return " · ".join(parts)


def waiting_words(view: JobView) -> str | None:
    """A queued job held back by its site: "Waiting for YouTube: 3 ahead of you"; None otherwise."""
    if view.status != "queued" or not view.waiting_for:
        return None
    if view.ahead is None:
        return f"Waiting for {view.waiting_for}: it is refusing downloads for now, trying again later"
    if view.ahead == 0:
        return f"Waiting for {view.waiting_for}: you are next"
    return f"Waiting for {view.waiting_for}: {view.ahead} ahead of you"


def status_text(view: JobView) -> str:
    """A few lines for a chat message: title, status, progress."""
    title = view.title or view.url
    word = STATUS_WORDS.get(view.status, view.status)
    if (
        view.status == "running"
        and view.progress.downloaded_bytes is None
        and view.progress.total_bytes is None
    ):
        word = "Starting"
    if (
        view.variant
        and view.variant.startswith(("clip:", "gif:", "chapters", "sb="))
        and view.status == "queued"
    ):
        word = "Waiting for the whole file to be downloaded"
    if view.fit_limit is not None and view.status in ("queued", "running"):
        word = f"Making a copy that fits {human_limit(view.fit_limit)}"
    word = waiting_words(view) or word
    lines = [title, word]
    if view.status == "running":
        lines.append(progress_line(view))
    elif view.status == "failed" and view.error:
        lines.append(view.error.message)
    elif view.status == "done" and view.filesize:
        lines.append(human_size(view.filesize))
    return "\n".join(lines)


def cut_note(view: JobView) -> str | None:
    """What a delivery adds about a file's cut: "3 chapters", "2 sponsor segments removed, 1:12 saved"; None
    when there is nothing to say."""
    words = []
    if view.chapters and view.variant != "chapters":
        words.append("1 chapter" if view.chapters == 1 else f"{view.chapters} chapters")
    if view.note:
        words.append(view.note)
    return " · ".join(words) or None
