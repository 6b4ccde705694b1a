"""Live progress over WebSockets: one job (closed after its end), or every job of the calling key. Here: the
addresses, their parameters, the handshake and the socket's life; what is sent is web.streams'."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from aiohttp import WSCloseCode, web

from core.aio import cancel_and_wait, spawn
from core.errors import InvalidRequest, MediabotError
from core.i18n import N_
from web.auth import PROTOCOL, authenticate, owned
from web.keys import API_KEY, ENCODER, OWNERS, SERVICES, SOCKETS
from web.openapi import Operation, Paths, Spec
from web.schemas import (
    MAX_SEQ,
    SECONDS_PATTERN,
    TIME_PATTERN,
    WS_CONNECTION_PATTERN,
    WS_KEY_PATTERN,
    WS_UPGRADE_PATTERN,
    WS_VERSION,
)
from web.streams import Stream, follow_job, follow_key

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
paths = Paths()

HEARTBEAT_S = 30.0
# /api/v1/events?after=T looks back at most RESUME_WINDOW.
RESUME_WINDOW = timedelta(hours=24)
_DIGITS = re.compile(r"[0-9]{1,19}")
_SECONDS = re.compile(SECONDS_PATTERN)
_TIME = re.compile(TIME_PATTERN)
_WS_UPGRADE = re.compile(WS_UPGRADE_PATTERN)
_WS_CONNECTION = re.compile(WS_CONNECTION_PATTERN)
_WS_KEY = re.compile(WS_KEY_PATTERN)


def _after_seq(request: web.Request) -> int:
    """`?after=N` on a job's stream: only states with a larger seq are sent."""
    raw = request.query.get("after")
    if raw is None:
        return 0
    if not _DIGITS.fullmatch(raw) or int(raw) > MAX_SEQ:
        raise InvalidRequest("after must be a job's seq: a whole number, 0 or more.")
    return int(raw)


def _after_time(request: web.Request) -> datetime | None:
    """`?after=T` on the key's stream: Unix seconds, or an ISO 8601 time (a job's `updated_at`). Only the
    last RESUME_WINDOW matters: earlier times read as its start, later ones as now."""
    raw = request.query.get("after")
    if raw is None:
        return None
    now = datetime.now(UTC)
    if _SECONDS.fullmatch(raw):
        try:
            when = datetime.fromtimestamp(float(raw), UTC)
        except (ValueError, OverflowError, OSError):
            when = now  # beyond the calendar: the future
    elif (parts := _TIME.fullmatch(raw)) is not None:
        when = _time_of(parts)
    else:
        raise InvalidRequest(
            "after must be a time: Unix seconds, or ISO 8601 such as 2026-01-31T12:00:00Z (a job's updated_at)."
        )
    return min(max(when, now - RESUME_WINDOW), now)


def _time_of(parts: re.Match[str]) -> datetime:
    """The time a TIME_PATTERN match names; a day past its month's end rolls over (31 February is 3 March),
    as it only places the time before or after the resume window."""
    year, month, day, hour, minute = (int(parts.group(n)) for n in (1, 2, 3, 4, 5))
    second = int(parts.group(7) or 0)
    micro = int((parts.group(9) or "0").ljust(6, "0"))
    zone = UTC
    if parts.group(11):
        sign = -1 if parts.group(11) == "-" else 1  # " " is a "+" the client left unencoded
        zone = timezone(sign * timedelta(hours=int(parts.group(12)), minutes=int(parts.group(13))))
    if year < 1:
        return datetime.min.replace(tzinfo=UTC)
    start = datetime(year, month, 1, hour, minute, second, micro, tzinfo=zone)
    try:
        return (start + timedelta(days=day - 1)).astimezone(UTC)
    except OverflowError:  # at an end of the calendar: long before, or long after, the window
        return (datetime.min if year < 5000 else datetime.max).replace(tzinfo=UTC)


def _handshake_problem(request: web.Request) -> str | None:
    """What keeps the request from being a WebSocket handshake (RFC 6455), checked as the document states
    it; None when it is one."""
    headers = request.headers
    if not _WS_UPGRADE.fullmatch(headers.get("Upgrade", "")) or not _WS_CONNECTION.search(
        headers.get("Connection", "")
    ):
        return "This address is a WebSocket: connect with a WebSocket client."
    if headers.get("Sec-WebSocket-Version") != WS_VERSION:
        return f"This server speaks WebSocket version {WS_VERSION} (Sec-WebSocket-Version: {WS_VERSION})."
    if not _WS_KEY.fullmatch(headers.get("Sec-WebSocket-Key", "")):
        return "Sec-WebSocket-Key must be 16 random bytes in base64."
    return None


async def _open(request: web.Request) -> web.WebSocketResponse:
    problem = _handshake_problem(request)
    if problem is not None:
        raise InvalidRequest(problem)
    # Answers with PROTOCOL when the client offered it (the page offers it beside its key).
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=4096, protocols=(PROTOCOL,))
    if not ws.can_prepare(request).ok:
        raise InvalidRequest(N_("This address is a WebSocket: connect with a WebSocket client."))
    await ws.prepare(request)
    request.app[SOCKETS].add(ws, request[API_KEY].id)  # closed if that key is revoked
    return ws


async def _serve(ws: web.WebSocketResponse, send: Callable[[], Awaitable[None]]) -> None:
    """Run `send` while reading (and ignoring) what the client sends; whichever side closes ends both."""

    async def run() -> None:
        try:
            await send()
        except asyncio.CancelledError:
            raise
        except (ConnectionError, RuntimeError) as exc:  # the client went away mid-send
            log.debug("websocket send ended: %s", exc)
        except MediabotError as exc:
            log.warning("websocket stream ended: %s", exc.code)
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=exc.code.encode())
        except Exception:
            log.exception("websocket stream failed")
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
        finally:
            if not ws.closed:
                await ws.close()

    sender = spawn(run(), name="websocket-send")
    try:
        async for _message in ws:  # ends when the client closes, or when we do (job over, shutdown)
            pass
    finally:
        await cancel_and_wait(sender)


