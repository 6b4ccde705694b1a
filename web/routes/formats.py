"""What a link offers before downloading: its formats with sizes, subtitles and thumbnail."""

from __future__ import annotations

from aiohttp import web

from core.errors import InvalidRequest
from core.i18n import N_
from core.jobs.formats import MediaFormats
from web.auth import authenticate
from web.keys import SERVICES
from web.openapi import Operation, Paths, Spec
from web.schemas import CONTROL_CHARACTER, LINK_PATTERN

routes = web.RouteTableDef()
paths = Paths()

MAX_URL = 4096


@routes.get("/api/v1/formats")
async def link_formats(request: web.Request) -> web.Response:
    """The link's formats (best first), subtitle languages and thumbnail; checked like a submission."""
    services = request.app[SERVICES]
    await authenticate(request)
    url = request.query.get("url", "").strip()
    if not url:
        raise InvalidRequest(N_("Pass the link as ?url=https://..."))
    if len(url) > MAX_URL or CONTROL_CHARACTER.search(url):
        raise InvalidRequest(
            f"url must be a link of at most {MAX_URL} characters, without control characters."
        )
    formats = await services.jobs.formats(url)
    return web.json_response(formats.model_dump(mode="json"))


@paths.operation("/api/v1/formats", "get")
def _formats_doc(spec: Spec) -> Operation:
    return {
        "summary": "What a link offers: formats with sizes, subtitles, thumbnail",
        "description": "Reads the link without downloading it, under the same rules as a download "
        "(so the same 422 refusals), and answers from a short-lived cache (`cached: true`) when it "
        "was read in the last 5 minutes. `formats` are best first (video by height, then sound "
        "only); pass one's `format_id` to POST /api/v1/jobs. `filesize` is in bytes, estimated "
        "from the bitrate when `filesize_estimated`; `tbr` is in kbit/s; `label` is ready for a "
        "button. `subtitles` lists the languages to ask for. `thumbnail` is the site's own address "
        "for it. A playlist link has `playlist` set and no formats (each item picks its own).",
        "operationId": "getFormats",
        "security": spec.secured,
        "parameters": [
            {
                "name": "url",
                "in": "query",
                "required": True,
                "description": "The page or media link (http or https). A link of another form, or one "
                "that cannot be read, is refused with 422.",
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": MAX_URL,
                    "pattern": LINK_PATTERN,
                },
            }
        ],
        "responses": {
            "200": spec.json_body(MediaFormats, "What the link offers."),
            **spec.errors(400, 401, 422, 429, 503),
        },
    }
