"""API key authentication and per-key limits."""

from __future__ import annotations

from aiohttp import web

from core.apikeys import ApiKeyInfo
from web.errors import RateLimited, TooManyJobs, Unauthorized
from web.keys import API_KEY, SERVICES

SOURCE = "api"
WINDOW_S = 60.0
# WebSockets: browsers can't set headers there, so the page offers two subprotocols, PROTOCOL and
# KEY_PROTOCOL + key; the server answers with PROTOCOL only, so the key is never echoed back.
PROTOCOL = "mediabot"
KEY_PROTOCOL = "mediabot.key."


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


async def limit_submissions(request: web.Request, key: ApiKeyInfo) -> None:
    """The key's submission rate, then its cap on downloads still running."""
    services = request.app[SERVICES]
    settings = services.settings
    await _hit(request, f"api:submit:{key.id}", settings.api_rate_per_minute)
    active = await services.jobs.count_active(SOURCE, key.id)
    if active >= settings.api_max_concurrent:
        raise TooManyJobs(
            5.0,
            f"{active} of your downloads are still running (the limit is {settings.api_max_concurrent}). "
            "Wait for one to finish or cancel one.",
        )


async def _hit(request: web.Request, bucket: str, per_minute: int) -> None:
    allowed, retry_s = await request.app[SERVICES].limits.hit(bucket, per_minute, WINDOW_S)
    if not allowed:
        raise RateLimited(
            retry_s, f"Too many requests: the limit is {per_minute} a minute. Try again shortly."
        )
