"""The open WebSockets of this process (web.state.OpenSockets, by API key): all closed with "going away"
when the app stops, and a key's closed when the key is revoked (by this process or any other)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web

from core.aio import cancel_and_wait, spawn
from core.apikeys import VERIFY_CACHE_S
from web.keys import SERVICES, SOCKETS

log = logging.getLogger(__name__)

# A revoked key's sockets close within VERIFY_CACHE_S, as its new calls start getting 401: checked twice as
# often, at one query for every key with an open socket in this process.
REVOKED_CHECK_S = VERIFY_CACHE_S / 2
# 4000-4999 are the application's own codes (RFC 6455): 4401 reads as HTTP's 401.
REVOKED_CODE = 4401
REVOKED_REASON = b"api key revoked"


async def close_revoked(app: web.Application) -> int:
    """Close the sockets of keys that were revoked since they connected; returns how many."""
    sockets = app[SOCKETS]
    key_ids = sockets.key_ids()
    if not key_ids:
        return 0
    revoked = await app[SERVICES].keys.inactive(key_ids)
    doomed = sockets.of_keys(revoked)
    if doomed:
        log.info("closing %d websockets of %d revoked api keys", len(doomed), len(revoked))
        await asyncio.gather(
            *(ws.close(code=REVOKED_CODE, message=REVOKED_REASON) for ws in doomed), return_exceptions=True
        )
    return len(doomed)


async def _watch_revocations(app: web.Application, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await close_revoked(app)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a database hiccup: look again next round
            log.warning("could not check open websockets' api keys: %s", type(exc).__name__)


async def revocations(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: close revoked keys' sockets while the app runs."""
    task = spawn(_watch_revocations(app, REVOKED_CHECK_S), name="websocket-revocations")
    try:
        yield
    finally:
        await cancel_and_wait(task)


async def close_all(app: web.Application) -> None:
    """on_shutdown: tell every client we are going away, so it reconnects elsewhere."""
    sockets = list(app[SOCKETS])
    if sockets:
        log.info("closing %d websockets", len(sockets))
    await asyncio.gather(
        *(ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown") for ws in sockets),
        return_exceptions=True,
    )