def _stream(request: web.Request, ws: web.WebSocketResponse) -> Stream:
    return Stream(ws, request.app[SERVICES], request.app[ENCODER], request.app[OWNERS])


paths.parameters("/api/v1/jobs/{id}/events", lambda spec: [spec.job_id])


@routes.get("/api/v1/jobs/{id}/events")
async def job_events(request: web.Request) -> web.WebSocketResponse:
    """The job's current state, then one message per change; closed (1000) after its last state.
    With `?after=N`, only states whose seq is larger than N (none, and closed at once, if the job ended
    at or before N). A playlist: its state once read, then its items' changes, then its final state."""
    services = request.app[SERVICES]
    key = await authenticate(request, websocket=True)
    after = _after_seq(request)
    req, job = await owned(services, key, request.match_info["id"])
    ws = await _open(request)
    stream = _stream(request, ws)
    await _serve(ws, lambda: follow_job(stream, req, job, after))
    return ws


@paths.operation("/api/v1/jobs/{id}/events", "get")
def _job_events_doc(spec: Spec) -> Operation:
    return {
        "summary": "Follow one job (WebSocket)",
        "description": "The current state first, then one message per change; the server closes the "
        "socket (1000) after the last state. For a playlist: its state while the link is read, then "
        "its state with `playlist` and every item, then one message per change of an item (the "
        "item's own job, with `parent_id` set to the playlist's id), then the playlist's final "
        "state once every item has ended. " + EVENTS_NOTE,
        "operationId": "jobEvents",
        "parameters": [
            *HANDSHAKE,
            {
                "name": "after",
                "in": "query",
                "required": False,
                "description": "Resume: send only states whose `seq` is larger (the last one you got). "
                "When the job ended at or before it, the socket closes at once (1000). For a playlist, "
                "pass the `seq` of the last message about the playlist itself: its `seq` sums its "
                "items', so one message with the playlist and every item brings you up to date, and "
                "item changes follow.",
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
            },
        ],
        "security": spec.ws_secured,
        "responses": _websocket_answers(spec),
    }


@routes.get("/api/v1/events")
async def key_events(request: web.Request) -> web.WebSocketResponse:
    """Every job of the calling key: the active ones' current state first, then every change of any of
    them, including jobs submitted after connecting (through any process). With `?after=T` (a time),
    first the final state of each job that ended since T."""
    key = await authenticate(request, websocket=True)
    since = _after_time(request)
    ws = await _open(request)
    stream = _stream(request, ws)
    await _serve(ws, lambda: follow_key(stream, key, since))
    return ws


@paths.operation("/api/v1/events", "get")
def _key_events_doc(spec: Spec) -> Operation:
    return {
        "summary": "Follow all your jobs (WebSocket)",
        "description": "The current state of each running job, then every change of any of your jobs, "
        "including ones started after connecting. A playlist is sent (with its items) before its "
        "items' own messages, and again once its last item has ended. " + EVENTS_NOTE,
        "operationId": "keyEvents",
        "parameters": [
            *HANDSHAKE,
            {
                "name": "after",
                "in": "query",
                "required": False,
                "description": "Resume: a time, as Unix seconds or ISO 8601 to the minute at least "
                "(`2026-01-31T12:00:00Z`, e.g. the last `updated_at` you got; a `+` before the offset "
                "may arrive unencoded); first sends the final state of each of your jobs that ended "
                "since then (up to 24 hours back: an earlier time means 24 hours ago). Drop states you "
                "already have by `id` and `seq`.",
                "schema": {
                    "type": "string",
                    "anyOf": [{"pattern": SECONDS_PATTERN}, {"pattern": TIME_PATTERN}],
                },
            },
        ],
        "security": spec.ws_secured,
        "responses": _websocket_answers(spec),
    }


# What both addresses document: the handshake (checked as _handshake_problem does) and the answers.
HANDSHAKE: list[dict[str, Any]] = [
    {
        "name": "Upgrade",
        "in": "header",
        "required": True,
        "description": "`websocket`: these addresses answer only a WebSocket handshake (RFC 6455); a "
        "plain GET is refused with 400.",
        "schema": {"type": "string", "pattern": WS_UPGRADE_PATTERN},
    },
    {
        "name": "Connection",
        "in": "header",
        "required": True,
        "description": "Names `Upgrade`.",
        "schema": {"type": "string", "pattern": WS_CONNECTION_PATTERN},
    },
    {
        "name": "Sec-WebSocket-Key",
        "in": "header",
        "required": True,
        "description": "16 random bytes in base64.",
        "schema": {"type": "string", "pattern": WS_KEY_PATTERN},
    },
    {
        "name": "Sec-WebSocket-Version",
        "in": "header",
        "required": True,
        "schema": {"type": "string", "enum": [WS_VERSION]},
    },
]
EVENTS_NOTE = 'Messages are `JobEvent` objects: `{"type": "job", "job": {...}}`.'


def _websocket_answers(spec: Spec) -> dict[str, Any]:
    return {
        "101": {
            "description": "Switching to the WebSocket protocol. Each message is a JobEvent (JSON). The "
            "server closes with 1000 when a job's stream is over, 1001 when it shuts down, and 4401 "
            '("api key revoked") when the key is revoked.'
        },
        **spec.errors(400, 401, 404, 429, 503),
    }
