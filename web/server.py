"""Hosting the app: `serving(services)` listens on MEDIABOT_HOST:MEDIABOT_PORT until the block exits."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from core.bootstrap import Services
from web.app import create_app
from web.keys import CLIENT_SLOTS
from web.protocol import KEEPALIVE_S, MAX_REQUEST_LINE, GuardedAppRunner

log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def serving(services: Services) -> AsyncIterator[web.AppRunner]:
    """Start the web app; on exit stop listening, close WebSockets with "going away" (1001) and give
    in-flight requests up to MEDIABOT_SHUTDOWN_GRACE_S to finish."""
    settings = services.settings
    app = create_app(services)
    runner = GuardedAppRunner(
        app,
        slots=app[CLIENT_SLOTS],
        header_timeout_s=settings.request_header_timeout_s,
        body_timeout_s=settings.request_body_timeout_s,
        access_log=None,
        shutdown_timeout=settings.shutdown_grace_s,
        keepalive_timeout=KEEPALIVE_S,
        max_line_size=MAX_REQUEST_LINE,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
        await site.start()
        for address in runner.addresses:
            log.info("web app listening on %s (public URL %s)", _describe(address), settings.public_url)
        yield runner
    finally:
        await runner.cleanup()
        log.info("web app stopped")


def _describe(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)
