"""MEDIABOT_YTDLP_AUTO_UPDATE=daily: one worker (never two: the lease) checks a package index once a day and
runs the same update path; `mediabot run` then restarts itself into the new release. The index is a local
server (tests/ytdlp/index.py)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from core.ytdlp.lease import update_lease
from core.ytdlp.updates import read_auto_state, rollback
from core.ytdlp.upkeep import AutoUpdater
from core.ytdlp.versions import read_pointer
from tests.faults.cluster import MediabotProcess
from tests.support.servers import free_port
from tests.support.services import ROOT, make_settings, settings_env, wait_until
from tests.ytdlp.conftest import GOOD
from tests.ytdlp.index import LocalIndex

HOLD = """
import asyncio, sys
from pathlib import Path
from core.ytdlp.lease import update_lease

async def main():
    lease = update_lease(sys.argv[1], Path(sys.argv[2]))
    assert await lease.acquire()
    print("held", flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


@pytest.mark.both_databases
async def test_the_lease_has_one_holder_and_passes_on_when_it_dies(tmp_path: Path, database_url: str) -> None:
    data = tmp_path / "data"
    one, two = update_lease(database_url, data), update_lease(database_url, data)
    try:
        assert await one.acquire()
        assert not await two.acquire()
        assert await one.acquire(), "the holder keeps it"
        await one.release()
        assert await two.acquire()
        await two.release()

        # A holder that is killed (no release, no clean close) does not block the others.
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, database_url, str(data)],
            cwd=str(ROOT),
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            assert not await one.acquire()
            holder.kill()
            holder.wait(timeout=10)
            await wait_until(one.acquire, timeout=10, interval=0.2)
        finally:
            if holder.poll() is None:
                holder.kill()
                holder.wait(timeout=10)
    finally:
        await one.release()
        await two.release()


@pytest.mark.both_databases
async def test_two_workers_one_daily_check(
    tmp_path: Path, database_url: str, media_site, good_index: LocalIndex
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        canary_urls=[media_site.url(f"/clip/{uuid.uuid4().hex}.mp4")],
        ytdlp_auto_update="daily",
        ytdlp_index_url=good_index.url,
    )
    # Two workers' checkers on one database and one DATA_DIR, asking for the lease five times a second.
    checkers = [AutoUpdater(settings, retry_s=0.2), AutoUpdater(settings, retry_s=0.2)]
    tasks = [asyncio.create_task(c.run()) for c in checkers]
    try:
        await wait_until(lambda: read_pointer(settings.data_dir).current == GOOD, timeout=180, interval=0.2)
        await wait_until(lambda: read_auto_state(settings.data_dir).get("outcome") != "checking", timeout=10)
        await asyncio.sleep(1.5)  # several more lease rounds: the check is not due again for a day
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
    # One held the lease all along (and checked once); the other never did.
    assert sorted(c.checks for c in checkers) == [0, 1]
    holder = max(checkers, key=lambda c: c.checks)
    assert holder.rounds_held > 1 and sum(c.rounds_held for c in checkers) == holder.rounds_held
    assert good_index.hits[f"files/yt_dlp-{GOOD}-py3-none-any.whl"] == 1
    state = read_auto_state(settings.data_dir)
    assert state["outcome"].startswith(f"yt-dlp {GOOD} is current now (1 canary link passed"), state
    assert 0 < checkers[0].seconds_until_due() <= 24 * 3600

    # An operator rolls back: the daily check does not put that release back by itself.
    rollback(settings)
    outcome = await checkers[0].check_once()
    assert outcome is not None and not outcome.changed
    assert outcome.message == f"yt-dlp {GOOD} was rolled back from, so it is not installed again by itself."
    assert read_pointer(settings.data_dir).current == "bundled"


async def test_run_checks_daily_and_restarts_into_the_new_release(
    tmp_path: Path, media_site, good_index: LocalIndex
) -> None:
    """`mediabot run` on SQLite: it finds the release on the index, proves it, restarts itself into it (same
    pid), and its API and worker work on the new yt-dlp."""
    port = free_port()
    settings = make_settings(
        tmp_path,
        port=port,
        canary_urls=[media_site.url(f"/clip/{uuid.uuid4().hex}.mp4")],
        ytdlp_auto_update="daily",
        ytdlp_index_url=good_index.url,
        shutdown_grace_s=2,
    )
    proc = MediabotProcess("run", settings_env(settings), tmp_path / "run.log").start()
    base = f"http://127.0.0.1:{port}"
    try:
        loaded = f"this process runs yt-dlp {GOOD} from {settings.data_dir / 'ytdlp' / GOOD}"
        await wait_until(lambda: loaded in proc.output(10**6) or not proc.alive, timeout=240, interval=0.2)
        assert proc.alive and loaded in proc.output(10**6), proc.output()
        first_pid = proc.pid
        key = re.search(r"^\s+(mb_\S+)$", proc.output(10**6), re.MULTILINE)
        assert key, proc.output()
        auth = {"Authorization": f"Bearer {key.group(1)}"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:

            async def answers() -> bool:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{base}/health") as resp:
                        return resp.status == 200
                return False

            await wait_until(answers, timeout=60)
            clip = media_site.url(f"/clip/{uuid.uuid4().hex}.mp4")
            async with http.post(f"{base}/api/v1/jobs", json={"url": clip}, headers=auth) as resp:
                assert resp.status == 202, await resp.text()
                job_id = (await resp.json())["id"]

            async def finished() -> str | None:
                async with http.get(f"{base}/api/v1/jobs/{job_id}", headers=auth) as resp:
                    status = (await resp.json())["status"]
                return status if status in ("done", "failed", "cancelled") else None

            assert await wait_until(finished, timeout=60) == "done"
        assert proc.pid == first_pid and proc.alive
        assert proc.output(10**6).count("restarting to load the current yt-dlp") == 1
    finally:
        proc.stop()
