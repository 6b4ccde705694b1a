"""Completion webhooks: a request's final state POSTed to its `callback_url`, signed, retried with back-off.

The `webhooks` rows are the truth, so a restart loses nothing. Any number of processes may run a sender:
each try is claimed with a conditional update (on the attempt count and due time it read), so exactly one
process makes it. A process that dies during a try leaves a claim that lapses; the try is then made again,
which is the only way a receiver gets the same state twice (it can tell by `X-Mediabot-Delivery`).

Signature: `X-Mediabot-Signature: sha256=<hex>`, the HMAC-SHA256 of `<X-Mediabot-Timestamp>.<raw body>`
keyed by `Settings.webhook_key()` (MEDIABOT_WEBHOOK_SECRET, or a key generated into DATA_DIR)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from core.config import Settings
from core.db.models import Request, RequestStatus, Webhook, WebhookStatus, utcnow
from core.db.session import is_unavailable
from core.errors import MediabotError, NotFound
from core.events import EventBus, Message, Subscription
from core.net import AddressPolicy, check_url, ip_forbidden
from core.webhooks.hooks import (
    ATTEMPT_HEADER,
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Render,
    sign,
)

log = logging.getLogger(__name__)

BATCH = 50
CONCURRENCY = 10

# Statuses worth another try; any other non-2xx answer is the receiver refusing, and final.
RETRY_STATUSES = {408, 425, 429}


class _Refused(OSError):
    """Every address of the callback's host is one the policy refuses."""


