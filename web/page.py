"""The page for people without a bot: `/` and its two static files, all from web/static, nothing remote."""

from __future__ import annotations

import functools
from importlib import resources

from aiohttp import web

routes = web.RouteTableDef()

# name -> content type; nothing else under /static is served.
ASSETS = {"app.js": "text/javascript", "app.css": "text/css"}

# Scripts and styles only from this origin (no inline code), so text from the API can never run; the
# WebSocket and fetches go to this origin only. File links (local or S3) are plain navigations.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": PAGE_CSP,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


@functools.cache
def _read(name: str) -> str:
    return resources.files("web").joinpath("static", name).read_text(encoding="utf-8")


@routes.get("/")
async def index(request: web.Request) -> web.Response:
    return web.Response(text=_read("index.html"), content_type="text/html", headers=HEADERS)


@routes.get("/static/{name}")
async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.Response(text=_read(name), content_type=ASSETS[name], headers=HEADERS)
