"""Attaching a derived job (a clip, a chapter split, a sponsor removal: core.jobs.derived) to the download it
is made from, in the submitting transaction: the full download is found or created by its own dedup key (so
it coalesces with anyone asking for the whole media), and the derived job waits for it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Job, JobStatus
from core.jobs.attach import find_or_create_job
from core.jobs.derived import CutRefused, Derivation

PLAYLIST_REFUSAL = (
    "A clip, a split by chapters or sponsor removal is made of one video; this link is a playlist."
)


def check_source(source: Job, derived: Derivation, limit_s: float) -> None:
    """What can be told from a finished download before queueing anything: a playlist, a clip past the end."""
    if source.entries is not None:
        raise CutRefused(PLAYLIST_REFUSAL)
    if derived.section is not None:
        derived.section.check(source.duration, limit_s)


async def derived_job(
    session: AsyncSession,
    dialect: str,
    *,
    url: str,
    cache_key: str,
    kind: str,
    quality: str,
    full_key: str,
    key: str,
    derived: Derivation,
    now: datetime,
    choices: dict[str, Any],
    limit_s: float,
) -> tuple[Job, bool, list[str]] | None:
    """The derived job for `key` (found or new) and the jobs to enqueue after commit: a new full download,
    and the derived job itself once its source is stored. None when a job collided with ended in between."""
    found = await find_or_create_job(
        session, dialect, url=url, cache_key=cache_key, kind=kind, quality=quality, key=full_key, now=now,
        extra=choices,
    )  # fmt: skip
    if found is None:
        return None
    source, source_created = found
    if source.status == JobStatus.DONE:
        check_source(source, derived, limit_s)
    made = await find_or_create_job(
        session, dialect, url=url, cache_key=cache_key, kind=kind, quality=quality, key=key, now=now,
        extra={**choices, "variant": derived.variant, "source_job_id": source.id, "title": source.title,
               "duration": source.duration, "uploader": source.uploader, "upload_date": source.upload_date,
               "extractor": source.extractor, "media_id": source.media_id},
    )  # fmt: skip
    if made is None:
        return None
    job, created = made
    starts = [source.id] if source_created else []
    if created and source.status == JobStatus.DONE:
        starts.append(job.id)
    return job, created, starts


async def waiting_on(session: AsyncSession, source_id: str) -> list[str]:
    """Queued jobs made from `source_id`: enqueued once it ends (done: they run; else they fail with it)."""
    return list(
        await session.scalars(
            select(Job.id).where(Job.source_job_id == source_id, Job.status == JobStatus.QUEUED)
        )
    )
