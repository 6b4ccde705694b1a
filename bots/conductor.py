"""The delivery flow both chats share: a task per request that follows its job, then delivers it.

While the job runs its state shows on the request's progress message (throttled per message and per chat).
When it ends: a failure is said in one sentence; a file goes out as core.delivery.planner orders it (the file as it
is, a copy that fits with a note and a link to the full quality, or a link), followed by its subtitles; a
playlist lists its items and sends each as soon as it is ready, storing how each went out. The request is
then marked delivered. Everything a delivery needs is stored with the request, so `resume` picks up what
a stopped bot left undelivered. What is said, and how, is the platform's `ChatReply` (bots/chat.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Generic

from bots.chat import ChatAdapter, Parcel, R, Screen, UploadFailed, why_failed
from bots.playlist import DELIVERED_AS, PLANNED, Item, Outcome, Playlist
from bots.progress import LatestSender
from core.aio import cancel_and_wait, spawn
from core.bootstrap import Services
from core.delivery.planner import DeliveryPlanner, Planned, Refused, finished_items, follow
from core.errors import MediabotError
from core.i18n import current, negotiate, ready, set_locale
from core.jobs.views import JobView, RequestView
from core.subscriptions.service import MARK as SUBSCRIBED

log = logging.getLogger(__name__)

# A delivery the platform could not take (unreachable, rate limited) is tried this many more times; then
# it stays undelivered and the next start of the bot tries again.
DELIVERY_RETRIES = 8
UPLOADING_TIMEOUT_S = 10.0


class Conductor(Generic[R]):
    """Owns this bot process's deliveries: starts them, resumes unfinished ones after a restart, stops them."""

    def __init__(self, services: Services, chat: ChatAdapter[R]) -> None:
        self.services = services
        self.jobs = services.jobs
        self.chat = chat
        self._live: dict[str, Delivery[R]] = {}

    def follow(
        self, request: RequestView, job: JobView, *, reply: R | None = None, resumed: bool = False
    ) -> None:
        """Follow `request` until it is delivered (once: a request followed already is left alone).
        `reply`: where it is answered, when the caller knows better than the stored target."""
        if request.id in self._live:
            return
        reply = reply if reply is not None else self.chat.reply_for(request)
        if reply is None:
            return
        delivery = Delivery(self, request, job, reply, resumed=resumed)
        self._live[request.id] = delivery
        delivery.task = spawn(delivery.run(), name=f"{self.chat.platform}-request-{request.id[:8]}")
        delivery.task.add_done_callback(lambda _: self._forget(delivery))

    def _forget(self, delivery: Delivery[R]) -> None:
        if self._live.get(delivery.request.id) is delivery:
            del self._live[delivery.request.id]

    async def resume(self) -> int:
        """Pick up every request this bot has not delivered yet (after a restart, or a crash)."""
        resumed = 0
        platform = self.chat.platform
        for request, job in await self.jobs.undelivered(platform):
            reply = self.chat.reply_for(request)
            if reply is None:
                log.warning(
                    "%s request %s has nowhere to be answered; marking it delivered", platform, request.id
                )
                await self.jobs.mark_delivered(request.id)
                continue
            self.follow(request, job, reply=reply, resumed=True)
            resumed += 1
        if resumed:
            log.info("%s: resumed %d undelivered requests", platform, resumed)
        return resumed

    async def resume_subscribed(self) -> int:
        """Follow the requests a subscription made for this platform (a worker made them; no message of the
        person's asked): the same path as `resume`, limited to them so a request a handler is about to
        follow with its own progress message is left to it."""
        picked = 0
        for request, job in await self.jobs.undelivered(self.chat.platform):
            if request.id in self._live or not request.target.get(SUBSCRIBED):
                continue
            reply = self.chat.reply_for(request)
            if reply is None:
                await self.jobs.mark_delivered(request.id)
                continue
            self.follow(request, job, reply=reply, resumed=True)
            picked += 1
        return picked

    async def stop(self, request_id: str) -> R | None:
        """Stop following a request (it was cancelled). Its answer, with what the delivery learnt on the
        way (a new progress message, a dead token), when this process was following it."""
        delivery = self._live.pop(request_id, None)
        if delivery is None:
            return None
        await cancel_and_wait(delivery.task)
        return delivery.reply

    def children_cancelled(self, request_id: str, n: int) -> bool:
        """`n` requests made for `request_id` were cancelled (playlist items, a copy being made); its
        delivery tells the story. True when it is a playlist."""
        delivery = self._live.get(request_id)
        return delivery.items_cancelled(n) if delivery is not None else False

    async def close(self) -> None:
        """Stop following (requests stay undelivered in the database and are resumed on the next start)."""
        deliveries = list(self._live.values())
        self._live.clear()
        await asyncio.gather(*(cancel_and_wait(d.task) for d in deliveries))


