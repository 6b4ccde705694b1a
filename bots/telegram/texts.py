"""Everything the Telegram bot says, and its inline keyboards, in one place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup

from bots.playlist import Item, Playlist
from core.delivery.planner import playlist_line
from core.jobs.formats import MediaFormats
from core.jobs.views import JobView
from core.words import human_duration, human_size, progress_line, status_text

COMMANDS = [
    BotCommand("start", "What this bot does"),
    BotCommand("help", "How to use it, with an example"),
    BotCommand("video", "Download a video: /video LINK"),
    BotCommand("audio", "Download only the audio: /audio LINK"),
    BotCommand("clip", "Only a part: /clip LINK 1:20-1:45"),
    BotCommand("gif", "A part as an animation: /gif LINK 1:20-1:25"),
    BotCommand("chapters", "Each chapter as a file: /chapters LINK"),
    BotCommand("settings", "Default format and quality"),
    BotCommand("subs", "Subtitles: /subs en,de · /subs off · /subs en LINK"),
    BotCommand("status", "Your running downloads"),
    BotCommand("cancel", "Cancel all your running downloads"),
    BotCommand("subscribe", "Get every new video of a channel here: /subscribe LINK"),
    BotCommand("subscriptions", "What this chat follows"),
    BotCommand("unsubscribe", "Stop following one: /unsubscribe N"),
]
# The menu a group's admins see there: the same, and the group's own settings.
ADMIN_COMMANDS = [*COMMANDS, BotCommand("groupsettings", "This group: every link, or only links sent to me")]

QUALITY_CHOICES = ["best", "1080", "720", "480", "360"]
MAX_TITLE = 200

APOLOGY = "Sorry, something went wrong on our side. Please try again later."
NOT_ALLOWED = (
    "Sorry, this bot is private. Ask its owner to add your user id ({user_id}) to the allowed users."
)
NO_LINK_AUDIO = "Send /audio followed by a link, for example: /audio https://example.com/song"
NO_LINK_VIDEO = "Send /video followed by a link, for example: /video https://example.com/clip"
TOO_MANY_LINKS = "I take up to {n} links per message; the rest were skipped."
NOTHING_RUNNING = "You have no downloads running."
NOTHING_TO_CANCEL = "You have no downloads running, so there is nothing to cancel."
CANCELLED = "Cancelled."
ALREADY_FINISHED = "That download has already finished."
UNKNOWN_COMMAND = "I don't know that command. Send /help to see what I can do."


def help_text(upload_limit_bytes: int) -> str:
    return (
        "I download videos and songs from links and send them to you here.\n\n"
        "Send me a link, for example:\n"
        "https://www.youtube.com/watch?v=aqz-KE-bpKQ\n\n"
        "/video LINK – the video\n"
        "/audio LINK – only the audio\n"
        "/clip LINK 1:20-1:45 – only that part (or write the part after a link, or reply with it to a video I sent)\n"
        "/gif LINK 1:20-1:25 – that part as an animation, without sound\n"
        "/chapters LINK – each chapter as a file of its own\n"
        "/settings – what plain links give you (video or audio, quality, or a choice of formats)\n"
        "/subs en,de – subtitles with every video (/subs off to stop; /subs en LINK for one link)\n"
        "/status – your running downloads\n"
        "/cancel – cancel all of them\n\n"
        f"Files up to {human_size(upload_limit_bytes)} arrive as a message; larger ones as a smaller copy "
        "when one fits (with a link to the full quality), else as a download link. A playlist or channel "
        "link sends its first items one by one.\n"
        "In groups, mention me or reply to me with a link, or use a command (group admins: /groupsettings).\n"
        "In any chat, type my name and a link to send its video there."
    )


CLIP_USAGE = (
    "Send /clip with a link and the part you want, for example: /clip https://example.com/v 1:20-1:45"
)
GIF_USAGE = (
    "Send /gif with a link and the part you want as an animation (no sound, up to a minute), for example: "
    "/gif https://example.com/v 1:20-1:25"
)
CHAPTERS_USAGE = "Send /chapters with a link: each chapter of it comes as a file of its own."
CLIP_UNKNOWN_FILE = (
    "I don't know which link that file came from any more. Send the link with the part you want."
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
    return f"{title_of(view)}\nUploading to Telegram{size}…"


def done_summary(view: JobView) -> str:
    size = f" · {human_size(view.filesize)}" if view.filesize else ""
    return f"{title_of(view)}\nDone{size}"


def failed_text(view: JobView) -> str:
    """One sentence, the core's own (e.g. "This site is not supported.")."""
    if view.error and view.error.message:
        return view.error.message
    return "The download was cancelled." if view.status == "cancelled" else "The download failed."


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
    size = human_size(view.filesize) if view.filesize else "too large"
    if rejected:
        reason = "Telegram refused the upload as too large"
    elif failed:
        reason = "The upload to Telegram failed"
    else:
        reason = f"This file is {size}, over Telegram's {human_size(limit_bytes)} upload limit"
    if no_copy and not failed:
        reason += ", and no smaller copy fits"
    return f"{title_of(view)}\n{reason}, so here is a download link instead. {expiry(ttl_s)}:\n{url}"


