"""Progress and metadata of a running job: published at once, written to the database now and then."""

from __future__ import annotations

import logging
import time
from typing import Any

from sqlalchemy import select

from core.db.models import (
    Job,
    JobStatus,
    search_text,
    utcnow,
)
from core.jobs.keys import choice_suffix
from core.media.control import ProgressUpdate
from core.media.results import GENERIC_EXTRACTORS, MediaInfo
from worker.held import Held

log = logging.getLogger(__name__)

PROGRESS_DB_INTERVAL_S = 1.0


class RunnerProgress:
    """The runner's progress and metadata writes."""

    def _on_progress(self, held: Held, upd: ProgressUpdate) -> None:
        if held.lost or held.control.cancel.is_set():
            return
        job = held.job
        if upd.status == "downloading":
            job.downloaded_bytes = upd.downloaded_bytes
            job.total_bytes = upd.total_bytes
            job.speed = upd.speed
            job.eta = upd.eta
        else:
            job.speed = None
            job.eta = None
        job.seq += 1
        job.updated_at = utcnow()
        self._spawn(self._publish(job))
        now = time.monotonic()
        if now - held.last_db_write >= PROGRESS_DB_INTERVAL_S and (
            held.db_write is None or held.db_write.done()
        ):
            held.last_db_write = now
            held.db_write = self._spawn(self._write_progress(held))

    async def _write_progress(self, held: Held) -> None:
        job = held.job
        try:
            async with self.sessions() as session, session.begin():
                await session.execute(
                    self._owned(job.id).values(
                        **self._metadata(job),
                        downloaded_bytes=job.downloaded_bytes,
                        speed=job.speed,
                        eta=job.eta,
                        seq=job.seq,
                    )
                )
        except Exception as exc:  # noqa: BLE001 - progress is advisory; the lease loop notices real outages
            log.debug("progress write failed: %s", exc)

    async def _on_info(self, held: Held, info: MediaInfo) -> bool:
        job = held.job
        # The generic extractor names a bare file after its URL; a playlist entry's own title says more.
        if not (job.title and (info.extractor or "").lower() in GENERIC_EXTRACTORS):
            job.title = info.title
        job.duration, job.extractor, job.media_id = info.duration, info.extractor, info.media_id
        job.width, job.height, job.uploader, job.ext = info.width, info.height, info.uploader, info.ext
        job.upload_date = info.upload_date
        job.total_bytes = info.filesize
        choices = choice_suffix(job.format_id, job.subtitle_langs, job.audio_format, job.playable)
        job.media_key = f"{info.media_key}|{job.kind}:{job.quality}{choices}" if info.media_key else None
        job.seq += 1
        job.updated_at = utcnow()
        source = None
        if job.media_key:
            # Only a named media can be in the cache already; a generic link's metadata rides along with the
            # next progress write instead of costing a round trip before the download starts.
            async with self.sessions() as session, session.begin():
                await session.execute(self._owned(job.id).values(**self._metadata(job), seq=job.seq))
                source = await session.scalar(
                    select(Job)
                    .where(
                        Job.media_key == job.media_key,
                        Job.status == JobStatus.DONE,
                        Job.retained.is_(True),
                        Job.id != job.id,
                    )
                    .limit(1)
                )
        else:
            held.last_db_write = 0.0
        await self._publish(job)
        if source is None:
            return True
        log.info("job %s: same media as finished job %s, reusing its file", job.id, source.id)
        await self._finish_from(held, source)
        return False

    @staticmethod
    def _metadata(job: Job) -> dict[str, Any]:
        return dict(
            title=job.title,
            search_title=search_text(job.title),
            duration=job.duration,
            extractor=job.extractor,
            media_id=job.media_id,
            width=job.width,
            height=job.height,
            uploader=job.uploader,
            upload_date=job.upload_date,
            ext=job.ext,
            total_bytes=job.total_bytes,
            media_key=job.media_key,
            updated_at=job.updated_at,
        )
