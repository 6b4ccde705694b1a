"""Cancelling requests (a download stops only when nobody else waits for it), removing them from a
person's history, and retrying them."""

from __future__ import annotations

import logging

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Job, JobStatus, Request, RequestStatus, Webhook, utcnow
from core.errors import (
    InvalidRequest,
    NotFound,
)
from core.events import Message
from core.i18n import N_
from core.jobs.choices import SubmitRequest
from core.jobs.queries import ACTIVE_JOB
from core.jobs.views import JobView, RequestView, Submission, request_view

log = logging.getLogger(__name__)


class JobCancelling:
    """The job service's cancel, remove and retry."""

    async def cancel(
        self, request_id: str, *, source: str | None = None, user_id: str | None = None
    ) -> RequestView:
        """Cancel one request and the requests made on its behalf (playlist items, fitted copies); a
        download stops only when no other request still waits for it."""
        view = await self._cancel_one(request_id, source=source, user_id=user_id)
        # Two levels: a playlist's items, and the copies being made to fit for items already downloaded.
        items = select(Request.id).where(Request.parent_id == request_id)
        async with self.sessions() as session:
            children = list(
                await session.scalars(
                    select(Request.id).where(
                        or_(Request.parent_id == request_id, Request.parent_id.in_(items)),
                        Request.status == RequestStatus.ACTIVE,
                    )
                )
            )
        for child in children:
            await self._cancel_one(child)
        return view

    async def _cancel_one(
        self, request_id: str, *, source: str | None = None, user_id: str | None = None
    ) -> RequestView:
        stopped_views: list[tuple[str, JobView | None]] = []
        async with self.sessions() as session, session.begin():
            request = await session.get(Request, request_id)
            if request is None or (
                source is not None and (request.source, request.user_id) != (source, str(user_id))
            ):
                raise NotFound()
            source_id = await session.scalar(select(Job.source_job_id).where(Job.id == request.job_id))
            # A job made from another one's file locks that one first, as submitting does.
            full = None
            if source_id is not None:
                full = await session.scalar(select(Job).where(Job.id == source_id).with_for_update())
            job = await session.scalar(select(Job).where(Job.id == request.job_id).with_for_update())
            assert job is not None
            if request.status != RequestStatus.ACTIVE:
                return request_view(request)
            request.status = RequestStatus.CANCELLED
            request.finished_at = utcnow()
            await session.flush()
            stopped = await _stop_if_unwanted(session, job)
            if stopped is not None and full is not None:
                # A clip (or split, or sponsor removal) waiting for its full download: that download goes
                # too when nobody else waits for it (neither its own requests nor another derived job's).
                dropped = await _stop_if_unwanted(session, full)
                if dropped is not None:
                    stopped_views.append(dropped)
            if stopped is not None:
                stopped_views.insert(0, stopped)
            view = request_view(request)
        for job_id, job_view in stopped_views:
            if job_view is not None:
                await self._publish(job_view)
            try:
                await self.bus.publish(Message("cancel", job_id=job_id))
            except Exception as exc:  # noqa: BLE001 - the worker also sees cancel_requested on its next lease renewal
                log.warning("cancel signal not published (%s)", type(exc).__name__)
        return view

    async def remove(self, request_id: str, *, source: str, user_id: str) -> None:
        """Delete a request from its owner's history: cancel it if it still runs, hide it (and the requests
        made on its behalf), and delete the stored files of every job nobody else still uses."""
        request, _ = await self.get_request(request_id)
        if (request.source, request.user_id) != (source, str(user_id)):
            raise NotFound()
        await self.cancel(request_id)
        now = utcnow()
        items = select(Request.id).where(Request.parent_id == request_id)
        family = or_(Request.id == request_id, Request.parent_id == request_id, Request.parent_id.in_(items))
        async with self.sessions() as session, session.begin():
            job_ids = set(await session.scalars(select(Request.job_id).where(family)))
            await session.execute(update(Request).where(family).values(hidden_at=now))
        for job_id in job_ids:
            await self._drop_files(job_id)

    async def _drop_files(self, job_id: str) -> None:
        """Delete a finished job's files when it owns them and no visible request of anyone uses them."""
        async with self.sessions() as session, session.begin():
            job = await session.scalar(select(Job).where(Job.id == job_id).with_for_update())
            if job is None or not job.retained or not job.storage_key or job.cached_from is not None:
                return
            sharing = select(Job.id).where(Job.storage_key == job.storage_key)
            users = await session.scalar(
                select(func.count())
                .select_from(Request)
                .where(Request.job_id.in_(sharing), Request.hidden_at.is_(None))
            )
            copies = await session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.source_job_id == job.id, Job.retained.is_(True))
            )
            if users or copies:
                return
            keys = [job.storage_key] + [p["key"] for p in job.parts or []]
            keys += [a["key"] for a in (job.assets or {}).values()]
            # The rows first (as retention does): from now on nobody gets a link or a cache hit to them.
            await session.execute(
                update(Job)
                .where(Job.storage_key == job.storage_key)
                .values(retained=False, dedup_key=None, updated_at=utcnow())
            )
        for key in dict.fromkeys(keys):
            try:
                await self.storage.delete(key)
            except Exception as exc:  # noqa: BLE001 - retention deletes what is left later
                log.warning("could not delete a removed file: %s", type(exc).__name__)

    async def retry(self, request_id: str, *, source: str, user_id: str) -> Submission:
        """The same ask again (link, kind, quality, format, subtitles, delivery target, completion callback)
        as a new request, which replaces the old one in its owner's history: the old one is hidden as
        `remove` hides it (its files stay while the new request, or anyone else's, uses them)."""
        request, job = await self.get_request(request_id)
        if (request.source, request.user_id) != (source, str(user_id)):
            raise NotFound()
        if request.status == RequestStatus.ACTIVE:
            raise InvalidRequest(N_("This download is still running."))
        async with self.sessions() as session:
            hook = await session.get(Webhook, request_id)
        submission = await self.submit(
            SubmitRequest(
                text=request.url, source=request.source, user_id=request.user_id,  # type: ignore[arg-type]
                kind=request.kind, quality=request.quality, target=dict(request.target),  # type: ignore[arg-type]
                format_id=job.format_id, subtitles=tuple(job.subtitle_langs), audio_format=job.audio_format,
                playable=job.playable, callback_url=hook.url if hook is not None else None,
            )
        )  # fmt: skip
        # Only once the new request exists: a refused retry (the link no longer allowed) keeps the old one,
        # and a retry answered from the old one's stored file keeps that file.
        await self.remove(request_id, source=source, user_id=user_id)
        return submission

    async def cancel_all(self, source: str, user_id: str) -> int:
        active = await self.active_requests(source, user_id)
        for request, _job in active:
            await self.cancel(request.id)
        return len(active)


