"""`mediabot run` with nothing configured stays light until someone downloads: it serves without yt-dlp, the
picture decoders or Redis's client loaded, and loads yt-dlp on its first job, which still succeeds. A real
process, its module list read from inside it."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import aiohttp

from tests.support.services import ROOT, run_mediabot, settings_env, wait_until
from tests.web.conftest import web_settings

# Runs `mediabot run` in this process; a thread writes the names in sys.modules to OUT whenever OUT.ask appears.
WRAPPER = """
import json, os, sys, threading, time

def watch(out):
    ask = out + ".ask"
    while True:
        if os.path.exists(ask):
            with open(out + ".tmp", "w") as fh:
                json.dump(sorted(sys.modules), fh)
            os.replace(out + ".tmp", out)
            os.unlink(ask)
        time.sleep(0.02)

threading.Thread(target=watch, args=(sys.argv[1],), daemon=True).start()
from mediabot.cli import main
raise SystemExit(main(["run"]))
"""

LIGHT = {"yt_dlp", "av", "PIL", "redis", "alembic", "boto3"}


async def modules(out: Path) -> set[str]:
    out.unlink(missing_ok=True)
    Path(f"{out}.ask").touch()
    await wait_until(out.exists, timeout=30)
    return {name.split(".")[0] for name in json.loads(out.read_text())}


async def test_run_loads_ytdlp_on_its_first_job_not_at_start(tmp_path: Path, media_site) -> None:  # type: ignore[no-untyped-def]
    settings = web_settings(tmp_path)
    env = settings_env(settings)
    code, out, err = await run_mediabot(env, "apikey", "create", "light")
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    dump = tmp_path / "modules.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRAPPER, str(dump), env=env, cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{settings.port}"
    auth = {"Authorization": f"Bearer {key}"}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:

            async def serving() -> bool:
                try:
                    async with http.get(f"{base}/health") as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await wait_until(serving, timeout=60)
            idle = await modules(dump)
            assert {"aiohttp", "core", "worker"} <= idle  # the dump is real: the app and the worker are there
            assert not idle & LIGHT, sorted(idle & LIGHT)

            body = {"url": media_site.url("/clip/light.mp4")}
            async with http.post(f"{base}/api/v1/jobs", json=body, headers=auth) as resp:
                assert resp.status == 202, await resp.text()
                job_id = (await resp.json())["id"]

            async def finished() -> dict | None:  # type: ignore[type-arg]
                async with http.get(f"{base}/api/v1/jobs/{job_id}", headers=auth) as resp:
                    job = await resp.json()
                return job if job["status"] in ("done", "failed", "cancelled") else None

            job = await wait_until(finished, timeout=60)
            assert job["status"] == "done", job
            assert "yt_dlp" in await modules(dump)
    finally:
        proc.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(proc.communicate(), 30))[0].decode()
    # The start-up messages are the usual ones, the yt-dlp version among them though it was not yet imported.
    assert re.search(r"this process runs yt-dlp \d{4}\.\d+\.\d+ from /", output), output[-3000:]
    assert "Open http://127.0.0.1" in output, output[-3000:]
