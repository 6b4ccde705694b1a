"""`mediabot apikey ...`, `mediabot web` and the first `mediabot run`, as real processes."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp

from core.apikeys import ApiKeyService
from core.config import Settings
from core.db import migrate
from core.db.session import create_engine, session_factory
from tests.support.services import (
    ROOT,
    fresh_pg_database,
    run_mediabot,
    settings_env,
    wait_until,
)
from tests.web.conftest import web_api, web_settings

KEY = re.compile(r"mb_[A-Za-z0-9_-]{40,}")


async def test_apikey_commands(tmp_path: Path) -> None:
    settings = web_settings(tmp_path)
    env = settings_env(settings)

    code, out, err = await run_mediabot(env, "apikey", "create", "ci-bot")
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    assert KEY.fullmatch(key)
    assert key not in err  # never in the logs

    engine = create_engine(settings.database_url)
    try:
        keys = ApiKeyService(session_factory(engine), settings, cache_s=0)  # read the database every time
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


async def _run_until(settings: Settings, done: Callable[[list[str]], bool]) -> list[str]:
    """Start `mediabot run`, read what it prints until `done(lines)`, stop it (SIGTERM, exit 0)."""
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
            while not done(lines):
                line = (await proc.stdout.readline()).decode()
                assert line, "mediabot run exited: " + "".join(lines)
                lines.append(line)
        if any(KEY.search(line) for line in lines):
            key = next(m.group(0) for line in lines if (m := KEY.search(line)))
            async with aiohttp.ClientSession() as http:
                async with http.get(
                    f"{settings.public_url}/api/v1/jobs", headers={"Authorization": f"Bearer {key}"}
                ) as resp:
                    assert resp.status == 200
                    assert await resp.json() == {"items": [], "next_cursor": None}
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
        return lines
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_first_run_prints_a_working_key_and_where_to_go(tmp_path: Path) -> None:
    settings = web_settings(tmp_path)
    page = f"Open {settings.public_url}/ in your browser"
    lines = await _run_until(settings, lambda lines: any("/api/docs" in line for line in lines))
    text = "".join(lines)
    assert KEY.search(text), text
    assert page in text, text
    curl = next(i for i, line in enumerate(lines) if "curl" in line)
    assert "example" in lines[curl - 1], "the curl line's link is only an example: say so"

    # Later runs: no key (it was shown once), but the page's address and how to get a key.
    lines = await _run_until(settings, lambda lines: any("/api/docs" in line for line in lines))
    text = "".join(lines)
    assert not KEY.search(text) and "curl" not in text, text
    opening = next(line for line in lines if page in line)
    assert "mediabot apikey create NAME" in opening, opening


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


async def test_roles_on_an_unmigrated_database_say_what_to_run(
    tmp_path: Path, redis_url: str, pg_admin_url: str
) -> None:
    """With a shared queue, other processes may use the same database: no role migrates it on its own
    (they would race); each says in one line what to run, and exits non-zero."""
    settings = web_settings(tmp_path, redis_url=redis_url, telegram_token="1:x", discord_token="x")
    env = settings_env(settings)
    for role in ("web", "worker", "telegram", "discord"):
        code, _, err = await run_mediabot(env, role, timeout=30)
        assert code != 0 and "run `mediabot db upgrade`" in _one_line(err), (role, err)
    assert not (settings.data_dir / "mediabot.db").exists() or not await migrate.schema_revision(
        settings.database_url
    )

    # The same on an empty PostgreSQL database, and one with an older schema.
    async with fresh_pg_database(pg_admin_url, "template0") as url:
        pg_env = {**env, "MEDIABOT_DATABASE_URL": url}
        code, _, err = await run_mediabot(pg_env, "web", timeout=30)
        assert code != 0 and "no tables yet" in _one_line(err)
        revisions, head = migrate.known_revisions()
        # The one just before the head in the chain (ids are not in chain order once branches are re-chained:
        # 0010 -> 0012 -> 0014 -> 0011 -> 0013).
        older = next(
            found.group(1)
            for path in (migrate.MIGRATIONS_DIR / "versions").glob("*.py")
            if re.search(rf'^revision = "{head}"', text := path.read_text(encoding="utf-8"), re.M)
            and (found := re.search(r'^down_revision = "([^"]+)"', text, re.M))
        )
        assert older in revisions
        await migrate.upgrade(url, older)
        code, _, err = await run_mediabot(pg_env, "web", timeout=30)
        line = _one_line(err)
        assert code != 0 and f"revision {older}" in line and head in line and "mediabot db upgrade" in line
        code, _, err = await run_mediabot(pg_env, "db", "upgrade")
        assert code == 0, err
        assert await migrate.schema_problem(url) is None


async def test_web_alone_on_a_fresh_data_dir_migrates_and_serves_the_page(tmp_path: Path) -> None:
    """Embedded (SQLite, no Redis), `mediabot web` is the only process: it migrates, then serves the page,
    the API with its docs, health and metrics."""
    settings = web_settings(tmp_path)
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 - closed below
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediabot",
        "web",
        env=settings_env(settings),
        cwd=str(ROOT),
        stdout=log,
        stderr=log,
    )
    try:
        async with aiohttp.ClientSession() as http:

            async def get(path: str) -> tuple[int, str]:
                try:
                    async with http.get(f"{settings.public_url}{path}") as resp:
                        return resp.status, resp.content_type
                except aiohttp.ClientError:
                    assert proc.returncode is None, (tmp_path / "web.log").read_text()
                    return 0, ""

            async def healthy() -> bool:
                return (await get("/health"))[0] == 200

            await wait_until(healthy, timeout=60)
            assert await get("/") == (200, "text/html")
            assert await get("/api/docs") == (200, "text/html")
            assert (await get("/api/openapi.json"))[0] == 200
            assert (await get("/metrics"))[0] == 200
            assert (await get("/api/v1/jobs"))[0] == 401
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()


async def test_cli_downloads_show_in_the_default_keys_history(tmp_path: Path, media_site) -> None:
    """`mediabot download` submits as the API key named `default` (the one the first `run` creates), so the
    web page, which lists a key's API jobs, shows them; without that key it says so in one line."""
    settings = web_settings(tmp_path)
    env = settings_env(settings)
    clip = media_site.url(f"/clip/{uuid.uuid4().hex}.mp4")
    code, out, err = await run_mediabot(env, "download", clip)
    assert code == 0, err
    assert "(not in the web page's history: no active API key is named 'default')" in err

    code, out, err = await run_mediabot(env, "apikey", "create", "default")
    assert code == 0, err
    key = out.strip().splitlines()[-1]
    other = media_site.url(f"/clip/{uuid.uuid4().hex}.mp4")
    code, out, err = await run_mediabot(env, "download", other)
    assert code == 0 and "web page" not in err, err

    async with web_api(settings) as api:
        status, body, _ = await api.call("GET", "/api/v1/jobs", key=key)
        assert status == 200
        assert [(job["url"], job["status"]) for job in body["items"]] == [(other, "done")]
        assert body["items"][0]["file_url"]


async def test_a_port_in_use_names_the_setting_that_moves_it(tmp_path: Path) -> None:
    """aiohttp's own words name only the address; a person starting a second mediabot wants the setting."""
    settings = web_settings(tmp_path)
    taken = await asyncio.start_server(lambda r, w: w.close(), settings.host, settings.port)
    async with taken:
        code, _, err = await run_mediabot(settings_env(settings), "run", timeout=45)
    # Logs go to stderr as well; the sentence for the person is its last line, and no traceback.
    line = err.strip().splitlines()[-1]
    assert code == 1 and "Traceback" not in err, err
    assert f"port {settings.port} is already in use" in line and "MEDIABOT_PORT" in line, err
