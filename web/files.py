"""Downloads of locally stored files through signed, expiring links (`/files/<key>?exp=&name=&sig=`).

A bad or tampered signature, or a key outside the storage directory, is 403 (`link_invalid`); an expired
link is 410 (`link_expired`: the link is gone, a fresh one comes from the job); a file removed since is 404.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from core.errors import NotFound
from core.storage import LocalStorage, content_disposition
from web.keys import SERVICES

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


class _SentFileResponse(web.FileResponse):
    """A FileResponse that may be sent inside the handler: aiohttp prepares the returned response again,
    which FileResponse alone does not tolerate."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        if self.prepared:
            return None
        return await super().prepare(request)


@routes.get("/files/{key:.+}")  # GET routes answer HEAD too
async def serve_file(request: web.Request) -> web.StreamResponse:
    storage = request.app[SERVICES].storage
    if not isinstance(storage, LocalStorage):
        raise NotFound("Files are served by the storage service, not by this address.")
    query = request.query
    name = query.get("name", "")
    try:
        path = await asyncio.to_thread(
            storage.resolve_link, request.match_info["key"], query.get("exp", ""), name, query.get("sig", "")
        )
    except FileNotFoundError:
        raise NotFound("This file is no longer available.") from None
    response = _SentFileResponse(
        path,
        headers={
            "Content-Disposition": content_disposition(name or path.name),
            "Cache-Control": "private, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )
    # Sent here rather than by aiohttp after the middlewares, so the request log and metrics see the final
    # status (200, 206, 304, 416) and the whole transfer time.
    try:
        await response.prepare(request)
    except ConnectionError as exc:
        log.debug("file download interrupted: %s", exc)
    return response
