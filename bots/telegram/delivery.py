"""Following a request to its end: progress edits while the job runs, then the file (or a link, or the error
sentence) as a reply to the person's message. One `Tracker` per request, owned by the `Deliverer`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from telegram import Bot, InputFile, LinkPreviewOptions, Message, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from bots.progress import ChatPacer, LatestSender
from bots.telegram import texts
from bots.telegram.calls import message_gone, not_modified, retry_seconds, too_large, with_flood_retry
from core.delivery import DeliveryRef, variant_key
from core.errors import MediabotError, NotFound
from core.schemas import JobView, RequestView
from core.services import Services
from core.storage import safe_filename

log = logging.getLogger(__name__)

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
EDIT_INTERVAL_S = 2.0  # per progress message
CHAT_INTERVAL_S = 1.0  # per chat, shared by all progress messages in it
VIDEO_EXTS = {"mp4"}
AUDIO_EXTS = {"mp3", "m4a"}
WATCH_ATTEMPTS = 30  # about 12 minutes of outage, then the person gets an apology

# What a progress message shows: its text, and whether the Cancel button is under it.
Shown = tuple[str, bool]


@dataclass
class Target:
    """Where a request is answered; stored in the request's `target` so a restarted bot can finish it."""

    chat_id: int
    reply_to: int | None = None
    progress_id: int | None = None
    thread_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"chat_id": self.chat_id, "reply_to": self.reply_to, "progress_id": self.progress_id,
                "thread_id": self.thread_id}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target | None:
        if not data or data.get("chat_id") is None:
            return None
        return cls(int(data["chat_id"]), data.get("reply_to"), data.get("progress_id"), data.get("thread_id"))

    def reply(self) -> ReplyParameters | None:
        if self.reply_to is None:
            return None
        return ReplyParameters(message_id=self.reply_to, allow_sending_without_reply=True)


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


class Deliverer:
    """Owns the trackers of this bot process: starts them, resumes unfinished ones after a restart, stops them."""

    def __init__(self, services: Services, bot: Bot) -> None:
        self.services = services
        self.settings = services.settings
        self.bot = bot
        self.pacer = ChatPacer(CHAT_INTERVAL_S)
        self.trackers: dict[str, Tracker] = {}

    def follow(self, request: RequestView, target: Target, *, shown: Shown | None = None) -> Tracker:
        existing = self.trackers.get(request.id)
        if existing is not None:
            return existing
        tracker = Tracker(self, request, target, shown)
        self.trackers[request.id] = tracker
        tracker.task = asyncio.create_task(tracker.run(), name=f"telegram-request-{request.id}")
        tracker.task.add_done_callback(lambda _: self._forget(tracker))
        return tracker

    def _forget(self, tracker: Tracker) -> None:
        if self.trackers.get(tracker.request.id) is tracker:
            del self.trackers[tracker.request.id]

    async def resume(self) -> int:
        """Pick up every request this bot has not delivered yet (after a restart, or a crash)."""
        resumed = 0
        for request, _job in await self.services.jobs.undelivered("telegram"):
            target = Target.from_dict(request.target)
            if target is None:
                log.warning("telegram request %s has no chat to answer in; marking it delivered", request.id)
                await self.services.jobs.mark_delivered(request.id)
                continue
            self.follow(request, target)
            resumed += 1
        if resumed:
            log.info("telegram: resumed %d undelivered requests", resumed)
        return resumed

    async def stop(self, request_id: str) -> None:
        tracker = self.trackers.pop(request_id, None)
        if tracker is not None:
            await tracker.stop()

    async def show_cancelled(self, request: RequestView) -> None:
        """The person cancelled: stop following and say so on the progress message."""
        tracker = self.trackers.get(request.id)
        target = tracker.target if tracker is not None else Target.from_dict(request.target)
        await self.stop(request.id)
        if target is None or target.progress_id is None:
            return
        with contextlib.suppress(TelegramError):
            await self.edit(target, texts.CANCELLED, keyboard=None)

    async def edit(self, target: Target, text: str, keyboard: Any = None) -> None:
        assert target.progress_id is not None
        try:
            await with_flood_retry(
                lambda: self.bot.edit_message_text(
                    text, chat_id=target.chat_id, message_id=target.progress_id, reply_markup=keyboard,
                    link_preview_options=NO_PREVIEW,
                ),
                chat=str(target.chat_id), pacer=self.pacer,
            )  # fmt: skip
        except TelegramError as exc:
            if not (not_modified(exc) or message_gone(exc)):
                raise

    async def reply(self, target: Target, text: str, **kwargs: Any) -> Message:
        return await with_flood_retry(
            lambda: self.bot.send_message(
                target.chat_id, text, reply_parameters=target.reply(), message_thread_id=target.thread_id,
                link_preview_options=NO_PREVIEW, **kwargs,
            ),
            chat=str(target.chat_id), pacer=self.pacer,
        )  # fmt: skip

    async def resend(self, ref: DeliveryRef, target: Target) -> bool:
        """Answer from Telegram's own copy (no download, no upload). False when Telegram no longer knows it."""
        send = {"video": self.bot.send_video, "audio": self.bot.send_audio}.get(
            ref.file_type, self.bot.send_document
        )
        field = ref.file_type if ref.file_type in ("video", "audio") else "document"
        try:
            await with_flood_retry(
                lambda: send(target.chat_id, **{field: ref.file_ref}, reply_parameters=target.reply(),  # type: ignore[operator]
                             message_thread_id=target.thread_id),
                chat=str(target.chat_id), pacer=self.pacer,
            )  # fmt: skip
        except BadRequest as exc:
            log.info("telegram: cached file_id refused (%s); downloading again", exc.message)
            return False
        return True

    async def close(self) -> None:
        """Stop following (requests stay undelivered in the database and are resumed on the next start)."""
        trackers = list(self.trackers.values())
        self.trackers.clear()
        await asyncio.gather(*(t.stop() for t in trackers), return_exceptions=True)


