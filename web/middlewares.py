"""The app's middlewares, outermost first: trusted proxy headers, the request log (and HTTP metrics),
the one place errors become JSON responses, and the cap on a proxied client's requests in progress."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import time
from collections.abc import Iterable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestPayloadError

from core.db.session import is_unavailable
from core.errors import MediabotError, RateLimited, Unavailable
from core.i18n import _, accept_language, negotiate, ready, set_locale
from web.errors import (
    TooManyConnections,
    error_response,
    http_error,
    retry_after,
    status_for,
    too_many_connections,
)
from web.keys import API_KEY, CLIENT_SLOTS, METRICS, SERVICES, TRUSTED_PROXIES
from web.state import Network

log = logging.getLogger(__name__)

access_log = logging.getLogger("web.access")

_HOST = re.compile(r"[A-Za-z0-9.\-\[\]:]{1,255}")


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            log.warning("ignoring invalid MEDIABOT_TRUSTED_PROXIES entry %r", entry)
    return tuple(networks)


def _ip(value: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not value:
        return None
    try:
        return ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(value: str | None, networks: tuple[Network, ...]) -> bool:
    ip = _ip(value)
    return ip is not None and any(ip in net for net in networks)


@web.middleware
async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Believe X-Forwarded-For/-Proto/-Host only from MEDIABOT_TRUSTED_PROXIES.

    The client is the right-most X-Forwarded-For address that is not itself a trusted proxy (addresses
    to its left were written by the client and prove nothing).
    """
    networks = request.app[TRUSTED_PROXIES]
    if not networks or not _trusted(request.remote, networks):
        return await handler(request)
    changes: dict[str, str] = {}
    hops = [
        h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",") if h.strip()
    ]
    for hop in reversed(hops):
        if _ip(hop) is None:
            break
        changes["remote"] = str(_ip(hop))
        if not _trusted(hop, networks):
            break
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    if proto in ("http", "https"):
        changes["scheme"] = proto
    host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    if host and _HOST.fullmatch(host):
        changes["host"] = host
    return await handler(request.clone(**changes) if changes else request)  # type: ignore[arg-type]


@web.middleware
async def client_slots(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Through a trusted proxy, each forwarded client's requests in progress (an open WebSocket is one)
    count against MEDIABOT_MAX_CONNECTIONS_PER_CLIENT; direct connections are counted as they open
    (web.protocol)."""
    slots = request.app[CLIENT_SLOTS]
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    client = request.remote
    if not (isinstance(peer, tuple) and client and slots.trusted(str(peer[0])) and not slots.trusted(client)):
        return await handler(request)
    if not slots.take(client):
        raise TooManyConnections(1.0, too_many_connections(slots.limit))
    try:
        return await handler(request)
    finally:
        slots.give_back(client)


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One line per request: method, path (never the query: it may hold a token), status, duration, key name."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away
        raise
    finally:
        seconds = time.perf_counter() - started
        key = request.get(API_KEY)
        access_log.info(
            "%s %s %d %.1fms key=%s ip=%s",
            request.method,
            request.path,
            status,
            seconds * 1000,
            key.name if key else "-",
            request.remote,
        )
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        request.app[METRICS].observe(request.method, name, status, seconds)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """MediabotError -> its status with `{"error": {"code", "message"}}`; aiohttp's 4xx as the same shape;
    anything unexpected -> a 500 without details (the traceback goes to the log only). `error.message` is
    in the language of Accept-Language (codes and keys stay English)."""
    set_locale(await ready(negotiate(*accept_language(request.headers.get("Accept-Language")))))
    try:
        return await handler(request)
    except MediabotError as exc:
        headers = {"Retry-After": retry_after(exc.retry_after_s)} if isinstance(exc, RateLimited) else None
        return error_response(status_for(exc), exc.code, exc.message, headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, message = http_error(exc.status)
        if exc.status == 413:
            limit = request.app[SERVICES].settings.max_body_bytes
            message = _("The request body is larger than {limit} bytes.").format(limit=limit)
        headers = {name: exc.headers[name] for name in ("Allow", "Retry-After") if name in exc.headers}
        return error_response(exc.status, code, message, headers)
    except (RequestPayloadError, HttpProcessingError):
        # A body aiohttp could not read (bad chunking, a broken Content-Encoding...): the client's doing.
        return error_response(400, "invalid_request", "The request body could not be read.")
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if isinstance(exc, ConnectionError) and (request.transport is None or request.transport.is_closing()):
            raise  # the client went away: nobody to answer
        if is_unavailable(exc):
            log.warning(
                "%s %s: a dependency is unavailable (%s)", request.method, request.path, type(exc).__name__
            )
            error = Unavailable()
            return error_response(503, error.code, error.message, {"Retry-After": "5"})
        log.exception("unhandled error in %s %s", request.method, request.path)
        return error_response(500, "internal", "Something went wrong on our side. Please try again.")
