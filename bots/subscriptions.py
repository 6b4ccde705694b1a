"""What every chat bot does for subscriptions besides its commands: deliver the requests a worker made for a
subscription (no message of anyone's to answer: the conductor picks them up from the database, as after a
restart), and tell a paused subscription's chat once.

Woken by the workers' bus message when a check made something; looks on its own every interval too, so a
lost message (the bus is best effort) only delays a delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from bots.conductor import Conductor
from core.aio import spawn
from core.bootstrap import Services
from core.subscriptions.service import SubscriptionView

log = logging.getLogger(__name__)

WAKE = "subscription"  # worker.subscriptions.WAKE: the bots may not import the worker
MIN_LOOK_S = 0.05
MAX_LOOK_S = 60.0

Tell = Callable[[SubscriptionView], Awaitable[None]]


class SubscribedDeliveries:
    """One bot process's side of subscriptions, started after its conductor resumed."""

    def __init__(self, services: Services, conductor: Conductor[Any], tell: Tell) -> None:
        self.services = services
        self.conductor = conductor
        self.platform = conductor.chat.platform
        self.tell = tell
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self) -> None:
        self._task = spawn(self._run(), name=f"{self.platform}-subscriptions")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def once(self) -> None:
        await self.conductor.resume_subscribed()
        for sub in await self.services.subscriptions.to_tell(self.platform):
            try:
                await self.tell(sub)
            except Exception as exc:  # noqa: BLE001 - the chat may be gone; it was told as well as it could be
                log.info("%s: could not tell about paused subscription %s (%s)", self.platform, sub.id, exc)

    async def _run(self) -> None:
        interval = min(max(self.services.settings.subscription_interval_s / 2, MIN_LOOK_S), MAX_LOOK_S)
        with self.services.bus.subscribe(lambda m: m.type == WAKE, maxsize=4) as woken:
            listener = spawn(self._listen(woken), name=f"{self.platform}-subscriptions-bus")
            try:
                while True:
                    try:
                        await self.once()
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # noqa: BLE001 - a database hiccup: the next round tries again
                        log.warning(
                            "%s: subscription deliveries failed (%s)", self.platform, type(exc).__name__
                        )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), interval)
                    self._wake.clear()
            finally:
                listener.cancel()

    async def _listen(self, woken: Any) -> None:
        # The message only wakes: what to deliver is read from the database.
        async for _message in woken:
            self._wake.set()
