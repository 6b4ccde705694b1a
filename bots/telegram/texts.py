"""Everything the Telegram bot says, and its inline keyboards, in one place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup

from bots.playlist import Item, Playlist
from core.delivery.planner import playlist_line
from core.i18n import N_, NAMES, _, ngettext, said, when
from core.jobs.formats import MediaFormats
from core.jobs.views import JobView
from core.words import human_duration, human_size, progress_line, status_text, status_word, waiting_words

_COMMANDS = [
    ("start", N_("What this bot does")),
    ("help", N_("How to use it, with an example")),
    ("video", N_("Download a video: /video LINK")),
    ("audio", N_("Download only the audio: /audio LINK")),
    ("clip", N_("Only a part: /clip LINK 1:20-1:45")),
    ("gif", N_("A part as an animation: /gif LINK 1:20-1:25")),
    ("chapters", N_("Each chapter as a file: /chapters LINK")),
    ("settings", N_("Default format and quality")),
    ("language", N_("The language I speak to you")),
    ("subs", N_("Subtitles: /subs en,de · /subs off · /subs en LINK")),
    ("status", N_("Your running downloads")),
    ("cancel", N_("Cancel all your running downloads")),
    ("subscribe", N_("Get every new video of a channel here: /subscribe LINK")),
    ("subscriptions", N_("What this chat follows")),
    ("unsubscribe", N_("Stop following one: /unsubscribe N")),
]
# The menu a group's admins see there: the same, and the group's own settings.
_ADMIN_COMMANDS = [*_COMMANDS, ("groupsettings", N_("This group: every link, or only links sent to me"))]


def commands() -> list[BotCommand]:
    """The command menu in the current language (runner.py sets one per language)."""
    return [BotCommand(name, _(description)) for name, description in _COMMANDS]


def admin_commands() -> list[BotCommand]:
    """The menu of a group's admins, in the current language."""
    return [BotCommand(name, _(description)) for name, description in _ADMIN_COMMANDS]


QUALITY_CHOICES = ["best", "1080", "720", "480", "360"]
MAX_TITLE = 200

# The module's sentences: `texts.APOLOGY` reads one in the current language (module __getattr__, below).
_SENTENCES = {
    "APOLOGY": N_("Sorry, something went wrong on our side. Please try again later."),
    "NOT_ALLOWED": N_(
        "Sorry, this bot is private. Ask its owner to add your user id ({user_id}) to the allowed users."
    ),
    "NO_LINK_AUDIO": N_("Send /audio followed by a link, for example: /audio https://example.com/song"),
    "NO_LINK_VIDEO": N_("Send /video followed by a link, for example: /video https://example.com/clip"),
    "TOO_MANY_LINKS": N_("I take up to {n} links per message; the rest were skipped."),
    "NOTHING_RUNNING": N_("You have no downloads running."),
    "NOTHING_TO_CANCEL": N_("You have no downloads running, so there is nothing to cancel."),
    "CANCELLED": N_("Cancelled."),
    "ALREADY_FINISHED": N_("That download has already finished."),
    "UNKNOWN_COMMAND": N_("I don't know that command. Send /help to see what I can do."),
    "CLIP_USAGE": N_(
        "Send /clip with a link and the part you want, for example: /clip https://example.com/v 1:20-1:45"
    ),
    "GIF_USAGE": N_(
        "Send /gif with a link and the part you want as an animation (no sound, up to a minute), for "
        "example: /gif https://example.com/v 1:20-1:25"
    ),
    "CHAPTERS_USAGE": N_("Send /chapters with a link: each chapter of it comes as a file of its own."),
    "CLIP_UNKNOWN_FILE": N_(
        "I don't know which link that file came from any more. Send the link with the part you want."
    ),
    "CHOICE_STALE": N_("That choice is no longer available; send the link again."),
    "CHOICE_NOT_YOURS": N_("Only the person who sent the link can choose its format."),
    "SUBS_USAGE": N_(
        "Send /subs en (or /subs en,de) for subtitles with every video from now on, /subs off to stop, "
        "or /subs en LINK for one link."
    ),
    "LANGUAGE_PROMPT": N_("Which language should I speak to you?"),
}


