"""A playlist link: the job ends listing its entries, and each request on it gets an item per entry."""

from __future__ import annotations

import logging

from sqlalchemy import select

from core.db.models import (
    Job,
    JobStatus,
    Request,
    RequestStatus,
    search_text,
    utcnow,
)
from core.jobs.playlists import add_playlist_items
from core.media.results import PlaylistFound
from worker.held import Held

log = logging.getLogger(__name__)


class RunnerPlaylists:
    """The runner's playlist expansion."""

    async def _expand(self, held: Held, found: PlaylistFound, *, chapters: int | None = None) -> None:
        """A playlist: the job ends listing its entries, and every request on it gets an item per entry (a
        split by chapters, `chapters` of them, ends the same way: its entries are the chapters)."""
        job = held.job
        now = utcnow()
        created: list[str] = []
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                self._owned(job.id).values(
                    status=JobStatus.DONE, entries=found.entries, playlist_total=found.total,
                    title=found.title or job.title, search_title=search_text(found.title or job.title),
                    finished_at=now, updated_at=now, lease_until=None,
                    speed=None, eta=None, seq=job.seq + 1, chapters=chapters,
                )
            )  # fmt: skip
            if result.rowcount != 1:
                log.warning("job %s: lease lost before expanding the playlist", job.id)
                return
            playlist = await session.get(Job, job.id, populate_existing=True)
            assert playlist is not None
            requests = list(
                await session.scalars(
                    select(Request).where(Request.job_id == job.id, Request.status == RequestStatus.ACTIVE)
                )
            )
            for request in requests:
                created += await add_playlist_items(session, self._dialect, request, playlist, now)
                request.status = RequestStatus.DONE
                request.finished_at = now
        log.info("job %s: playlist of %d items (%s in all)", job.id, len(found.entries), found.total or "?")
        held.job = playlist
        await self._publish(playlist)
        for job_id in created:
            await self._safe_enqueue(job_id)
