"""Everything the Telegram bot says, and its inline keyboards, in one place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from telegram import BotCommand, InlineKeyboardButton, InlineKeyboardMarkup

from core.errors import human_duration, human_size
from core.render import progress_line, status_text
from core.schemas import JobView

COMMANDS = [
    BotCommand("start", "What this bot does"),
    BotCommand("help", "How to use it, with an example"),
    BotCommand("video", "Download a video: /video LINK"),
    BotCommand("audio", "Download only the audio: /audio LINK"),
    BotCommand("settings", "Default format and quality"),
    BotCommand("status", "Your running downloads"),
    BotCommand("cancel", "Cancel all your running downloads"),
]

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
        "/settings – what plain links give you (video or audio, quality)\n"
        "/status – your running downloads\n"
        "/cancel – cancel all of them\n\n"
        f"Files up to {human_size(upload_limit_bytes)} arrive as a message; larger ones as a download link.\n"
        "In groups, mention me or reply to me with a link, or use a command."
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
    view: JobView, url: str, limit_bytes: int, ttl_s: int, *, rejected: bool = False, failed: bool = False
) -> str:
    size = human_size(view.filesize) if view.filesize else "too large"
    expires = datetime.now(UTC) + timedelta(seconds=ttl_s)
    if rejected:
        reason = "Telegram refused the upload as too large"
    elif failed:
        reason = "The upload to Telegram failed"
    else:
        reason = f"This file is {size}, over Telegram's {human_size(limit_bytes)} upload limit"
    return (
        f"{title_of(view)}\n"
        f"{reason}, so here is a download link instead. "
        f"It expires in {human_duration(ttl_s)} ({expires:%Y-%m-%d %H:%M} UTC):\n"
        f"{url}"
    )


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


def settings_text(kind: str, quality: str) -> str:
    q = "best quality" if quality == "best" else f"up to {quality}p"
    what = "audio only" if kind == "audio" else f"video, {q}"
    return f"Links you send give you: {what}.\nChange it below (/audio and /video always work)."


def settings_keyboard(kind: str, quality: str) -> InlineKeyboardMarkup:
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
    return InlineKeyboardMarkup([kinds, qualities[:3], qualities[3:]])
