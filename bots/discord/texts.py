"""What the bot writes: progress, results and errors, as Discord message text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import discord

from bots.playlist import Playlist
from core.delivery.planner import playlist_line
from core.i18n import N_, NAMES, _, ngettext, said
from core.jobs.views import JobView
from core.words import cut_note, human_duration, human_size, status_text

MAX_TITLE = 200
MAX_ITEM_TITLE = 80
MAX_ITEM_ERROR = 120
MAX_CONTENT = 2000

# The module's sentences: `texts.APOLOGY` reads one in the current language (module __getattr__, below).
_SENTENCES = {
    "APOLOGY": N_("Something went wrong. Please try again."),
}


def __getattr__(name: str) -> Any:
    if name in _SENTENCES:
        return _(_SENTENCES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# How each playlist item went out (bots/playlist.py).
DELIVERED_WORDS = {
    "file": N_("sent"),
    "copy": N_("sent as a smaller copy"),
    "link": N_("sent as a link"),
    "failed": N_("failed"),
    "cancelled": N_("cancelled"),
}
ITEM_WORDS = {"queued": N_("queued"), "running": N_("downloading"), "done": N_("sending")}


def title_of(view: JobView) -> str:
    title = " ".join((view.title or view.url).split())
    if len(title) > MAX_TITLE:
        title = title[: MAX_TITLE - 1] + "…"
    return f"**{discord.utils.escape_markdown(title)}**"


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_word(view: JobView) -> str:
    """The shared status line of a job ("Downloading", "Making a copy that fits 1 MB")."""
    title_lines = (view.title or view.url).count("\n") + 1
    return status_text(view).split("\n")[title_lines]


def progress_text(view: JobView) -> str:
    """The title in bold, then the shared status lines (status word, bar, percent, sizes, speed, ETA)."""
    title_lines = (view.title or view.url).count("\n") + 1
    return "\n".join([title_of(view), *status_text(view).split("\n")[title_lines:]])


def done_text(view: JobView) -> str:
    text = f"{title_of(view)} · {human_size(view.filesize)}" if view.filesize else title_of(view)
    note = cut_note(view)  # "3 chapters", "2 sponsor segments removed, 1:12 saved"
    return f"{text}\n{note}" if note else text


def fitted_text(copy: JobView, note: str, link: str | None, expires_at: float) -> str:
    """A copy made to fit: which one was sent, and the full-quality file as a link."""
    full = (
        " " + _("Full quality: {link} (expires {when})").format(link=link, when=f"<t:{int(expires_at)}:R>")
        if link
        else ""
    )
    return f"{done_text(copy)}\n{note}{full}"


def link_text(view: JobView, link: str, expires_at: float, note: str | None = None) -> str:
    """A download link instead of the file; `note` says why (the planner's sentence)."""
    if note is None:
        size = f" ({human_size(view.filesize)})" if view.filesize else ""
        note = _("Too large to attach here{size}.").format(size=size)
    download = _("Download it: {link}").format(link=link)
    expires = _("The link expires {when}.").format(when=f"<t:{int(expires_at)}:R>")
    return f"{title_of(view)}\n{note}\n{download}\n{expires}"


def cancelled_text(view: JobView) -> str:
    return f"{title_of(view)}\n" + _("Cancelled.")


# -- playlists --------------------------------------------------------------------------------------------


def item_state(
    job: JobView,
    *,
    delivered_as: str | None = None,
    cancelled: bool = False,
    copy: JobView | None = None,
) -> str:
    """One playlist item's state in a word or a few: "queued", "downloading", "sent", "failed: ..."."""
    if delivered_as == "failed" or (delivered_as is None and job.status == "failed"):
        message = said(job.error.message) if job.error else ""
        if message:
            return _("failed: {reason}").format(reason=_shorten(message, MAX_ITEM_ERROR))
        return _("failed")
    if delivered_as is not None:
        return _(DELIVERED_WORDS.get(delivered_as, delivered_as))
    if cancelled or job.status == "cancelled":
        return _("cancelled")
    if copy is not None and not copy.terminal:
        word = status_word(copy)
        return word[:1].lower() + word[1:]
    return _(ITEM_WORDS.get(job.status, job.status))


def listing_text(playlist: Playlist) -> str:
    """A playlist's reply: a line per item with its state, and a summary once it finished (or was cancelled)."""
    lines = []
    for index, item in enumerate(playlist.items.values(), 1):
        state = item_state(
            item.job,
            delivered_as=item.outcome,
            cancelled=playlist.cancelled or item.cancelled,
            copy=item.copy,
        )
        lines.append(item_line(index, item.job, state))
    footer = None
    if playlist.finished or playlist.cancelled:
        footer = playlist_footer(playlist.outcomes(), len(playlist.items), cancelled=playlist.cancelled)
    return playlist_text(playlist.view, lines, footer)


def item_line(index: int, job: JobView, state: str) -> str:
    title = discord.utils.escape_markdown(_shorten(job.title or job.url, MAX_ITEM_TITLE))
    return f"{index}. {title} · {state}"


def playlist_text(view: JobView, lines: Sequence[str], footer: str | None = None) -> str:
    """The playlist's title, "Playlist: 10 of 143 items", a line per item (as many as fit), a footer."""
    head = [title_of(view), playlist_line(view)]
    tail = [footer] if footer else []
    budget = MAX_CONTENT - len("\n".join(head + tail)) - 2
    body: list[str] = []
    for index, line in enumerate(lines):
        more = _("… and {n} more").format(n=len(lines) - index)
        rest = len(lines) - index - 1
        if len(line) + 1 > budget - (len(more) + 1 if rest else 0):
            body.append(more)
            break
        body.append(line)
        budget -= len(line) + 1
    return "\n".join(head + body + tail)


def playlist_footer(delivered: Sequence[str], count: int, *, cancelled: bool = False) -> str:
    """ "Sent 9 of 10 items; 1 failed." or "Cancelled after sending 3 of 10 items." """
    sent = sum(1 for outcome in delivered if outcome in ("file", "copy", "link"))
    if cancelled:
        return ngettext(
            "Cancelled after sending {sent} of {n} item.",
            "Cancelled after sending {sent} of {n} items.",
            count,
        ).format(sent=sent, n=count)
    text = ngettext("Sent {sent} of {n} item", "Sent {sent} of {n} items", count).format(sent=sent, n=count)
    failed = sum(1 for outcome in delivered if outcome == "failed")
    stopped = sum(1 for outcome in delivered if outcome == "cancelled")
    extra = [_("{n} failed").format(n=failed)] * bool(failed) + [_("{n} cancelled").format(n=stopped)] * bool(
        stopped
    )
    return f"{text}; {', '.join(extra)}." if extra else f"{text}."


# -- formats and subtitles --------------------------------------------------------------------------------


def subtitles_missing(kind: str, langs: Sequence[str]) -> str:
    """One sentence for the languages asked for that the media lacks: "This video has no subtitles in fr." """
    listed = (
        langs[0]
        if len(langs) == 1
        else _("{some} or {last}").format(some=", ".join(langs[:-1]), last=langs[-1])
    )
    if kind == "audio":
        return _("This audio has no subtitles in {languages}.").format(languages=listed)
    return _("This video has no subtitles in {languages}.").format(languages=listed)


def with_missing_subtitles(content: str, view: JobView) -> str:
    """A delivery's text, followed by the sentence about the subtitle languages the media lacks."""
    if not view.subtitles_missing:
        return content
    return f"{content}\n{subtitles_missing(view.kind, view.subtitles_missing)}"


def picker_text(title: str | None, url: str, duration: float | None) -> str:
    """The format picker's message. Its last line is the link, which the menu's handler reads back: the
    message holds the question, so a menu still works after a restart."""
    head = (
        f"**{discord.utils.escape_markdown(_shorten(title, MAX_TITLE))}**" if title else f"**{_('Formats')}**"
    )
    if duration:
        head += f" · {human_duration(duration)}"
    return f"{head}\n" + _("Choose a format:") + f"\n<{url}>"


def link_of_picker(content: str) -> str | None:
    """The link a format picker's message was made for (its last line), None when it has none."""
    last = content.strip().rsplit("\n", 1)[-1].strip()
    if last.startswith("<") and last.endswith(">") and "://" in last:
        return last[1:-1]
    return None


def starting_text(content: str, label: str) -> str:
    """The picker's message once a format is chosen, until the download's progress replaces it."""
    head = content.strip().split("\n", 1)[0]
    return f"{head}\n" + _("Starting the download: {label}.").format(
        label=discord.utils.escape_markdown(label)
    )


# -- languages --------------------------------------------------------------------------------------------


def language_saved(locale: str | None) -> str:
    if locale is None:
        return _("I'll speak the language of your Discord app.")
    return _("From now on I speak {language}.").format(language=NAMES[locale])


def language_unknown(code: str) -> str:
    """/language xx for a language we don't have: said in English, with the ones we do."""
    return _("I don't speak {code} yet, so I'll stay with English. I speak: {languages}.").format(
        code=code, languages=", ".join(NAMES)
    )


SPONSOR_WORDS = {"keep": N_("kept"), "remove": N_("removed"), "mark": N_("marked as chapters")}


def settings_text(sponsorblock: str) -> str:
    """/settings' answer: the person's sponsor default, and how to change it."""
    words = _(SPONSOR_WORDS.get(sponsorblock, SPONSOR_WORDS["keep"]))
    return "\n".join(
        [
            _("Sponsor, self-promotion and intro segments of the links you send: {what}.").format(what=words),
            _("Change it with /settings sponsors, or per link with /download's sponsorblock option."),
        ]
    )