async def _stop_if_unwanted(session: AsyncSession, job: Job) -> tuple[str, JobView | None] | None:
    """Cancel `job` (locked by the caller) when it is still active and nobody waits for it: no active request
    of its own, and no active request on a job made from it that waits for its file (a clip's full download
    stays while the clip waits). Returns its id and, when it was only queued, its new view to publish (a
    running one is stopped by its worker on the cancel signal); None when it goes on."""
    if job.status not in ACTIVE_JOB:
        return None
    own = await session.scalar(
        select(func.count())
        .select_from(Request)
        .where(Request.job_id == job.id, Request.status == RequestStatus.ACTIVE)
    )
    waiting = select(Job.id).where(Job.source_job_id == job.id, Job.status.in_(ACTIVE_JOB))
    derived = await session.scalar(
        select(func.count())
        .select_from(Request)
        .where(Request.job_id.in_(waiting), Request.status == RequestStatus.ACTIVE)
    )
    if own or derived:
        return None
    # Free the dedup slot at once so a new request starts a fresh download.
    job.dedup_key = None
    job.cancel_requested = True
    job.updated_at = utcnow()
    if job.status != JobStatus.QUEUED:
        # A worker may hold its place in a site's line (core.pacing), or run it: it stops on the signal.
        return job.id, None
    job.status = JobStatus.CANCELLED
    job.error_code = "cancelled"
    job.error_message = N_("The download was cancelled.")
    job.finished_at = utcnow()
    job.seq += 1
    await session.flush()
    return job.id, JobView.from_job(job)
