"""Health: `/health` says the process answers; `/health/detailed` checks every dependency (200 or 503)."""

from __future__ import annotations

from aiohttp import web

from core import health
from web.keys import SERVICES
from web.openapi import Operation, Paths, Spec
from web.schemas import Health, HealthDetailed

routes = web.RouteTableDef()
paths = Paths()

NO_STORE = {"Cache-Control": "no-store"}


@routes.get("/health")
async def alive(request: web.Request) -> web.Response:
    return web.json_response(Health().model_dump(mode="json"), headers=NO_STORE)


@paths.operation("/health", "get")
def _alive_doc(spec: Spec) -> Operation:
    return {
        "summary": "The process is up",
        "operationId": "health",
        "responses": {"200": spec.json_body(Health, "Up.")},
    }


@routes.get("/health/detailed")
async def detailed(request: web.Request) -> web.Response:
    report = HealthDetailed.model_validate(await health.check(request.app[SERVICES]))
    status = 200 if report.status == "ok" else 503
    return web.json_response(
        report.model_dump(mode="json", exclude_none=True), status=status, headers=NO_STORE
    )


@paths.operation("/health/detailed", "get")
def _detailed_doc(spec: Spec) -> Operation:
    return {
        "summary": "Each dependency with its status and latency",
        "operationId": "healthDetailed",
        "responses": {
            "200": spec.json_body(HealthDetailed, "Everything works."),
            "503": spec.json_body(HealthDetailed, "Something does not."),
        },
    }
