"""Following a request's job and delivering the result into Discord.

Each request gets one task that watches its job, edits the command's reply with throttled progress, and when
the job ends edits the reply once more with the file, a copy that fits the upload limit (with a link to the
full quality), a download link, or the error; the delivery planner (core/planner.py) decides which. A
playlist's reply becomes a list of its items, each item is posted as its own follow-up message as soon as it
is ready, and the list ends with a summary. The reply is edited through the interaction's webhook token,
which Discord honours for 15 minutes; after that (or when the reply is gone) results go out as channel
messages that mention the person, or as DMs when the channel refuses. Everything a delivery needs lives in
the request's `target` (and its items' requests), so the tasks are recreated from the database after a
restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from bots.discord.embeds import media_embed
from bots.discord.texts import (
    MAX_CONTENT,
    cancelled_text,
    done_text,
    error_text,
    fitted_text,
    item_line,
    item_state,
    link_text,
    playlist_footer,
    playlist_text,
    progress_text,
    same_text,
    title_of,
    with_missing_subtitles,
)
from bots.discord.views import cancel_view
from bots.progress import ChatPacer, LatestSender
from core.errors import MediabotError, NotFound
from core.planner import DeliveryPlanner, Destination, Planned, Refused, finished_items
from core.schemas import THUMBNAIL, JobView, RequestView, subtitle_asset

if TYPE_CHECKING:
    from core.services import Services

log = logging.getLogger(__name__)

FINAL_TIMEOUT_S = 30 * 60.0
RETRY_S = 5.0
MIB = 1024 * 1024
# The upload limits Discord is known to use (by plan and boost level): a refusal below the limit an
# interaction states steps down to the next one.
TIERS = (10 * MIB, 50 * MIB, 100 * MIB, 500 * MIB)
# Stored in a playlist item's target once it is delivered: file | copy | link | failed | cancelled.
DELIVERED_AS = "delivered_as"
# Error codes: 40005 request entity too large; 50027 invalid webhook token; 10015 unknown webhook;
# 10008 unknown message (the reply was deleted).
TOO_LARGE = 40005
TOKEN_GONE = {50027, 10015, 10008}
TRANSIENT = (discord.DiscordServerError, aiohttp.ClientError, OSError, TimeoutError)
MAX_ATTACHMENTS = 10  # files in one Discord message

# Files to attach to a message: (path on this machine, the name Discord shows).
Files = Sequence[tuple[Path, str]]


def _opener(files: Files) -> Callable[[], list[discord.File]]:
    """Fresh discord.File objects for each attempt: one is read once, so a retry needs new ones."""
    return lambda: [discord.File(path, filename=name) for path, name in files]


@dataclass
class Target:
    """Where a request's result goes: the interaction's reply while its token lives, else the channel."""

    app_id: str
    token: str
    user_id: str
    expires_at: float  # epoch seconds after which the interaction token is not used any more
    filesize_limit: int
    channel_id: str | None = None
    guild_id: str | None = None
    message_id: str | None = None
    interaction_id: str | None = None
    # A select menu's choice: the token's `@original` is the menu's message (a component interaction's
    # message), which `message_id` names for replies in the channel once the token is gone.
    edit_original: bool = False

    @classmethod
    def from_interaction(
        cls,
        interaction: discord.Interaction,
        *,
        ttl_s: float,
        message_id: int | None,
        edit_original: bool = False,
    ) -> Target:
        return cls(
            app_id=str(interaction.application_id),
            token=interaction.token,
            user_id=str(interaction.user.id),
            expires_at=time.time() + ttl_s,
            filesize_limit=int(interaction.filesize_limit or discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES),
            channel_id=str(interaction.channel_id) if interaction.channel_id else None,
            guild_id=str(interaction.guild_id) if interaction.guild_id else None,
            message_id=str(message_id) if message_id else None,
            interaction_id=str(interaction.id),
            edit_original=edit_original,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        """The target stored with a request; ValueError when it lacks what a delivery needs."""
        missing = [key for key in ("app_id", "token", "user_id") if not data.get(key)]
        if missing:
            raise ValueError(f"Discord target without {', '.join(missing)}")
        optional = ("channel_id", "guild_id", "message_id", "interaction_id")
        return cls(
            app_id=str(data["app_id"]),
            token=str(data["token"]),
            user_id=str(data["user_id"]),
            expires_at=float(data.get("expires_at") or 0),
            filesize_limit=int(data.get("filesize_limit") or discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES),
            edit_original=bool(data.get("edit_original")),
            **{key: str(data[key]) if data.get(key) else None for key in optional},
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def alive(self) -> bool:
        return time.time() < self.expires_at


# -- errors -----------------------------------------------------------------------------------------------


class TokenGone(Exception):
    """The interaction token no longer edits the reply (expired, or the reply was deleted)."""


class AttachmentRefused(Exception):
    """Discord refused the attachment as too large (the limit moves: boosts, plan changes)."""


def _too_large(exc: discord.HTTPException) -> bool:
    return exc.status == 413 or exc.code == TOO_LARGE


def _token_gone(exc: discord.HTTPException) -> bool:
    return exc.status == 401 or exc.code in TOKEN_GONE


@dataclass
class _Delivery:
    request_id: str
    job_id: str
    target: Target
    token_gone: bool = False
    refused: int | None = None  # the smallest upload Discord refused as too large in this delivery

    def can_edit(self) -> bool:
        return not self.token_gone and self.target.alive()

    @property
    def chat(self) -> str:
        return self.target.channel_id or f"user:{self.target.user_id}"

    def destination(self) -> Destination:
        """Discord as the planner sees it: the interaction's upload limit (it moves with plans and boosts),
        lowered for the rest of this delivery once Discord refused a file below it."""
        dest = Destination("Discord", self.target.filesize_limit, split=False, tiers=TIERS)
        return dest.lowered(self.refused) if self.refused is not None else dest


class _ReplyEdits:
    """Throttled edits of the command's reply made from inside a delivery (a copy's progress, a playlist's
    list): the newest text wins, one edit per interval at most, Cancel button kept. The delivery runs in the
    LatestSender's send, so these edits go out directly; `settle()` lets an edit in flight land (and drops
    the pending one) before the delivery's own edit, so that one is always the last."""

    def __init__(self, deliveries: Deliveries, delivery: _Delivery) -> None:
        self._deliveries = deliveries
        self._delivery = delivery
        self._text: str | None = None
        self._shown: str | None = None
        self._last = 0.0
        self._editing = False
        self._task: asyncio.Task[None] | None = None

    def offer(self, text: str) -> None:
        if not self._delivery.can_edit():
            return
        self._text = text
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(
                self._run(), name=f"discord-edits-{self._delivery.request_id[:8]}"
            )

    async def _run(self) -> None:
        delivery = self._delivery
        while self._text is not None and self._text != self._shown and delivery.can_edit():
            wait = self._last + self._deliveries.edit_interval_s - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await self._deliveries.pacer.wait(delivery.chat)
            text = self._text
            self._editing = True
            try:
                await self._deliveries._edit(
                    delivery, content=text[:MAX_CONTENT], view=cancel_view(delivery.request_id)
                )
            except TokenGone:
                return
            except (discord.HTTPException, *TRANSIENT) as exc:
                log.info("progress edit of request %s failed (%s)", delivery.request_id, type(exc).__name__)
            except Exception:  # noqa: BLE001 - a progress edit never ends a delivery
                log.warning("progress edit of request %s failed", delivery.request_id, exc_info=True)
            finally:
                self._editing = False
                self._last = time.monotonic()
            self._shown = text

    async def settle(self) -> None:
        """Wait for an edit in flight, drop the pending one; later offers start afresh."""
        task, self._task, self._text = self._task, None, None
        if task is not None and not task.done():
            if self._editing:
                with contextlib.suppress(Exception):
                    await asyncio.shield(task)
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._shown = None


