"""Health: `/health` says the process answers; `/health/detailed` checks every dependency (200 or 503)."""

from __future__ import annotations

from aiohttp import web

from core import health
from web.keys import SERVICES
from web.schemas import Health, HealthDetailed

routes = web.RouteTableDef()

NO_STORE = {"Cache-Control": "no-store"}


@routes.get("/health")
async def alive(request: web.Request) -> web.Response:
    return web.json_response(Health().model_dump(mode="json"), headers=NO_STORE)


@routes.get("/health/detailed")
async def detailed(request: web.Request) -> web.Response:
    report = HealthDetailed.model_validate(await health.check(request.app[SERVICES]))
    status = 200 if report.status == "ok" else 503
    return web.json_response(
        report.model_dump(mode="json", exclude_none=True), status=status, headers=NO_STORE
    )
