"""Headless Chromium driven over the Chrome DevTools Protocol, with aiohttp and nothing else.

Debian's `chromium` is started in a process group of its own with a fresh profile; its DevTools WebSocket
is found in the profile's DevToolsActivePort file. No browser download, no driver binary to keep in step
with the browser, and every call is a coroutine on the test's own loop (the app under test runs there
too, so nothing may block it).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import json
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

# The flags this machine needs (.library/env/machines/python-svc.md): no sandbox as root, no GPU, and no
# background traffic, which the closed network would refuse.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--remote-debugging-port=0",
]
STEP_S = 0.05
PR_SET_PDEATHSIG = 1

# Scroll the element into view, wait until its box is the same on two frames running, check that nothing
# covers its middle, and arm a flag that its own click sets. Answers [x, y] or why not.
_AIM = """(async () => {
  const el = document.querySelector(SELECTOR);
  if (!el) return "not on the page";
  el.scrollIntoView({block: "center"});
  const frame = () => new Promise((done) => requestAnimationFrame(() => done()));
  let last = "";
  for (let i = 0; i < 50; i++) {
    await frame();
    const r = el.getBoundingClientRect();
    const box = [r.x + r.width / 2, r.y + r.height / 2];
    if (!r.width || !r.height) return "not visible";
    if (JSON.stringify(box) === last) {
      if (!el.contains(document.elementFromPoint(box[0], box[1]))) return "covered by another element";
      window.__cdpClicked = false;
      el.addEventListener("click", () => { window.__cdpClicked = true; }, {once: true, capture: true});
      return box;
    }
    last = JSON.stringify(box);
  }
  return "still moving";
})()"""

Event = dict[str, Any]


class CdpError(Exception):
    pass


class Browser:
    """One Chromium and its DevTools connection; pages get a browser context (profile) of their own."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, workdir: Path) -> None:
        self._ws = ws
        self.workdir = workdir
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._handlers: list[Callable[[Event], None]] = []
        self._reader = asyncio.create_task(self._read())

    async def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = 15,
    ) -> dict[str, Any]:
        self._next_id += 1
        call_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[call_id] = future
        message: dict[str, Any] = {"id": call_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        try:
            await self._ws.send_str(json.dumps(message))
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._pending.pop(call_id, None)

    def listen(
        self, method: str, where: Callable[[dict[str, Any]], bool] = lambda _: True
    ) -> asyncio.Future[dict[str, Any]]:
        """A future for the params of the next `method` event that satisfies `where` (listening starts now)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

        def handler(event: Event) -> None:
            if event.get("method") == method and not future.done() and where(event.get("params", {})):
                future.set_result(event.get("params", {}))

        self._handlers.append(handler)
        future.add_done_callback(lambda _: self._handlers.remove(handler))
        return future

    def on(self, handler: Callable[[Event], None]) -> None:
        self._handlers.append(handler)

    async def new_page(self, width: int, height: int, downloads: Path) -> Page:
        """A tab in a fresh browser context, sized like a phone, saving downloads under `downloads`."""
        context = (await self.send("Target.createBrowserContext"))["browserContextId"]
        downloads.mkdir(parents=True, exist_ok=True)
        await self.send(
            "Browser.setDownloadBehavior",
            {
                "behavior": "allowAndName",  # saved as downloads/<guid>
                "downloadPath": str(downloads),
                "browserContextId": context,
                "eventsEnabled": True,
            },
        )
        target = (
            await self.send("Target.createTarget", {"url": "about:blank", "browserContextId": context})
        )["targetId"]
        session = (await self.send("Target.attachToTarget", {"targetId": target, "flatten": True}))[
            "sessionId"
        ]
        page = Page(self, session)
        self.on(page._record)
        for domain in ("Page", "Runtime", "Network", "Log"):
            await page.send(f"{domain}.enable")
        # A phone's size, not its mobile mode: with `mobile: True` the synthesised clicks now and then landed
        # ~35 px off the element's box after a scroll (seen here); the page's layout follows the width alone.
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        # Overlay scrollbars, as on a phone (and a full-page screenshot is then as wide as the layout).
        await page.send("Emulation.setScrollbarsHidden", {"hidden": True})
        return page

    async def _read(self) -> None:
        try:
            async for message in self._ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                if "id" in data:
                    future = self._pending.get(data["id"])
                    if future is None or future.done():
                        continue
                    if "error" in data:
                        future.set_exception(CdpError(f"{data['error'].get('message')}: {data['error']}"))
                    else:
                        future.set_result(data.get("result", {}))
                else:
                    for handler in list(self._handlers):
                        try:
                            handler(data)
                        except Exception:  # a broken listener must not stop the connection
                            log.exception("CDP event handler failed on %s", data.get("method"))
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CdpError("the browser closed its DevTools connection"))

    async def close(self) -> None:
        await self._ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@dataclass
class Page:
    browser: Browser
    session: str
    requests: list[str] = field(default_factory=list)  # every URL the page fetched (not WebSockets)
    websockets: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # script exceptions, console errors, CSP refusals

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return await self.browser.send(method, params, session=self.session)

    def _record(self, event: Event) -> None:
        if event.get("sessionId") != self.session:
            return
        method, params = event.get("method"), event.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Network.webSocketCreated":
            self.websockets.append(params["url"])
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            self.errors.append(f"exception: {details.get('exception', {}).get('description') or details}")
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append("console: " + " ".join(str(a.get("value", a)) for a in params.get("args", [])))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            entry = params["entry"]
            self.errors.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}")

    async def goto(self, url: str) -> None:
        loaded = self.browser.listen("Page.loadEventFired")
        try:
            result = await self.send("Page.navigate", {"url": url})
            if result.get("errorText"):
                raise CdpError(f"navigation to {url} failed: {result['errorText']}")
            async with asyncio.timeout(15):
                await loaded
        finally:
            loaded.cancel()

    async def evaluate(self, expression: str) -> Any:
        result = await self.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def text(self, selector: str) -> str:
        return await self.evaluate(f"document.querySelector({json.dumps(selector)})?.textContent ?? ''")

    async def wait_for(self, expression: str, timeout: float = 15, what: str = "") -> None:
        """Poll `expression` in the page until it is truthy (in JavaScript's sense); on timeout, say what
        the page showed."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            if await self.evaluate(f"!!({expression})"):
                return
            if asyncio.get_running_loop().time() > deadline:
                shown = await self.evaluate("document.querySelector('main')?.innerText")
                raise AssertionError(f"timed out waiting for {what or expression}; the page shows:\n{shown}")
            await asyncio.sleep(STEP_S)

    async def click(self, selector: str, attempts: int = 3) -> None:
        """A real mouse click in the middle of the element, once its box has stopped moving (as Playwright
        does); retried when the click landed elsewhere because the page moved in between."""
        for _ in range(attempts):
            spot = await self.evaluate(_AIM.replace("SELECTOR", json.dumps(selector)))
            if not isinstance(spot, list):
                raise AssertionError(f"cannot click {selector}: {spot}")
            x, y = spot
            for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
                await self.send(
                    "Input.dispatchMouseEvent",
                    {"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1},
                )
            if await self.evaluate("window.__cdpClicked === true"):
                return
            log.info("the click on %s landed elsewhere (the page moved); again", selector)
        raise AssertionError(f"{selector} did not receive the click")

    async def type(self, selector: str, text: str) -> None:
        await self.click(selector)
        await self.send("Input.insertText", {"text": text})

    async def select(self, selector: str, value: str) -> None:
        """Choose an <option> as the keyboard would: focus the list, set it, fire `change`."""
        await self.evaluate(
            f"""(() => {{
                const el = document.querySelector({json.dumps(selector)});
                el.focus(); el.value = {json.dumps(value)};
                el.dispatchEvent(new Event("input", {{bubbles: true}}));
                el.dispatchEvent(new Event("change", {{bubbles: true}}));
            }})()"""
        )

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(shot["data"]))


async def _devtools_address(profile: Path, proc: asyncio.subprocess.Process, timeout: float) -> str:
    """Chromium writes its DevTools port and path into the profile once it listens."""
    marker = profile / "DevToolsActivePort"
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if marker.exists():
            lines = marker.read_text().split()
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        if proc.returncode is not None:
            raise CdpError(f"chromium exited with {proc.returncode} before listening")
        if asyncio.get_running_loop().time() > deadline:
            raise CdpError(f"chromium did not open its DevTools port within {timeout} s")
        await asyncio.sleep(STEP_S)


async def _stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM to Chromium's whole process group (renderers, GPU, zygote), then SIGKILL if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            async with asyncio.timeout(wait_s):
                await proc.wait()
            break
        except TimeoutError:
            continue
    # Children outlive a parent that died first: the group is ours alone, so make sure it is gone.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL when pytest itself dies (killed, not just failed), so no browser
    outlives the run; its own children notice their parent is gone and quit."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@contextlib.asynccontextmanager
async def launch(executable: str, workdir: Path, timeout: float = 20) -> AsyncIterator[Browser]:
    """Chromium with a fresh profile under `workdir`; always stopped, whatever happens inside the block."""
    profile = workdir / "profile"
    profile.mkdir(parents=True, exist_ok=True)
    with open(workdir / "chromium.log", "wb") as log:
        proc = await asyncio.create_subprocess_exec(
            executable,
            *FLAGS,
            f"--user-data-dir={profile}",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    try:
        address = await _devtools_address(profile, proc, timeout)
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(address, max_msg_size=0)
            browser = Browser(ws, workdir)
            try:
                yield browser
            finally:
                with contextlib.suppress(Exception):
                    await browser.close()
    finally:
        await _stop(proc)
