"""The API's description: `/api/openapi.json` (web.openapi assembles it) and `/api/docs`, a page showing it."""

from __future__ import annotations

import functools
from importlib import resources

from aiohttp import web

from web.keys import OPENAPI
from web.openapi import Operation, Paths, Spec

routes = web.RouteTableDef()
paths = Paths()

# The page is self-contained: its script and styles are inline, it only fetches /api/openapi.json.
DOCS_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'"


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


@paths.operation("/api/openapi.json", "get")
def _openapi_doc(spec: Spec) -> Operation:
    return {
        "summary": "This document",
        "operationId": "openapi",
        "responses": {
            "200": {
                "description": "OpenAPI 3.1.",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    }


@functools.cache
def _docs_page() -> str:
    return resources.files("web").joinpath("static/docs.html").read_text(encoding="utf-8")


@routes.get("/api/docs")
async def docs(request: web.Request) -> web.Response:
    return web.Response(
        text=_docs_page(),
        content_type="text/html",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": DOCS_CSP},
    )


@paths.operation("/api/docs", "get")
def _docs_doc(spec: Spec) -> Operation:
    return {
        "summary": "This document as a page",
        "operationId": "docs",
        "responses": {
            "200": {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}}
        },
    }