def expiry(ttl_s: int) -> str:
    expires = datetime.now(UTC) + timedelta(seconds=ttl_s)
    return f"It expires in {human_duration(ttl_s)} ({expires:%Y-%m-%d %H:%M} UTC)"


def fitted_text(note: str, url: str | None, ttl_s: int, title: str | None = None) -> str:
    """After a copy that fits: which one it was, and where the full quality is.
    "Sent at 240p to fit Telegram's 1 MB limit. Full quality: <link> (expires in 24 h)" """
    text = f"{title}: {note}" if title else note
    if url:
        text += f" Full quality: {url} (expires in {human_duration(ttl_s)})"
    return text


def part_caption(view: JobView, index: int, count: int) -> str:
    if view.variant == "chapters" and view.parts and 0 < index <= len(view.parts):
        # A split by chapters: each part is named "01 Title.mp4" after its chapter.
        chapter = view.parts[index - 1].filename.rsplit(".", 1)[0].split(" ", 1)[-1]
        return f"{title_of(view)}\n{index}/{count} · {chapter}"
    return f"{title_of(view)}\nPart {index} of {count}"


def item_failed(title: str, sentence: str) -> str:
    return f"{title}: {sentence}"


# -- playlists -------------------------------------------------------------------------------------------

MAX_ITEM_TITLE = 60
MAX_PLAYLIST_TEXT = 3800  # of Telegram's 4096 characters per message

ITEM_WORDS = {
    "waiting": "waiting",
    "sending": "sending…",
    "sent": "sent",
    "link": "sent as a link",
    "failed": "failed",
    "cancelled": "cancelled",
}


def item_state(item: Item) -> tuple[str, str]:
    """An item's state as the playlist message counts it (waiting | copying | sending | sent | link | failed |
    cancelled), and the words after it ("making a copy that fits 1 MB" while copying, "at 240p" once sent)."""
    if item.outcome in ("file", "copy"):
        if item.outcome == "file":
            return "sent", ""
        # A copy sent before a restart: which copy is no longer known.
        return "sent", fitted_detail(item.sent) if item.sent is not None else "as a smaller copy"
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
        head.append(f"{counts['sent']} sent")
    if counts["link"]:
        head.append(f"{counts['link']} as link{'s' if counts['link'] != 1 else ''}")
    if counts["failed"]:
        head.append(f"{counts['failed']} failed")
    if counts["cancelled"]:
        head.append(f"{counts['cancelled']} cancelled")
    elif cancelling and not finished:
        head.append(f"cancelling {cancelling}")
    lines = [title_of(view), " · ".join(head)]
    used = sum(len(line) + 1 for line in lines)
    for n, (title, (state, detail)) in enumerate(zip(titles, states, strict=True), 1):
        title = title if len(title) <= MAX_ITEM_TITLE else title[: MAX_ITEM_TITLE - 1] + "…"
        word = detail if state == "copying" else ITEM_WORDS.get(state, state)
        if state == "sent" and detail:
            word = f"sent {detail}"
        line = f"{n}. {title} · {word}"
        if used + len(line) + 1 > MAX_PLAYLIST_TEXT:
            lines.append(f"… and {len(states) - n + 1} more")
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines)


def copying_word(copy: JobView) -> str:
    """A playlist item whose copy that fits is being made: "making a copy that fits 1 MB · 40%"."""
    limit = (copy.variant or "").split(":")[1:2]
    word = (
        f"making a copy that fits {human_size(int(limit[0]))}"
        if limit and limit[0].isdigit()
        else "making a smaller copy"
    )
    percent = copy.progress.percent
    return f"{word} · {percent:.0f}%" if copy.status == "running" and percent is not None else word


def fitted_detail(copy: JobView) -> str:
    """How a playlist item that needed a copy was sent: "at 240p", "in 3 parts"."""
    if copy.parts:
        return f"in {len(copy.parts)} parts"
    if copy.height:
        return f"at {copy.height}p"
    return "as a smaller copy"


def cancelled_items(n: int) -> str:
    return f"Cancelled {n} item{'s' if n != 1 else ''}."


def status_list(items: list[tuple[str, JobView]]) -> str:
    lines = ["Your downloads:"]
    for n, (_, view) in enumerate(items, 1):
        state = progress_line(view) if view.status == "running" else view.status.capitalize()
        lines.append(f"{n}. {title_of(view)}\n   {state}")
    return "\n".join(lines)


def cancelled_count(n: int) -> str:
    return f"Cancelled {n} download{'s' if n != 1 else ''}."


def rate_limited(limit: int, retry_after_s: float) -> str:
    return (
        f"You have reached the limit of {limit} downloads per hour. "
        f"Try again in {human_duration(max(1, retry_after_s))}."
    )


def too_many_running(limit: int) -> str:
    downloads = "a download" if limit == 1 else f"{limit} downloads"
    return f"You already have {downloads} running. Wait for it to finish, or /cancel."


def cancel_keyboard(request_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton("Cancel", callback_data=f"cancel:{request_id}")]])


