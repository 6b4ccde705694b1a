"""Headless Chromium through Playwright, and one running app for the page tests of this folder.

Debian's /usr/bin/chromium is driven through `executable_path` (no browser is ever downloaded). Playwright's
async API runs on the suite's session event loop, the same loop as the app under test, so nothing blocks it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import WSCloseCode, web
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from core.config import Settings
from tests.support.services import IN_CI, running_services
from tests.web.conftest import Api, web_settings
from web.keys import SOCKETS
from web.server import serving

# The flags this machine needs: no sandbox as root, no GPU, and no background traffic (the closed network
# would refuse it).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def chromium_path() -> str:
    path = os.environ.get("MEDIABOT_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.path.exists(path):
        message = "chromium is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + " (CI=true: the browser tests must run)")
        pytest.skip(message)
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser(chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        running = await pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield running
        finally:
            await running.close()


@dataclass
class App:
    """The app on a real port (its runner at hand, to drop its WebSockets)."""

    api: Api
    runner: web.AppRunner

    @property
    def base(self) -> str:
        return self.api.base

    async def drop_websockets(self) -> int:
        """Close every WebSocket from the server's side, as a restart or a proxy timeout would."""
        sockets = [ws for ws in list(self.runner.app[SOCKETS]) if not ws.closed]
        for ws in sockets:
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"test drop")
        return len(sockets)


def app_settings(data: Path, **overrides: Any) -> Settings:
    return web_settings(
        data, worker_concurrency=2, api_rate_per_minute=1000, max_playlist_items=5, **overrides
    )


@contextlib.asynccontextmanager
async def serve_app(settings: Settings, key: str | None = None) -> AsyncIterator[App]:
    """The app as `mediabot run` serves it (an in-process worker), with `key` or a new one ready."""
    async with (
        running_services(settings) as services,
        serving(services) as runner,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
    ):
        if key is None:
            _, key = await services.keys.create("browser-tests")
        api = Api(services=services, base=f"http://127.0.0.1:{settings.port}", http=http, key=key)
        yield App(api=api, runner=runner)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def app(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[App]:
    async with serve_app(app_settings(tmp_path_factory.mktemp("app"))) as running:
        yield running


@dataclass
class Tab:
    """A page in a context of its own, with everything it asked for, heard and said recorded."""

    page: Page
    context: BrowserContext
    key: str
    requests: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    # (time.perf_counter(), socket URL, parsed message) for every WebSocket message received
    frames: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def job_frames(self, job_id: str) -> list[dict[str, Any]]:
        return [m["job"] for _, _, m in self.frames if m.get("job", {}).get("id") == job_id]


async def open_tab(
    browser: Browser,
    app: App,
    key: str | None,
    *,
    viewport: dict[str, int] = PHONE,
    color_scheme: str = "light",
    store_key: bool = True,
    locale: str = "en-GB",
) -> Tab:
    """A fresh browser profile on `/`; with `store_key`, the key is already saved in it (as after a first
    visit)."""
    context = await browser.new_context(
        viewport=viewport,  # type: ignore[arg-type]
        color_scheme=color_scheme,  # type: ignore[arg-type]
        accept_downloads=True,
        locale=locale,  # the browser's language: navigator.languages and Accept-Language
        timezone_id="UTC",
    )
    context.set_default_timeout(15_000)
    if store_key and key:
        await context.add_init_script(f"localStorage.setItem('mediabot.apiKey', {json.dumps(key)})")
    page = await context.new_page()
    tab = Tab(page=page, context=context, key=key or "")
    page.on("request", lambda request: tab.requests.append(request.url))
    page.on("console", lambda message: tab.console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: tab.errors.append(str(error)))

    def on_socket(ws: Any) -> None:
        tab.sockets.append(ws.url)

        def on_frame(payload: str | bytes) -> None:
            try:
                message = json.loads(payload)
            except ValueError:
                return
            tab.frames.append((time.perf_counter(), ws.url, message))

        ws.on("framereceived", on_frame)

    page.on("websocket", on_socket)
    await page.goto(app.base + "/")
    await page.wait_for_function("() => document.documentElement.dataset.ready === 'true'")
    return tab


def assert_clean(
    tab: Tab, app: App, log_text: str, *, followed: bool = True, expected: tuple[str, ...] = ()
) -> None:
    """Nothing from elsewhere; the key in no request URL, no WebSocket URL (it travels as a subprotocol), no
    console line and no log line; a clean console: no script, CSP or handshake errors, no error at all but
    the `expected` ones (pieces of the lines)."""
    key = tab.key
    assert tab.requests, "the page made no requests?"
    assert all(u.startswith(app.base + "/") or u.startswith("data:") for u in tab.requests), tab.requests
    assert not [u for u in tab.requests if key in u], "the key leaked into a request URL"
    assert tab.sockets or not followed, "progress was not followed over a WebSocket"
    for address in tab.sockets:
        parts = urlsplit(address)
        assert address.startswith(app.base.replace("http://", "ws://") + "/api/v1/"), address
        assert key not in address and "token" not in parse_qs(parts.query), (
            f"the key is in a WebSocket URL: {address}"
        )
    assert not [line for line in tab.console if key in line], "the key reached the console"
    assert key not in log_text, "the key reached the server's log"
    assert tab.errors == []
    unexpected = [
        line
        for line in tab.console
        if (line.startswith("error:") or "WebSocket" in line or "Content Security Policy" in line)
        and not any(piece in line for piece in expected)
    ]
    assert unexpected == [], unexpected


def size_words(n: int) -> str:
    """A size as the page writes it (words.js `bytes`)."""
    units = ["B", "KB", "MB", "GB", "TB"]
    value, unit = float(n), 0
    while value >= 1000 and unit < len(units) - 1:
        value /= 1000
        unit += 1
    shown = str(int(value + 0.5)) if value >= 100 or unit == 0 else f"{value:.1f}"  # Math.round, toFixed(1)
    return f"{shown} {units[unit]}"


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"
