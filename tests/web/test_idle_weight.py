"""`mediabot run` with nothing configured stays light until someone downloads: it serves without yt-dlp, the
picture decoders or Redis's client loaded, and its first job starts a download process (core.media.procpool)
that runs yt-dlp, so the serving process never loads it; stopping `run` leaves no such process behind. A real
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


def children_of(pid: int) -> set[int]:
    """Live processes whose parent is `pid` (zombies not yet reaped do not count)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(entry.name))
    return found


def running(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                alive.add(pid)
        except OSError:
            continue
    return alive


async def test_run_downloads_in_a_child_started_on_its_first_job(tmp_path: Path, media_site) -> None:  # type: ignore[no-untyped-def]
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
            assert not children_of(proc.pid)  # no download process before it is needed

            # A link's formats are read where the downloads run: the first question starts the child.
            query = {"url": media_site.url("/formats.html")}
            async with http.get(f"{base}/api/v1/formats", params=query, headers=auth) as resp:
                assert resp.status == 200, await resp.text()
                assert (await resp.json())["formats"]
            assert len(children_of(proc.pid)) == 1
            assert not await modules(dump) & LIGHT

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
            # The download ran in a child, which is still there for the next job; this process has no yt-dlp.
            children = children_of(proc.pid)
            assert len(children) == 1, children
            (child,) = children
            assert "core.media.procpool" in Path(f"/proc/{child}/cmdline").read_text()
            assert not await modules(dump) & LIGHT
    finally:
        children = children_of(proc.pid)
        proc.send_signal(signal.SIGTERM)
        output = (await asyncio.wait_for(proc.communicate(), 30))[0].decode()
    # Stopping `run` stops its download processes too.
    await wait_until(lambda: not running(children), timeout=10)
    # The start-up messages are the usual ones, the yt-dlp version among them though it was not yet imported.
    assert re.search(r"this process runs yt-dlp \d{4}\.\d+\.\d+ from /", output), output[-3000:]
    assert "Open http://127.0.0.1" in output, output[-3000:]
