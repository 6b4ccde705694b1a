"""One worker process's background duties around the runner: heartbeat, leases, cancel signals, reconciling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, update

from core.aio import spawn
from core.db.models import (
    Worker,
    utcnow,
)
from core.events import control_filter
from worker.reconciler import Reconciler
from worker.runner import JobRunner
from worker.subscriptions import SubscriptionScheduler

log = logging.getLogger(__name__)


class WorkerRuntime:
    """One worker process's background duties around the runner: heartbeat, leases, cancel signals,
    reconciling. Started and stopped by whoever hosts the worker (the Taskiq worker, or `mediabot run`)."""

    def __init__(
        self,
        runner: JobRunner,
        reconciler: Reconciler,
        subscriptions: SubscriptionScheduler | None = None,
        *,
        warm: bool = True,
    ) -> None:
        self.runner = runner
        self.reconciler = reconciler
        self.subscriptions = subscriptions
        # Import yt-dlp and its extractors at start (a process that only downloads), or on the first job
        # (a process that also serves people: it stays ~45 MB lighter until someone downloads).
        self.warm = warm
        self.settings = runner.settings
        self._tasks: list[asyncio.Task[None]] = []
        self._started = utcnow()

    async def start(self) -> None:
        if self.warm:
            await asyncio.to_thread(self.runner.downloader.warm_up)
        await self._heartbeat()
        if not self.runner.queue.persistent:
            # Nothing outlives an in-process queue: whatever the database says is queued needs a message.
            await self.reconciler.enqueue_all_queued()
        await asyncio.to_thread(self._sweep_orphan_dirs)
        self._tasks = [
            spawn(self._loop(self._tick, self.settings.lease_s / 3), name="worker-heartbeat"),
            spawn(self._loop(self._reconcile, self.settings.reconcile_interval_s), name="reconciler"),
            spawn(self._listen(), name="worker-control"),
        ]
        if self.subscriptions is not None:
            self._tasks.append(
                spawn(self._loop(self.subscriptions.once, self.subscriptions.tick_s), name="subscriptions")
            )

    async def stop(self, grace_s: float = 10.0, hurry: asyncio.Event | None = None) -> None:
        """Stop taking jobs; give running ones `grace_s` to finish (less when `hurry` is set meanwhile: a
        second Ctrl-C), then hand them back to the queue, their attempt not counted."""
        self.runner.accepting = False
        await self.runner.flush_waiting()
        await _first_of(grace_s, self.runner.idle, *([hurry] if hurry is not None else []))
        if self.runner.running:
            self.runner.hand_back_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.runner.idle.wait(), 10)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            async with self.runner.sessions() as session, session.begin():
                await session.execute(delete(Worker).where(Worker.id == self.runner.worker_id))
        if self.runner.sponsorblock is not None:
            with contextlib.suppress(Exception):
                await self.runner.sponsorblock.close()
        self.runner.close()
        await asyncio.to_thread(self.runner.downloader.close)

    async def _reconcile(self) -> None:
        await self.reconciler.once()
        await asyncio.to_thread(self._sweep_orphan_dirs)

    async def _tick(self) -> None:
        await self.runner.renew_leases()
        await self.runner.renew_site_slots()
        await self._heartbeat()

    async def _heartbeat(self) -> None:
        now = utcnow()
        runner = self.runner
        async with runner.sessions() as session, session.begin():
            result = await session.execute(
                update(Worker)
                .where(Worker.id == runner.worker_id)
                .values(heartbeat_at=now, running=len(runner.running))
            )
            if result.rowcount == 0:
                session.add(
                    Worker(
                        id=runner.worker_id,
                        hostname=socket.gethostname()[:255],
                        pid=os.getpid(),
                        concurrency=self.settings.worker_concurrency,
                        running=len(runner.running),
                        started_at=self._started,
                        heartbeat_at=now,
                    )
                )
            # Workers silent for ten leases are gone; forget them.
            await session.execute(
                delete(Worker).where(
                    Worker.heartbeat_at < now - timedelta(seconds=self.settings.lease_s * 10)
                )
            )

    def _sweep_orphan_dirs(self) -> None:
        """Temp dirs of workers on this machine that no longer run (killed mid-download)."""
        root = self.settings.tmp_dir
        if not root.exists():
            return
        host_prefix = socket.gethostname()[:40] + "-"
        for entry in root.iterdir():
            if (
                not entry.is_dir()
                or entry.name == self.runner.worker_id
                or not entry.name.startswith(host_prefix)
            ):
                continue
            pid = entry.name[len(host_prefix) :].split("-")[0]
            if pid.isdigit() and _pid_alive(int(pid)):
                continue
            shutil.rmtree(entry, ignore_errors=True)

    async def _listen(self) -> None:
        with self.runner.bus.subscribe(control_filter, maxsize=1024) as sub:
            async for message in sub:
                self.runner.on_control(message)

    async def _loop(self, fn: Any, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a database or Redis outage: try again next round
                log.warning("%s failed: %s", getattr(fn, "__name__", fn), type(exc).__name__)


async def _first_of(timeout: float, *events: asyncio.Event) -> None:
    """Wait until any of `events` is set, or `timeout` seconds."""
    if any(event.is_set() for event in events):
        return
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A killed process its parent has not reaped yet is a zombie: dead for our purposes.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")
