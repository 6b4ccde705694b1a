"""Figures about jobs read from the database, so every process that reports them reports the same truth."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import ApiKey, Job, JobStatus, Request, Worker, utcnow

DURATION_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


@dataclass(frozen=True)
class JobStats:
    jobs_by_status: dict[str, int]
    requests_by_outcome: dict[str, int]
    requests_by_source: dict[str, int]
    downloaded_bytes: int
    reused_jobs: int
    # Cumulative counts of finished downloads at or under each bound of DURATION_BUCKETS.
    duration_buckets: list[tuple[float, int]] = field(default_factory=list)
    duration_sum: float = 0.0
    duration_count: int = 0
    workers_alive: int = 0
    active_api_keys: int = 0
    # Finished jobs made from a stored download, by what: clip, animation, split (by chapters), sponsor.
    cuts: dict[str, int] = field(default_factory=dict)


def _duration(dialect: str) -> Any:
    if dialect == "postgresql":
        return func.extract("epoch", Job.finished_at - Job.started_at)
    return (func.julianday(Job.finished_at) - func.julianday(Job.started_at)) * 86400.0


async def job_stats(sessions: async_sessionmaker[AsyncSession], lease_s: float) -> JobStats:
    dialect = sessions.kw["bind"].dialect.name
    seconds = _duration(dialect)
    finished = (Job.status == JobStatus.DONE, Job.started_at.is_not(None), Job.finished_at.is_not(None))
    async with sessions() as session:
        by_status = dict((await session.execute(select(Job.status, func.count()).group_by(Job.status))).all())
        by_outcome = dict(
            (await session.execute(select(Request.outcome, func.count()).group_by(Request.outcome))).all()
        )
        by_source = dict(
            (await session.execute(select(Request.source, func.count()).group_by(Request.source))).all()
        )
        downloaded, reused = (
            await session.execute(
                select(
                    func.coalesce(func.sum(case((Job.cached_from.is_(None), Job.filesize), else_=0)), 0),
                    func.coalesce(func.sum(case((Job.cached_from.is_not(None), 1), else_=0)), 0),
                ).where(Job.status == JobStatus.DONE)
            )
        ).one()
        row = (
            await session.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(seconds), 0.0),
                    *[
                        func.coalesce(func.sum(case((seconds <= bound, 1), else_=0)), 0)
                        for bound in DURATION_BUCKETS
                    ],
                ).where(*finished)
            )
        ).one()
        alive = await session.scalar(
            select(func.count())
            .select_from(Worker)
            .where(Worker.heartbeat_at >= utcnow() - timedelta(seconds=3 * lease_s))
        )
        cut_kind = case(
            (Job.variant.like("clip:%"), "clip"),
            (Job.variant.like("gif:%"), "animation"),
            (Job.variant == "chapters", "split"),
            (Job.variant.like("sb=%"), "sponsor"),
            else_=None,
        )
        cuts = dict(
            (
                await session.execute(
                    select(cut_kind, func.count())
                    .where(Job.status == JobStatus.DONE, cut_kind.is_not(None))
                    .group_by(cut_kind)
                )
            ).all()
        )
        keys = await session.scalar(
            select(func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
        )
    count, total, *buckets = row
    return JobStats(
        jobs_by_status={str(k): int(v) for k, v in by_status.items()},
        requests_by_outcome={str(k): int(v) for k, v in by_outcome.items()},
        requests_by_source={str(k): int(v) for k, v in by_source.items()},
        downloaded_bytes=int(downloaded or 0),
        reused_jobs=int(reused or 0),
        duration_buckets=[(bound, int(n or 0)) for bound, n in zip(DURATION_BUCKETS, buckets, strict=True)],
        duration_sum=float(total or 0.0),
        duration_count=int(count or 0),
        workers_alive=int(alive or 0),
        active_api_keys=int(keys or 0),
        cuts={str(k): int(v) for k, v in cuts.items()},
    )
