"""A worker switching yt-dlp versions mid-stream without losing a job (tests/ytdlp/drill.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path

from core.jobs.choices import SubmitRequest
from tests.faults.cluster import gated_media
from tests.support.services import make_settings, run_mediabot, running_services, settings_env, wait_until
from tests.ytdlp import wheels
from tests.ytdlp.conftest import GOOD, Releases
from tests.ytdlp.drill import worker_switch


async def test_a_worker_restarts_into_the_new_release_and_every_job_finishes_once(
    tmp_path: Path, media_site, media_files, releases: Releases
) -> None:
    async with gated_media(media_files.big_mp4.read_bytes()) as gated:
        result = await worker_switch(tmp_path, media_site, gated, releases.good, GOOD, grace_s=3)
    output = result["output"]
    bundled = wheels.bundled_version()

    # Every job, whenever it came, finished, and exactly once.
    assert {f.status for f in result["finals"].values()} == {"done"}, [
        (result["jobs"][j], f.error) for j, f in result["finals"].items() if f.status != "done"
    ]
    for job_id in result["jobs"]:
        mentions = [line for line in output.splitlines() if job_id in line]
        assert output.count(f"job {job_id} done in") == 1, (result["jobs"][job_id], mentions)
    assert result["gated_completed"] == {name: 1 for name in result["gated_completed"]}

    # The running one that could finish did so within the grace period, on the old version; the other was
    # handed back (its attempt not counted) and finished on the new one.
    fin_done = output.index(f"job {result['fin']} done in")
    assert fin_done < result["exec_pos"]
    assert f"job {result['back']} handed back to the queue" in output
    assert output.index(f"job {result['back']} done in") > result["loaded_pos"]
    assert result["rows"][result["back"]].attempts == 1

    # Jobs submitted before ran on the bundled yt-dlp, jobs submitted after on the new one, in one process
    # that re-executed itself (same pid, still the only worker in the table).
    assert f"this process runs yt-dlp {bundled} from" in output[: result["exec_pos"]]
    for job_id, when in result["jobs"].items():
        done_at = output.index(f"job {job_id} done in")
        if when == "before":
            assert done_at < result["exec_pos"], job_id
        if when in ("during", "after"):
            assert done_at > result["loaded_pos"], job_id
    assert result["pids_in_table"] == {result["worker_pid"]}


async def test_sigterm_while_the_restart_waits_stops_the_worker_for_good(
    tmp_path: Path, pg_url: str, redis_url: str, media_site, media_files, releases: Releases, worker_processes
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=pg_url,
        redis_url=redis_url,
        shutdown_grace_s=4,
        canary_urls=[media_site.url(f"/clip/{uuid.uuid4().hex}.mp4")],
    )
    async with (
        gated_media(media_files.big_mp4.read_bytes()) as gated,
        running_services(settings, worker=False) as services,
    ):
        worker = worker_processes(settings)
        await wait_until(lambda: "this process runs yt-dlp" in worker.output(), timeout=30)
        job = (
            await services.jobs.submit(SubmitRequest(text=gated.url("held"), source="cli", user_id="t"))
        ).job
        await wait_until(lambda: f"job {job.id} claimed" in worker.output(), timeout=30)
        code, _, err = await run_mediabot(
            settings_env(settings), "ytdlp", "update", "--find-links", str(releases.good)
        )
        assert code == 0, err
        await wait_until(lambda: "restarting once running jobs finish" in worker.output(), timeout=15)
        os.kill(worker.pid, signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 30) == 0
        assert "restarting to load the current yt-dlp" not in worker.output()
        assert f"job {job.id} handed back to the queue" in worker.output()
        assert (await services.jobs.get_job(job.id)).status == "queued"