class Delivery(Generic[R]):
    """One request, followed to its end and delivered."""

    def __init__(
        self, conductor: Conductor[R], request: RequestView, job: JobView, reply: R, *, resumed: bool
    ) -> None:
        self.platform = conductor.chat.platform
        self.jobs = conductor.jobs
        self.request = request
        self.job = job
        self.reply = reply
        self.resumed = resumed
        self.task: asyncio.Task[None] | None = None
        self.surface: LatestSender[Screen] = LatestSender(
            reply.chat, conductor.chat.pacer, reply.show, min_interval_s=conductor.chat.edit_interval_s,
            initial=reply.shown,
        )  # fmt: skip
        self.playlist: Playlist | None = None  # once the request turned out to be a playlist
        self.cancelling = 0  # items cancelled while the rest goes on

    async def run(self) -> None:
        # The person's language, stored with the request: a delivery resumed after a restart speaks it too.
        set_locale(await ready(negotiate(self.request.target.get("locale") or current())))
        try:
            if self.resumed and not self.job.terminal:
                self.surface.offer(self.reply.progress(self.job))
            # core.planner.follow rides out an outage of the database or the bus (with the one retry
            # policy every follower uses) and gives up with a sentence when it lasts too long.
            final = await follow(self.jobs, self.job, self._show)
            await self.surface.settle()
            await self._deliver(final)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever happens, the person hears and the request ends
            await self._broken(exc)
        finally:
            # settle, not close: an edit in flight lands before whoever stopped us (a Cancel) has the last word.
            await self.surface.settle()

    async def _show(self, view: JobView) -> None:
        self.surface.offer(self.reply.progress(view))

    async def _deliver(self, final: JobView) -> None:
        """Conclude, trying again while the platform says it is worth it."""
        for attempt in range(DELIVERY_RETRIES + 1):
            try:
                await self._conclude(final)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                wait = None if self.reply.closed(exc) else self.reply.retry_after(exc)
                if wait is None:
                    raise
                if attempt == DELIVERY_RETRIES:
                    log.warning(
                        "%s request %s: giving up after %d attempts (%s); the next start tries again",
                        self.platform, self.request.id, attempt + 1, type(exc).__name__,
                    )  # fmt: skip
                    return
                log.warning(
                    "%s request %s: delivery failed (%s); trying again in %.0f s",
                    self.platform, self.request.id, type(exc).__name__, wait,
                )  # fmt: skip
                self.surface.pacer.back_off(self.reply.chat, wait)
                await asyncio.sleep(wait)

    async def _broken(self, exc: Exception) -> None:
        """The delivery cannot go on: the chat is closed to the bot, or something unexpected broke."""
        if self.reply.closed(exc):
            # The person blocked the bot (or it was removed from the group): nobody to tell.
            log.info("%s request %s: the chat is closed to the bot (%s)", self.platform, self.request.id, exc)
        else:
            log.error(
                "%s request %s (chat %s): delivery failed", self.platform, self.request.id, self.reply.chat,
                exc_info=exc,
            )  # fmt: skip
            await self.surface.settle()
            with contextlib.suppress(Exception):
                await self.reply.apologize()
        # The apology is the answer: no surprise delivery after the next restart.
        with contextlib.suppress(Exception):
            await self.jobs.mark_delivered(self.request.id, self.reply.stored())

    async def _conclude(self, final: JobView) -> None:
        request, _ = await self.jobs.get_request(self.request.id)
        # Delivered by an earlier attempt; or cancelled by the person, and whoever cancelled says so.
        if request.delivered_at is not None or request.status == "cancelled":
            return
        if final.status == "cancelled":
            await self.reply.cancelled(final)
        elif final.status != "done":
            await self.reply.failed(final, why_failed(final))
        elif final.playlist is not None:
            await self._deliver_playlist(request, final)
        else:
            await self._deliver_file(request, final)
        await self.jobs.mark_delivered(request.id, self.reply.stored())

    async def _deliver_file(self, request: RequestView, view: JobView) -> None:
        """One file, as it is, as a copy that fits, or as a link; then its subtitles."""
        try:
            planned = await self._plan(request, view)
            if planned.outcome == "cancelled":
                await self.reply.cancelled(view)
                return
            await self.reply.send_subtitles(Parcel(request, planned.sent or view, view))
            await self.reply.done(view)
        except MediabotError as exc:  # the file expired in between, storage down...
            await self.surface.settle()
            await self.reply.failed(view, exc.message)

    async def _plan(self, request: RequestView, view: JobView, item: Item | None = None) -> Planned:
        """Walk the delivery plan for `view`, the finished file of `request` (a playlist item's, with its
        `item`, whose title starts every message about it)."""
        title = item.title if item is not None else None
        refused = False

        async def upload(current: JobView, note: str | None) -> None:
            nonlocal refused
            await self._uploading(current, item)
            full = await self._full_link(view) if note is not None else None
            try:
                await self.reply.send_file(Parcel(request, current, view, note, full, title))
            except Refused:
                refused = True
                raise

        async def show(copy: JobView) -> None:
            if item is None:
                self.surface.offer(self.reply.progress(copy))
                return
            item.copy, item.sending = copy, False
            self._show_listing()

        async def link(original: JobView, note: str) -> None:
            if item is None:
                await self.surface.settle()
            url = await self.jobs.link(original.id)
            await self.reply.send_link(
                Parcel(request, original, view, note, item=title), url, refused=refused, failed=False
            )

        planner = DeliveryPlanner(self.jobs)
        try:
            return await planner.deliver(
                request, view, self.reply.destination(), upload=upload, show=show, link=link
            )
        except UploadFailed as exc:
            # Not a size problem (the platform down, a bad request...): the file is stored, so a link answers.
            log.warning("%s request %s: upload failed (%s); sending a link", self.platform, request.id, exc)
            url = await self.jobs.link(view.id)
            await self.reply.send_link(
                Parcel(request, view, view, item=title), url, refused=False, failed=True
            )
            return Planned("link", view, None)

    async def _uploading(self, view: JobView, item: Item | None) -> None:
        """The file is about to go: the progress message says so (a playlist: the item's line)."""
        if item is not None:
            item.sending = True
            self._show_listing()
            return
        screen = self.reply.uploading(view)
        if screen is not None:
            await self.surface.finish(screen, timeout=UPLOADING_TIMEOUT_S)
        await self.surface.settle()

    async def _full_link(self, original: JobView) -> str | None:
        """A link to the full quality, sent with a copy made to fit; None when there is none to give."""
        try:
            return await self.jobs.link(original.id)
        except MediabotError as exc:
            log.info("%s: no full-quality link for job %s (%s)", self.platform, original.id, exc.code)
            return None

    # -- playlists ---------------------------------------------------------------------------------------

    async def _deliver_playlist(self, request: RequestView, view: JobView) -> None:
        """Each item on its own as soon as it is ready (through the planner), the progress message listing
        them; items delivered before a restart are not sent again, and are listed as they went out."""
        playlist = Playlist.of(view, await self.jobs.children(request.id))
        playlist.cancelling = self.cancelling
        self.playlist = playlist
        self._show_listing()
        # aclosing: a stopped delivery stops following the items at once, not when garbage-collected.
        async with contextlib.aclosing(finished_items(self.jobs, request.id)) as finished:  # type: ignore[type-var]
            async for child, job in finished:
                current, _ = await self.jobs.get_request(child.id)  # cancelled since it was listed?
                item = playlist.update(current, job)
                self._show_listing()
                item.outcome = await self._deliver_item(current, job, item)
                item.copy, item.sending = None, False
                await self.jobs.mark_delivered(current.id, {**current.target, DELIVERED_AS: item.outcome})
                playlist.refresh(await self.jobs.children(request.id))
                self._show_listing()
        await self.surface.settle()
        playlist.finished = True
        await self.reply.conclude(self.reply.listing(playlist)[0])

    async def _deliver_item(self, request: RequestView, job: JobView, item: Item) -> Outcome:
        """Send one playlist item; how it went out."""
        if request.status == "cancelled" or job.status == "cancelled":
            return "cancelled"
        if job.status != "done":
            await self.reply.failed(job, why_failed(job), item.title)
            return "failed"
        try:
            planned = await self._plan(request, job, item)
        except MediabotError as exc:  # the file expired in between, storage down...
            await self.reply.failed(job, exc.message, item.title)
            return "failed"
        if planned.outcome != "cancelled":
            item.sent = planned.sent
            try:
                await self.reply.send_subtitles(Parcel(request, planned.sent or job, job, item=item.title))
            except MediabotError as exc:
                log.info("%s request %s: subtitles not sent (%s)", self.platform, request.id, exc.code)
        return PLANNED[planned.outcome]

    def _show_listing(self) -> None:
        if self.playlist is not None:
            self.surface.offer(self.reply.listing(self.playlist))

    def items_cancelled(self, n: int) -> bool:
        """The person cancelled `n` of the requests made for this one: the story continues here."""
        self.cancelling += n
        if self.playlist is None:
            return False
        self.playlist.cancelling = self.cancelling
        self._show_listing()
        return True
