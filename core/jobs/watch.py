"""The one way to follow a job: its current state, then each newer one, riding out a quiet or lost bus."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from core.events import EventBus, jobs_filter
from core.jobs.views import JobView

log = logging.getLogger(__name__)

WATCH_POLL_S = 5.0


class JobWatch:
    """Following a job until it ends."""

    bus: EventBus

    async def watch(self, job_id: str, after_seq: int = 0) -> AsyncIterator[JobView]:
        """The job's current state, then each newer state, ending after a terminal one.

        Subscribes before reading the snapshot so nothing falls between; drops anything not newer than
        what was already yielded; re-reads the row when the bus is quiet, so a lost event only delays.
        """
        with self.bus.subscribe(jobs_filter({job_id})) as sub:
            snapshot = await self.get_job(job_id)
            last = after_seq
            if snapshot.seq > last or snapshot.terminal:
                last = max(last, snapshot.seq)
                yield snapshot
            if snapshot.terminal:
                return
            quiet = 0
            generation = self.bus.generation
            while True:
                try:
                    # Not wait_for: on Python 3.11 it swallows a cancel that lands as a message arrives.
                    async with asyncio.timeout(WATCH_POLL_S):
                        message = await sub.get()
                    view = message.job
                except TimeoutError:
                    quiet += 1
                    # A connected bus loses nothing: re-read the row at once only when the bus dropped since
                    # the last look (events may have been lost), else now and then, in case a publisher's own
                    # connection failed. 1,000 sockets on a quiet job then cost 33 reads/s, not 200.
                    if self.bus.connected and self.bus.generation == generation and quiet % 6:
                        continue
                    generation = self.bus.generation
                    view = await self.get_job(job_id)
                if view is None or (view.seq <= last and not view.terminal):
                    continue
                last = max(last, view.seq)
                yield view
                if view.terminal:
                    return

    async def wait(self, job_id: str, timeout: float | None = None) -> JobView:
        """Block until the job ends; returns its final state."""

        async def _wait() -> JobView:
            final: JobView | None = None
            async for view in self.watch(job_id):
                final = view
            assert final is not None
            return final

        return await asyncio.wait_for(_wait(), timeout=timeout)
