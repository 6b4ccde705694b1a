"""Numbers and states in words people read: sizes, durations, limits, progress bars and status lines."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.i18n import N_, _, ngettext, number, said

if TYPE_CHECKING:  # for types only: core.errors imports this, and a download child needs no database models
    from core.jobs.views import JobView


def human_size(num_bytes: float) -> str:
    """Sizes as people write them: 3.1 GB, 512 KB."""
    value = float(num_bytes)
    for unit in UNITS:
        if abs(value) < 1000 or unit is UNITS[-1]:
            if unit is UNITS[0]:
                return _(unit).format(n=number(int(value), "0"))
            return _(unit).format(n=number(round(value, 1), "0.#"))
        value /= 1000
    raise AssertionError("unreachable")


UNITS = (N_("{n} B"), N_("{n} KB"), N_("{n} MB"), N_("{n} GB"), N_("{n} TB"))


def human_limit(limit: int) -> str:
    """A size limit as the platform states it: Discord's are whole MiB, and it calls 10 MiB "10 MB"."""
    mib = 1024 * 1024
    return (
        _(UNITS[2]).format(n=number(limit // mib, "0")) if limit and limit % mib == 0 else human_size(limit)
    )


def human_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        if minutes:
            return _("{h} h {min} min").format(h=number(hours, "0"), min=number(minutes, "00"))
        return _("{h} h").format(h=number(hours, "0"))
    if minutes:
        if secs:
            return _("{min} min {s} s").format(min=number(minutes, "0"), s=number(secs, "00"))
        return _("{min} min").format(min=number(minutes, "0"))
    return _("{s} s").format(s=number(secs, "0"))


STATUS_WORDS = {
    "queued": N_("Queued"),
    "running": N_("Downloading"),
    "done": N_("Done"),
    "failed": N_("Failed"),
    "cancelled": N_("Cancelled"),
}


def status_word(status: str) -> str:
    """A job status as a word in the current language ("Downloading")."""
    return _(STATUS_WORDS[status]) if status in STATUS_WORDS else status.capitalize()


def percent(value: float) -> str:
    """52% / %۵۲ / %52 as the locale writes a percentage."""
    return _("{n}%").format(n=number(round(value), "0"))


def bar(percent: float | None, width: int = 12) -> str:
    if percent is None:
        return "[" + "·" * width + "]"
    filled = max(0, min(width, round(width * percent / 100)))
    return "[" + "█" * filled + "░" * (width - filled) + "]"


def progress_line(view: JobView, width: int = 12) -> str:
    """`[██████░░░░░░] 52% · 14 MB / 27 MB · 2.1 MB/s · ETA 6 s`"""
    p = view.progress
    parts = [f"{bar(p.percent, width)} {percent(p.percent)}" if p.percent is not None else bar(None, width)]
    if p.downloaded_bytes:
        size = human_size(p.downloaded_bytes)
        if p.total_bytes:
            size += f" / {human_size(p.total_bytes)}"
        parts.append(size)
    if p.speed:
        parts.append(_("{size}/s").format(size=human_size(p.speed)))
    if p.eta is not None and view.status == "running" and p.eta > 0:
        parts.append(_("ETA {duration}").format(duration=human_duration(p.eta)))
    return " · ".join(parts)


def waiting_words(view: JobView) -> str | None:
    """A queued job held back by its site: "Waiting for YouTube: 3 ahead of you"; None otherwise."""
    if view.status != "queued" or not view.waiting_for:
        return None
    site = view.waiting_for
    if view.ahead is None:
        return _("Waiting for {site}: it is refusing downloads for now, trying again later").format(site=site)
    if view.ahead == 0:
        return _("Waiting for {site}: you are next").format(site=site)
    return ngettext(
        "Waiting for {site}: {n} ahead of you", "Waiting for {site}: {n} ahead of you", view.ahead
    ).format(site=site, n=number(view.ahead, "0"))


def status_text(view: JobView) -> str:
    """A few lines for a chat message: title, status, progress."""
    title = view.title or view.url
    word = status_word(view.status)
    if (
        view.status == "running"
        and view.progress.downloaded_bytes is None
        and view.progress.total_bytes is None
    ):
        word = _("Starting")
    if (
        view.variant
        and view.variant.startswith(("clip:", "gif:", "chapters", "sb="))
        and view.status == "queued"
    ):
        word = _("Waiting for the whole file to be downloaded")
    if view.fit_limit is not None and view.status in ("queued", "running"):
        word = _("Making a copy that fits {size}").format(size=human_limit(view.fit_limit))
    word = waiting_words(view) or word
    lines = [title, word]
    if view.status == "running":
        lines.append(progress_line(view))
    elif view.status == "failed" and view.error:
        lines.append(said(view.error.message))
    elif view.status == "done" and view.filesize:
        lines.append(human_size(view.filesize))
    return "\n".join(lines)


def cut_note(view: JobView) -> str | None:
    """What a delivery adds about a file's cut: "3 chapters", "2 sponsor segments removed, 1:12 saved"; None
    when there is nothing to say."""
    words = []
    if view.chapters and view.variant != "chapters":
        words.append(ngettext("{n} chapter", "{n} chapters", view.chapters).format(n=view.chapters))
    if view.note:
        words.append(_(view.note))
    return " · ".join(words) or None