class Tracker:
    def __init__(self, owner: Deliverer, request: RequestView, target: Target, shown: Shown | None) -> None:
        self.owner = owner
        self.services = owner.services
        self.bot = owner.bot
        self.request = request
        self.target = target
        self.task: asyncio.Task[None] | None = None
        self.cancelling = False  # the person pressed Cancel; the handler finishes the story
        self._sender: LatestSender[Shown] | None = None
        self._shown = shown
        self._gone = False  # the progress message was deleted by the person

    @property
    def chat(self) -> str:
        return str(self.target.chat_id)

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    async def run(self) -> None:
        try:
            final = await self._follow()
            if self.cancelling and final.status == "cancelled":
                return
            await self._conclude(final)
        except asyncio.CancelledError:
            raise
        except Forbidden as exc:
            # The person blocked the bot (or it was removed from the group): nobody to tell.
            log.info(
                "telegram request %s: chat %s is closed to the bot (%s)",
                self.request.id,
                self.chat,
                exc.message,
            )
            with contextlib.suppress(Exception):
                await self.services.jobs.mark_delivered(self.request.id, self.target.to_dict())
        except Exception:
            log.exception("telegram request %s (chat %s): delivery failed", self.request.id, self.chat)
            with contextlib.suppress(Exception):
                await self._final_text(texts.APOLOGY)
                # The apology is the answer: no surprise delivery after the next restart.
                await self.services.jobs.mark_delivered(self.request.id, self.target.to_dict())
        finally:
            await self._close_sender()

    # -- following --------------------------------------------------------------------------------------

    async def _follow(self) -> JobView:
        """Show each state until a terminal one; a database or bus outage only pauses the following."""
        delay = 1.0
        for attempt in range(1, WATCH_ATTEMPTS + 1):
            try:
                async for view in self.services.jobs.watch(self.request.job_id):
                    if view.terminal:
                        return view
                    await self._show(view)
                    delay = 1.0
            except (asyncio.CancelledError, NotFound, TelegramError):
                raise
            except Exception as exc:  # noqa: BLE001 - database or Redis unavailable: try again
                if attempt == WATCH_ATTEMPTS:
                    raise
                log.warning(
                    "telegram request %s: lost the job's progress (%s); retrying in %.0f s",
                    self.request.id, type(exc).__name__, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    async def _show(self, view: JobView) -> None:
        state: Shown = (texts.progress_text(view), True)
        if self.target.progress_id is None:
            # Resumed without a progress message (the process stopped right after submitting): send one.
            message = await self.owner.reply(
                self.target, state[0], reply_markup=texts.cancel_keyboard(self.request.id)
            )
            self.target.progress_id = message.message_id
            self._shown = state
            await self.services.jobs.update_target(self.request.id, self.target.to_dict())
            return
        self._progress_sender().offer(state)

    def _progress_sender(self) -> LatestSender[Shown]:
        if self._sender is None:
            self._sender = LatestSender(
                self.chat, self.owner.pacer, self._edit, min_interval_s=EDIT_INTERVAL_S, initial=self._shown
            )
        return self._sender

    async def _close_sender(self) -> None:
        if self._sender is not None:
            sender, self._sender = self._sender, None
            await sender.close()

    async def _edit(self, state: Shown) -> float | None:
        """LatestSender's send: None when shown (or pointless), seconds to wait on flood control."""
        if self._gone or state == self._shown or self.target.progress_id is None:
            return None
        text, button = state
        try:
            await self.bot.edit_message_text(
                text, chat_id=self.target.chat_id, message_id=self.target.progress_id,
                reply_markup=texts.cancel_keyboard(self.request.id) if button else None,
                link_preview_options=NO_PREVIEW,
            )  # fmt: skip
        except RetryAfter as exc:
            return retry_seconds(exc)
        except TelegramError as exc:
            if message_gone(exc):
                log.info("telegram request %s: progress message is gone", self.request.id)
                self._gone = True
            elif not not_modified(exc):
                raise
        self._shown = state
        return None

    async def _final_text(self, text: str, timeout: float = 120) -> None:
        """The last word on the progress message (or a reply when there is none)."""
        if self.target.progress_id is None or self._gone:
            await self.owner.reply(self.target, text)
            return
        await self._progress_sender().finish((text, False), timeout=timeout)

    # -- concluding -------------------------------------------------------------------------------------

    async def _conclude(self, view: JobView) -> None:
        jobs = self.services.jobs
        if view.status != "done":
            await self._final_text(texts.failed_text(view))
        else:
            try:
                await self._deliver(view)
            except MediabotError as exc:  # the file expired in between, storage down...
                await self._final_text(exc.message)
        await jobs.mark_delivered(self.request.id, self.target.to_dict())

    async def _deliver(self, view: JobView) -> None:
        limit = self.owner.settings.telegram_upload_limit_bytes
        if view.filesize is not None and view.filesize > limit:
            await self._send_link(view)
            return
        if self.target.progress_id is not None and not self._gone:
            await self._progress_sender().finish((texts.uploading_text(view), False), timeout=10)
            await self._close_sender()
        try:
            message = await self._upload(view)
        except Forbidden:
            raise
        except TelegramError as exc:
            # Too large for this server (a 413), or the upload failed: the file is stored, so the link is
            # still an answer.
            log.warning("telegram request %s: upload failed (%s); sending a link", self.request.id, exc)
            await self._send_link(view, rejected=too_large(exc), failed=not too_large(exc))
            return
        ref = sent_file(message)
        if ref is not None:
            key = variant_key(self.request.url, self.request.kind, self.request.quality)
            await self.services.deliveries.put("telegram", key, ref)
        await self._drop_progress(texts.done_summary(view))

    async def _send_link(self, view: JobView, *, rejected: bool = False, failed: bool = False) -> None:
        settings = self.owner.settings
        url = await self.services.jobs.link(view.id)
        text = texts.link_text(
            view,
            url,
            settings.telegram_upload_limit_bytes,
            settings.link_ttl_s,
            rejected=rejected,
            failed=failed,
        )
        await self.owner.reply(self.target, text)
        await self._drop_progress(texts.done_summary(view))

    async def _drop_progress(self, summary: str) -> None:
        """Delete the progress message once the answer is there; if that fails, leave a short summary."""
        await self._close_sender()
        if self.target.progress_id is None or self._gone:
            return
        try:
            await self.bot.delete_message(self.target.chat_id, self.target.progress_id)
        except TelegramError as exc:
            log.info("telegram request %s: progress message not deleted (%s)", self.request.id, exc.message)
            with contextlib.suppress(TelegramError):
                await self.owner.edit(self.target, summary)

    async def _upload(self, view: JobView) -> Message:
        jobs = self.services.jobs
        workdir: Path | None = None
        path = await jobs.local_path(view.id)
        if path is None or not path.exists():
            workdir = self.owner.settings.tmp_dir / "telegram" / self.request.id
            workdir.mkdir(parents=True, exist_ok=True)
            path = await jobs.fetch_file(view.id, workdir / safe_filename(view.filename or "media"))
        try:
            async with self._chat_action(media_kind(view)):
                return await self._send_file(view, path)
        finally:
            if workdir is not None:
                await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _send_file(self, view: JobView, path: Path) -> Message:
        bot, target = self.bot, self.target
        kind = media_kind(view)
        name = view.filename or path.name
        size = view.filesize or 0
        common: dict[str, Any] = dict(
            reply_parameters=target.reply(), message_thread_id=target.thread_id,
            read_timeout=60 + size / 2_000_000, write_timeout=60,
        )  # fmt: skip
        duration = round(view.duration) if view.duration else None

        async def once() -> Message:
            # A fresh handle per attempt: a retry after 429 uploads the whole file again, and the file is
            # streamed from disk rather than read into memory (2 GB on a local Bot API server).
            with path.open("rb") as handle:
                media = InputFile(handle, filename=name, read_file_handle=False)
                if kind == "video":
                    return await bot.send_video(
                        target.chat_id, media, duration=duration, width=view.width, height=view.height,
                        supports_streaming=True, **common,
                    )  # fmt: skip
                if kind == "audio":
                    return await bot.send_audio(
                        target.chat_id, media, duration=duration, title=view.title, performer=view.uploader,
                        **common,
                    )  # fmt: skip
                return await bot.send_document(target.chat_id, media, **common)

        return await with_flood_retry(once, chat=self.chat, pacer=self.owner.pacer)

    @contextlib.asynccontextmanager
    async def _chat_action(self, kind: str) -> Any:
        """Show "sending a video…" at the top of the chat while the upload runs (each call lasts 5 s)."""
        action = {"video": ChatAction.UPLOAD_VIDEO, "audio": ChatAction.UPLOAD_VOICE}.get(
            kind, ChatAction.UPLOAD_DOCUMENT
        )

        async def keep_showing() -> None:
            while True:
                with contextlib.suppress(TelegramError):
                    await self.bot.send_chat_action(
                        self.target.chat_id, action, message_thread_id=self.target.thread_id
                    )
                await asyncio.sleep(4.5)

        task = asyncio.create_task(keep_showing(), name=f"telegram-action-{self.request.id}")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
