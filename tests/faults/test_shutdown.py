"""SIGTERM, as `docker stop` and systemd send it: workers hand over their work, the web app says goodbye."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.faults import drills
from tests.faults.cluster import GatedMedia
from tests.support.media_site import MediaSite
from tests.support.servers import free_port
from tests.support.services import ROOT, make_settings, run_mediabot, settings_env, wait_until

pytestmark = pytest.mark.usefixtures("drill_tools")


async def test_sigterm_on_a_worker_finishes_or_hands_back_its_jobs(
    tmp_path: Path, media_site: MediaSite, gated: GatedMedia
) -> None:
    """It takes no new job, finishes what can finish within MEDIABOT_SHUTDOWN_GRACE_S, hands the rest
    back (attempt not counted), exits 0; another worker finishes the rest."""
    figures = await drills.worker_sigterm(tmp_path, media_site, gated, grace_s=3)
    assert figures["exit code"] == 0 and figures["lost"] == 0


async def test_sigterm_on_the_web_app_closes_websockets_and_finishes_requests(tmp_path: Path) -> None:
    figures = await drills.web_sigterm(tmp_path)
    assert figures["closed with 1001"] == 2 and figures["in-flight request answered"] == 202


async def test_sigterm_during_start_up_exits_cleanly(tmp_path: Path) -> None:
    """Even before start-up is done (here it waits for an unreachable Redis) SIGTERM means a clean stop."""
    figures = await drills.web_sigterm_during_startup(tmp_path)
    assert figures["exit code"] == 0


class RunProcess:
    """`mediabot run` as `make run` starts it, its output in a file."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> RunProcess:
        self._out = open(self.log, "ab")  # noqa: SIM115 - closed in __aexit__
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mediabot",
            "run",
            env=self.env,
            cwd=str(ROOT),
            stdout=self._out,
            stderr=self._out,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._out.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


async def test_ctrl_c_twice_hands_downloads_back_and_the_next_run_resumes_them(
    tmp_path: Path, gated: GatedMedia
) -> None:
    """The first Ctrl-C says in one line what the process still waits for and how not to wait; the second
    stops it at once (MEDIABOT_SHUTDOWN_GRACE_S is far longer here), handing the running download back with
    its attempt not counted; the next `mediabot run` takes it up at start, not when the reconciler's
    stale-queue sweep (an hour here) would."""
    settings = make_settings(tmp_path, port=free_port(), shutdown_grace_s=3600, stale_queued_s=3600)
    env = settings_env(settings)
    code, out, err = await run_mediabot(env, "apikey", "create", "t")
    assert code == 0, err
    headers = {"Authorization": f"Bearer {out.strip().splitlines()[-1]}"}
    api = f"{settings.public_url}/api/v1/jobs"
    log = tmp_path / "run.log"

    async with aiohttp.ClientSession() as http:

        async def job(job_id: str) -> dict:
            async with http.get(f"{api}/{job_id}", headers=headers) as resp:
                return await resp.json()

        async def answers() -> bool:
            try:
                async with http.get(f"{settings.public_url}/health") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        async with RunProcess(env, log) as run:
            await wait_until(answers, timeout=60)
            async with http.post(api, json={"url": gated.url("clip")}, headers=headers) as resp:
                assert resp.status == 202
                job_id = (await resp.json())["id"]

            async def downloading() -> bool:
                view = await job(job_id)
                return view["status"] == "running" and bool(view["progress"]["downloaded_bytes"])

            await wait_until(downloading, timeout=60)
            run.proc.send_signal(signal.SIGINT)
            notice = await wait_until(
                lambda: next((line for line in run.output().splitlines() if "Ctrl-C:" in line), None)
            )
            assert "MEDIABOT_SHUTDOWN_GRACE_S" in notice and "Ctrl-C again" in notice, notice
            run.proc.send_signal(signal.SIGINT)
            # Far sooner than the hour of grace: only the second Ctrl-C can end it now.
            assert await asyncio.wait_for(run.proc.wait(), timeout=60) == 0, run.output()

        assert _job_row(settings.data_dir, job_id) == ("queued", 0), "handed back, attempt not counted"

        gated.release("clip")
        async with RunProcess(env, log) as run:
            await wait_until(answers, timeout=60)

            async def ended() -> dict | None:
                view = await job(job_id)
                return view if view["status"] in ("done", "failed", "cancelled") else None

            final = await wait_until(ended, timeout=60)
            assert final["status"] == "done", (final, run.output())
            run.proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(run.proc.wait(), timeout=60) == 0, run.output()
        assert _job_row(settings.data_dir, job_id) == ("done", 1), "the handed-back attempt was not counted"


def _job_row(data_dir: Path, request_id: str) -> tuple[str, int]:
    """The status and attempts of the job behind an API id (a request's)."""
    with contextlib.closing(sqlite3.connect(data_dir / "mediabot.db")) as conn:
        return conn.execute(
            "SELECT jobs.status, jobs.attempts FROM jobs JOIN requests ON requests.job_id = jobs.id "
            "WHERE requests.id = ?",
            (request_id,),
        ).fetchone()
