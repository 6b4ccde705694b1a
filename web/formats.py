"""REST route for what a link offers before downloading: its formats with sizes, subtitles and thumbnail."""

from __future__ import annotations

from aiohttp import web

from core.errors import InvalidRequest
from web.auth import authenticate
from web.keys import SERVICES
from web.schemas import CONTROL_CHARACTER

routes = web.RouteTableDef()

MAX_URL = 4096


@routes.get("/api/v1/formats")
async def link_formats(request: web.Request) -> web.Response:
    """The link's formats (best first), subtitle languages and thumbnail; checked like a submission."""
    services = request.app[SERVICES]
    await authenticate(request)
    url = request.query.get("url", "").strip()
    if not url:
        raise InvalidRequest("Pass the link as ?url=https://...")
    if len(url) > MAX_URL or CONTROL_CHARACTER.search(url):
        raise InvalidRequest(
            f"url must be a link of at most {MAX_URL} characters, without control characters."
        )
    formats = await services.jobs.formats(url)
    return web.json_response(formats.model_dump(mode="json"))