class _Playlist:
    """A playlist's items as its reply lists them: each item's job, and how the delivered ones went out."""

    def __init__(self, view: JobView, items: list[tuple[RequestView, JobView]]) -> None:
        self.view = view
        self.order = [request.id for request, _ in items]
        self.jobs = {request.id: job for request, job in items}
        self.cancelled = {request.id for request, _ in items if request.status == "cancelled"}
        self.delivered = {
            request.id: str(request.target.get(DELIVERED_AS) or "file")
            for request, _ in items
            if request.delivered_at is not None
        }
        self.copies: dict[str, JobView] = {}  # item -> the copy being made for it

    def update(self, request: RequestView, job: JobView) -> None:
        if request.id in self.jobs:
            self.jobs[request.id] = job
        if request.status == "cancelled":
            self.cancelled.add(request.id)

    def text(self, *, done: bool = False, cancelled: bool = False) -> str:
        lines = []
        for index, item in enumerate(self.order, 1):
            job = self.jobs[item]
            state = item_state(
                job, delivered_as=self.delivered.get(item), cancelled=cancelled or item in self.cancelled,
                copy=self.copies.get(item),
            )  # fmt: skip
            lines.append(item_line(index, job, state))
        footer = None
        if done or cancelled:
            footer = playlist_footer(list(self.delivered.values()), len(self.order), cancelled=cancelled)
        return playlist_text(self.view, lines, footer)


