"""Following a request to its end: progress edits while the job runs, then the file (or a copy that fits, or
a link, or the error sentence) as a reply to the person's message; a playlist's items one by one. One
`Tracker` per request, owned by the `Deliverer`; the order of file, copy and link is core.planner's."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Awaitable, Callable
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
from core.planner import DeliveryPlanner, Destination, Planned, Refused, finished_items
from core.probe import probe_media
from core.schemas import THUMBNAIL, JobView, Part, RequestView, subtitle_asset
from core.services import Services
from core.storage import safe_filename

log = logging.getLogger(__name__)

PLATFORM = "telegram"
# The public Bot API's limit: a server that refuses less than it claims to take is aimed at this next.
TIERS = (50_000_000,)
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


class UploadFailed(Exception):
    """Telegram did not take a file for a reason other than its size (the message says which)."""


def _cache_key(request: RequestView, view: JobView) -> str | None:
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


def _ended_state(job: JobView) -> str:
    """A playlist item delivered before a restart, as the playlist message lists it."""
    return {"done": "sent", "cancelled": "cancelled"}.get(job.status, "failed")


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

    def destination(self) -> Destination:
        settings = self.settings
        return Destination(
            "Telegram", settings.telegram_upload_limit_bytes, split=settings.telegram_split, tiers=TIERS
        )

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

    def children_cancelled(self, request_id: str, n: int) -> bool:
        """`n` requests made for `request_id` were cancelled (playlist items, a copy being made); its tracker
        tells the story. True when it is a playlist."""
        tracker = self.trackers.get(request_id)
        return tracker.items_cancelled(n) if tracker is not None else False

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
        self._playlist: JobView | None = None  # set once the request turned out to be a playlist
        self._items: dict[str, texts.Item] = {}  # playlist items by request id, in playlist order
        self._cancelled_items = 0

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
        await self._offer((texts.progress_text(view), True))

    async def _offer(self, state: Shown) -> None:
        if self.target.progress_id is None:
            # Resumed without a progress message (the process stopped right after submitting), or a finished
            # file that needs a copy made first: send one.
            message = await self.owner.reply(
                self.target, state[0],
                reply_markup=texts.cancel_keyboard(self.request.id) if state[1] else None,
            )  # fmt: skip
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
        elif view.playlist is not None:
            await self._deliver_playlist(view)
        else:
            try:
                await self._deliver(view)
            except MediabotError as exc:  # the file expired in between, storage down...
                await self._final_text(exc.message)
        await jobs.mark_delivered(self.request.id, self.target.to_dict())

    async def _deliver(self, view: JobView) -> None:
        """One file, as it is, as a copy that fits, or as a link (the planner decides); then the progress
        message makes way for the answer."""
        planned = await self._plan(self.request, view, show=self._show, uploading=self._uploading)
        if planned.outcome == "cancelled":
            await self._final_text(texts.CANCELLED)
            return
        await self._send_subtitles(view)
        await self._drop_progress(texts.done_summary(view))

    async def _uploading(self, view: JobView) -> None:
        if self.target.progress_id is not None and not self._gone:
            await self._progress_sender().finish((texts.uploading_text(view), False), timeout=10)
            await self._close_sender()

    async def _plan(
        self,
        request: RequestView,
        view: JobView,
        *,
        show: Callable[[JobView], Awaitable[None]],
        uploading: Callable[[JobView], Awaitable[None]],
        title: str | None = None,
    ) -> Planned:
        """Walk the delivery plan for `view`, the finished file of `request`. `title` starts the notes of a
        playlist item, so each says which item it is about."""
        refused = False

        async def upload(current: JobView, note: str | None) -> None:
            nonlocal refused
            await uploading(current)
            try:
                await self._upload_view(request, current, view)
            except Refused:
                refused = True
                raise
            if note is not None:
                await self._send_fit_note(view, note, title)

        async def link(original: JobView, note: str) -> None:
            # The planner's note says no copy fits; link_text says it in the bot's words, with the size.
            await self._send_link(original, rejected=refused, no_copy=True)

        planner = DeliveryPlanner(self.services.jobs)
        try:
            return await planner.deliver(
                request, view, self.owner.destination(), upload=upload, show=show, link=link
            )
        except UploadFailed as exc:
            # Not a size problem (Telegram down, a bad request...): the file is stored, so a link answers.
            log.warning("telegram request %s: upload failed (%s); sending a link", request.id, exc)
            await self._send_link(view, failed=True)
            return Planned("link", view, None)

    async def _send_link(
        self, view: JobView, *, rejected: bool = False, failed: bool = False, no_copy: bool = False
    ) -> None:
        settings = self.owner.settings
        url = await self.services.jobs.link(view.id)
        text = texts.link_text(
            view, url, settings.telegram_upload_limit_bytes, settings.link_ttl_s,
            rejected=rejected, failed=failed, no_copy=no_copy,
        )  # fmt: skip
        await self.owner.reply(self.target, text)

    async def _send_fit_note(self, original: JobView, note: str, title: str | None) -> None:
        """After a copy that fits: which copy it was, and a link to the full quality."""
        try:
            url: str | None = await self.services.jobs.link(original.id)
        except MediabotError as exc:
            log.info("telegram: no full-quality link for job %s (%s)", original.id, exc.code)
            url = None
        text = texts.fitted_text(note, url, self.owner.settings.link_ttl_s, title)
        try:
            await self.owner.reply(self.target, text)
        except Forbidden:
            raise
        except TelegramError as exc:  # the file is there; a lost note is not worth failing for
            log.warning("telegram request %s: note not sent (%s)", self.request.id, exc.message)

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

    # -- playlists --------------------------------------------------------------------------------------

    async def _deliver_playlist(self, view: JobView) -> None:
        """Each item as its own reply as soon as it is ready (through the planner), the playlist message
        listing them; items already delivered before a restart are not sent again."""
        jobs = self.services.jobs
        self._playlist = view
        for request, job in await jobs.children(self.request.id):
            item = texts.Item(job.title or request.url)
            if request.delivered_at is not None:
                item.state = _ended_state(job)
            self._items[request.id] = item
        await self._show_playlist()
        async for request, job in finished_items(jobs, self.request.id):
            await self._deliver_item(request, job)
            await jobs.mark_delivered(request.id)
            await self._show_playlist()
        await self._final_text(self._playlist_state(finished=True)[0])

    async def _deliver_item(self, request: RequestView, view: JobView) -> None:
        item = self._items.get(request.id)
        if item is None:
            item = self._items[request.id] = texts.Item(view.title or request.url)
        current, _ = await self.services.jobs.get_request(request.id)
        if current.status == "cancelled" or view.status == "cancelled":
            item.state = "cancelled"
            return
        if view.status != "done":
            item.state = "failed"
            await self.owner.reply(self.target, texts.item_failed(item.title, texts.failed_text(view)))
            return

        async def show(copy: JobView) -> None:
            item.state, item.detail = "copying", texts.copying_word(copy)
            await self._show_playlist()

        async def uploading(_: JobView) -> None:
            item.state = "sending"
            await self._show_playlist()

        try:
            planned = await self._plan(current, view, show=show, uploading=uploading, title=item.title)
        except MediabotError as exc:  # the file expired in between, storage down...
            item.state = "failed"
            await self.owner.reply(self.target, texts.item_failed(item.title, exc.message))
            return
        if planned.outcome != "cancelled":
            try:
                await self._send_subtitles(view, item.title)
            except MediabotError as exc:
                log.info("telegram request %s: subtitles not sent (%s)", request.id, exc.code)
        if planned.outcome == "cancelled":
            item.state = "cancelled"
        elif planned.outcome == "link":
            item.state = "link"
        else:
            item.state = "sent"
            item.detail = texts.fitted_detail(planned.sent) if planned.outcome == "fitted" else ""

    def _playlist_state(self, *, finished: bool = False) -> Shown:
        assert self._playlist is not None
        items = list(self._items.values())
        text = texts.playlist_text(self._playlist, items, finished=finished, cancelling=self._cancelled_items)
        button = not finished and not self._cancelled_items and any(i.state == "waiting" for i in items)
        return text, button

    async def _show_playlist(self) -> None:
        await self._offer(self._playlist_state())

    def items_cancelled(self, n: int) -> bool:
        """The person cancelled `n` of the requests made for this one (playlist items, a copy being made):
        the story continues here. True when this is a playlist."""
        self._cancelled_items += n
        if self._playlist is None:
            return False
        if self.target.progress_id is not None:
            self._progress_sender().offer(self._playlist_state())
        return True

    # -- uploading --------------------------------------------------------------------------------------

    async def _upload_view(self, request: RequestView, view: JobView, original: JobView) -> None:
        """Send `view`'s file (`original`'s, or a copy of it made to fit), or each of its parts in order, with
        the thumbnail. Refused when Telegram says it is too large; UploadFailed when it fails otherwise."""
        async with self._thumbnail(request, view, original) as thumb:
            await self._upload_with(request, view, thumb)

    async def _upload_with(self, request: RequestView, view: JobView, thumb: Path | None) -> None:
        try:
            if view.parts:
                for part in view.parts:
                    caption = texts.part_caption(view, part.index, len(view.parts))
                    await self._upload_file(request, view, part=part, caption=caption, thumb=thumb)
                return
            key = _cache_key(request, view)
            deliveries = self.services.deliveries
            if key is not None:
                cached = await deliveries.get(PLATFORM, key)
                if cached is not None:
                    if await self.owner.resend(cached, self.target):
                        return
                    await deliveries.forget(PLATFORM, key)
            message = await self._upload_file(request, view, thumb=thumb)
            ref = sent_file(message)
            if ref is not None and key is not None:
                await deliveries.put(PLATFORM, key, ref)
        except Forbidden:
            raise
        except TelegramError as exc:
            raise UploadFailed(exc.message) from exc

    @contextlib.asynccontextmanager
    async def _thumbnail(self, request: RequestView, view: JobView, original: JobView) -> Any:
        """The stored thumbnail for a video or audio upload (a copy's own, else its original's), as a local
        file for the time of the upload; None when there is none or it can't be read (the upload goes
        without one: a missing thumbnail is nothing to tell anyone about)."""
        owner = next((v for v in (view, original) if v.thumbnail), None)
        if owner is None or media_kind(view) == "document":
            yield None
            return
        async with self._asset_file(request, owner, THUMBNAIL, "thumbnail.jpg") as path:
            yield path

    @contextlib.asynccontextmanager
    async def _asset_file(self, request: RequestView, view: JobView, asset: str, name: str) -> Any:
        """One of a job's assets as a local file (storage's own when local, else fetched to a temporary
        folder removed afterwards); None when it can't be had."""
        jobs = self.services.jobs
        workdir: Path | None = None
        path: Path | None = None
        try:
            try:
                path = await jobs.local_path(view.id, asset=asset)
                if path is None or not await asyncio.to_thread(path.exists):
                    workdir = self.owner.settings.tmp_dir / "telegram" / f"{request.id}-{asset}"
                    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
                    path = await jobs.fetch_file(view.id, workdir / safe_filename(name), asset=asset)
            except MediabotError as exc:  # expired in between, storage down
                log.info("telegram request %s: %s of job %s not available (%s)", request.id, asset, view.id,
                         exc.code)  # fmt: skip
                path = None
            yield path
        finally:
            if workdir is not None:
                await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _send_subtitles(self, view: JobView, title: str | None = None) -> None:
        """After the media: each .srt made for it as a document, then one sentence for the languages asked for
        that the media lacks. `title` starts that sentence for a playlist item."""
        for subtitle in view.subtitles:
            async with self._asset_file(
                self.request, view, subtitle_asset(subtitle.lang), subtitle.filename
            ) as path:
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
                    await with_flood_retry(once, chat=self.chat, pacer=self.owner.pacer)
                except Forbidden:
                    raise
                except TelegramError as exc:  # the media is there; one lost .srt is not worth failing for
                    log.warning("telegram request %s: subtitles %s not sent (%s)", self.request.id,
                                subtitle.lang, exc.message)  # fmt: skip
        if view.subtitles_missing:
            sentence = texts.subtitles_missing(view.kind, view.subtitles_missing)
            await self.owner.reply(self.target, texts.item_failed(title, sentence) if title else sentence)

    async def _upload_file(
        self,
        request: RequestView,
        view: JobView,
        *,
        part: Part | None = None,
        caption: str | None = None,
        thumb: Path | None = None,
    ) -> Message:
        """Upload one stored file (or one part), streamed from disk; fetched to a temporary folder first
        when storage is not local."""
        jobs = self.services.jobs
        index = part.index if part is not None else None
        name = part.filename if part is not None else (view.filename or "media")
        workdir: Path | None = None
        path = await jobs.local_path(view.id, part=index)
        if path is None or not await asyncio.to_thread(path.exists):
            workdir = self.owner.settings.tmp_dir / "telegram" / request.id
            await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
            path = await jobs.fetch_file(view.id, workdir / safe_filename(name), part=index)
        try:
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
        finally:
            if workdir is not None:
                await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _send_file(
        self,
        view: JobView,
        path: Path,
        *,
        name: str,
        size: int,
        caption: str | None,
        whole: bool,
        thumb: Path | None = None,
    ) -> Message:
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
