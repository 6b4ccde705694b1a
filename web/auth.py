"""API key authentication, what a key owns, and per-key limits."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
from collections.abc import AsyncIterator

from aiohttp import web

from core.apikeys import ApiKeyInfo
from core.bootstrap import Services
from core.errors import MediabotError, NotFound, RateLimited, TooManyJobs
from core.jobs.views import JobView, RequestView
from web.errors import Unauthorized, status_for
from web.keys import API_KEY, SERVICES
from web.schemas import JOB_ID_PATTERN

SOURCE = "api"
WINDOW_S = 60.0
# WebSockets: browsers can't set headers there, so the page offers two subprotocols, PROTOCOL and
# KEY_PROTOCOL + key; the server answers with PROTOCOL only, so the key is never echoed back.
PROTOCOL = "mediabot"
KEY_PROTOCOL = "mediabot.key."
_ID = re.compile(JOB_ID_PATTERN)


def _protocol_key(request: web.Request) -> str | None:
    offered = ",".join(request.headers.getall("Sec-WebSocket-Protocol", []))
    for entry in offered.split(","):
        entry = entry.strip()
        if entry.startswith(KEY_PROTOCOL) and len(entry) > len(KEY_PROTOCOL):
            return entry[len(KEY_PROTOCOL) :]
    return None


def _presented_key(request: web.Request, websocket: bool) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if request.headers.get("X-API-Key"):
        return request.headers["X-API-Key"].strip()
    if websocket:
        key = _protocol_key(request)
        if key:
            return key
        if request.query.get("token"):
            # The weaker way for clients that can set neither a header nor a subprotocol: a query string
            # lands in access logs and proxies.
            return request.query["token"].strip()
    return None


async def authenticate(request: web.Request, *, websocket: bool = False) -> ApiKeyInfo:
    """The calling key, or 401; then 429 when the key is over its rate of calls."""
    presented = _presented_key(request, websocket)
    if not presented:
        raise Unauthorized()
    services = request.app[SERVICES]
    key = await services.keys.verify(presented)
    if key is None:
        raise Unauthorized("This API key is not valid (unknown or revoked).")
    request[API_KEY] = key
    await _hit(request, f"api:calls:{key.id}", services.settings.api_calls_per_minute)
    return key


async def owned(
    services: Services, key: ApiKeyInfo, request_id: str, *, removed: bool = False
) -> tuple[RequestView, JobView]:
    """The caller's request and its job; 404 for anything else, including other keys' requests and, unless
    `removed`, requests removed from the history."""
    if not _ID.fullmatch(request_id):
        raise NotFound()
    request, job = await services.jobs.get_request(request_id)
    if request.source != SOURCE or request.user_id != key.id or (request.hidden and not removed):
        raise NotFound()
    return request, job


@contextlib.asynccontextmanager
async def refusals_limited(request: web.Request, key: ApiKeyInfo) -> AsyncIterator[None]:
    """Count a refused submission (400, 404, 409, 413, 422 raised in the block) against the key's
    MEDIABOT_API_REFUSALS_PER_MINUTE, apart from accepted ones; once that is used up, 429 at once until
    the minute has room again (without reading the request)."""
    limits = request.app[SERVICES].limits
    per_minute = request.app[SERVICES].settings.api_refusals_per_minute
    bucket = f"api:refused:{key.id}"
    allowed, retry_s = await limits.check(bucket, per_minute, WINDOW_S)
    if not allowed:
        raise RateLimited(
            retry_s,
            f"Too many refused submissions: the limit is {per_minute} a minute. Check the request, then "
            "try again shortly.",
        )
    try:
        yield
    except (MediabotError, web.HTTPException) as exc:
        if _refusal(exc):
            await limits.hit(bucket, per_minute, WINDOW_S)
        raise


def _refusal(exc: MediabotError | web.HTTPException) -> bool:
    """A request the caller can fix: neither a rate limit nor our own trouble (nor a missing key)."""
    status = exc.status if isinstance(exc, web.HTTPException) else status_for(exc)
    return 400 <= status < 500 and status not in (401, 429)


@contextlib.asynccontextmanager
async def submission_counted(request: web.Request, key: ApiKeyInfo) -> AsyncIterator[None]:
    """Take one of the key's MEDIABOT_API_RATE_PER_MINUTE submissions, then check its cap on downloads
    still running; the submission is given back when the block does not accept it (refused, or failed)."""
    services = request.app[SERVICES]
    settings = services.settings
    bucket, event_id = f"api:submit:{key.id}", secrets.token_hex(8)
    await _hit(request, bucket, settings.api_rate_per_minute, event_id)
    try:
        active = await services.jobs.count_active(SOURCE, key.id)
        if active >= settings.api_max_concurrent:
            raise TooManyJobs(
                5.0,
                f"{active} of your downloads are still running (the limit is {settings.api_max_concurrent}). "
                "Wait for one to finish or cancel one.",
            )
        yield
    except BaseException:
        # Shielded: a client hanging up mid-submission must not keep the submission counted.
        await asyncio.shield(services.limits.undo(bucket, event_id))
        raise


async def _hit(request: web.Request, bucket: str, per_minute: int, event_id: str | None = None) -> None:
    allowed, retry_s = await request.app[SERVICES].limits.hit(bucket, per_minute, WINDOW_S, event_id)
    if not allowed:
        raise RateLimited(
            retry_s, f"Too many requests: the limit is {per_minute} a minute. Try again shortly."
        )