class Deliveries:
    """One supervised task per request being followed; recreated from `undelivered()` after a restart."""

    def __init__(
        self,
        bot: discord.Client,
        services: Services,
        *,
        edit_interval_s: float = 1.5,
        chat_interval_s: float = 0.5,
    ) -> None:
        self.bot = bot
        self.services = services
        self.jobs = services.jobs
        self.pacer = ChatPacer(chat_interval_s)
        self.edit_interval_s = edit_interval_s
        self._tasks: dict[str, asyncio.Task[None]] = {}

    # -- lifecycle ----------------------------------------------------------------------------------------

    def follow(self, request: RequestView, job: JobView) -> None:
        if request.id in self._tasks:
            return
        task = asyncio.create_task(self._follow(request, job), name=f"discord-delivery-{request.id[:8]}")
        self._tasks[request.id] = task
        task.add_done_callback(partial(self._finished, request.id))

    def _finished(self, request_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(request_id) is task:
            del self._tasks[request_id]
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery of request %s failed", request_id, exc_info=task.exception())

    async def stop(self, request_id: str) -> bool:
        """Stop following a request (it was cancelled); True when this process was following it."""
        task = self._tasks.pop(request_id, None)
        if task is None:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        return True

    async def close(self) -> None:
        for request_id in list(self._tasks):
            await self.stop(request_id)

    async def resume(self) -> int:
        """Follow every request not yet delivered (after a restart): running ones and finished ones."""
        rows = await self.jobs.undelivered("discord")
        for request, job in rows:
            self.follow(request, job)
        if rows:
            log.info("resuming %d Discord deliveries", len(rows))
        return len(rows)

    async def show_cancelled(self, request: RequestView, job: JobView) -> None:
        """After /cancel: stop following and turn the reply into "Cancelled" (a playlist: its list with what
        was sent) while it can be edited; the request needs no delivery any more."""
        await self.stop(request.id)
        try:
            delivery = _Delivery(request.id, job.id, Target.from_dict(request.target))
        except ValueError:
            return
        if delivery.can_edit():
            with contextlib.suppress(TokenGone, discord.HTTPException, *TRANSIENT):
                await self._edit(delivery, content=await self.cancelled_content(request, job), view=None)
        await self.jobs.mark_delivered(request.id)

    async def cancelled_content(self, request: RequestView, job: JobView) -> str:
        """What the reply says once the request was cancelled."""
        if job.playlist is None:
            return cancelled_text(job)
        playlist = _Playlist(job, await self.jobs.children(request.id))
        return playlist.text(cancelled=True)

    # -- following ----------------------------------------------------------------------------------------

    async def _follow(self, request: RequestView, job: JobView) -> None:
        try:
            delivery = _Delivery(request.id, job.id, Target.from_dict(request.target))
        except ValueError as exc:
            log.error("request %s cannot be delivered (%s)", request.id, exc)
            await self.jobs.mark_delivered(request.id)
            return
        sender: LatestSender[JobView] = LatestSender(
            delivery.chat, self.pacer, partial(self._send, delivery), min_interval_s=self.edit_interval_s,
            same=same_text,
        )  # fmt: skip
        try:
            final = job
            while not final.terminal:
                try:
                    async with contextlib.aclosing(self.jobs.watch(job.id, after_seq=final.seq)) as views:  # type: ignore[type-var]
                        async for view in views:
                            final = view
                            if not view.terminal:
                                sender.offer(view)
                except NotFound:
                    log.error("job %s of request %s no longer exists", job.id, request.id)
                    return
                except Exception as exc:  # noqa: BLE001 - database or bus trouble: follow again shortly
                    log.warning(
                        "lost track of job %s (%s); following again in %.0f s",
                        job.id,
                        type(exc).__name__,
                        RETRY_S,
                    )
                    await asyncio.sleep(RETRY_S)
            # A playlist's delivery posts every item, each perhaps after a copy that fits was made.
            items = final.playlist.count if final.playlist is not None else 0
            await sender.finish(final, timeout=FINAL_TIMEOUT_S * (1 + items))
        finally:
            await sender.close()

    async def _send(self, delivery: _Delivery, view: JobView) -> float | None:
        """LatestSender's send: a progress edit, or (terminal state) the delivery. None = done; else retry after."""
        try:
            if view.terminal:
                await self._deliver(delivery, view)
            elif delivery.can_edit():
                await self._edit(delivery, content=progress_text(view), view=cancel_view(delivery.request_id))
            return None
        except TokenGone:
            return 0.0 if view.terminal else None  # deliver again, now by channel message
        except TRANSIENT as exc:
            log.warning(
                "Discord unreachable for request %s (%s); retrying", delivery.request_id, type(exc).__name__
            )
            return RETRY_S
        except discord.HTTPException as exc:
            if exc.status == 429:
                return RETRY_S
            log.warning(
                "Discord refused %s for request %s: %s %s",
                "the delivery" if view.terminal else "a progress edit",
                delivery.request_id,
                exc.status,
                exc.code,
            )
            return RETRY_S if view.terminal else None

    async def _deliver(self, delivery: _Delivery, view: JobView) -> None:
        request, _ = await self.jobs.get_request(delivery.request_id)
        if request.delivered_at is not None:
            return
        if request.status == "cancelled" or view.status == "cancelled":
            if delivery.can_edit():
                await self._edit(delivery, content=cancelled_text(view), view=None)
        elif view.status == "done" and view.playlist is not None:
            await self._deliver_playlist(delivery, request, view)
        elif view.status == "done":
            await self._deliver_file(delivery, request, view)
        else:
            await self._post(delivery, error_text(view))
        await self.jobs.mark_delivered(delivery.request_id)

    async def _deliver_file(self, delivery: _Delivery, request: RequestView, view: JobView) -> None:
        """The file into the reply, or a copy that fits (its making shown in the reply), or a link."""
        edits = _ReplyEdits(self, delivery)

        async def post(content: str, files: Files = (), embed: discord.Embed | None = None) -> None:
            await edits.settle()
            await self._post(delivery, content, files, embed)

        async def show(copy: JobView) -> None:
            edits.offer(progress_text(copy))

        try:
            planned = await self._plan(delivery, request, view, post=post, show=show)
        finally:
            await edits.settle()
        if planned is not None and planned.outcome == "cancelled" and delivery.can_edit():
            await self._edit(delivery, content=cancelled_text(view), view=None)

    async def _plan(
        self,
        delivery: _Delivery,
        request: RequestView,
        view: JobView,
        *,
        post: Callable[..., Awaitable[None]],
        show: Callable[[JobView], Awaitable[None]],
    ) -> Planned | None:
        """Walk the delivery plan for one finished file; `post(content, files=(), embed=None)` sends a
        message. None when a sentence explaining why nothing could be sent was posted instead.

        The message carries an embed (title, uploader, duration, size, thumbnail) and the subtitle files
        made for the download: attached next to the file while they fit the upload limit, else linked."""
        expires_at = time.time() + self.services.settings.link_ttl_s

        async def upload(copy: JobView, note: str | None) -> None:
            content = done_text(copy)
            if note is not None:  # a copy that fits: say which, and link the full quality
                content = fitted_text(copy, note, await self._link_or_none(view), expires_at)
            async with self._file(copy) as path:
                size = copy.filesize or (await asyncio.to_thread(path.stat)).st_size
                limit = delivery.destination().limit
                room = None if limit is None else limit - size
                async with self._subtitle_files(view, room) as (attached, linked):
                    embed = await self._embed(copy, view, linked)
                    try:
                        await post(
                            with_missing_subtitles(content, view),
                            [(path, copy.filename or path.name), *attached],
                            embed,
                        )
                    except AttachmentRefused:
                        log.info("Discord refused %d bytes for request %s", size, delivery.request_id)
                        delivery.refused = min(size, delivery.refused or size)
                        raise Refused(size) from None

        async def link(original: JobView, note: str) -> None:
            text = link_text(original, await self.jobs.link(original.id), expires_at, note)
            embed = await self._embed(original, view, [s.lang for s in view.subtitles])
            await post(with_missing_subtitles(text, view), (), embed)

        try:
            return await DeliveryPlanner(self.jobs).deliver(
                request, view, delivery.destination(), upload=upload, show=show, link=link
            )
        except MediabotError as exc:
            await post(f"{title_of(view)}\n{exc.message}")
            return None

    async def _embed(self, sent: JobView, source: JobView, linked: Sequence[str]) -> discord.Embed:
        """The delivery's embed: the thumbnail of the file sent (a copy's own, else the download's), and
        links to the subtitle files in `linked` (the ones not attached)."""
        thumbnail = await self._asset_link(sent, THUMBNAIL) or (
            await self._asset_link(source, THUMBNAIL) if source.id != sent.id else None
        )
        links = []
        for lang in linked:
            found = await self._asset_link(source, subtitle_asset(lang))
            if found is not None:
                links.append((lang, found))
        return media_embed(sent, source, thumbnail=thumbnail, subtitle_links=links)

    async def _asset_link(self, view: JobView, asset: str) -> str | None:
        """A signed link to one of a job's assets; None when it has none. A view that came through the event
        bus does not carry where its assets are stored: the job is read once more for those."""
        has = (
            view.thumbnail
            if asset == THUMBNAIL
            else any(subtitle_asset(s.lang) == asset for s in view.subtitles)
        )
        if not has:
            return None
        try:
            found = await self.jobs.asset_link(view, asset)
            return found if found is not None else await self.jobs.link(view.id, asset=asset)
        except MediabotError as exc:  # expired in between: the message goes out without it
            log.info("no %s link for job %s (%s)", asset, view.id, exc.code)
            return None

    @contextlib.asynccontextmanager
    async def _subtitle_files(
        self, view: JobView, room: int | None
    ) -> AsyncIterator[tuple[list[tuple[Path, str]], list[str]]]:
        """The job's .srt files to attach (as many as Discord takes in one message and `room` bytes allow),
        and the languages left to link instead."""
        attached: list[tuple[Path, str]] = []
        linked: list[str] = []
        tmp: Path | None = None
        try:
            for subtitle in view.subtitles:
                fits = room is None or subtitle.size <= room
                if not fits or len(attached) >= MAX_ATTACHMENTS - 1:
                    linked.append(subtitle.lang)
                    continue
                asset = subtitle_asset(subtitle.lang)
                try:
                    path = await self.jobs.local_path(view.id, asset=asset)
                    if path is None or not await asyncio.to_thread(path.exists):
                        if tmp is None:
                            tmp = self.services.settings.tmp_dir / f"discord-{uuid.uuid4().hex}"
                            await asyncio.to_thread(tmp.mkdir, parents=True, exist_ok=True)
                        path = await self.jobs.fetch_file(view.id, tmp / f"{subtitle.lang}.srt", asset=asset)
                except MediabotError as exc:
                    log.info("subtitles %s of job %s not available (%s)", subtitle.lang, view.id, exc.code)
                    continue
                attached.append((path, subtitle.filename))
                if room is not None:
                    room -= subtitle.size
            yield attached, linked
        finally:
            if tmp is not None:
                await asyncio.to_thread(shutil.rmtree, tmp, True)

    async def _link_or_none(self, view: JobView) -> str | None:
        try:
            return await self.jobs.link(view.id)
        except MediabotError as exc:
            log.info("no full-quality link for job %s (%s)", view.id, exc.code)
            return None

    async def _deliver_playlist(self, delivery: _Delivery, request: RequestView, view: JobView) -> None:
        """The reply lists the items (updated as they end); each item goes out as its own follow-up message
        through the planner and is marked delivered; the list ends with a summary."""
        playlist = _Playlist(view, await self.jobs.children(request.id))
        edits = _ReplyEdits(self, delivery)
        edits.offer(playlist.text())
        try:
            # aclosing: a stopped delivery stops following the items at once, not when garbage-collected.
            async with contextlib.aclosing(finished_items(self.jobs, request.id)) as finished:
                async for child, job in finished:
                    await self._playlist_item(delivery, request, playlist, edits, child, job)
        finally:
            await edits.settle()
        await self._post(delivery, playlist.text(done=True))

    async def _playlist_item(
        self,
        delivery: _Delivery,
        request: RequestView,
        playlist: _Playlist,
        edits: _ReplyEdits,
        child: RequestView,
        job: JobView,
    ) -> None:
        """One item whose job ended: posted as a follow-up, marked delivered (with how), the list updated."""
        child, _ = await self.jobs.get_request(child.id)  # cancelled since it was listed?
        playlist.update(child, job)
        edits.offer(playlist.text())

        async def show(copy: JobView) -> None:
            playlist.copies[child.id] = copy
            edits.offer(playlist.text())

        async def post(content: str, files: Files = (), embed: discord.Embed | None = None) -> None:
            await self._followup(delivery, content, files, embed)

        outcome = await self._deliver_item(delivery, child, job, post=post, show=show)
        playlist.copies.pop(child.id, None)
        await self.jobs.mark_delivered(child.id, {**child.target, DELIVERED_AS: outcome})
        playlist.delivered[child.id] = outcome
        for item, item_job in await self.jobs.children(request.id):
            playlist.update(item, item_job)
        edits.offer(playlist.text())

    async def _deliver_item(
        self,
        delivery: _Delivery,
        child: RequestView,
        job: JobView,
        *,
        post: Callable[..., Awaitable[None]],
        show: Callable[[JobView], Awaitable[None]],
    ) -> str:
        """Post one playlist item; how it went out (file | copy | link | failed | cancelled)."""
        if child.status == "cancelled" or job.status == "cancelled":
            return "cancelled"
        if job.status != "done":
            return "failed"  # the list shows the item's error
        planned = await self._plan(delivery, child, job, post=post, show=show)
        if planned is None:
            return "failed"
        return {"as_is": "file", "fitted": "copy", "link": "link"}.get(planned.outcome, "cancelled")

    @contextlib.asynccontextmanager
    async def _file(self, view: JobView) -> AsyncIterator[Path]:
        """The finished file on this machine: local storage's own path, or a temporary copy (S3)."""
        path = await self.jobs.local_path(view.id)
        if path is not None and path.exists():
            yield path
            return
        tmp = self.services.settings.tmp_dir / f"discord-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            yield await self.jobs.fetch_file(view.id, tmp / (view.filename or "media"))
        finally:
            await asyncio.to_thread(shutil.rmtree, tmp, True)

    # -- Discord calls ------------------------------------------------------------------------------------

    async def _edit(self, delivery: _Delivery, **fields: Any) -> None:
        """Edit the command's reply through the interaction webhook."""
        target = delivery.target
        webhook = discord.Webhook.partial(int(target.app_id), target.token, client=self.bot)
        try:
            ref = "@original" if target.edit_original else (target.message_id or "@original")
            await webhook.edit_message(ref, **fields)  # type: ignore[arg-type]
        except discord.HTTPException as exc:
            if _token_gone(exc):
                delivery.token_gone = True
                raise TokenGone() from exc
            raise

    async def _post(
        self, delivery: _Delivery, content: str, files: Files = (), embed: discord.Embed | None = None
    ) -> None:
        """The final message: an edit of the reply while the token lives, else a channel (or DM) message."""
        make = _opener(files)
        embeds = [embed] if embed is not None else []
        if delivery.can_edit():
            try:
                await self._edit(
                    delivery, content=content[:MAX_CONTENT], attachments=make(), embeds=embeds, view=None
                )
                return
            except TokenGone:
                log.info(
                    "the reply to request %s can no longer be edited; posting a message", delivery.request_id
                )
            except discord.HTTPException as exc:
                if _too_large(exc):
                    raise AttachmentRefused() from exc
                raise
        await self._message(delivery, content, make, embeds)

    async def _followup(
        self, delivery: _Delivery, content: str, files: Files = (), embed: discord.Embed | None = None
    ) -> None:
        """A message of its own (a playlist item): an interaction follow-up while the token lives, else a
        channel (or DM) message."""
        make = _opener(files)
        embeds = [embed] if embed is not None else []
        if delivery.can_edit():
            target = delivery.target
            webhook = discord.Webhook.partial(int(target.app_id), target.token, client=self.bot)
            try:
                await webhook.send(
                    content[:MAX_CONTENT], files=make(), embeds=embeds, wait=True,
                    allowed_mentions=discord.AllowedMentions.none(),
                )  # fmt: skip
                return
            except discord.HTTPException as exc:
                if _too_large(exc):
                    raise AttachmentRefused() from exc
                if not _token_gone(exc):
                    raise
                delivery.token_gone = True
                log.info("request %s's interaction token is gone; posting a message", delivery.request_id)
        await self._message(delivery, content, make, embeds)

    async def _message(
        self,
        delivery: _Delivery,
        content: str,
        files: Callable[[], list[discord.File]],
        embeds: list[discord.Embed] | None = None,
    ) -> None:
        """Post the result where the command was used, mentioning the person: as a reply to the command's
        message, then (no Read Message History permission) as a plain message, then as a DM."""
        target = delivery.target
        user = discord.Object(int(target.user_id))
        text = f"<@{target.user_id}> {content}"[:MAX_CONTENT]
        attempts: list[
            tuple[str, Callable[[], Awaitable[discord.abc.Messageable]], discord.MessageReference | None]
        ]
        attempts = []
        if target.channel_id:
            channel = self.bot.get_partial_messageable(
                int(target.channel_id), guild_id=int(target.guild_id) if target.guild_id else None
            )

            async def here() -> discord.abc.Messageable:
                return channel

            if target.message_id:
                reply = discord.MessageReference(
                    message_id=int(target.message_id), channel_id=channel.id, guild_id=channel.guild_id,
                    fail_if_not_exists=False,
                )  # fmt: skip
                attempts.append(("channel (reply)", here, reply))
            attempts.append(("channel", here, None))

        async def direct() -> discord.abc.Messageable:
            return await self.bot.create_dm(user)

        attempts.append(("DM", direct, None))
        for name, place, reference in attempts:
            kwargs: dict[str, Any] = {
                "files": files(),
                "embeds": embeds or [],
                "allowed_mentions": discord.AllowedMentions(users=[user]),
            }
            if reference is not None:
                kwargs["reference"] = reference
            try:
                await (await place()).send(text, **kwargs)
                return
            except discord.HTTPException as exc:
                if _too_large(exc):
                    raise AttachmentRefused() from exc
                if exc.status not in (403, 404):
                    raise
                log.info(
                    "cannot post request %s's result in the %s (%s)", delivery.request_id, name, exc.code
                )
        log.warning(
            "request %s could not be delivered: no channel or DM accepts the bot's messages",
            delivery.request_id,
        )
