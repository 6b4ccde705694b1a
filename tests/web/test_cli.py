"""`mediabot apikey ...` and the first `mediabot run`, as real processes."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp

from core import db
from core.apikeys import ApiKeyService
from tests.support.services import ROOT, run_mediabot, settings_env
from tests.web.conftest import web_settings

KEY = re.compile(r"mb_[A-Za-z0-9_-]{40,}")


async def test_apikey_commands(tmp_path: Path) -> None:
    settings = web_settings(tmp_path)
    env = settings_env(settings)

    code, out, err = await run_mediabot(env, "apikey", "create", "ci-bot")
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    assert KEY.fullmatch(key)
    assert key not in err  # never in the logs

    engine = db.create_engine(settings.database_url)
    try:
        keys = ApiKeyService(db.session_factory(engine), settings, cache_s=0)  # read the database every time
        found = await keys.verify(key)
        assert found is not None and found.name == "ci-bot"

        code, out, err = await run_mediabot(env, "apikey", "revoke", "ci-bot")
        assert code == 0 and "ci-bot" in out, err
        assert await keys.verify(key) is None
        listed = [
            line for line in (await run_mediabot(env, "apikey", "list"))[1].splitlines() if "ci-bot" in line
        ]
        assert len(listed) == 1 and "revoked" in listed[0] and key not in listed[0]
    finally:
        await engine.dispose()


async def test_first_run_prints_a_working_key(tmp_path: Path) -> None:
    settings = web_settings(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediabot",
        "run",
        env=settings_env(settings),
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        async with asyncio.timeout(45):
            while not any(KEY.search(line) for line in lines) or not any("curl" in line for line in lines):
                line = (await proc.stdout.readline()).decode()
                assert line, "mediabot run exited: " + "".join(lines)
                lines.append(line)
        key = next(m.group(0) for line in lines if (m := KEY.search(line)))
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{settings.public_url}/api/v1/jobs", headers={"Authorization": f"Bearer {key}"}
            ) as resp:
                assert resp.status == 200
                assert await resp.json() == {"items": [], "next_cursor": None}
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
