"""A fake bgutil PO token provider server (aiohttp on 127.0.0.1) that the real plugin talks to.

It answers the two routes the plugin uses (`GET /ping` -> `{"server_uptime", "version"}`, `POST /get_pot` ->
`{"poToken": ...}`) and records every call. Fixture: ``pot_provider`` (function scope), enabled by
``tests.fakes.pot_provider`` in ``pytest_plugins``; ``stop()`` takes it down, ``start()`` brings it back on
the same port.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

from core.media.pot import plugin_version
from tests.support.servers import free_port

TOKEN = base64.urlsafe_b64encode(b"a PO token from the fake provider").decode()


@dataclass
class PotCall:
    method: str
    path: str
    body: dict[str, Any] | None


class FakePotProvider:
    def __init__(self, version: str | None = None) -> None:
        self.version = version or plugin_version() or "2.0.2"
        self.port = free_port()
        self.calls: list[PotCall] = []
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def paths(self) -> list[str]:
        return [f"{c.method} {c.path}" for c in self.calls]

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ping", self._ping)
        app.router.add_post("/get_pot", self._get_pot)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _ping(self, request: web.Request) -> web.Response:
        self.calls.append(PotCall("GET", "/ping", None))
        return web.json_response({"server_uptime": 12.5, "version": self.version})

    async def _get_pot(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        self.calls.append(PotCall("POST", "/get_pot", body))
        return web.json_response({"poToken": TOKEN, "contentBinding": body.get("content_binding")})


@pytest.fixture
async def pot_provider() -> AsyncIterator[FakePotProvider]:
    fake = FakePotProvider()
    await fake.start()
    yield fake
    await fake.stop()
