"""A media site that guards itself as the big ones do (aiohttp, loopback only), for the pacing tests.

It counts requests per account (the `session` cookie) and per client address, and past a budget answers
429 Too Many Requests or a YouTube-like bot check (`403 Sign in to confirm you're not a bot`: yt-dlp puts
the reason in its error, as it does YouTube's words). It has pages only an account may fetch, hands a
renewed session cookie (Set-Cookie) with every success, and records how many downloads overlapped.

Routes (GET and HEAD):

=========================  ============================================================================
``/media/{name}.mp4``      the small video; ``?gate=G`` sends the big one, 64 KiB every 0.1 s until
                           ``open_gate(G)``, then the rest at once (a download held open on purpose)
``/members/{name}.mp4``    the small video for a logged-in account, else ``403 Login required``
``/page/{name}.html``      a page whose ``og:video`` is ``/media/{name}.mp4`` (same query)
``/channel/{name}.xml``    an RSS feed (a channel, as the subscriptions list one) of ``channel(name, n)``
                           entries ``/media/{name}-{i}.mp4``, newest first
=========================  ============================================================================

Every route above is guarded (``flag(account or address)`` refuses one whatever its budget). Accounts: ``add_account(name)`` gives the first session token, and
``cookie_text(name)`` a Netscape cookies.txt holding it; each success sets a new token (the old ones stay
valid unless ``strict=True``), so a test can tell a refreshed file from a stale one by ``latest_token``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import itertools
import socket
import time
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from aiohttp import web

from .media import MediaFiles

BOT_REASON = "Sign in to confirm you're not a bot"
GATE_CHUNK = 64 * 1024
GATE_TRICKLE_S = 0.1
CHUNK = 256 * 1024

BOT_PAGE = """<!DOCTYPE html><html><head><title>YouTube</title></head><body>
<div id="player-error"><h1>Sign in to confirm you're not a bot</h1>
<p>This helps protect our community. <a href="/login">Learn more</a></p></div></body></html>"""


@dataclass(frozen=True)
class Hit:
    path: str
    account: str | None
    address: str
    refused: int | None  # the status when the site refused, else None


class GuardedSite:
    def __init__(
        self,
        files: MediaFiles,
        *,
        host: str = "127.0.0.1",
        budget_per_account: int | None = None,
        budget_per_address: int | None = None,
        refusal: Literal["429", "bot"] = "429",
        strict: bool = False,
    ) -> None:
        if not host.startswith("127."):
            raise ValueError("GuardedSite serves on loopback only")
        self.files = files
        self.host = host
        self.budget_per_account = budget_per_account
        self.budget_per_address = budget_per_address
        self.refusal = refusal
        self.strict = strict
        self.hits: list[Hit] = []
        self.by_account: Counter[str] = Counter()
        self.by_address: Counter[str] = Counter()
        self.active = 0  # responses sending a body now (a probe that hung up leaves within 0.1 s)
        self.completed: list[tuple[float, float]] = []  # (start, end) of every body sent in full
        self.latest_token: dict[str, str] = {}
        self.flagged: set[str] = set()  # accounts and addresses refused whatever their budget
        self._tokens: dict[str, str] = {}  # token -> account
        self._serial = itertools.count(1)
        self._gates: dict[str, asyncio.Event] = {}
        self._small = b""
        self._big = b""
        self._runner: web.AppRunner | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self._channels: dict[str, int] = {}
        self.base_url = ""

    async def start(self) -> GuardedSite:
        self._small, self._big = await asyncio.to_thread(
            lambda: (self.files.video_mp4.read_bytes(), self.files.big_mp4.read_bytes())
        )
        app = web.Application()
        app.router.add_get("/media/{name}.mp4", self._media)
        app.router.add_get("/members/{name}.mp4", self._members)
        app.router.add_get("/page/{name}.html", self._page)
        app.router.add_get("/channel/{name}.xml", self._channel)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0, handle_signals=False)
        await self._runner.setup()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        sock.listen(128)
        sock.setblocking(False)
        await web.SockSite(self._runner, sock).start()
        self.base_url = f"http://{self.host}:{sock.getsockname()[1]}"
        return self

    async def stop(self) -> None:
        for gate in self._gates.values():
            gate.set()
        for transport in list(self._transports):
            transport.abort()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> GuardedSite:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def url(self, path: str) -> str:
        return self.base_url + path

    # ------------------------------------------------------------------ accounts and gates

    def _issue(self, account: str) -> str:
        token = f"{account}.{next(self._serial)}"
        self._tokens[token] = account
        self.latest_token[account] = token
        return token

    def add_account(self, name: str) -> str:
        return self._issue(name)

    def expire_account(self, name: str) -> None:
        """The site logs the account out: none of its tokens works any more."""
        for token in [t for t, a in self._tokens.items() if a == name]:
            del self._tokens[token]

    def cookie_text(self, account: str, token: str | None = None) -> str:
        """A Netscape cookies.txt with the account's session, as a browser export would write it."""
        token = token or self.latest_token[account]
        expires = int(time.time()) + 30 * 86400
        return (
            "# Netscape HTTP Cookie File\n\n"
            f"{self.host}\tFALSE\t/\tFALSE\t{expires}\tsession\t{token}\n"
            f"{self.host}\tFALSE\t/\tFALSE\t{expires}\tprefs\tdark\n"
        )

    def flag(self, account_or_address: str) -> None:
        """Refuse this account (or client address) from now on, as a site that has flagged it."""
        self.flagged.add(account_or_address)

    def gate(self, name: str) -> asyncio.Event:
        return self._gates.setdefault(name, asyncio.Event())

    def open_gate(self, name: str) -> None:
        self.gate(name).set()

    def reset(self) -> None:
        self.hits.clear()
        self.by_account.clear()
        self.by_address.clear()
        self.completed.clear()

    @property
    def max_active(self) -> int:
        """The most downloads that overlapped, among those sent in full: yt-dlp's probe of a link (it reads
        the headers and hangs up) is not a download."""
        edges = sorted([(start, 1) for start, _ in self.completed] + [(end, -1) for _, end in self.completed])
        most = now = 0
        for _, step in edges:  # an end sorts before a start at the same instant
            now += step
            most = max(most, now)
        return most

    # ------------------------------------------------------------------ handlers

    def _account(self, request: web.Request) -> str | None:
        token = request.cookies.get("session")
        account = self._tokens.get(token or "")
        if account is None or (self.strict and self.latest_token.get(account) != token):
            return None
        return account

    def _guard(self, request: web.Request) -> tuple[str | None, web.StreamResponse | None]:
        """Count the request; the refusal when it is past a budget."""
        account = self._account(request)
        address = request.remote or "?"
        self.by_account[account or "-"] += 1
        self.by_address[address] += 1
        over = (
            account in self.flagged
            or address in self.flagged
            or account is not None
            and self.budget_per_account is not None
            and self.by_account[account] > self.budget_per_account
        ) or (self.budget_per_address is not None and self.by_address[address] > self.budget_per_address)
        refusal: web.StreamResponse | None = None
        if over:
            if self.refusal == "bot":
                refusal = web.Response(status=403, reason=BOT_REASON, text=BOT_PAGE, content_type="text/html")
            else:
                refusal = web.Response(status=429, text="Too Many Requests\n", headers={"Retry-After": "60"})
        self.hits.append(Hit(request.path, account, address, refusal.status if refusal else None))
        return account, refusal

    async def _media(self, request: web.Request) -> web.StreamResponse:
        account, refusal = self._guard(request)
        if refusal is not None:
            return refusal
        return await self._send(request, account)

    async def _members(self, request: web.Request) -> web.StreamResponse:
        account, refusal = self._guard(request)
        if refusal is not None:
            return refusal
        if account is None:
            return web.Response(status=403, reason="Login required", text="Log in to see this video.\n")
        return await self._send(request, account)

    async def _page(self, request: web.Request) -> web.StreamResponse:
        _, refusal = self._guard(request)
        if refusal is not None:
            return refusal
        name = request.match_info["name"]
        media = html.escape(
            self.url(f"/media/{name}.mp4" + (f"?{request.query_string}" if request.query_string else ""))
        )
        body = (
            f"<!DOCTYPE html><html><head><title>{html.escape(name)}</title>"
            f'<meta property="og:video" content="{media}"></head><body></body></html>'
        )
        return web.Response(text=body, content_type="text/html")

    def channel(self, name: str, n: int) -> str:
        """Give channel `name` `n` entries (a new one appears when n grows); its feed's address."""
        self._channels[name] = n
        return self.url(f"/channel/{name}.xml")

    async def _channel(self, request: web.Request) -> web.StreamResponse:
        _, refusal = self._guard(request)
        if refusal is not None:
            return refusal
        name = request.match_info["name"]
        if name not in self._channels:
            raise web.HTTPNotFound()
        n = self._channels[name]
        items = "\n".join(
            f"<item><title>{html.escape(name)} {i}</title>"
            f"<link>{html.escape(self.url(f'/media/{name}-{i}.mp4'))}</link>"
            f"<guid>{html.escape(name)}-{i}</guid></item>"
            for i in range(n, 0, -1)
        )
        doc = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>Channel {html.escape(name)}</title><link>{html.escape(self.url('/'))}</link>"
            f"<description>{n} entries, newest first</description>\n{items}\n</channel></rss>\n"
        )
        return web.Response(text=doc, content_type="application/rss+xml")

    async def _send(self, request: web.Request, account: str | None) -> web.StreamResponse:
        gate_name = request.query.get("gate")
        data = self._big if gate_name else self._small
        resp = web.StreamResponse()
        resp.content_type = "video/mp4"
        resp.content_length = len(data)
        if account is not None:
            resp.set_cookie("session", self._issue(account), path="/", max_age=30 * 86400)
        if request.method == "HEAD":
            await resp.prepare(request)
            return resp
        transport = request.transport
        if transport is not None:
            self._transports.add(transport)
        self.active += 1
        started = time.monotonic()
        try:
            await resp.prepare(request)
            gate = self.gate(gate_name) if gate_name else None
            sent = 0
            while sent < len(data):
                if request.transport is None or request.transport.is_closing():
                    raise ConnectionResetError("the client hung up")
                step = CHUNK if gate is None or gate.is_set() else GATE_CHUNK
                await resp.write(data[sent : sent + step])
                sent += step
                if gate is not None and not gate.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(gate.wait(), GATE_TRICKLE_S)
            await resp.write_eof()
            self.completed.append((started, time.monotonic()))
        except ConnectionError:
            pass  # the client hung up (yt-dlp's probe reads the headers only)
        finally:
            self.active -= 1
            if transport is not None:
                self._transports.discard(transport)
        return resp
