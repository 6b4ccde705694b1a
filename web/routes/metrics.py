"""`/metrics`: Prometheus figures (web.telemetry), 503 with the HTTP figures only while the database is down."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from web.keys import METRICS, SERVICES
from web.openapi import Operation, Paths, Spec

routes = web.RouteTableDef()
paths = Paths()


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    body, ok = await request.app[METRICS].render(request.app[SERVICES])
    return web.Response(body=body, status=200 if ok else 503, headers={"Content-Type": CONTENT_TYPE_LATEST})


@paths.operation("/metrics", "get")
def _metrics_doc(spec: Spec) -> Operation:
    return {
        "summary": "Prometheus metrics",
        "operationId": "metrics",
        "responses": {
            "200": {
                "description": "Prometheus text format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
            "503": {
                "description": "The database is unavailable; HTTP figures only.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            },
        },
    }
