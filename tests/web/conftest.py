"""The web app on a real port on 127.0.0.1, over real services, with an API key ready."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.bootstrap import Services
from core.config import Settings
from tests.support.servers import free_port
from tests.support.services import make_settings, running_services, wait_until
from web.server import serving


@dataclass
class Api:
    """A running app and a client session aimed at it."""

    services: Services
    base: str
    http: aiohttp.ClientSession
    key: str

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.key}"}

    async def new_key(self, name: str) -> str:
        _, key = await self.services.keys.create(name)
        return key

    async def call(
        self,
        method: str,
        path: str,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
        **kw: Any,
    ) -> tuple[int, Any, aiohttp.ClientResponse]:
        all_headers = {**self.auth(key), **(headers or {})}
        async with self.http.request(method, self.base + path, headers=all_headers, **kw) as resp:
            body: Any = await resp.read()
            if resp.content_type == "application/json":
                body = json.loads(body)
            return resp.status, body, resp

    async def submit(self, url: str, *, key: str | None = None, **fields: Any) -> tuple[int, Any]:
        status, body, _ = await self.call("POST", "/api/v1/jobs", key=key, json={"url": url, **fields})
        return status, body

    async def job(self, job_id: str, *, key: str | None = None) -> dict[str, Any]:
        status, body, _ = await self.call("GET", f"/api/v1/jobs/{job_id}", key=key)
        assert status == 200, body
        return body

    async def wait_status(
        self, job_id: str, *statuses: str, timeout: float = 30, key: str | None = None
    ) -> dict:
        async def check() -> dict | None:
            body = await self.job(job_id, key=key)
            return body if body["status"] in statuses else None

        return await wait_until(check, timeout=timeout, interval=0.05)

    def ws_url(self, path: str) -> str:
        return self.base.replace("http://", "ws://") + path


@contextlib.asynccontextmanager
async def web_api(settings: Settings, *, worker: bool = True) -> AsyncIterator[Api]:
    async with (
        running_services(settings, worker=worker) as services,
        serving(services),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
    ):
        _, key = await services.keys.create(f"tester-{uuid.uuid4().hex[:6]}")
        yield Api(services=services, base=f"http://127.0.0.1:{settings.port}", http=http, key=key)


def web_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return make_settings(tmp_path, port=free_port(), **overrides)


@pytest.fixture
async def api(tmp_path: Path, database_url: str) -> AsyncIterator[Api]:
    """The app over the embedded services, on SQLite and on PostgreSQL."""
    async with web_api(web_settings(tmp_path, database_url=database_url)) as running:
        yield running


@pytest.fixture
def start_api(tmp_path: Path) -> Callable[..., contextlib.AbstractAsyncContextManager[Api]]:
    """`async with start_api(**settings) as api:` the app on SQLite with those settings."""
    count = 0

    def start(*, worker: bool = True, **overrides: Any) -> contextlib.AbstractAsyncContextManager[Api]:
        nonlocal count
        count += 1
        return web_api(web_settings(tmp_path / f"app{count}", **overrides), worker=worker)

    return start
