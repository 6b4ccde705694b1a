"""Pacing across processes (issue 23): two real `mediabot worker` processes on Redis and PostgreSQL share one
budget per site; malformed pacing settings stop start-up with one line naming the variable."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.models import Worker
from core.jobs.choices import SubmitRequest
from core.jobs.views import JobView
from tests.support.guarded_site import GuardedSite
from tests.support.media import MediaFiles
from tests.support.services import make_settings, run_mediabot, running_services, settings_env, wait_until


def ask(url: str) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id=uuid.uuid4().hex[:8])


async def test_two_workers_on_redis_keep_one_download_at_a_time_and_other_hosts_run_meanwhile(
    tmp_path: Path, pg_url: str, redis_url: str, media_files: MediaFiles, worker_processes
) -> None:
    limited = await GuardedSite(media_files, host="127.0.0.1").start()
    free = await GuardedSite(media_files, host="127.0.0.2").start()
    settings = make_settings(
        tmp_path,
        database_url=pg_url,
        redis_url=redis_url,
        site_limits="127.0.0.1=1",
        worker_concurrency=3,
    )
    try:
        async with running_services(settings, worker=False) as services:
            procs = [worker_processes(settings), worker_processes(settings)]

            async def two_workers() -> bool:
                async with services.sessions() as session:
                    return len(list(await session.scalars(select(Worker)))) == 2

            await wait_until(two_workers, timeout=60)
            held = [
                await services.jobs.submit(ask(limited.url(f"/media/h{i}-{uuid.uuid4().hex}.mp4?gate=g{i}")))
                for i in range(4)
            ]
            await wait_until(lambda: limited.active, timeout=30)
            others = [
                await services.jobs.submit(ask(free.url(f"/media/o{i}-{uuid.uuid4().hex}.mp4")))
                for i in range(6)
            ]
            finals = await asyncio.gather(*(services.jobs.wait(s.job.id, timeout=60) for s in others))
            assert {f.status for f in finals} == {"done"}, [f.error for f in finals]
            # The limited host is still held by its first gate: its other jobs wait, queued, not running.
            views: list[JobView] = [await services.jobs.get_job(s.job.id) for s in held]
            assert sorted(v.status for v in views) == ["queued", "queued", "queued", "running"]
            assert limited.active == 1
            for i in range(4):
                limited.open_gate(f"g{i}")
            done = await asyncio.gather(*(services.jobs.wait(s.job.id, timeout=90) for s in held))
            assert {v.status for v in done} == {"done"}, [p.output()[-2000:] for p in procs]
            # Both workers took part: the one budget held across processes, not within one.
            assert all("claimed by" in p.output() for p in procs)
        assert limited.max_active == 1
        assert len(limited.completed) == 4
    finally:
        await limited.stop()
        await free.stop()


@pytest.mark.parametrize(
    ("variable", "value", "named", "secret"),
    [
        ("MEDIABOT_SITE_LIMITS", "youtube=two", "MEDIABOT_SITE_LIMITS: 'youtube=two'", None),
        (
            "MEDIABOT_PROXIES",
            "ftp://user:hunter2@proxy:21",
            "MEDIABOT_PROXIES: 'ftp://user:***@proxy:21'",
            "hunter2",
        ),
    ],
)
async def test_malformed_pacing_settings_stop_start_up_with_one_line(
    tmp_path: Path, variable: str, value: str, named: str, secret: str | None
) -> None:
    env = settings_env(make_settings(tmp_path))
    env[variable] = value
    code, out, err = await run_mediabot(env, "worker", timeout=60)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and named in lines[0], err
    assert secret is None or secret not in out + err
