"""Files into a Telegram chat: a video Telegram plays inline (with its length, picture size and thumbnail),
tagged audio, anything else as a document, the parts of a split one by one, and a file Telegram already
holds by its file_id instead of uploading it again. Subtitle files follow as documents."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from telegram import InputFile, Message
from telegram.constants import ChatAction
from telegram.error import Forbidden, TelegramError

from bots.chat import Parcel, UploadFailed
from bots.telegram import texts
from bots.telegram.api import PLATFORM, Target, TelegramApi
from bots.telegram.calls import too_large, with_flood_retry
from core.aio import cancel_and_wait, spawn
from core.delivery.filecache import DeliveryRef, variant_key
from core.delivery.planner import Refused
from core.errors import MediabotError
from core.jobs.views import THUMBNAIL, JobView, Part, RequestView, subtitle_asset
from core.media.probe import probe_media
from core.words import cut_note

log = logging.getLogger(__name__)

VIDEO_EXTS = {"mp4"}
AUDIO_EXTS = {"mp3", "m4a"}
CHAT_ACTION_EVERY_S = 4.5  # Telegram shows one for 5 s


def media_kind(view: JobView) -> str:
    """video (sendVideo plays it inline), audio (sendAudio) or document (anything else)."""
    ext = Path(view.filename).suffix.lstrip(".").lower() if view.filename else (view.ext or "").lower()
    if view.kind == "audio" and ext in AUDIO_EXTS:
        return "audio"
    if view.kind == "video" and ext in VIDEO_EXTS:
        return "video"
    return "document"


def sent_file(message: Message) -> DeliveryRef | None:
    """Telegram's handle for the file it now holds, by the type it actually stored it as."""
    for attr in ("video", "audio", "document"):
        media = getattr(message, attr, None)
        if media is not None:
            return DeliveryRef(media.file_id, attr)
    if message.animation is not None:
        return DeliveryRef(message.animation.file_id, "document")
    return None


def cache_key(request: RequestView, view: JobView) -> str | None:
    """Where Telegram's handle for `view`'s file is remembered: the media variant the person asked for (what
    handlers look up before downloading), or for a copy made to fit, that key plus the copy's variant, so a
    small copy is never resent as if it were the original."""
    try:
        # A copy carries its original's format and subtitle languages, so either view gives the same key.
        key = variant_key(
            request.url, request.kind, request.quality, view.format_id, view.subtitle_langs, view.audio_format,
            playable=view.playable,
        )  # fmt: skip
    except MediabotError:
        return None
    return f"{key}|{view.variant}" if view.variant else key


