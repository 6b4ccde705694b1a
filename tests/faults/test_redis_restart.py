"""Redis restarts empty while a worker runs: nothing queued is lost, the worker listens again."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from core.schemas import SubmitRequest
from tests.support.services import make_settings, running_services


def ask(url: str) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id="drill")


async def test_worker_and_queue_survive_an_empty_redis_restart(
    tmp_path: Path, pg_url, private_redis, media_site, worker_processes
) -> None:
    settings = make_settings(tmp_path, database_url=pg_url, redis_url=private_redis.url, stale_queued_s=2)
    worker = worker_processes(settings)
    async with running_services(settings, worker=False) as services:
        before = await services.jobs.submit(ask(media_site.url(f"/clip/{uuid.uuid4().hex}.mp4")))
        assert (await services.jobs.wait(before.job.id, timeout=60)).status == "done", worker.output()

        private_redis.stop()
        # Accepted while Redis is down: the job is in the database, its message is not in any queue.
        during = [
            await services.jobs.submit(ask(media_site.url(f"/clip/{uuid.uuid4().hex}.mp4"))) for _ in range(3)
        ]
        await asyncio.sleep(1.5)
        private_redis.start()
        after = await services.jobs.submit(ask(media_site.url(f"/clip/{uuid.uuid4().hex}.mp4")))

        finals = await asyncio.gather(*(services.jobs.wait(s.job.id, timeout=60) for s in [*during, after]))
        assert [f.status for f in finals] == ["done"] * 4, worker.output()[-3000:]
        assert worker.proc is not None and worker.proc.poll() is None, "the worker rode out the outage"
