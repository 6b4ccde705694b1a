"""Turning a fast stream of job states into few, rate-limited message edits (shared by the chat bots).

A `LatestSender` per progress message keeps only the newest state and sends it when its message and its
chat are allowed to; a platform's "retry after N s" pauses that chat and the newest state goes out then.
The final state is never dropped: `finish` waits until it has been sent (or the sender gave up); `settle`
lets an edit in flight land and drops the rest, so that the caller's own message comes last.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from core.aio import cancel_and_wait, spawn

log = logging.getLogger(__name__)

T = TypeVar("T")

# send(state) -> None when sent, or seconds to wait before trying again with the newest state.
SendFn = Callable[[T], Awaitable[float | None]]


class ChatPacer:
    """Spaces sends per chat `interval_s` apart (longer while the platform asked us to back off), so many
    progress messages in one chat share the chat's budget instead of each spending its own."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._next: dict[str, float] = {}

    async def wait(self, chat: str) -> None:
        now = time.monotonic()
        ready = self._next.get(chat, 0.0)
        self._next[chat] = max(now, ready) + self.interval_s
        if ready > now:
            await asyncio.sleep(ready - now)

    def back_off(self, chat: str, seconds: float) -> None:
        self._next[chat] = max(self._next.get(chat, 0.0), time.monotonic() + seconds)


class LatestSender(Generic[T]):
    def __init__(
        self,
        chat: str,
        pacer: ChatPacer,
        send: SendFn[T],
        *,
        min_interval_s: float = 2.0,
        max_retries: int = 8,
        same: Callable[[T, T], bool] | None = None,
        initial: T | None = None,
    ) -> None:
        """`initial`: a state already on screen (the message was just sent with it), so an identical state
        is not sent again and the next one waits `min_interval_s` like any other edit."""
        self.chat = chat
        self.pacer = pacer
        self._send = send
        self._min_interval = min_interval_s
        self._max_retries = max_retries
        self._same = same or (lambda a, b: a == b)
        self._latest: T | None = None
        self._sent: T | None = initial
        self._final = False
        self._wake = asyncio.Event()
        self._last_sent_at = time.monotonic() if initial is not None else 0.0
        self._task: asyncio.Task[None] | None = None
        self._sending = False  # a send is in flight
        self._settling = False  # stop once the send in flight has landed

    def offer(self, state: T, *, final: bool = False) -> None:
        """Show `state` when allowed (it replaces a pending one); after a final state, a new one starts over."""
        restart = self._task is None or self._task.done()
        self._latest = state
        self._final = final if restart else self._final or final
        self._wake.set()
        if restart:
            self._task = spawn(self._run(), name=f"progress-{self.chat}")

    async def finish(self, state: T, timeout: float = 120.0) -> None:
        """Send `state` as the last one and wait until it went out (or the sender gave up, or `timeout`)."""
        self.offer(state, final=True)
        assert self._task is not None
        # wait(), not wait_for(shield()): a cancel of the caller reaches the caller, and nothing is raised
        # when the sender itself was stopped.
        await asyncio.wait({self._task}, timeout=timeout)

    async def settle(self) -> None:
        """Let a send in flight land and drop the pending state, so that what the caller sends next on the
        same message is the last word there. A later offer starts afresh."""
        task = self._task
        self._latest, self._final = None, False
        if task is not None and not task.done():
            if self._sending:
                self._settling = True
                await asyncio.wait({task})
            else:
                await cancel_and_wait(task)
        self._settling = False
        self._sent = None

    async def _run(self) -> None:
        retries = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            state = self._latest
            if state is None or (self._sent is not None and self._same(state, self._sent)):
                if self._final:
                    return
                continue
            if not self._final:
                wait = self._last_sent_at + self._min_interval - time.monotonic()
                if wait > 0:
                    # Let newer states replace this one while we wait (or the final one cut it short).
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
                    # arrives as the event is set, and the sender would never stop.
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await self._wake.wait()
                    self._wake.set()
                    continue
            await self.pacer.wait(self.chat)
            state = self._latest
            assert state is not None
            self._sending = True
            try:
                retry_after = await self._send(state)
            except Exception:  # noqa: BLE001 - a failed edit must not kill delivery of the final state
                log.warning("progress update failed in chat %s", self.chat, exc_info=True)
                retry_after = 2.0
            finally:
                self._sending = False
            if self._settling:
                return
            if retry_after is None:
                self._sent = state
                self._last_sent_at = time.monotonic()
                retries = 0
                if self._final and self._latest is state:
                    return
            else:
                retries += 1
                self.pacer.back_off(self.chat, retry_after)
                if retries > self._max_retries:
                    log.warning(
                        "giving up on progress message in chat %s after %d retries", self.chat, retries
                    )
                    return
            self._wake.set()
