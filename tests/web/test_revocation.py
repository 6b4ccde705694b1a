"""Revoking a key closes the WebSockets it opened, with a code and reason a client can read, also when the
key is revoked by another process (`mediabot apikey revoke`, or another process's ApiKeyService)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.apikeys import VERIFY_CACHE_S, ApiKeyService
from core.db.session import create_engine, session_factory
from tests.support.services import run_mediabot, settings_env
from tests.web.conftest import Api, web_api, web_settings
from web.sockets import REVOKED_CODE

# How long the test waits before calling a socket still open: far beyond VERIFY_CACHE_S, so a slow machine
# does not fail it; the time actually taken is printed.
GIVE_UP_S = 30


async def open_sockets(api: Api, key: str, job_id: str) -> list[aiohttp.ClientWebSocketResponse]:
    sockets = []
    for path in ("/api/v1/events", f"/api/v1/jobs/{job_id}/events"):
        ws = await api.http.ws_connect(api.ws_url(path), headers=api.auth(key))
        sockets.append(ws)
    # The job's socket sends the job's state first: the stream is live.
    first = await asyncio.wait_for(sockets[1].receive_json(), GIVE_UP_S)
    assert first["job"]["id"] == job_id
    return sockets


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> tuple[int | None, str]:
    """Read until the server closes the socket; its close code and reason."""
    while True:
        message = await asyncio.wait_for(ws.receive(), GIVE_UP_S)
        if message.type == aiohttp.WSMsgType.CLOSE:
            return message.data, message.extra or ""
        if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return ws.close_code, ""


async def revoke_elsewhere(api: Api, how: str, name: str) -> None:
    settings = api.services.settings
    if how == "cli":
        code, out, err = await run_mediabot(settings_env(settings), "apikey", "revoke", name)
        assert code == 0 and name in out, err
        return
    engine = create_engine(settings.database_url)  # another process's own engine and cache
    try:
        await ApiKeyService(session_factory(engine), settings).revoke(name)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("how", ["cli", "service"])
async def test_revoking_a_key_closes_its_websockets(
    tmp_path: Path, database_url: str, media_site: Any, how: str
) -> None:
    # No worker: the job stays queued, so its socket stays open until the server closes it.
    async with web_api(web_settings(tmp_path, database_url=database_url), worker=False) as api:
        doomed = await api.new_key("doomed")
        status, job = await api.submit(media_site.url("/video.mp4"), key=doomed)
        assert status == 202, job
        theirs = await open_sockets(api, doomed, job["id"])
        _, other_job = await api.submit(media_site.url("/audio.m4a"), kind="audio")
        ours = await open_sockets(api, api.key, other_job["id"])

        started = time.monotonic()
        await revoke_elsewhere(api, how, "doomed")
        for ws in theirs:
            code, reason = await closed_with(ws)
            assert (code, reason) == (REVOKED_CODE, "api key revoked")
        taken = time.monotonic() - started
        print(f"sockets closed {taken:.1f}s after the revocation (VERIFY_CACHE_S={VERIFY_CACHE_S})")

        # New connections with that key are refused; another key's sockets go on.
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await api.http.ws_connect(api.ws_url("/api/v1/events"), headers=api.auth(doomed))
        assert refused.value.status == 401
        assert not any(ws.closed for ws in ours)
        await api.call("DELETE", f"/api/v1/jobs/{other_job['id']}")
        assert (await asyncio.wait_for(ours[1].receive_json(), GIVE_UP_S))["job"]["status"] == "cancelled"
        for ws in ours:
            await ws.close()
