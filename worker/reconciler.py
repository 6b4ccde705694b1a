"""The reconciler: repairs what crashes leave behind (expired leases, queued jobs the queue lost)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.config import Settings
from core.db.models import (
    Job,
    JobStatus,
    Request,
    RequestStatus,
    utcnow,
)
from core.events import EventBus, Message
from core.jobs.views import JobView
from core.queue import JobQueue
from core.storage.base import Storage
from worker.retention import Retention

log = logging.getLogger(__name__)


class Reconciler(Retention):
    """Repairs what crashes leave behind. Safe to run in every worker at once: each repair is a
    conditional update, and only the process whose update matched acts on it."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        storage: Storage,
        queue: JobQueue,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.bus = bus
        self.storage = storage
        self.queue = queue
        self._last_retention = 0.0

    async def once(self) -> dict[str, int]:
        stats = {"requeued": 0, "lost": 0, "reenqueued": 0, "expired": 0}
        await self._expired_leases(stats)
        await self._stale_queued(stats)
        if time.monotonic() - self._last_retention > self.settings.retention_interval_s:
            self._last_retention = time.monotonic()
            stats["expired"] = await self.retention()
        return stats

    async def _expired_leases(self, stats: dict[str, int]) -> None:
        now = utcnow()
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Job.id, Job.attempts).where(Job.status == JobStatus.RUNNING, Job.lease_until < now)
                )
            ).all()
        for job_id, attempts in rows:
            expired = (Job.id == job_id, Job.status == JobStatus.RUNNING, Job.lease_until < now)
            give_up = attempts >= self.settings.max_attempts
            async with self.sessions() as session, session.begin():
                if give_up:
                    values: dict[str, Any] = dict(
                        status=JobStatus.FAILED,
                        error_code="worker_lost",
                        dedup_key=None,
                        finished_at=now,
                        error_message="The download was interrupted several times and was given up. Please try again.",
                    )
                else:
                    values = dict(status=JobStatus.QUEUED, enqueued_at=now)
                # A gap in seq: the dead worker may have published progress it never wrote down.
                values.update(worker_id=None, lease_until=None, updated_at=now, seq=Job.seq + 100)
                result = await session.execute(update(Job).where(*expired).values(**values))
                if result.rowcount != 1:
                    continue
                if give_up:
                    await session.execute(
                        update(Request)
                        .where(Request.job_id == job_id, Request.status == RequestStatus.ACTIVE)
                        .values(status=RequestStatus.FAILED, finished_at=now)
                    )
                job = await session.get(Job, job_id)
            stats["lost" if give_up else "requeued"] += 1
            log.warning("job %s: worker lost; %s", job_id, "failed" if give_up else "re-queued")
            if job is not None:
                await self._publish(job)
            if not give_up:
                await self._enqueue(job_id)

    async def _stale_queued(self, stats: dict[str, int]) -> None:
        """Queued jobs whose message the queue lost (Redis restarted empty): the queue is idle, yet the
        database still has jobs waiting."""
        try:
            depth = await self.queue.depth()
        except Exception:  # noqa: BLE001 - broker down: nothing to re-enqueue into
            return
        now = utcnow()
        threshold = now - timedelta(seconds=self.settings.stale_queued_s)
        # Whatever the depth says, a job waiting ten thresholds long gets a fresh message.
        long_threshold = now - timedelta(seconds=self.settings.stale_queued_s * 10)
        cutoff = threshold if depth == 0 else long_threshold
        async with self.sessions() as session, session.begin():
            ids = list(
                await session.scalars(
                    select(Job.id).where(Job.status == JobStatus.QUEUED, Job.enqueued_at < cutoff).limit(1000)
                )
            )
            if ids:
                await session.execute(update(Job).where(Job.id.in_(ids)).values(enqueued_at=now))
        for job_id in ids:
            await self._enqueue(job_id)
        stats["reenqueued"] += len(ids)
        if ids:
            log.warning("re-enqueued %d queued jobs the queue had lost", len(ids))

    async def enqueue_all_queued(self) -> int:
        async with self.sessions() as session:
            ids = list(await session.scalars(select(Job.id).where(Job.status == JobStatus.QUEUED)))
        for job_id in ids:
            await self._enqueue(job_id)
        if ids:
            log.info("enqueued %d jobs left queued by the previous run", len(ids))
        return len(ids)

    async def _publish(self, job: Job) -> None:
        try:
            await self.bus.publish(Message("job", job=JobView.from_job(job)))
        except Exception:  # noqa: BLE001
            pass

    async def _enqueue(self, job_id: str) -> None:
        try:
            await self.queue.enqueue(job_id)
        except Exception as exc:  # noqa: BLE001 - tried again on the next round
            log.warning("re-enqueue of %s failed: %s", job_id, exc)
