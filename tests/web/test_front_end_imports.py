"""A front-end process carries no worker: `mediabot web` never loads yt-dlp, Alembic or boto3 (the first
two run only in workers and migrations, boto3 only with S3 storage), checked in a real process once it
serves, with everything else left at its defaults."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from pathlib import Path

from tests.support.services import ROOT, run_mediabot, settings_env, wait_until
from tests.web.conftest import web_settings

HEAVY = ("yt_dlp", "boto3", "botocore", "alembic")

# Runs `mediabot web` in this process; a thread writes the names in sys.modules to a file once the port
# answers, before anything else can import more.
WRAPPER = """
import json, socket, sys, threading, time

def watch(port, out):
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.01)
    with open(out, "w") as fh:
        json.dump(sorted(sys.modules), fh)

threading.Thread(target=watch, args=(int(sys.argv[1]), sys.argv[2]), daemon=True).start()
from mediabot.cli import main
raise SystemExit(main(["web"]))
"""


async def loaded_by_web(env: dict[str, str], port: int, out: Path) -> set[str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRAPPER, str(port), str(out), env=env, cwd=str(ROOT),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await wait_until(lambda: out.exists() and out.stat().st_size > 0 or proc.returncode is not None, 60)
        assert out.exists(), (await proc.communicate())[1].decode()[-2000:]
        return {name.split(".")[0] for name in json.loads(out.read_text())}
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)


async def test_a_web_front_end_loads_no_worker_parts(tmp_path: Path, redis_url: str) -> None:
    settings = web_settings(tmp_path, redis_url=redis_url)
    env = settings_env(settings)
    code, _, err = await run_mediabot(env, "db", "upgrade")
    assert code == 0, err
    loaded = await loaded_by_web(env, settings.port, tmp_path / "modules.json")
    assert "aiohttp" in loaded and "core" in loaded  # the dump is real: the app and the core are there
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert "worker" in loaded  # the queue's client side (worker.queue), not the worker itself
    assert not {"worker.runner", "worker.host", "core.media.downloader"} & set(
        json.loads((tmp_path / "modules.json").read_text())
    )


async def test_the_embedded_web_process_skips_alembic_and_boto3_once_migrated(tmp_path: Path) -> None:
    # Without Redis, `mediabot web` also runs the worker, so yt-dlp is its business; a migrated database is
    # checked without Alembic, and local storage needs no boto3.
    settings = web_settings(tmp_path)
    env = settings_env(settings)
    code, _, err = await run_mediabot(env, "db", "upgrade")
    assert code == 0, err
    loaded = await loaded_by_web(env, settings.port, tmp_path / "modules.json")
    assert "aiohttp" in loaded
    assert not loaded & {"boto3", "botocore", "alembic"}, sorted(loaded & {"boto3", "botocore", "alembic"})