def settings_text(kind: str, quality: str, ask_format: bool = False) -> str:
    q = "best quality" if quality == "best" else f"up to {quality}p"
    what = "audio only" if kind == "audio" else f"video, {q}"
    if ask_format:
        return (
            f"Links you send give you a choice of their formats (your default: {what}).\n"
            "Change it below (/audio and /video always work)."
        )
    return f"Links you send give you: {what}.\nChange it below (/audio and /video always work)."


def settings_keyboard(
    kind: str, quality: str, ask_format: bool = False, inline: bool = True
) -> InlineKeyboardMarkup:
    def mark(label: str, on: bool) -> str:
        return f"✓ {label}" if on else label

    kinds = [
        InlineKeyboardButton(mark("Video", kind == "video"), callback_data="set:kind:video"),
        InlineKeyboardButton(mark("Audio", kind == "audio"), callback_data="set:kind:audio"),
    ]
    qualities = [
        InlineKeyboardButton(
            mark("Best" if q == "best" else f"{q}p", quality == q), callback_data=f"set:quality:{q}"
        )
        for q in QUALITY_CHOICES
    ]
    formats = [
        InlineKeyboardButton(mark("Formats: ask each time", ask_format), callback_data="set:ask:1"),
        InlineKeyboardButton(mark("Formats: use my default", not ask_format), callback_data="set:ask:0"),
    ]
    return InlineKeyboardMarkup([kinds, qualities[:3], qualities[3:], formats, [inline_button(inline)]])


# -- the format picker -----------------------------------------------------------------------------------

MAX_FORMAT_BUTTONS = 8  # of the formats a link offers, best first; "Audio only" and "Best" come after
CHOICE_STALE = "That choice is no longer available; send the link again."
CHOICE_NOT_YOURS = "Only the person who sent the link can choose its format."


def format_prompt(formats: MediaFormats) -> str:
    title = formats.title or formats.url
    if len(title) > MAX_TITLE:
        title = title[: MAX_TITLE - 1] + "…"
    length = f" · {human_duration(formats.duration)}" if formats.duration else ""
    return f"{title}{length}\nWhich format?"


def format_choice_text(formats_title: str, label: str) -> str:
    return f"{formats_title}\nChosen: {label}"


# -- subtitles -------------------------------------------------------------------------------------------

SUBS_USAGE = (
    "Send /subs en (or /subs en,de) for subtitles with every video from now on, /subs off to stop, "
    "or /subs en LINK for one link."
)


def subs_status(langs: tuple[str, ...]) -> str:
    if not langs:
        return "Videos come without subtitles. " + SUBS_USAGE
    return f"Videos come with subtitles in {', '.join(langs)}. Send /subs off to stop."


def subs_saved(langs: tuple[str, ...]) -> str:
    if not langs:
        return "Subtitles are off for future links."
    return f"Future links come with subtitles in {', '.join(langs)}."


def subtitles_missing(kind: str, langs: list[str]) -> str:
    """One sentence for the languages asked for that the media lacks: "This video has no subtitles in de." """
    what = "audio" if kind == "audio" else "video"
    listed = langs[0] if len(langs) == 1 else ", ".join(langs[:-1]) + f" or {langs[-1]}"
    return f"This {what} has no subtitles in {listed}."


# -- inline mode and groups (bots/telegram/inline.py, bots/telegram/groups.py) ----------------------------

INLINE_DOWNLOADING = "Downloading… it will appear here when ready."
INLINE_WAIT_BUTTON = "Downloading…"
INLINE_WAIT_PRESSED = "Still downloading; the message changes by itself when it is ready."
INLINE_RESULT_TITLE = "Download and send here"
INLINE_CACHED_TITLE = "Send it now"
INLINE_HINT = "Type a link after my name to send its video here"
INLINE_OFF = "Inline mode is off for you: turn it on in /settings"
INLINE_OFF_TOO = "Inline mode is off for you; turn it on in /settings."
INLINE_PLAYLIST = "This link is a playlist: send it to me in a private chat to get its items."
INLINE_NOT_READY = "Not downloaded yet: send me the link in a private chat"
GROUP_ADMINS_ONLY = "Only the group's admins can change its settings."
GROUP_ONLY = "Send /groupsettings in a group to change how I behave there."


def group_settings_text(every_link: bool) -> str:
    if every_link:
        return "In this group I download every link anyone posts."
    return "In this group I download only links sent to me: a mention of me, a reply to me, or a command."


def group_settings_keyboard(every_link: bool) -> InlineKeyboardMarkup:
    def mark(label: str, on: bool) -> str:
        return f"✓ {label}" if on else label

    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(mark("Every link", every_link), callback_data="grp:every:1"),
                InlineKeyboardButton(
                    mark("Only links sent to me", not every_link), callback_data="grp:every:0"
                ),
            ]
        ]
    )


def inline_button(inline: bool) -> InlineKeyboardButton:
    """The /settings row for inline mode (@bot LINK in any chat)."""
    label = "Inline: on" if inline else "Inline: off"
    return InlineKeyboardButton(f"✓ {label}", callback_data=f"set:inline:{0 if inline else 1}")
