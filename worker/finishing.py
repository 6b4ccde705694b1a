"""Finishing a job: the final write is conditional on still holding the lease, and rides out a database
that is away for a moment."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import update

from core.db.models import (
    Job,
    JobStatus,
    Request,
    RequestStatus,
    search_text,
    utcnow,
)
from core.db.session import is_unavailable
from core.errors import MediabotError
from core.jobs.deriving import waiting_on
from core.media.results import Downloaded
from worker.held import Held

log = logging.getLogger(__name__)


class RunnerFinishing:
    """The runner's final writes."""

    def _owned(self, job_id: str) -> Any:
        return update(Job).where(
            Job.id == job_id, Job.worker_id == self.worker_id, Job.status == JobStatus.RUNNING
        )

    async def _finish_done(
        self,
        held: Held,
        result: Downloaded,
        key: str,
        size: int,
        assets: dict[str, Any],
        chapters: int | None = None,
    ) -> bool:
        info = result.info
        job = held.job
        return await self._complete(
            held,
            JobStatus.DONE,
            dict(
                extractor=job.extractor,
                media_id=job.media_id,
                uploader=job.uploader,
                media_key=job.media_key,
                storage_key=key,
                filename=result.filename,
                filesize=size,
                ext=info.ext,
                title=job.title or info.title,
                search_title=search_text(job.title or info.title),
                duration=info.duration,
                width=info.width,
                height=info.height,
                retained=True,
                downloaded_bytes=size,
                total_bytes=size,
                upload_date=job.upload_date or info.upload_date,
                assets=assets or None,
                subtitles_missing=result.subtitles_missing or None,
                chapters=chapters,
            ),
        )

    async def _finish_from(self, held: Held, source: Job) -> bool:
        return await self._complete(
            held,
            JobStatus.DONE,
            dict(
                storage_key=source.storage_key,
                filename=source.filename,
                filesize=source.filesize,
                ext=source.ext,
                duration=source.duration,
                width=source.width,
                height=source.height,
                retained=True,
                downloaded_bytes=source.filesize,
                total_bytes=source.filesize,
                cached_from=source.id,
                # The same files (they expire with the source's), and what the source found missing.
                assets=source.assets,
                subtitles_missing=source.subtitles_missing,
                chapters=source.chapters,
            ),
        )

    async def _finish(self, held: Held, status: JobStatus, error: MediabotError) -> bool:
        log.info("job %s %s: %s", held.job.id, status, error.code)
        return await self._complete(
            held, status, dict(error_code=error.code, error_message=error.message, dedup_key=None)
        )

    async def _complete(self, held: Held, status: JobStatus, values: dict[str, Any]) -> bool:
        job = held.job
        now = utcnow()
        values = dict(
            values,
            status=status,
            finished_at=now,
            updated_at=now,
            lease_until=None,
            speed=None,
            eta=None,
            seq=job.seq + 1,
        )
        request_status = {
            JobStatus.DONE: RequestStatus.DONE,
            JobStatus.FAILED: RequestStatus.FAILED,
            JobStatus.CANCELLED: RequestStatus.CANCELLED,
        }[status]
        delay = 0.5
        while True:
            try:
                async with self.sessions() as session, session.begin():
                    result = await session.execute(self._owned(job.id).values(**values))
                    if result.rowcount != 1:
                        log.warning(
                            "job %s: lease lost before finishing; leaving it to its new owner", job.id
                        )
                        return False
                    await session.execute(
                        update(Request)
                        .where(Request.job_id == job.id, Request.status == RequestStatus.ACTIVE)
                        .values(status=request_status, finished_at=now)
                    )
                    fresh = await session.get(Job, job.id, populate_existing=True)
                    # Clips and the like made from this download: they run now (or fail with it).
                    waiting = await waiting_on(session, job.id)
                break
            except Exception as exc:
                # The database went away just as the work was done: keep trying while the lease is ours,
                # rather than leaving the job to be downloaded again once the lease runs out.
                if not is_unavailable(exc) or time.monotonic() + delay >= held.lease_deadline:
                    raise
                log.warning("job %s: database unavailable while finishing; trying again", job.id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        assert fresh is not None
        held.job = fresh
        await self._publish(fresh)
        for job_id in waiting:
            await self._safe_enqueue(job_id)
        return True

    async def _hand_back(self, held: Held) -> None:
        """Graceful shutdown: the job goes back to the queue for another worker, attempt not counted."""
        job = held.job
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                self._owned(job.id).values(
                    status=JobStatus.QUEUED,
                    worker_id=None,
                    lease_until=None,
                    attempts=Job.attempts - 1,
                    enqueued_at=utcnow(),
                    updated_at=utcnow(),
                    seq=job.seq + 1,
                )
            )
            fresh = await session.get(Job, job.id, populate_existing=True) if result.rowcount == 1 else None
        if fresh is not None:
            log.info("job %s handed back to the queue", job.id)
            await self._publish(fresh)
            await self._safe_enqueue(job.id)