class _PolicyResolver(AbstractResolver):
    """The default resolver, keeping only addresses the policy permits: a host whose answer changes after
    the check (DNS rebinding) still cannot make us call a private address."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        if self._policy.allow_private or self._policy.host_allowed(host, port):
            return found
        permitted = [r for r in found if not ip_forbidden(r["host"])]
        if not permitted:
            raise _Refused(f"{host} resolves to a private address")
        return permitted

    async def close(self) -> None:
        await self._inner.close()


@dataclass(frozen=True)
class _Outcome:
    delivered: bool = False
    retry: bool = False
    status_code: int | None = None
    error: str | None = None


def _terminal(message: Message) -> bool:
    return message.type == "job" and message.job is not None and message.job.terminal


class WebhookSender:
    """Sends due webhooks from this process: woken by terminal job events and `wake()`, and every
    `webhook_poll_s` for what other processes finished."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        render: Render,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.bus = bus
        self.render = render
        self.policy = AddressPolicy(settings.allow_private_urls, tuple(settings.allowed_private_hosts))
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(CONCURRENCY)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._runner: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._secret = b""
        # A claimed try that never reports back (its process died) is due again after this long.
        self._claim_s = settings.webhook_timeout_s * 2 + 30

    async def start(self) -> None:
        self._secret = await asyncio.to_thread(self.settings.webhook_key)
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=_PolicyResolver(self.policy), limit=CONCURRENCY),
            timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s),
            headers={"User-Agent": "mediabot-webhook/1"},
        )
        self._runner = asyncio.create_task(self._run(), name="webhook-sender")

    async def close(self) -> None:
        tasks = [t for t in (self._runner, *self._inflight.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._runner = None
        if self._http is not None:
            await self._http.close()
            self._http = None

    def wake(self) -> None:
        """Look for due webhooks now (a request of this process just ended)."""
        self._wake.set()

    # -- the loop -----------------------------------------------------------------------------------------

    async def _run(self) -> None:
        with self.bus.subscribe(_terminal, maxsize=16) as sub:
            listener = asyncio.create_task(self._listen(sub), name="webhook-wake")
            try:
                delay = 0.0
                while True:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that lands as
                    # the event is set, and close() would then wait for this loop for ever.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(delay):
                            await self._wake.wait()
                    self._wake.clear()
                    try:
                        delay = await self.once()
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - a database outage: look again next round
                        log.warning("webhook sender: %s", type(exc).__name__)
                        delay = self.settings.webhook_poll_s
            finally:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener

    async def _listen(self, sub: Subscription) -> None:
        async for _message in sub:
            self._wake.set()

    async def once(self) -> float:
        """Start every due try; returns how long to wait before looking again."""
        now = utcnow()
        due = or_(Webhook.next_attempt_at.is_(None), Webhook.next_attempt_at <= now)
        # Pending webhooks of requests that have ended, playlists once every item has too.
        item = aliased(Request)
        items_active = exists().where(item.parent_id == Request.id, item.status == RequestStatus.ACTIVE)
        ended = (
            Webhook.status == WebhookStatus.PENDING,
            Request.status != RequestStatus.ACTIVE,
            ~items_active,
        )
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Webhook.request_id, Webhook.attempts)
                    .join(Request, Request.id == Webhook.request_id)
                    .where(*ended, due)
                    .order_by(Webhook.next_attempt_at)
                    .limit(BATCH)
                )
            ).all()
            upcoming = await session.scalar(
                select(func.min(Webhook.next_attempt_at))
                .select_from(Webhook)
                .join(Request, Request.id == Webhook.request_id)
                .where(*ended, Webhook.next_attempt_at > now)
            )
        for request_id, attempts in rows:
            if request_id in self._inflight:
                continue
            if attempts >= self.settings.webhook_max_attempts:
                # Its last try was claimed by a process that died before recording it.
                await self._record(request_id, attempts, _Outcome(error="no answer recorded"))
                continue
            await self._slots.acquire()
            try:
                claimed = await self._claim(request_id, attempts)
            except BaseException:
                self._slots.release()
                raise
            if not claimed:
                self._slots.release()
                continue
            task = asyncio.create_task(self._attempt(request_id, attempts + 1), name="webhook-try")
            self._inflight[request_id] = task
            task.add_done_callback(lambda _t, rid=request_id: self._done(rid))
        if len(rows) == BATCH:
            return 0.0
        delay = self.settings.webhook_poll_s
        if upcoming is not None:
            delay = min(delay, max(0.02, (upcoming - utcnow()).total_seconds()))
        return delay

    def _done(self, request_id: str) -> None:
        self._inflight.pop(request_id, None)
        self._slots.release()

    async def _claim(self, request_id: str, attempts: int) -> bool:
        now = utcnow()
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(Webhook)
                .where(
                    Webhook.request_id == request_id,
                    Webhook.status == WebhookStatus.PENDING,
                    Webhook.attempts == attempts,
                    or_(Webhook.next_attempt_at.is_(None), Webhook.next_attempt_at <= now),
                )
                .values(
                    attempts=attempts + 1,
                    last_attempt_at=now,
                    next_attempt_at=now + timedelta(seconds=self._claim_s),
                )
            )
        return result.rowcount == 1

    # -- one try --------------------------------------------------------------------------------------------

    async def _attempt(self, request_id: str, attempt: int) -> None:
        try:
            outcome = await self._send(request_id, attempt)
        except asyncio.CancelledError:
            raise  # shutting down: the claim lapses and the try is made again
        except Exception as exc:
            if isinstance(exc, MediabotError):
                outcome = _Outcome(error=exc.code)
            elif is_unavailable(exc):
                outcome = _Outcome(retry=True, error=type(exc).__name__)
            else:
                log.exception("webhook for request %s: unexpected error", request_id)
                outcome = _Outcome(retry=True, error=type(exc).__name__)
        try:
            await self._record(request_id, attempt, outcome)
        except Exception as exc:  # noqa: BLE001 - the claim lapses and the try is made again
            log.warning("webhook for request %s: result not recorded (%s)", request_id, type(exc).__name__)

    async def _send(self, request_id: str, attempt: int) -> _Outcome:
        async with self.sessions() as session:
            url = await session.scalar(select(Webhook.url).where(Webhook.request_id == request_id))
        if url is None:
            raise NotFound()
        host = urlsplit(url).hostname or "?"
        try:
            await asyncio.wait_for(check_url(url, self.policy), timeout=10)
        except MediabotError as exc:
            log.warning("webhook for request %s to %s refused: %s", request_id, host, exc.code)
            return _Outcome(error=exc.code)
        except TimeoutError:
            return _Outcome(retry=True, error="dns_timeout")
        body = await self.render(request_id)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
            DELIVERY_HEADER: request_id,
            ATTEMPT_HEADER: str(attempt),
        }
        assert self._http is not None
        try:
            async with self._http.post(url, data=body, headers=headers, allow_redirects=False) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            if isinstance(getattr(exc, "os_error", None), _Refused) or isinstance(exc, _Refused):
                log.warning("webhook for request %s to %s refused: private address", request_id, host)
                return _Outcome(error="private_address")
            log.info(
                "webhook for request %s to %s: try %d failed (%s)",
                request_id,
                host,
                attempt,
                type(exc).__name__,
            )
            return _Outcome(retry=True, error=type(exc).__name__)
        if 200 <= status < 300:
            log.info(
                "webhook for request %s delivered to %s (try %d, HTTP %d)", request_id, host, attempt, status
            )
            return _Outcome(delivered=True, status_code=status)
        log.info("webhook for request %s to %s: try %d answered HTTP %d", request_id, host, attempt, status)
        return _Outcome(
            retry=status >= 500 or status in RETRY_STATUSES, status_code=status, error=f"HTTP {status}"
        )

    async def _record(self, request_id: str, attempt: int, outcome: _Outcome) -> None:
        now = utcnow()
        values: dict[str, Any] = dict(
            last_status_code=outcome.status_code, last_error=(outcome.error or None)
        )
        if outcome.delivered:
            values.update(
                status=WebhookStatus.DELIVERED, delivered_at=now, next_attempt_at=None, last_error=None
            )
        elif outcome.retry and attempt < self.settings.webhook_max_attempts:
            delay = self.settings.webhook_backoff_s * 2 ** (attempt - 1)
            values.update(next_attempt_at=now + timedelta(seconds=delay))
        else:
            values.update(status=WebhookStatus.FAILED, next_attempt_at=None)
            log.warning(
                "webhook for request %s failed after %d tries (%s)", request_id, attempt, outcome.error or "-"
            )
        if values.get("last_error"):
            values["last_error"] = values["last_error"][:200]
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Webhook)
                .where(
                    Webhook.request_id == request_id,
                    Webhook.status == WebhookStatus.PENDING,
                    Webhook.attempts == attempt,
                )
                .values(**values)
            )
        if not outcome.delivered and outcome.retry and attempt < self.settings.webhook_max_attempts:
            self._wake.set()  # recompute the wait: this retry may be the soonest
