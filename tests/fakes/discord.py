"""A fake Discord (REST + JSON gateway) on 127.0.0.1 that the real discord.py client connects to.

Point discord.py at `fake.api_url` (what `MEDIABOT_DISCORD_API_URL` does); `GET /gateway/bot` returns the
fake's WebSocket URL. The fake answers what a bot that uses slash commands, message context menus and
buttons needs:

* REST: `/users/@me`, `/gateway(/bot)`, `/oauth2/applications/@me`, bulk command overwrite (global and
  guild), interaction callbacks (`?with_response=1` format), the original response and follow-ups through
  `/webhooks/{app}/{token}/...` (JSON or multipart; attachments are written to disk), channel messages
  (multipart too), DM channel creation, `GET /users/{id}`.
* Gateway: HELLO, IDENTIFY -> READY (+ GUILD_CREATE), heartbeat ACKs, RESUME -> RESUMED, and
  `INTERACTION_CREATE` events injected by tests (`slash`, `context_menu`, `click`, `choose`: a select
  menu's choice, type 3 with `data.values`).
* Messages are checked against Discord's limits for what the bot sends: select menus (25 options,
  100-character labels, values and custom_ids) and embeds (title 256, description 4096, 25 fields,
  6000 in all, http(s) image URLs); a message over them gets 400 / error 50035 as on Discord.

Every REST call is recorded (`calls`). Failures on demand: `rate_limit(...)` answers 429 with a `Via` header
and a JSON `retry_after` (what discord.py needs to retry rather than assume a Cloudflare ban), optionally
only after letting some matching requests through;
`reject_uploads(...)` answers 413 / error 40005 to a request carrying files; `forbid_channel(...)` answers 403
to channel messages. Interaction tokens expire after `token_ttl_s` (401, error 50027) and an interaction
must be answered within `callback_deadline_s` (404, error 10062), as on Discord.

JSON is answered with `Content-Type: application/json` exactly: discord.py treats `; charset=utf-8` as text.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest_asyncio
from aiohttp import WSMsgType, web

DISCORD_EPOCH_MS = 1420070400000
ALL_PERMISSIONS = str((1 << 50) - 1)
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024

# Gateway opcodes
DISPATCH, HEARTBEAT, IDENTIFY, RESUME, HELLO, HEARTBEAT_ACK = 0, 1, 2, 6, 10, 11

# Interaction and callback types
APPLICATION_COMMAND, MESSAGE_COMPONENT = 2, 3
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE = 4, 5, 6, 7
EPHEMERAL = 1 << 6


@dataclass
class StoredFile:
    field: str
    filename: str
    content_type: str | None
    path: Path
    size: int


@dataclass
class Call:
    """One REST request as the fake saw it, and what it answered."""

    method: str
    path: str
    query: dict[str, str]
    json: Any = None
    files: list[StoredFile] = field(default_factory=list)
    status: int = 0
    at: float = 0.0  # time.monotonic() when the request arrived
    token: str | None = None  # the interaction token in the path, for webhook and callback routes

    @property
    def route(self) -> str:
        return f"{self.method} {self.path}"


@dataclass
class Interaction:
    """An interaction the fake sent to the bot."""

    id: str
    token: str
    type: int
    channel_id: str
    guild_id: str | None
    user: dict[str, Any]
    created: float
    payload: dict[str, Any]
    message_id: str | None = None  # the message its response created (or, for a button, the clicked message)


@dataclass
class _Fault:
    match: Callable[[Call], bool]
    times: int
    status: int
    body: dict[str, Any]
    headers: dict[str, str]
    needs_files: bool = False
    skip: int = 0  # matching requests let through before the fault starts


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    return web.Response(status=status, body=json.dumps(data).encode(), headers=all_headers)


def _error(status: int, message: str, code: int) -> web.Response:
    return _json({"message": message, "code": code}, status=status)


def _iso(ts: float | None = None) -> str:
    return datetime.fromtimestamp(ts or time.time(), UTC).isoformat()


class FakeDiscord:
    def __init__(
        self,
        files_dir: Path,
        *,
        token: str | None = None,
        token_ttl_s: float = 900.0,
        callback_deadline_s: float = 3.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.files_dir = files_dir
        # Shaped like a real bot token: base64 user id . timestamp . hmac
        self.token = (
            token or f"MTAxNzAwMDAwMDAwMDAwMDAwMQ.{secrets.token_urlsafe(5)[:6]}.{secrets.token_urlsafe(30)}"
        )
        self.token_ttl_s = token_ttl_s
        self.callback_deadline_s = callback_deadline_s
        self.host = host
        self.port = 0
        self._ids = itertools.count(1)
        self.app_id = self.snowflake()
        self.bot_user = self.make_user("mediabot", bot=True)
        self.bot_user["id"] = self.app_id
        self.guild_id = self.snowflake()
        self.channel_id = self.snowflake()
        self.second_channel_id = self.snowflake()
        self.owner = self.make_user("owner")

        self.calls: list[Call] = []
        self.commands: dict[str | None, list[dict[str, Any]]] = {}  # guild id (None = global) -> commands
        self.messages: dict[str, dict[str, Any]] = {}
        self.interactions: dict[str, Interaction] = {}  # by token
        self.dm_channels: dict[str, str] = {}  # user id -> channel id
        self.forbidden_channels: set[str] = set()
        self.max_upload_bytes: int | None = None
        self.identifies: list[dict[str, Any]] = []
        self.identified = asyncio.Event()
        self.changed = asyncio.Event()
        self._faults: list[_Fault] = []
        self._sockets: list[tuple[web.WebSocketResponse, list[int]]] = []
        self._runner: web.AppRunner | None = None

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def start(self) -> None:
        self.files_dir.mkdir(parents=True, exist_ok=True)
        app = web.Application(client_max_size=200 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for ws, _ in list(self._sockets):
            with contextlib.suppress(Exception):
                await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://{self.host}:{self.port}/gateway"

    # -- test controls ------------------------------------------------------------------------------------

    def snowflake(self) -> str:
        return str(((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._ids) & 0x3FFFFF))

    def make_user(self, name: str, *, bot: bool = False) -> dict[str, Any]:
        return {
            "id": self.snowflake(),
            "username": name,
            "discriminator": "0",
            "global_name": name.title(),
            "avatar": None,
            "bot": bot,
            "public_flags": 0,
            "flags": 0,
        }

    def rate_limit(self, route: str, *, times: int = 1, retry_after: float = 1.0, after: int = 0) -> None:
        """Answer the next `times` requests whose "METHOD /path" (path after /api/v10) matches `route` with 429
        (after letting `after` of them through)."""
        pattern = re.compile(route)
        self._faults.append(
            _Fault(
                match=lambda r: bool(pattern.search(f"{r.method} {r.path}")),
                times=times,
                skip=after,
                status=429,
                body={"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
                headers={
                    "Via": "1.1 google",
                    "Retry-After": str(max(1, round(retry_after))),
                    "X-RateLimit-Scope": "user",
                },
            )
        )

    def reject_uploads(self, *, times: int = 1, status: int = 413, code: int = 40005) -> None:
        """Refuse the next `times` requests that carry files, as Discord refuses a file over the upload limit."""
        self._faults.append(
            _Fault(
                match=lambda r: True,
                times=times,
                status=status,
                headers={},
                needs_files=True,
                body={"message": "Request entity too large", "code": code},
            )
        )

    def forbid_channel(self, channel_id: str) -> None:
        self.forbidden_channels.add(channel_id)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Wait until `predicate()` returns something truthy (re-checked whenever a call is recorded)."""
        deadline = time.monotonic() + timeout
        while True:
            self.changed.clear()
            value = predicate()
            if value:
                return value
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"fake Discord: condition not met in {timeout}s; calls: {self.summary()}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), min(left, 0.25))

    def summary(self) -> list[str]:
        return [f"{c.route} -> {c.status}" for c in self.calls[-40:]]

    # -- queries ------------------------------------------------------------------------------------------

    def webhook_calls(self, token: str, method: str | None = None) -> list[Call]:
        return [
            c for c in self.calls
            if c.token == token and "/webhooks/" in c.path and (method is None or c.method == method)
        ]  # fmt: skip

    def edits(self, token: str, *, ok: bool = True) -> list[Call]:
        """PATCHes of the interaction's messages (`ok`: only the ones the fake accepted)."""
        return [c for c in self.webhook_calls(token, "PATCH") if not ok or c.status == 200]

    def followups(self, token: str, *, ok: bool = True) -> list[Call]:
        """Follow-up messages posted with the interaction's token (`ok`: only the ones the fake accepted)."""
        return [
            c for c in self.webhook_calls(token, "POST")
            if "/messages/" not in c.path and (not ok or c.status == 200)
        ]  # fmt: skip

    def callbacks(self, interaction: Interaction) -> list[Call]:
        return [c for c in self.calls if c.path.startswith(f"/interactions/{interaction.id}/")]

    def channel_posts(self, channel_id: str | None = None) -> list[Call]:
        return [
            c for c in self.calls
            if c.method == "POST" and re.fullmatch(r"/channels/\d+/messages", c.path) and c.status == 200
            and (channel_id is None or c.path == f"/channels/{channel_id}/messages")
        ]  # fmt: skip

    def original(self, interaction: Interaction) -> dict[str, Any] | None:
        return self.messages.get(interaction.message_id or "")

    # -- injected interactions ----------------------------------------------------------------------------

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: dict[str, Any] | None = None,
        dm: bool = False,
        channel_id: str | None = None,
        attachment_size_limit: int = DEFAULT_UPLOAD_LIMIT,
        locale: str = "en-US",
    ) -> Interaction:
        """`locale`: the person's Discord app language, as interactions carry it ("de", "pt-BR")."""
        command = self._command(name, 1)
        data: dict[str, Any] = {
            "id": command["id"], "name": name, "type": 1,
            "options": [{"name": k, "type": _option_type(v), "value": v} for k, v in (options or {}).items()],
        }  # fmt: skip
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return await self._interact(
            APPLICATION_COMMAND, data, user, dm, channel_id, attachment_size_limit, locale=locale
        )

    async def context_menu(
        self,
        name: str,
        content: str,
        *,
        user: dict[str, Any] | None = None,
        attachment_size_limit: int = DEFAULT_UPLOAD_LIMIT,
    ) -> Interaction:
        """A message context-menu command on a message (by someone else) with this content."""
        command = self._command(name, 3)
        author = self.make_user("poster")
        message = self._message(self.channel_id, content, author=author)
        data = {
            "id": command["id"], "name": name, "type": 3, "target_id": message["id"],
            "resolved": {"messages": {message["id"]: message}},
        }  # fmt: skip
        return await self._interact(APPLICATION_COMMAND, data, user, False, None, attachment_size_limit)

    async def click(
        self, message_id: str, custom_id: str, *, user: dict[str, Any] | None = None
    ) -> Interaction:
        """Press the button `custom_id` on a message."""
        message = self.messages[message_id]
        data = {"custom_id": custom_id, "component_type": 2}
        dm = message.get("guild_id") is None
        return await self._interact(
            MESSAGE_COMPONENT, data, user, dm, message["channel_id"], DEFAULT_UPLOAD_LIMIT, message=message
        )

    async def choose(
        self, message_id: str, custom_id: str, values: list[str], *, user: dict[str, Any] | None = None
    ) -> Interaction:
        """Pick `values` in the select menu `custom_id` on a message. As on Discord, only options the menu
        offers can be picked: a test makes a menu stale by editing the stored message's options."""
        message = self.messages[message_id]
        menu = next((c for c in self.selects(message) if c.get("custom_id") == custom_id), None)
        if menu is None:
            raise AssertionError(f"no select menu {custom_id!r} on message {message_id}")
        offered = {o["value"] for o in menu.get("options") or []}
        if not set(values) <= offered:
            raise AssertionError(f"{values} are not among the menu's options {sorted(offered)}")
        data = {"custom_id": custom_id, "component_type": 3, "values": values}
        dm = message.get("guild_id") is None
        return await self._interact(
            MESSAGE_COMPONENT, data, user, dm, message["channel_id"], DEFAULT_UPLOAD_LIMIT, message=message
        )

    def buttons(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            c
            for row in message.get("components") or []
            for c in row.get("components", [])
            if c.get("type") == 2
        ]

    def selects(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """The string select menus (component type 3) of a message."""
        return [
            c
            for row in message.get("components") or []
            for c in row.get("components", [])
            if c.get("type") == 3
        ]

    def components_sent(self) -> list[dict[str, Any]]:
        """Every action row the bot sent (in callbacks, webhook and channel messages), in order."""
        rows: list[dict[str, Any]] = []
        for call in self.calls:
            body = call.json if isinstance(call.json, dict) else {}
            data = body.get("data") if isinstance(body.get("data"), dict) else body
            rows += (data or {}).get("components") or []
        return rows

    def _command(self, name: str, type_: int) -> dict[str, Any]:
        for guild, commands in self.commands.items():
            for command in commands:
                if command["name"] == name and command.get("type", 1) == type_:
                    return {**command, "guild_id": guild}
        raise AssertionError(f"command {name!r} (type {type_}) was never synced; synced: {self.commands}")

    async def _interact(
        self,
        type_: int,
        data: dict[str, Any],
        user: dict[str, Any] | None,
        dm: bool,
        channel_id: str | None,
        attachment_size_limit: int,
        message: dict[str, Any] | None = None,
        locale: str = "en-US",
    ) -> Interaction:
        user = user or self.make_user("alice")
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)
        payload: dict[str, Any] = {
            "id": self.snowflake(), "application_id": self.app_id, "type": type_, "token": token, "version": 1,
            "data": data, "locale": locale, "attachment_size_limit": attachment_size_limit,
            "app_permissions": ALL_PERMISSIONS, "entitlements": [], "authorizing_integration_owners": {"0": "0"},
        }  # fmt: skip
        if dm:
            cid = channel_id or self._dm_channel(user["id"])
            payload.update(
                channel_id=cid, user=user, context=1,
                channel={"id": cid, "type": 1, "recipients": [user], "last_message_id": None, "flags": 0},
            )  # fmt: skip
        else:
            cid = channel_id or self.channel_id
            payload.update(
                channel_id=cid, guild_id=self.guild_id, guild_locale="en-US", context=0,
                guild={"id": self.guild_id, "locale": "en-US", "features": []},
                channel=self._channel(cid),
                member={
                    "user": user, "roles": [], "flags": 0, "joined_at": _iso(), "deaf": False, "mute": False,
                    "permissions": ALL_PERMISSIONS, "nick": None, "avatar": None, "pending": False,
                    "premium_since": None, "communication_disabled_until": None,
                },
            )  # fmt: skip
        if message is not None:
            payload["message"] = message
        interaction = Interaction(
            id=payload["id"],
            token=token,
            type=type_,
            channel_id=cid,
            guild_id=payload.get("guild_id"),
            user=user,
            created=time.monotonic(),
            payload=payload,
            # Set before the event is sent: the bot may edit `@original` (the clicked message) at once.
            message_id=message["id"] if message is not None else None,
        )
        self.interactions[token] = interaction
        await self.dispatch("INTERACTION_CREATE", payload)
        return interaction

    # -- gateway ------------------------------------------------------------------------------------------

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a gateway event to every identified connection."""
        if not self._sockets:
            raise AssertionError("no bot is connected to the fake gateway")
        for ws, seq in list(self._sockets):
            seq[0] += 1
            await ws.send_str(json.dumps({"op": DISPATCH, "t": event, "s": seq[0], "d": data}))

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        seq = [0]
        await ws.send_str(json.dumps({"op": HELLO, "d": {"heartbeat_interval": 41250}}))
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                body = json.loads(msg.data)
                op, data = body.get("op"), body.get("d")
                if op == HEARTBEAT:
                    await ws.send_str(json.dumps({"op": HEARTBEAT_ACK}))
                elif op == IDENTIFY:
                    if data.get("token") != self.token:
                        await ws.close(code=4004, message=b"Authentication failed.")
                        break
                    self.identifies.append({k: v for k, v in data.items() if k != "token"})
                    self._sockets.append((ws, seq))
                    await self._ready(ws, seq)
                    self.identified.set()
                elif op == RESUME:
                    if (ws, seq) not in self._sockets:
                        self._sockets.append((ws, seq))
                    seq[0] += 1
                    await ws.send_str(json.dumps({"op": DISPATCH, "t": "RESUMED", "s": seq[0], "d": {}}))
        finally:
            with contextlib.suppress(ValueError):
                self._sockets.remove((ws, seq))
        return ws

    async def _ready(self, ws: web.WebSocketResponse, seq: list[int]) -> None:
        ready = {
            "v": 10, "user": self.bot_user, "guilds": [{"id": self.guild_id, "unavailable": True}],
            "session_id": secrets.token_hex(16), "resume_gateway_url": self.gateway_url,
            "application": {"id": self.app_id, "flags": 0}, "private_channels": [], "relationships": [],
            "user_settings": {}, "presences": [], "geo_ordered_rtc_regions": [], "shard": [0, 1],
        }  # fmt: skip
        for event, data in (("READY", ready), ("GUILD_CREATE", self._guild())):
            seq[0] += 1
            await ws.send_str(json.dumps({"op": DISPATCH, "t": event, "s": seq[0], "d": data}))

    def _guild(self) -> dict[str, Any]:
        return {
            "id": self.guild_id, "name": "Test guild", "owner_id": self.owner["id"], "unavailable": False,
            "member_count": 2, "large": False, "premium_tier": 0, "premium_subscription_count": 0,
            "features": [], "icon": None, "banner": None, "splash": None, "discovery_splash": None,
            "description": None, "joined_at": _iso(), "preferred_locale": "en-US", "verification_level": 0,
            "default_message_notifications": 0, "explicit_content_filter": 0, "mfa_level": 0, "nsfw_level": 0,
            "system_channel_id": None, "system_channel_flags": 0, "rules_channel_id": None,
            "public_updates_channel_id": None, "afk_channel_id": None, "afk_timeout": 300,
            "vanity_url_code": None, "application_id": None, "max_members": 500000,
            "premium_progress_bar_enabled": False, "safety_alerts_channel_id": None,
            "roles": [{
                "id": self.guild_id, "name": "@everyone", "permissions": "68608", "position": 0, "color": 0,
                "hoist": False, "managed": False, "mentionable": False, "flags": 0, "icon": None,
                "unicode_emoji": None,
            }],
            "channels": [self._channel(self.channel_id), self._channel(self.second_channel_id, "downloads")],
            "members": [{
                "user": self.bot_user, "roles": [], "joined_at": _iso(), "deaf": False, "mute": False,
                "flags": 0, "nick": None, "avatar": None, "pending": False, "premium_since": None,
            }],
            "emojis": [], "stickers": [], "threads": [], "voice_states": [], "presences": [],
            "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
        }  # fmt: skip

    def _channel(self, channel_id: str, name: str = "general") -> dict[str, Any]:
        return {
            "id": channel_id, "type": 0, "guild_id": self.guild_id, "name": name, "position": 0,
            "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None,
            "rate_limit_per_user": 0, "last_message_id": None, "flags": 0, "permissions": ALL_PERMISSIONS,
        }  # fmt: skip

    def _dm_channel(self, user_id: str) -> str:
        if user_id not in self.dm_channels:
            self.dm_channels[user_id] = self.snowflake()
        return self.dm_channels[user_id]

    # -- REST ---------------------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        call = Call(method=request.method, path=path, query=dict(request.query), at=time.monotonic())
        m = re.match(r"^/(?:webhooks|interactions)/\d+/([^/]+)", path)
        if m:
            call.token = m.group(1)
        self.calls.append(call)
        try:
            response = await self._handle(request, path, call)
        except Exception as exc:  # noqa: BLE001 - a bug in the fake shows as a 500 and in the call log
            response = _error(500, f"fake Discord error: {type(exc).__name__}: {exc}", 0)
        call.status = response.status
        self.changed.set()
        return response

    async def _read_body(self, request: web.Request, call: Call) -> None:
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                name = part.name or ""
                if part.filename:  # type: ignore[union-attr]
                    target = self.files_dir / f"{self.snowflake()}-{part.filename}"  # type: ignore[union-attr]
                    size = 0
                    with target.open("wb") as out:
                        while chunk := await part.read_chunk(256 * 1024):  # type: ignore[union-attr]
                            out.write(chunk)
                            size += len(chunk)
                    call.files.append(
                        StoredFile(name, part.filename, part.headers.get("Content-Type"), target, size)  # type: ignore[union-attr]
                    )
                elif name == "payload_json":
                    call.json = json.loads(await part.text())  # type: ignore[union-attr]
        elif request.can_read_body:
            raw = await request.read()
            call.json = json.loads(raw) if raw else None

    def _fault(self, call: Call) -> web.Response | None:
        for fault in self._faults:
            if fault.times <= 0 or (fault.needs_files and not call.files) or not fault.match(call):
                continue
            if fault.skip > 0:
                fault.skip -= 1
                continue
            fault.times -= 1
            return _json(fault.body, status=fault.status, headers=fault.headers)
        if self.max_upload_bytes is not None and any(f.size > self.max_upload_bytes for f in call.files):
            return _error(413, "Request entity too large", 40005)
        return None

    async def _handle(self, request: web.Request, path: str, call: Call) -> web.Response:
        await self._read_body(request, call)
        if not path.startswith(("/webhooks/", "/interactions/")):
            if request.headers.get("Authorization") != f"Bot {self.token}":
                return _error(401, "401: Unauthorized", 0)
        if (fault := self._fault(call)) is not None:
            return fault
        if (problem := over_limits(call.json)) is not None:
            return _error(400, f"Invalid Form Body: {problem}", 50035)
        method, body = request.method, call.json
        if (method, path) == ("GET", "/users/@me"):
            return _json(self.bot_user)
        if method == "GET" and path in ("/gateway", "/gateway/bot"):
            return _json({
                "url": self.gateway_url, "shards": 1,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1},
            })  # fmt: skip
        if (method, path) == ("GET", "/oauth2/applications/@me"):
            return _json({
                "id": self.app_id, "name": "mediabot", "description": "", "icon": None, "bot_public": True,
                "bot_require_code_grant": False, "owner": self.owner, "verify_key": "0" * 64, "flags": 0,
                "team": None, "summary": "", "bot": self.bot_user,
            })  # fmt: skip
        if m := re.fullmatch(r"/applications/(\d+)(?:/guilds/(\d+))?/commands", path):
            if method == "PUT":
                return _json(self._sync(m.group(2), body or []))
            return _json(self.commands.get(m.group(2), []))
        if m := re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path):
            return self._callback(m.group(2), body or {}, call)
        if m := re.fullmatch(r"/webhooks/(\d+)/([^/]+)(/messages/([^/]+))?", path):
            return self._webhook(method, m.group(2), m.group(4), body or {}, call)
        if m := re.fullmatch(r"/channels/(\d+)/messages", path):
            if method != "POST":
                return _json([])
            if m.group(1) in self.forbidden_channels:
                return _error(403, "Missing Permissions", 50013)
            message = self._message(m.group(1), "", author=self.bot_user)
            self._apply(message, body or {}, call)
            return _json(message)
        if (method, path) == ("POST", "/users/@me/channels"):
            recipient = str((body or {}).get("recipient_id"))
            user = {**self.make_user("recipient"), "id": recipient}
            return _json(
                {"id": self._dm_channel(recipient), "type": 1, "recipients": [user], "last_message_id": None}
            )
        if method == "GET" and (m := re.fullmatch(r"/users/(\d+)", path)):
            return _json({**self.make_user("someone"), "id": m.group(1)})
        return _error(404, "404: Not Found", 0)

    def _sync(self, guild_id: str | None, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        synced = []
        for command in commands:
            synced.append({
                "description": "", "options": [], "default_member_permissions": None, "nsfw": False,
                "type": 1, **command, "id": self.snowflake(), "application_id": self.app_id, "version": self.snowflake(),
                **({"guild_id": guild_id} if guild_id else {}),
            })  # fmt: skip
        self.commands[guild_id] = synced
        return synced

    def _callback(self, token: str, body: dict[str, Any], call: Call) -> web.Response:
        interaction = self.interactions.get(token)
        if interaction is None or time.monotonic() - interaction.created > self.callback_deadline_s:
            return _error(404, "Unknown interaction", 10062)
        if any(c.status == 200 for c in self.callbacks(interaction)):
            return _error(400, "Interaction has already been acknowledged.", 40060)
        type_ = body.get("type")
        data = body.get("data") or {}
        info: dict[str, Any] = {"id": interaction.id, "type": interaction.type}
        resource: dict[str, Any] = {"type": type_}
        if type_ in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            message = self._message(interaction.channel_id, "", author=self.bot_user, interaction=interaction)
            message["flags"] = data.get("flags", 0) or 0
            self._apply(message, data, call)
            interaction.message_id = message["id"]
            info.update(
                response_message_id=message["id"], response_message_loading=type_ == DEFERRED_CHANNEL_MESSAGE,
                response_message_ephemeral=bool(message["flags"] & EPHEMERAL),
            )  # fmt: skip
            resource["message"] = message
        elif type_ in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            message = self.messages[interaction.message_id or ""]
            if type_ == UPDATE_MESSAGE:
                self._apply(message, data, call)
                resource["message"] = message
            info["response_message_id"] = message["id"]
        else:
            return _error(400, f"unsupported callback type {type_}", 50035)
        return _json({"interaction": info, "resource": resource})

    def _webhook(
        self, method: str, token: str, message_ref: str | None, body: dict[str, Any], call: Call
    ) -> web.Response:
        interaction = self.interactions.get(token)
        if interaction is None or time.monotonic() - interaction.created > self.token_ttl_s:
            return _error(401, "Invalid Webhook Token", 50027)
        if message_ref is None:
            if method != "POST":
                return _error(405, "405: Method Not Allowed", 0)
            message = self._message(interaction.channel_id, "", author=self.bot_user, interaction=interaction)
            message["flags"] = body.get("flags", 0) or 0
            self._apply(message, body, call)
            return _json(message)
        message_id = interaction.message_id if message_ref == "@original" else message_ref
        message = self.messages.get(message_id or "")
        if message is None:
            return _error(404, "Unknown Message", 10008)
        if method == "PATCH":
            self._apply(message, body, call)
            message["edited_timestamp"] = _iso()
            return _json(message)
        if method == "DELETE":
            message["deleted"] = True
            return web.Response(status=204)
        return _json(message)

    def _message(
        self, channel_id: str, content: str, *, author: dict[str, Any], interaction: Interaction | None = None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "id": self.snowflake(), "channel_id": channel_id, "type": 0 if interaction is None else 20,
            "content": content, "author": author, "attachments": [], "embeds": [], "components": [],
            "mentions": [], "mention_roles": [], "pinned": False, "mention_everyone": False, "tts": False,
            "timestamp": _iso(), "edited_timestamp": None, "flags": 0,
        }  # fmt: skip
        if interaction is not None or channel_id in (self.channel_id, self.second_channel_id):
            if interaction is None or interaction.guild_id:
                message["guild_id"] = self.guild_id
        if interaction is not None:
            message["interaction_metadata"] = {
                "id": interaction.id,
                "type": interaction.type,
                "user": interaction.user,
                "authorizing_integration_owners": {},
            }
        self.messages[message["id"]] = message
        return message

    def _apply(self, message: dict[str, Any], body: dict[str, Any], call: Call) -> None:
        """Apply a message create/edit body (JSON or payload_json + files) to a stored message."""
        for key in ("content", "components", "embeds", "flags"):
            if key in body and body[key] is not None:
                message[key] = body[key]
        if "message_reference" in body:
            message["message_reference"] = body["message_reference"]
        if "allowed_mentions" in body:
            message["allowed_mentions"] = body["allowed_mentions"]
        if "attachments" in body or call.files:
            kept = {a["id"]: a for a in message.get("attachments", [])}
            attachments = []
            for index, item in enumerate(
                body.get("attachments") or [{"id": i} for i in range(len(call.files))]
            ):
                if str(item.get("id")) in kept:
                    attachments.append(kept[str(item["id"])])
                    continue
                stored = next((f for f in call.files if f.field == f"files[{item.get('id', index)}]"), None)
                if stored is None:
                    continue
                aid = self.snowflake()
                attachments.append({
                    "id": aid, "filename": item.get("filename") or stored.filename, "size": stored.size,
                    "url": f"http://{self.host}:{self.port}/attachments/{aid}/{stored.filename}",
                    "proxy_url": f"http://{self.host}:{self.port}/attachments/{aid}/{stored.filename}",
                    "content_type": stored.content_type, "local_path": str(stored.path),
                })  # fmt: skip
            message["attachments"] = attachments


MAX_SELECT_OPTIONS = 25
MAX_COMPONENT_TEXT = 100  # select option labels, values and descriptions; custom_ids
MAX_EMBED_TITLE, MAX_EMBED_DESCRIPTION, MAX_EMBED_FIELDS, MAX_EMBED_TOTAL = 256, 4096, 25, 6000
MAX_FIELD_NAME, MAX_FIELD_VALUE = 256, 1024


def over_limits(body: Any) -> str | None:
    """Why Discord would refuse this message body (components and embeds over its limits), or None."""
    if not isinstance(body, dict):
        return None
    data = body.get("data") if isinstance(body.get("data"), dict) else body
    for row in data.get("components") or []:
        for item in row.get("components") or []:
            if len(str(item.get("custom_id") or "")) > MAX_COMPONENT_TEXT:
                return "custom_id is over 100 characters"
            options = item.get("options")
            if options is None:
                continue
            if not 1 <= len(options) <= MAX_SELECT_OPTIONS:
                return f"a select menu has {len(options)} options (1 to 25)"
            for option in options:
                for key in ("label", "value", "description"):
                    if len(str(option.get(key) or "")) > MAX_COMPONENT_TEXT:
                        return f"a select option's {key} is over 100 characters"
                if not option.get("label") or not option.get("value"):
                    return "a select option needs a label and a value"
    for embed in data.get("embeds") or []:
        fields = embed.get("fields") or []
        if len(str(embed.get("title") or "")) > MAX_EMBED_TITLE:
            return "embed title is over 256 characters"
        if len(str(embed.get("description") or "")) > MAX_EMBED_DESCRIPTION:
            return "embed description is over 4096 characters"
        if len(fields) > MAX_EMBED_FIELDS:
            return "an embed has more than 25 fields"
        for f in fields:
            if not f.get("name") or not f.get("value"):
                return "an embed field needs a name and a value"
            if len(str(f["name"])) > MAX_FIELD_NAME or len(str(f["value"])) > MAX_FIELD_VALUE:
                return "an embed field is over its limits"
        total = sum(len(str(embed.get(k) or "")) for k in ("title", "description"))
        total += sum(len(str(f.get("name"))) + len(str(f.get("value"))) for f in fields)
        total += len(str((embed.get("footer") or {}).get("text") or ""))
        if total > MAX_EMBED_TOTAL:
            return "an embed is over 6000 characters in all"
        for key in ("thumbnail", "image"):
            url = (embed.get(key) or {}).get("url")
            if url is not None and not re.match(r"^https?://[^\s/]+", str(url)):
                return f"embed {key}.url is not a well formed http(s) URL"
    return None


def _option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3


@pytest_asyncio.fixture(loop_scope="session")
async def fake_discord(tmp_path: Path) -> AsyncIterator[FakeDiscord]:
    """A started fake Discord; uploads land in tmp_path/discord-uploads."""
    fake = FakeDiscord(tmp_path / "discord-uploads")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


__all__ = ["Call", "FakeDiscord", "Interaction", "StoredFile", "fake_discord", "over_limits"]
