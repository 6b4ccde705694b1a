"""A worker that switches yt-dlp versions mid-stream: used by tests/ytdlp/test_worker_switch.py (and its
figures by bench/ytdlp_update_bench.py).

A real `mediabot worker` on a private Redis and PostgreSQL works through jobs submitted before, during and
after `mediabot ytdlp update` makes a new release current; the worker restarts itself into the new release
(same pid) and every job finishes exactly once.
"""

from __future__ import annotations

import contextlib
import re
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from core.jobs.choices import SubmitRequest
from tests.faults.cluster import GatedMedia, MediabotProcess, open_cluster
from tests.support.media_site import MediaSite
from tests.support.services import run_mediabot, running_services, wait_until

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")


def _ask(url: str) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id="drill")


def log_time(output: str, needle: str, after: int = 0) -> tuple[float, int]:
    """The time (epoch s) of the first log line containing `needle` at or after offset `after`, and its
    offset."""
    at = output.index(needle, after)
    line_start = output.rfind("\n", 0, at) + 1
    match = _STAMP.match(output[line_start:])
    assert match, output[line_start : at + 80]
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp(), at


async def worker_switch(
    workdir: Path, site: MediaSite, gated: GatedMedia, release: Path, new_version: str, *, grace_s: float = 3
) -> dict[str, Any]:
    canary = site.url(f"/clip/canary-{uuid.uuid4().hex[:8]}.mp4")
    async with (
        open_cluster(
            workdir, shutdown_grace_s=grace_s, worker_concurrency=2, canary_urls=[canary]
        ) as cluster,
        running_services(cluster.settings, worker=False) as services,
    ):
        worker: MediabotProcess = cluster.start_worker()
        await cluster.ready()
        await wait_until(lambda: "this process runs yt-dlp " in worker.output(), timeout=30)

        def clip(tag: str) -> str:
            return site.url(f"/clip/{tag}-{uuid.uuid4().hex[:8]}.mp4")

        jobs: dict[
            str, str
        ] = {}  # job id -> when it was submitted (before | running | queued | during | after)
        for _ in range(2):
            jobs[(await services.jobs.submit(_ask(clip("before")))).job.id] = "before"
        await wait_until(lambda: all(_done(worker, j) for j in jobs), timeout=60)

        finishes, handed_back = f"fin{uuid.uuid4().hex[:6]}", f"back{uuid.uuid4().hex[:6]}"
        fin = (await services.jobs.submit(_ask(gated.url(finishes)))).job.id
        back = (await services.jobs.submit(_ask(gated.url(handed_back)))).job.id
        jobs[fin], jobs[back] = "running", "running"

        async def both_downloading() -> bool:
            rows = [await cluster.job(fin), await cluster.job(back)]
            return all(r.status == "running" and (r.downloaded_bytes or 0) > 0 for r in rows)

        await wait_until(both_downloading, timeout=30)
        for _ in range(2):  # both slots are taken: these wait in the queue
            jobs[(await services.jobs.submit(_ask(clip("queued")))).job.id] = "queued"

        update_started = time.monotonic()
        code, out, err = await run_mediabot(
            cluster.env(), "ytdlp", "update", "--find-links", str(release), timeout=300
        )
        update_s = time.monotonic() - update_started
        assert code == 0, err
        await wait_until(lambda: "restarting once running jobs finish" in worker.output(), timeout=15)
        for _ in range(2):
            jobs[(await services.jobs.submit(_ask(clip("during")))).job.id] = "during"
        gated.release(finishes)  # within the grace period: finishes on the old version
        loaded = (
            f"this process runs yt-dlp {new_version} from {cluster.settings.data_dir / 'ytdlp' / new_version}"
        )
        await wait_until(lambda: loaded in worker.output(), timeout=grace_s + 60)
        assert worker.alive, worker.output()
        gated.release(handed_back)
        for _ in range(2):
            jobs[(await services.jobs.submit(_ask(clip("after")))).job.id] = "after"

        finals = {job_id: await services.jobs.wait(job_id, timeout=90) for job_id in jobs}
        # A job is done in the database a moment before the worker logs it.
        with contextlib.suppress(TimeoutError):
            await wait_until(lambda: all(_done(worker, j) for j in jobs), timeout=10)
        output = worker.output(tail=1_000_000)
        rows = {job_id: await cluster.job(job_id) for job_id in jobs}
        pids = {w.pid for w in await _workers(cluster)}

    # When the worker stopped taking jobs, re-executed itself, and took jobs again.
    stopped, _ = log_time(output, "restarting once running jobs finish")
    exec_at, exec_pos = log_time(output, "restarting to load the current yt-dlp")
    new_loaded, loaded_pos = log_time(output, loaded)
    resumed, _ = log_time(output, " started (concurrency", loaded_pos)
    return {
        "jobs": jobs,
        "finals": finals,
        "rows": rows,
        "output": output,
        "worker_pid": worker.pid,
        "pids_in_table": pids,
        "loaded_pos": loaded_pos,
        "exec_pos": exec_pos,
        "gated_completed": {name: gated.completed.get(name, 0) for name in (finishes, handed_back)},
        "fin": fin,
        "back": back,
        "update_s": update_s,
        "paused_s": resumed - stopped,
        "grace_s": grace_s,
        "reexec_s": resumed - exec_at,
    }


def _done(worker: MediabotProcess, job_id: str) -> bool:
    return f"job {job_id} done in" in worker.output(tail=1_000_000)


async def _workers(cluster: Any) -> list[Any]:
    from sqlalchemy import select

    from core.db.models import Worker

    async with cluster.sessions() as session:
        return list(await session.scalars(select(Worker)))