def __getattr__(name: str) -> Any:
    if name in _SENTENCES:
        return _(_SENTENCES[name])
    if name == "COMMANDS":
        return commands()
    if name == "ADMIN_COMMANDS":
        return admin_commands()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def help_text(upload_limit_bytes: int) -> str:
    return "\n".join(
        [
            _("I download videos and songs from links and send them to you here."),
            "",
            _("Send me a link, for example:"),
            "https://www.youtube.com/watch?v=aqz-KE-bpKQ",
            "",
            _("/video LINK – the video"),
            _("/audio LINK – only the audio"),
            _(
                "/clip LINK 1:20-1:45 – only that part (or write the part after a link, or reply with it to a "
                "video I sent)"
            ),
            _("/gif LINK 1:20-1:25 – that part as an animation, without sound"),
            _("/chapters LINK – each chapter as a file of its own"),
            _("/settings – what plain links give you (video or audio, quality, or a choice of formats)"),
            _("/language – the language I speak to you"),
            _("/subs en,de – subtitles with every video (/subs off to stop; /subs en LINK for one link)"),
            _("/status – your running downloads"),
            _("/cancel – cancel all of them"),
            "",
            _(
                "Files up to {size} arrive as a message; larger ones as a smaller copy when one fits (with a "
                "link to the full quality), else as a download link. A playlist or channel link sends its "
                "first items one by one."
            ).format(size=human_size(upload_limit_bytes)),
            _(
                "In groups, mention me or reply to me with a link, or use a command (group admins: /groupsettings)."
            ),
            _("In any chat, type my name and a link to send its video there."),
        ]
    )


def title_of(view: JobView) -> str:
    title = view.title or view.url
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"


def progress_text(view: JobView) -> str:
    """The progress message: title, status word, and (while running) bar, percent, size, speed, ETA."""
    text = status_text(view)
    if view.title and len(view.title) > MAX_TITLE:
        text = text.replace(view.title, title_of(view), 1)
    return text


def uploading_text(view: JobView) -> str:
    size = f" · {human_size(view.filesize)}" if view.filesize else ""
    return f"{title_of(view)}\n" + _("Uploading to Telegram{size}…").format(size=size)


def done_summary(view: JobView) -> str:
    size = f" · {human_size(view.filesize)}" if view.filesize else ""
    return f"{title_of(view)}\n" + _("Done{size}").format(size=size)


def failed_text(view: JobView) -> str:
    """One sentence, the core's own (e.g. "This site is not supported.")."""
    if view.error and view.error.message:
        return said(view.error.message)
    return _("The download was cancelled.") if view.status == "cancelled" else _("The download failed.")


def link_text(
    view: JobView,
    url: str,
    limit_bytes: int,
    ttl_s: int,
    *,
    rejected: bool = False,
    failed: bool = False,
    no_copy: bool = False,
) -> str:
    """The file as a link: why (over the limit, refused, failed; `no_copy`: no smaller copy fits either),
    then when the link expires, then the link on a line of its own."""
    size = human_size(view.filesize) if view.filesize else _("too large")
    if rejected:
        reason = _("Telegram refused the upload as too large")
    elif failed:
        reason = _("The upload to Telegram failed")
    else:
        reason = _("This file is {size}, over Telegram's {limit} upload limit").format(
            size=size, limit=human_size(limit_bytes)
        )
    if no_copy and not failed:
        reason += _(", and no smaller copy fits")
    instead = _("{reason}, so here is a download link instead.").format(reason=reason)
    return f"{title_of(view)}\n{instead} {expiry(ttl_s)}:\n{url}"


def expiry(ttl_s: int) -> str:
    expires = datetime.now(UTC) + timedelta(seconds=ttl_s)
    return _("It expires in {duration} ({moment} UTC)").format(
        duration=human_duration(ttl_s), moment=when(expires)
    )


def fitted_text(note: str, url: str | None, ttl_s: int, title: str | None = None) -> str:
    """After a copy that fits: which one it was, and where the full quality is.
    "Sent at 240p to fit Telegram's 1 MB limit. Full quality: <link> (expires in 24 h)" """
    text = f"{title}: {note}" if title else note
    if url:
        text += " " + _("Full quality: {url} (expires in {duration})").format(
            url=url, duration=human_duration(ttl_s)
        )
    return text


def part_caption(view: JobView, index: int, count: int) -> str:
    return f"{title_of(view)}\n" + _("Part {index} of {count}").format(index=index, count=count)


