"""The aiohttp application: built from the services by a factory, nothing global."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from aiohttp import web

from core.services import Services
from web import events, files, formats, health, jobs, metrics, openapi, page
from web.events import EventEncoder, JobOwners
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
from web.metrics import WebMetrics
from web.middlewares import client_slots, errors, forwarded, parse_networks, request_log
from web.protocol import ClientSlots
from web.sockets import OpenSockets, close_all, revocations
from web.webhooks import build_sender, sending


def _version() -> str:
    try:
        return version("mediabot")
    except PackageNotFoundError:
        return "0"


def create_app(services: Services) -> web.Application:
    settings = services.settings
    app = web.Application(
        middlewares=[forwarded, request_log, errors, client_slots],
        client_max_size=settings.max_body_bytes,
    )
    app[SERVICES] = services
    app[METRICS] = WebMetrics()
    app[OWNERS] = JobOwners(services.jobs)
    app[ENCODER] = EventEncoder(services)
    app[SOCKETS] = OpenSockets()
    app[TRUSTED_PROXIES] = parse_networks(settings.trusted_proxies)
    app[CLIENT_SLOTS] = ClientSlots(settings.max_connections_per_client, app[TRUSTED_PROXIES])
    app[OPENAPI] = openapi.build_openapi(_version())
    app[WEBHOOKS] = build_sender(services)
    app.cleanup_ctx.append(sending)
    app.cleanup_ctx.append(revocations)
    for module in (jobs, formats, events, files, health, metrics, openapi, page):
        app.router.add_routes(module.routes)
    app.on_shutdown.append(close_all)
    return app
