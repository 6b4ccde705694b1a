"""Coalescing in the database (DESIGN.md section 2): one job per media variant however many processes ask
at once, and a request row per ask."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Job, JobStatus, Request, RequestStatus, search_text
from core.jobs.keys import new_id


def insert_ignoring_conflict(dialect: str, values: dict[str, Any]) -> Any:
    """INSERT ... ON CONFLICT (dedup_key) DO NOTHING on both SQLite and PostgreSQL."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(Job).values(**values).on_conflict_do_nothing(index_elements=["dedup_key"])


@dataclass
class Attached:
    """What one transaction attached: the rows it touched and the jobs it created (to enqueue after
    commit)."""

    job: Job
    request: Request
    outcome: str  # queued | coalesced | cached
    created: list[str] = field(default_factory=list)


async def find_or_create_job(
    session: AsyncSession,
    dialect: str,
    *,
    url: str,
    cache_key: str,
    kind: str,
    quality: str,
    key: str,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> tuple[Job, bool] | None:
    """The live job for `key` (locked), or a new queued one. None when the job collided with ended in
    between: the caller tries again."""
    # Look first: a cache hit or a join then costs one read and one insert.
    job = await session.scalar(select(Job).where(Job.dedup_key == key).with_for_update())
    if job is not None:
        return job, False
    values = dict(
        id=new_id(),
        url=url,
        cache_key=cache_key,
        kind=kind,
        quality=quality,
        dedup_key=key,
        status=JobStatus.QUEUED,
        seq=1,
        retained=False,
        attempts=0,
        cancel_requested=False,
        created_at=now,
        updated_at=now,
        enqueued_at=now,
        **(extra or {}),
    )
    values["search_title"] = search_text(values.get("title"))
    # The unique dedup key decides between processes inserting the same job at once.
    inserted = await session.execute(insert_ignoring_conflict(dialect, values))
    if inserted.rowcount == 1:
        return Job(**values), True
    job = await session.scalar(select(Job).where(Job.dedup_key == key).with_for_update())
    return (job, False) if job is not None else None


def new_request(job: Job, created: bool, *, now: datetime, **fields: Any) -> tuple[Request, str]:
    """A request row on `job`; a finished job answers it at once (cached)."""
    outcome = "queued" if created else ("cached" if job.status == JobStatus.DONE else "coalesced")
    ended = job.status == JobStatus.DONE
    request = Request(
        id=new_id(),
        job_id=job.id,
        kind=job.kind,
        quality=job.quality,
        outcome=outcome,
        created_at=now,
        status=RequestStatus.DONE if ended else RequestStatus.ACTIVE,
        finished_at=now if ended else None,
        search_url=search_text(fields.get("url")),
        **fields,
    )
    return request, outcome