def item_failed(title: str, sentence: str) -> str:
    return f"{title}: {sentence}"


# -- playlists -------------------------------------------------------------------------------------------

MAX_ITEM_TITLE = 60
MAX_PLAYLIST_TEXT = 3800  # of Telegram's 4096 characters per message

ITEM_WORDS = {
    "waiting": N_("waiting"),
    "sending": N_("sending…"),
    "sent": N_("sent"),
    "link": N_("sent as a link"),
    "failed": N_("failed"),
    "cancelled": N_("cancelled"),
}


def item_state(item: Item) -> tuple[str, str]:
    """An item's state as the playlist message counts it (waiting | copying | sending | sent | link | failed |
    cancelled), and the words after it ("making a copy that fits 1 MB" while copying, "at 240p" once sent)."""
    if item.outcome in ("file", "copy"):
        if item.outcome == "file":
            return "sent", ""
        # A copy sent before a restart: which copy is no longer known.
        return "sent", fitted_detail(item.sent) if item.sent is not None else _("as a smaller copy")
    if item.outcome is not None:
        return item.outcome, ""
    if item.sending:
        return "sending", ""
    if item.copy is not None:
        return "copying", copying_word(item.copy)
    return "waiting", ""


def playlist_screen(playlist: Playlist) -> tuple[str, bool]:
    """The playlist message, and whether the Cancel button is under it (while items wait to be sent)."""
    states = [item_state(item) for item in playlist.items.values()]
    button = not playlist.finished and not playlist.cancelling and any(s == "waiting" for s, _ in states)
    titles = [item.title for item in playlist.items.values()]
    return playlist_text(
        playlist.view, titles, states, finished=playlist.finished, cancelling=playlist.cancelling
    ), button


def playlist_text(
    view: JobView, titles: list[str], states: list[tuple[str, str]], *, finished: bool = False,
    cancelling: int = 0,
) -> str:  # fmt: skip
    """The playlist message: its title, "Playlist: 10 of 143 items · 4 sent", and one line per item."""
    counts = {state: sum(1 for s, _ in states if s == state) for state in ITEM_WORDS}
    head = [playlist_line(view)]
    if counts["sent"] or finished:
        head.append(_("{n} sent").format(n=counts["sent"]))
    if counts["link"]:
        head.append(ngettext("{n} as link", "{n} as links", counts["link"]).format(n=counts["link"]))
    if counts["failed"]:
        head.append(_("{n} failed").format(n=counts["failed"]))
    if counts["cancelled"]:
        head.append(_("{n} cancelled").format(n=counts["cancelled"]))
    elif cancelling and not finished:
        head.append(_("cancelling {n}").format(n=cancelling))
    lines = [title_of(view), " · ".join(head)]
    used = sum(len(line) + 1 for line in lines)
    for n, (title, (state, detail)) in enumerate(zip(titles, states, strict=True), 1):
        title = title if len(title) <= MAX_ITEM_TITLE else title[: MAX_ITEM_TITLE - 1] + "…"
        word = detail if state == "copying" else _(ITEM_WORDS.get(state, state))
        if state == "sent" and detail:
            word = _("sent {how}").format(how=detail)
        line = f"{n}. {title} · {word}"
        if used + len(line) + 1 > MAX_PLAYLIST_TEXT:
            lines.append(_("… and {n} more").format(n=len(states) - n + 1))
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def copying_word(copy: JobView) -> str:
    """A playlist item whose copy that fits is being made: "making a copy that fits 1 MB · 40%"."""
    limit = (copy.variant or "").split(":")[1:2]
    word = (
        _("making a copy that fits {size}").format(size=human_size(int(limit[0])))
        if limit and limit[0].isdigit()
        else _("making a smaller copy")
    )
    percent = copy.progress.percent
    return f"{word} · {percent:.0f}%" if copy.status == "running" and percent is not None else word


def fitted_detail(copy: JobView) -> str:
    """How a playlist item that needed a copy was sent: "at 240p", "in 3 parts"."""
    if copy.parts:
        return ngettext("in {n} part", "in {n} parts", len(copy.parts)).format(n=len(copy.parts))
    if copy.height:
        return _("at {height}p").format(height=copy.height)
    return _("as a smaller copy")


def cancelled_items(n: int) -> str:
    return ngettext("Cancelled {n} item.", "Cancelled {n} items.", n).format(n=n)


