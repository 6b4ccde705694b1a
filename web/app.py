"""The aiohttp application: built from the services by a factory, nothing global.

Each module of web.routes serves one resource: its handlers (`routes`) and, beside them, their OpenAPI
operations (`paths`), which web.openapi assembles into /api/openapi.json in the order of ROUTES.
"""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from aiohttp import web

from core.bootstrap import Services
from web import openapi, present
from web.auth import SOURCE
from web.keys import (
    CLIENT_SLOTS,
    ENCODER,
    METRICS,
    OPENAPI,
    OWNERS,
    SERVICES,
    SOCKETS,
    TRUSTED_PROXIES,
    WEBHOOKS,
)
from web.middlewares import client_slots, errors, forwarded, parse_networks, request_log
from web.routes import (
    admin,
    docs,
    events,
    files,
    formats,
    health,
    history,
    jobs,
    metrics,
    page,
    subscriptions,
)
from web.sockets import close_all, revocations
from web.state import ClientSlots, EventEncoder, JobOwners, OpenSockets
from web.telemetry import WebMetrics
from web.webhooks import build_sender, sending

ROUTES = (jobs, history, formats, files, events, subscriptions, admin, health, metrics, docs, page)


def _version() -> str:
    try:
        return version("mediabot")
    except PackageNotFoundError:
        return "0"


def api_document(version: str) -> dict[str, Any]:
    """The OpenAPI document of every route this app serves."""
    return openapi.build_openapi(version, [module.paths for module in ROUTES])


def create_app(services: Services) -> web.Application:
    settings = services.settings
    app = web.Application(
        middlewares=[forwarded, request_log, errors, client_slots],
        client_max_size=settings.max_body_bytes,
    )
    app[SERVICES] = services
    app[METRICS] = WebMetrics()
    app[OWNERS] = JobOwners(services.jobs, SOURCE)
    app[ENCODER] = EventEncoder(functools.partial(present.event_json, services))
    app[SOCKETS] = OpenSockets()
    app[TRUSTED_PROXIES] = parse_networks(settings.trusted_proxies)
    app[CLIENT_SLOTS] = ClientSlots(settings.max_connections_per_client, app[TRUSTED_PROXIES])
    app[OPENAPI] = api_document(_version())
    app[WEBHOOKS] = build_sender(services)
    app.cleanup_ctx.append(sending)
    app.cleanup_ctx.append(revocations)
    for module in ROUTES:
        app.router.add_routes(module.routes)
    app.on_shutdown.append(close_all)
    return app
