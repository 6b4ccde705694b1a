"""Reading jobs and requests: one job, a user's history (with its cursors), what a front end must
resume after a restart."""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import Job, JobStatus, Request, RequestStatus, search_text
from core.errors import (
    InvalidRequest,
    NotFound,
)
from core.i18n import N_
from core.jobs.views import JobView, RequestView, request_view

log = logging.getLogger(__name__)

ACTIVE_JOB = (JobStatus.QUEUED, JobStatus.RUNNING)


def with_jobs() -> Any:
    """Requests joined to their jobs: every listing of requests starts here."""
    return select(Request, Job).join(Job, Job.id == Request.job_id)


def _encode_cursor(req: Request) -> str:
    raw = f"{req.created_at.isoformat()}|{req.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, rid = raw.split("|", 1)
        return datetime.fromisoformat(created), rid
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest(N_("Invalid cursor.")) from None


class JobQueries:
    """The job service's reads."""

    sessions: async_sessionmaker[AsyncSession]

    async def get_job(self, job_id: str) -> JobView:
        async with self.sessions() as session:
            job = await session.get(Job, job_id)
            if job is None:
                raise NotFound()
            return JobView.from_job(job)

    async def get_request(self, request_id: str) -> tuple[RequestView, JobView]:
        async with self.sessions() as session:
            row = (await session.execute(with_jobs().where(Request.id == request_id))).first()
            if row is None:
                raise NotFound()
            return request_view(row[0]), JobView.from_job(row[1])

    async def list_requests(
        self,
        source: str,
        user_id: str,
        *,
        statuses: Sequence[str] | None = None,
        limit: int = 20,
        cursor: str | None = None,
        top_level: bool = False,
        kinds: Sequence[str] | None = None,
        search: str | None = None,
    ) -> tuple[list[tuple[RequestView, JobView]], str | None]:
        """A user's requests, newest first, without those removed from history; `statuses` filters by the
        job's status, `kinds` by video/audio, `search` by a case-insensitive piece of the title or link;
        `top_level` leaves out requests made on behalf of others (playlist items, fitted copies)."""
        query = (
            with_jobs()
            .where(Request.source == source, Request.user_id == str(user_id), Request.hidden_at.is_(None))
            .order_by(Request.created_at.desc(), Request.id.desc())
            .limit(limit + 1)
        )
        if statuses:
            query = query.where(Job.status.in_(list(statuses)))
        if kinds:
            query = query.where(Request.kind.in_(list(kinds)))
        if search and search.strip():
            folded = search_text(search.strip()) or ""
            pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            # Both sides folded in Python (search_text): SQL's lower() folds only ASCII on SQLite, and on
            # PostgreSQL depends on the database's collation. Rows written before the search columns (by an
            # older process during an upgrade) fall back to lower().
            query = query.where(
                or_(
                    func.coalesce(Job.search_title, func.lower(Job.title)).like(pattern, escape="\\"),
                    func.coalesce(Request.search_url, func.lower(Request.url)).like(pattern, escape="\\"),
                )
            )
        if top_level:
            query = query.where(Request.parent_id.is_(None))
        if cursor:
            created, rid = _decode_cursor(cursor)
            query = query.where(
                or_(Request.created_at < created, and_(Request.created_at == created, Request.id < rid))
            )
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        items = [(request_view(r), JobView.from_job(j)) for r, j in rows[:limit]]
        next_cursor = _encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None
        return items, next_cursor

    async def active_requests(self, source: str, user_id: str) -> list[tuple[RequestView, JobView]]:
        items, _ = await self.list_requests(source, user_id, statuses=list(ACTIVE_JOB), limit=100)
        return [(r, j) for r, j in items if r.status == RequestStatus.ACTIVE]

    async def undelivered(self, source: str, limit: int = 500) -> list[tuple[RequestView, JobView]]:
        """A front end's requests not yet marked delivered, active ones included: what it must resume
        following (and deliver) after a restart."""
        return await self._pairs(
            with_jobs()
            .where(
                Request.source == source,
                Request.delivered_at.is_(None),
                Request.status != RequestStatus.CANCELLED,
                Request.hidden_at.is_(None),
                # Child requests are delivered by their parent's front-end task.
                Request.parent_id.is_(None),
            )
            .order_by(Request.created_at)
            .limit(limit)
        )

    async def ended_since(
        self, source: str, user_id: str, since: datetime, limit: int = 500
    ) -> list[tuple[RequestView, JobView]]:
        """A user's requests that ended after `since` (and were made in the day before it), oldest first."""
        return await self._pairs(
            with_jobs()
            .where(
                Request.source == source,
                Request.user_id == str(user_id),
                Request.created_at > since - timedelta(days=1),
                Request.finished_at > since,
            )
            .order_by(Request.finished_at, Request.id)
            .limit(limit)
        )

    async def children(self, request_id: str) -> list[tuple[RequestView, JobView]]:
        """The requests made on behalf of `request_id` (playlist items, fitted copies), oldest first."""
        return await self._pairs(
            with_jobs().where(Request.parent_id == request_id).order_by(Request.created_at, Request.id)
        )

    async def _pairs(self, query: Any) -> list[tuple[RequestView, JobView]]:
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        return [(request_view(r), JobView.from_job(j)) for r, j in rows]

    async def count_active(self, source: str, user_id: str) -> int:
        """How many of a user's asks still wait for their download (for per-user concurrency caps): a
        playlist counts once however many of its items run, and so does a copy being made to fit."""
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count(func.distinct(func.coalesce(Request.parent_id, Request.id))))
                .select_from(Request)
                .where(
                    Request.source == source,
                    Request.user_id == str(user_id),
                    Request.status == RequestStatus.ACTIVE,
                )
            )
        return int(count or 0)

    async def requests_of_job(self, job_id: str, source: str | None = None) -> list[RequestView]:
        """The requests waiting on (or served by) one job, optionally from one front end only."""
        query = select(Request).where(Request.job_id == job_id).order_by(Request.created_at)
        if source is not None:
            query = query.where(Request.source == source)
        async with self.sessions() as session:
            return [request_view(r) for r in await session.scalars(query)]

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as session:
            rows = (await session.execute(select(Job.status, func.count()).group_by(Job.status))).all()
        return {status: count for status, count in rows}