def status_list(items: list[tuple[str, JobView]]) -> str:
    lines = [_("Your downloads:")]
    for n, (_id, view) in enumerate(items, 1):
        state = progress_line(view) if view.status == "running" else status_word(view.status)
        state = waiting_words(view) or state  # "Waiting for YouTube: 3 ahead of you", read from the job's row
        lines.append(f"{n}. {title_of(view)}\n   {state}")
    return "\n".join(lines)


def cancelled_count(n: int) -> str:
    return ngettext("Cancelled {n} download.", "Cancelled {n} downloads.", n).format(n=n)


def rate_limited(limit: int, retry_after_s: float) -> str:
    return ngettext(
        "You have reached the limit of {n} download per hour. Try again in {duration}.",
        "You have reached the limit of {n} downloads per hour. Try again in {duration}.",
        limit,
    ).format(n=limit, duration=human_duration(max(1, retry_after_s)))


def too_many_running(limit: int) -> str:
    return ngettext(
        "You already have {n} download running. Wait for it to finish, or /cancel.",
        "You already have {n} downloads running. Wait for one to finish, or /cancel.",
        limit,
    ).format(n=limit)


def cancel_keyboard(request_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(_("Cancel"), callback_data=f"cancel:{request_id}")]])


SPONSOR_WORDS = {"keep": N_("kept"), "remove": N_("removed"), "mark": N_("marked as chapters")}


def settings_text(kind: str, quality: str, ask_format: bool = False, sponsorblock: str = "keep") -> str:
    q = _("best quality") if quality == "best" else _("up to {height}p").format(height=quality)
    what = _("audio only") if kind == "audio" else _("video, {quality}").format(quality=q)
    sponsors = _("Sponsor, self-promotion and intro segments: {what}.").format(
        what=_(SPONSOR_WORDS.get(sponsorblock, SPONSOR_WORDS["keep"]))
    )
    change = _("Change it below (/audio and /video always work).")
    if ask_format:
        first = _("Links you send give you a choice of their formats (your default: {what}).")
    else:
        first = _("Links you send give you: {what}.")
    return f"{first.format(what=what)}\n{sponsors}\n{change}"


def settings_keyboard(
    kind: str, quality: str, ask_format: bool = False, sponsorblock: str = "keep", inline: bool = True
) -> InlineKeyboardMarkup:
    def mark(label: str, on: bool) -> str:
        return f"✓ {label}" if on else label

    kinds = [
        InlineKeyboardButton(mark(_("Video"), kind == "video"), callback_data="set:kind:video"),
        InlineKeyboardButton(mark(_("Audio"), kind == "audio"), callback_data="set:kind:audio"),
    ]
    qualities = [
        InlineKeyboardButton(
            mark(_("Best") if q == "best" else f"{q}p", quality == q), callback_data=f"set:quality:{q}"
        )
        for q in QUALITY_CHOICES
    ]
    formats = [
        InlineKeyboardButton(mark(_("Formats: ask each time"), ask_format), callback_data="set:ask:1"),
        InlineKeyboardButton(mark(_("Formats: use my default"), not ask_format), callback_data="set:ask:0"),
    ]
    sponsors = [
        InlineKeyboardButton(mark(label, sponsorblock == value), callback_data=f"set:sb:{value}")
        for value, label in (
            ("keep", _("Sponsors: keep")),
            ("remove", _("Sponsors: remove")),
            ("mark", _("Sponsors: mark")),
        )
    ]
    language = [InlineKeyboardButton("🌐 " + _("Language"), callback_data="lang:menu")]
    # The sponsor row second to last and the inline toggle last, as the clips and inline tests read them.
    return InlineKeyboardMarkup(
        [kinds, qualities[:3], qualities[3:], formats, language, sponsors, [inline_button(inline)]]
    )


# -- the format picker -----------------------------------------------------------------------------------

MAX_FORMAT_BUTTONS = 8  # of the formats a link offers, best first; "Audio only" and "Best" come after


def format_prompt(formats: MediaFormats) -> str:
    title = formats.title or formats.url
    if len(title) > MAX_TITLE:
        title = title[: MAX_TITLE - 1] + "…"
    length = f" · {human_duration(formats.duration)}" if formats.duration else ""
    return f"{title}{length}\n" + _("Which format?")


