"""The distributed form: real `mediabot worker` processes on Redis + PostgreSQL, and what happens when
they die."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy import inspect, select, text

from core.bootstrap import Services
from core.db import migrate
from core.db.models import Job, Worker
from core.db.session import create_engine
from core.jobs.choices import SubmitRequest
from tests.support.media import ffprobe
from tests.support.services import make_settings, running_services, wait_until


def ask(url: str, user: str = "alice") -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id=user)


async def job_row(services: Services, job_id: str) -> Job:
    async with services.sessions() as session:
        job = await session.get(Job, job_id)
        assert job is not None
        return job


async def workers(services: Services) -> list[Worker]:
    async with services.sessions() as session:
        return list(await session.scalars(select(Worker)))


async def test_worker_process_on_redis_and_postgres(
    tmp_path: Path, pg_url, redis_url, media_site, worker_processes
) -> None:
    settings = make_settings(tmp_path, database_url=pg_url, redis_url=redis_url)
    async with running_services(settings, worker=False) as services:
        proc = worker_processes(settings)
        await wait_until(lambda: workers(services), timeout=30)
        clip = f"/clip/{uuid.uuid4().hex}.mp4"
        submission = await services.jobs.submit(ask(media_site.url(clip)))
        final = await services.jobs.wait(submission.job.id, timeout=60)
        assert final.status == "done", (final.error, proc.output())
        path = await services.jobs.local_path(final.id)
        assert path is not None and ffprobe(path)["streams"]
        assert media_site.downloads(clip) == 1
        (heartbeat,) = await workers(services)
        assert heartbeat.pid == proc.pid and heartbeat.concurrency == settings.worker_concurrency


async def test_identical_requests_across_processes_make_one_download(
    tmp_path: Path, pg_url, redis_url, media_site, worker_processes
) -> None:
    """Two front-end processes (separate engines, buses and queues) and two workers, one Redis and one
    PostgreSQL: the database decides, so 40 identical requests still make one download."""
    settings = make_settings(tmp_path, database_url=pg_url, redis_url=redis_url)
    worker_processes(settings)
    worker_processes(settings)
    async with (
        running_services(settings, worker=False) as one,
        running_services(settings, worker=False) as two,
    ):
        clip = f"/clip/{uuid.uuid4().hex}.mp4"
        url = media_site.url(clip)
        subs = await asyncio.gather(
            *(svc.jobs.submit(ask(url, user=f"u{i}")) for i, svc in enumerate([one, two] * 20))
        )
        assert len({s.job.id for s in subs}) == 1
        finals = await asyncio.gather(
            *(svc.jobs.wait(s.job.id, timeout=60) for svc, s in zip([one, two] * 20, subs, strict=True))
        )
        assert {f.status for f in finals} == {"done"}
        assert media_site.downloads(clip) == 1


# Kills a worker on a short lease: in the serial group with the drills (tests/support/groups.py).
@pytest.mark.xdist_group("serial")
async def test_sigkilled_worker_job_is_taken_over(
    tmp_path: Path, pg_url, redis_url, media_site, worker_processes
) -> None:
    settings = make_settings(
        tmp_path, database_url=pg_url, redis_url=redis_url, lease_s=3, reconcile_interval_s=1
    )
    async with running_services(settings, worker=False) as services:
        first = worker_processes(settings)
        await wait_until(lambda: workers(services), timeout=30)
        url = media_site.gated_url()  # held until the first worker is dead
        submission = await services.jobs.submit(ask(url))
        async for view in services.jobs.watch(submission.job.id):
            if view.status == "running" and (view.progress.downloaded_bytes or 0) > 500_000:
                break
        job = await job_row(services, submission.job.id)
        assert job.worker_id and str(first.pid) in job.worker_id
        worker_tmp = settings.tmp_dir / job.worker_id
        assert any(worker_tmp.rglob("*")), "the partial download is in the worker's temp dir"
        first.kill(9)
        killed_at = time.monotonic()
        media_site.open_gate(url)
        worker_processes(settings)
        final = await services.jobs.wait(submission.job.id, timeout=90)
        assert final.status == "done", final.error
        assert time.monotonic() - killed_at < 60
        job = await job_row(services, submission.job.id)
        assert job.attempts == 2 and str(first.pid) not in (job.worker_id or "")
        assert not worker_tmp.exists(), "the dead worker's partial files were cleaned"
        path = await services.jobs.local_path(final.id)
        assert path is not None and path.stat().st_size == media_site_size(media_site)


def media_site_size(media_site) -> int:  # type: ignore[no-untyped-def]
    return media_site.files.big_mp4.stat().st_size


# Kills a worker on a short lease: in the serial group with the drills (tests/support/groups.py).
@pytest.mark.xdist_group("serial")
async def test_job_fails_with_worker_lost_after_the_attempt_limit(
    tmp_path: Path, pg_url, redis_url, media_site, worker_processes
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=pg_url,
        redis_url=redis_url,
        lease_s=2,
        reconcile_interval_s=0.5,
        max_attempts=1,
    )
    async with running_services(settings, worker=False) as services:
        first = worker_processes(settings)
        await wait_until(lambda: workers(services), timeout=30)
        submission = await services.jobs.submit(
            ask(media_site.url(f"/slow.mp4?rate=200000&n={uuid.uuid4().hex}"))
        )
        await wait_until(lambda: _running(services, submission.job.id), timeout=30)
        first.kill(9)
        worker_processes(settings)
        final = await services.jobs.wait(submission.job.id, timeout=60)
        assert final.status == "failed"
        assert final.error and final.error.code == "worker_lost"
        request, _ = await services.jobs.get_request(submission.request.id)
        assert request.status == "failed"


async def _running(services: Services, job_id: str) -> bool:
    return (await job_row(services, job_id)).status == "running"


async def test_jobs_survive_a_queue_that_lost_its_messages(
    tmp_path: Path, pg_url, redis_url, media_site, worker_processes
) -> None:
    """Redis restarted empty: the database still says queued, so the reconciler queues them again."""
    settings = make_settings(tmp_path, database_url=pg_url, redis_url=redis_url, stale_queued_s=2)
    async with running_services(settings, worker=False) as services:
        subs = [
            await services.jobs.submit(ask(media_site.url(f"/clip/{uuid.uuid4().hex}.mp4"))) for _ in range(5)
        ]
        client = Redis.from_url(redis_url)
        await client.flushdb()
        await client.aclose()
        worker_processes(settings)
        finals = await asyncio.gather(*(services.jobs.wait(s.job.id, timeout=60) for s in subs))
        assert {f.status for f in finals} == {"done"}


@pytest.mark.both_databases
async def test_migrations_go_up_and_down(database_url: str) -> None:
    engine = create_engine(database_url)

    async def tables() -> set[str]:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))

    try:
        assert {"jobs", "requests", "workers", "api_keys"} <= await tables()
        await migrate.downgrade(database_url, "base")
        assert not {"jobs", "requests"} & await tables()
        await migrate.upgrade(database_url)
        assert {"jobs", "requests", "workers", "api_keys"} <= await tables()
    finally:
        await engine.dispose()


@pytest.mark.both_databases
async def test_every_migration_keeps_the_rows_it_finds(database_url: str) -> None:
    """Upgrading from the first schema keeps jobs and their requests. On SQLite, Alembic rebuilds a table by
    dropping it: with foreign keys on, dropping `jobs` cascaded into every request."""
    await migrate.downgrade(database_url, "0001")
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO jobs (id, url, cache_key, kind, quality, status, seq, retained, attempts, "
                    "cancel_requested, created_at, updated_at) VALUES ('j1', 'https://ex.com/v', "
                    "'https://ex.com/v', 'video', 'best', 'done', 2, :yes, 1, :no, :now, :now)"
                ),
                dict(yes=True, no=False, now=datetime.now(UTC).replace(tzinfo=None)),
            )
            await conn.execute(
                text(
                    "INSERT INTO requests (id, job_id, source, user_id, url, kind, quality, target, status, "
                    "outcome, created_at) VALUES ('r1', 'j1', 'cli', 'old', 'https://ex.com/v', 'video', "
                    "'best', '{}', 'done', 'queued', :now)"
                ),
                dict(now=datetime.now(UTC).replace(tzinfo=None)),
            )
        await migrate.upgrade(database_url)
        async with engine.connect() as conn:
            jobs = (await conn.execute(text("SELECT id FROM jobs"))).scalars().all()
            requests = (await conn.execute(text("SELECT id, job_id FROM requests"))).all()
        assert jobs == ["j1"] and [tuple(r) for r in requests] == [("r1", "j1")]
    finally:
        await engine.dispose()


async def test_a_cancel_that_arrives_while_the_job_is_being_claimed_stops_it(
    tmp_path: Path, media_site
) -> None:
    """The cancel signal can reach a worker between its claim's commit and the moment the job is registered
    as running: it is remembered and honoured at once, not at the next lease renewal (lease_s here is long,
    so a missed signal would let the slow download run on)."""
    from core.events import Message
    from worker.build import build_worker

    settings = make_settings(tmp_path, lease_s=600)
    async with running_services(settings, worker=False) as services:
        sub = await services.jobs.submit(
            SubmitRequest(text=media_site.url("/slow.mp4?rate=100000"), source="cli", user_id="u")
        )
        runner = build_worker(services).runner
        try:
            runner.on_control(Message("cancel", job_id=sub.job.id))  # before run() registers the job
            await asyncio.wait_for(runner.run(sub.job.id), 30)
            final = await services.jobs.get_job(sub.job.id)
            assert final.status == "cancelled", final
        finally:
            runner.close()


@pytest.mark.both_databases
async def test_a_job_queued_again_while_this_worker_still_runs_it_is_taken_back(
    tmp_path: Path, media_site
) -> None:
    """A database outage longer than the lease: the reconciler queues the running job again and its message
    comes back to the worker that still runs it. That worker must not start a second attempt beside the first
    (they shared a work folder and an owner, and the first's file vanished: "The file could not be saved", the
    flaky PostgreSQL-crash drill); the running attempt takes its job back and finishes it, downloaded once."""
    from sqlalchemy import update

    from core.db.models import JobStatus
    from worker.build import build_worker

    settings = make_settings(tmp_path, lease_s=600)
    async with running_services(settings, worker=False) as services:
        url = media_site.gated_url()
        sub = await services.jobs.submit(ask(url))
        runner = build_worker(services).runner
        try:
            first = asyncio.create_task(runner.run(sub.job.id))

            async def running() -> bool:
                return (await job_row(services, sub.job.id)).status == JobStatus.RUNNING

            await wait_until(running, timeout=30)
            # What the reconciler writes for an expired lease.
            async with services.sessions() as session, session.begin():
                await session.execute(
                    update(Job)
                    .where(Job.id == sub.job.id)
                    .values(status=JobStatus.QUEUED, worker_id=None, lease_until=None, seq=Job.seq + 100)
                )
            await asyncio.wait_for(runner.run(sub.job.id), 30)  # the message that came back
            row = await job_row(services, sub.job.id)
            assert row.status == JobStatus.RUNNING and row.worker_id == runner.worker_id, row.status
            assert row.attempts == 1
            media_site.open_gate(url)
            await asyncio.wait_for(first, 60)
            final = await services.jobs.get_job(sub.job.id)
            assert final.status == "done", final
            assert (await job_row(services, sub.job.id)).attempts == 1
        finally:
            runner.close()
