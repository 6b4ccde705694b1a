"""Following a request's job and delivering the result into Discord.

Each request gets one task that watches its job, edits the command's reply with throttled progress, and when
the job ends edits the reply once more with the file (when it fits the upload limit), a download link, or
the error. The reply is edited through the interaction's webhook token, which Discord honours for 15 minutes;
after that (or when the reply is gone) the result goes out as a channel message that mentions the person,
or as a DM when the channel refuses. Everything a delivery needs lives in the request's `target`, so the
tasks are recreated from the database after a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import discord

from bots.discord.texts import (
    cancelled_text,
    done_text,
    error_text,
    link_text,
    progress_text,
    same_text,
    title_of,
)
from bots.discord.views import cancel_view
from bots.progress import ChatPacer, LatestSender
from core.errors import MediabotError, NotFound
from core.schemas import JobView, RequestView

if TYPE_CHECKING:
    from core.services import Services

log = logging.getLogger(__name__)

FINAL_TIMEOUT_S = 30 * 60.0
RETRY_S = 5.0
MAX_CONTENT = 2000
# Error codes: 40005 request entity too large; 50027 invalid webhook token; 10015 unknown webhook;
# 10008 unknown message (the reply was deleted).
TOO_LARGE = 40005
TOKEN_GONE = {50027, 10015, 10008}
TRANSIENT = (discord.DiscordServerError, aiohttp.ClientError, OSError, TimeoutError)


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

    @classmethod
    def from_interaction(
        cls, interaction: discord.Interaction, *, ttl_s: float, message_id: int | None
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

    def can_edit(self) -> bool:
        return not self.token_gone and self.target.alive()

    @property
    def chat(self) -> str:
        return self.target.channel_id or f"user:{self.target.user_id}"


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
        """After /cancel: stop following and turn the progress reply into "Cancelled" while it can be edited."""
        await self.stop(request.id)
        try:
            delivery = _Delivery(request.id, job.id, Target.from_dict(request.target))
        except ValueError:
            return
        if delivery.can_edit():
            with contextlib.suppress(TokenGone, discord.HTTPException, *TRANSIENT):
                await self._edit(delivery, content=cancelled_text(job), view=None)

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
            await sender.finish(final, timeout=FINAL_TIMEOUT_S)
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
        elif view.status == "done":
            await self._deliver_file(delivery, view)
        else:
            await self._post(delivery, error_text(view))
        await self.jobs.mark_delivered(delivery.request_id)

    async def _deliver_file(self, delivery: _Delivery, view: JobView) -> None:
        limit = delivery.target.filesize_limit or discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
        if view.filesize is not None and view.filesize <= limit:
            try:
                async with self._file(view) as path:
                    await self._post(delivery, done_text(view), path, view.filename or path.name)
                return
            except AttachmentRefused:
                log.info(
                    "Discord refused a %s attachment for request %s; sending a link",
                    view.filesize,
                    delivery.request_id,
                )
            except MediabotError as exc:
                await self._post(delivery, f"{title_of(view)}\n{exc.message}")
                return
        try:
            link = await self.jobs.link(view.id)
        except MediabotError as exc:
            await self._post(delivery, f"{title_of(view)}\n{exc.message}")
            return
        await self._post(delivery, link_text(view, link, time.time() + self.services.settings.link_ttl_s))

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
            await webhook.edit_message(target.message_id or "@original", **fields)  # type: ignore[arg-type]
        except discord.HTTPException as exc:
            if _token_gone(exc):
                delivery.token_gone = True
                raise TokenGone() from exc
            raise

    async def _post(
        self, delivery: _Delivery, content: str, path: Path | None = None, filename: str | None = None
    ) -> None:
        """The final message: an edit of the reply while the token lives, else a channel (or DM) message."""
        files = (lambda: [discord.File(path, filename=filename)]) if path is not None else (lambda: [])
        if delivery.can_edit():
            try:
                await self._edit(delivery, content=content[:MAX_CONTENT], attachments=files(), view=None)
                return
            except TokenGone:
                log.info(
                    "the reply to request %s can no longer be edited; posting a message", delivery.request_id
                )
            except discord.HTTPException as exc:
                if _too_large(exc):
                    raise AttachmentRefused() from exc
                raise
        await self._message(delivery, content, files)

    async def _message(
        self, delivery: _Delivery, content: str, files: Callable[[], list[discord.File]]
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