def format_choice_text(formats_title: str, label: str) -> str:
    return f"{formats_title}\n" + _("Chosen: {label}").format(label=label)


# -- subtitles -------------------------------------------------------------------------------------------


def subs_status(langs: tuple[str, ...]) -> str:
    if not langs:
        return _("Videos come without subtitles.") + " " + _(_SENTENCES["SUBS_USAGE"])
    return _("Videos come with subtitles in {languages}. Send /subs off to stop.").format(
        languages=", ".join(langs)
    )


def subs_saved(langs: tuple[str, ...]) -> str:
    if not langs:
        return _("Subtitles are off for future links.")
    return _("Future links come with subtitles in {languages}.").format(languages=", ".join(langs))


def subtitles_missing(kind: str, langs: list[str]) -> str:
    """One sentence for the languages asked for that the media lacks: "This video has no subtitles in de." """
    listed = (
        langs[0]
        if len(langs) == 1
        else _("{some} or {last}").format(some=", ".join(langs[:-1]), last=langs[-1])
    )
    if kind == "audio":
        return _("This audio has no subtitles in {languages}.").format(languages=listed)
    return _("This video has no subtitles in {languages}.").format(languages=listed)


# -- languages -------------------------------------------------------------------------------------------


def language_keyboard(chosen: str | None) -> InlineKeyboardMarkup:
    """One button per language we speak, two a row; ✓ on the one chosen (none: the app's language)."""
    buttons = [
        InlineKeyboardButton(f"✓ {name}" if code == chosen else name, callback_data=f"lang:{code}")
        for code, name in NAMES.items()
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append(
        [
            InlineKeyboardButton(
                ("✓ " if chosen is None else "") + _("As my Telegram app"), callback_data="lang:auto"
            )
        ]
    )
    return InlineKeyboardMarkup(rows)


def language_saved(locale: str | None) -> str:
    if locale is None:
        return _("I'll speak the language of your Telegram app.")
    return _("From now on I speak {language}.").format(language=NAMES[locale])


def language_unknown(code: str) -> str:
    """/language xx for a language we don't have: said in English, with the choice."""
    return _("I don't speak {code} yet, so I'll stay with English. Pick one of these:").format(code=code)


# -- inline mode and groups (bots/telegram/inline.py, bots/telegram/groups.py) ----------------------------

_SENTENCES.update(
    INLINE_DOWNLOADING=N_("Downloading… it will appear here when ready."),
    INLINE_WAIT_BUTTON=N_("Downloading…"),
    INLINE_WAIT_PRESSED=N_("Still downloading; the message changes by itself when it is ready."),
    INLINE_RESULT_TITLE=N_("Download and send here"),
    INLINE_CACHED_TITLE=N_("Send it now"),
    INLINE_HINT=N_("Type a link after my name to send its video here"),
    INLINE_OFF=N_("Inline mode is off for you: turn it on in /settings"),
    INLINE_OFF_TOO=N_("Inline mode is off for you; turn it on in /settings."),
    INLINE_PLAYLIST=N_("This link is a playlist: send it to me in a private chat to get its items."),
    INLINE_NOT_READY=N_("Not downloaded yet: send me the link in a private chat"),
    GROUP_ADMINS_ONLY=N_("Only the group's admins can change its settings."),
    GROUP_ONLY=N_("Send /groupsettings in a group to change how I behave there."),
)


def group_settings_text(every_link: bool) -> str:
    if every_link:
        return _("In this group I download every link anyone posts.")
    return _("In this group I download only links sent to me: a mention of me, a reply to me, or a command.")


def group_settings_keyboard(every_link: bool) -> InlineKeyboardMarkup:
    def mark(label: str, on: bool) -> str:
        return f"✓ {label}" if on else label

    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(mark(_("Every link"), every_link), callback_data="grp:every:1"),
                InlineKeyboardButton(
                    mark(_("Only links sent to me"), not every_link), callback_data="grp:every:0"
                ),
            ]
        ]
    )


def inline_button(inline: bool) -> InlineKeyboardButton:
    """The /settings row for inline mode (@bot LINK in any chat)."""
    label = _("Inline: on") if inline else _("Inline: off")
    return InlineKeyboardButton(f"✓ {label}", callback_data=f"set:inline:{0 if inline else 1}")