class Uploader:
    """The uploads answering one request."""

    def __init__(self, api: TelegramApi, request_id: str, target: Target) -> None:
        self.api = api
        self.bot = api.bot
        self.request_id = request_id
        self.target = target
        self.chat = str(target.chat_id)
        self.sent: DeliveryRef | None = None  # Telegram's handle for the last whole file uploaded

    async def send(self, parcel: Parcel) -> None:
        """Send the parcel's file, or each of its parts in order, with the thumbnail. Refused when Telegram
        says it is too large; UploadFailed when it fails otherwise."""
        view = parcel.sent
        owner = next((v for v in (view, parcel.original) if v.thumbnail), None)
        if owner is None or media_kind(view) == "document":
            await self._send(parcel, None)
            return
        # The stored thumbnail (a copy's own, else its original's) goes with a video or a song; an upload goes
        # without one that can't be had: a missing thumbnail is nothing to tell anyone about.
        async with self.api.files.optional(owner.id, "thumbnail.jpg", asset=THUMBNAIL) as thumb:
            await self._send(parcel, thumb)

    async def _send(self, parcel: Parcel, thumb: Path | None) -> None:
        request, view = parcel.request, parcel.sent
        try:
            if view.parts:
                for part in view.parts:
                    caption = texts.part_caption(view, part.index, len(view.parts))
                    await self._upload(view, part=part, caption=caption, thumb=thumb)
                return
            key = cache_key(request, view)
            deliveries = self.api.services.deliveries
            if key is not None:
                cached = await deliveries.get(PLATFORM, key)
                if cached is not None:
                    if await self.api.resend(cached, self.target):
                        return
                    await deliveries.forget(PLATFORM, key)
            caption = cut_note(view)
            if (view.variant or "").startswith("chapter:"):
                # A chapter of a split says which it is, as its line in the list does: "3/7 · Chapter name".
                caption = view.title
            message = await self._upload(view, thumb=thumb, caption=caption)
            ref = self.sent = sent_file(message)
            if ref is not None and key is not None:
                await deliveries.put(PLATFORM, key, ref)
        except Forbidden:
            raise
        except TelegramError as exc:
            raise UploadFailed(exc.message) from exc

    async def _upload(
        self,
        view: JobView,
        *,
        part: Part | None = None,
        caption: str | None = None,
        thumb: Path | None = None,
    ) -> Message:
        """Upload one stored file (or one part), streamed from disk."""
        index = part.index if part is not None else None
        name = part.filename if part is not None else (view.filename or "media")
        async with self.api.files.path(view.id, name, part=index) as path:
            size = part.size if part is not None else view.filesize
            if size is None:
                size = (await asyncio.to_thread(path.stat)).st_size
            async with self._chat_action(media_kind(view)):
                try:
                    return await self._send_file(
                        view, path, name=name, size=size, caption=caption, whole=part is None, thumb=thumb
                    )
                except TelegramError as exc:
                    if isinstance(exc, Forbidden) or not too_large(exc):
                        raise
                    raise Refused(size) from None

    async def _send_file(
        self, view: JobView, path: Path, *, name: str, size: int, caption: str | None, whole: bool,
        thumb: Path | None,
    ) -> Message:  # fmt: skip
        bot, target = self.bot, self.target
        kind = media_kind(view)
        common: dict[str, Any] = dict(
            reply_parameters=target.reply(), message_thread_id=target.thread_id, caption=caption,
            read_timeout=60 + size / 2_000_000, write_timeout=60,
        )  # fmt: skip
        length, width, height = view.duration if whole else None, view.width, view.height
        if kind == "video" and not (length and width and height):
            # A part's length and picture are its own, and a copy may not know them: read them from the file,
            # or Telegram shows no length and a square box until the video is opened.
            probe = await asyncio.to_thread(probe_media, path, None)
            length, width, height = probe.duration or length, probe.width or width, probe.height or height
        duration = round(length) if length else None

        async def once() -> Message:
            # A fresh handle per attempt: a retry after 429 uploads the whole file again, and the file is
            # streamed from disk rather than read into memory (2 GB on a local Bot API server).
            with path.open("rb") as handle:
                media = InputFile(handle, filename=name, read_file_handle=False)
                # The thumbnail as a Path: PTB reads it anew for each attempt.
                if kind == "video" and (view.variant or "").startswith("gif:"):
                    # /gif: Telegram loops it without sound, like a GIF.
                    return await bot.send_animation(
                        target.chat_id, media, duration=duration, width=width, height=height, **common
                    )
                if kind == "video":
                    return await bot.send_video(
                        target.chat_id, media, duration=duration, width=width, height=height,
                        supports_streaming=True, thumbnail=thumb, **common,
                    )  # fmt: skip
                if kind == "audio":
                    return await bot.send_audio(
                        target.chat_id, media, duration=duration, title=view.title, performer=view.uploader,
                        thumbnail=thumb, **common,
                    )  # fmt: skip
                return await bot.send_document(target.chat_id, media, **common)

        return await with_flood_retry(once, chat=self.chat, pacer=self.api.pacer)

    @contextlib.asynccontextmanager
    async def _chat_action(self, kind: str) -> AsyncIterator[None]:
        """Show "sending a video…" at the top of the chat while the upload runs."""
        action = {"video": ChatAction.UPLOAD_VIDEO, "audio": ChatAction.UPLOAD_VOICE}.get(
            kind, ChatAction.UPLOAD_DOCUMENT
        )

        async def keep_showing() -> None:
            while True:
                with contextlib.suppress(TelegramError):
                    await self.bot.send_chat_action(
                        self.target.chat_id, action, message_thread_id=self.target.thread_id
                    )
                await asyncio.sleep(CHAT_ACTION_EVERY_S)

        task = spawn(keep_showing(), name=f"telegram-action-{self.request_id[:8]}")
        try:
            yield
        finally:
            await cancel_and_wait(task)

    async def send_subtitles(self, view: JobView, title: str | None) -> None:
        """Each .srt made for `view` as a document, then one sentence for the languages asked for that the
        media lacks. `title` starts that sentence for a playlist item."""
        for subtitle in view.subtitles:
            asset = subtitle_asset(subtitle.lang)
            async with self.api.files.optional(view.id, subtitle.filename, asset=asset) as path:
                if path is None:
                    continue
                name = subtitle.filename

                async def once(path: Path = path, name: str = name) -> Message:
                    with path.open("rb") as handle:
                        media = InputFile(handle, filename=name, read_file_handle=False)
                        return await self.bot.send_document(
                            self.target.chat_id, media, reply_parameters=self.target.reply(),
                            message_thread_id=self.target.thread_id,
                        )  # fmt: skip

                try:
                    await with_flood_retry(once, chat=self.chat, pacer=self.api.pacer)
                except Forbidden:
                    raise
                except TelegramError as exc:  # the media is there; one lost .srt is not worth failing for
                    log.warning("telegram request %s: subtitles %s not sent (%s)", self.request_id,
                                subtitle.lang, exc.message)  # fmt: skip
        if view.subtitles_missing:
            sentence = texts.subtitles_missing(view.kind, view.subtitles_missing)
            await self.api.reply(self.target, texts.item_failed(title, sentence) if title else sentence)
