"""A job's file: `/api/v1/jobs/{id}/file` redirects to a fresh link to it; `/files/<key>?exp=&name=&sig=`
serves locally stored files through those signed, expiring links.

A bad or tampered signature, or a key outside the storage directory, is 403 (`link_invalid`); an expired
link is 410 (`link_expired`: the link is gone, a fresh one comes from the job); a file removed since is 404.
"""

from __future__ import annotations

import asyncio
import functools
import logging

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from core.errors import NotFound
from core.i18n import N_
from core.storage.keys import content_disposition
from web.auth import authenticate, owned
from web.errors import NotReady
from web.keys import SERVICES
from web.openapi import Operation, Paths, Spec
from web.present import api_status, is_playlist

log = logging.getLogger(__name__)

routes = web.RouteTableDef()
paths = Paths()

paths.parameters("/api/v1/jobs/{id}/file", lambda spec: [spec.job_id])


@routes.get("/api/v1/jobs/{id}/file")
async def job_file(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = await authenticate(request)
    req, job = await owned(services, key, request.match_info["id"])
    if is_playlist(req, job):
        raise NotReady("A playlist has no file of its own: each of its items has one.")
    if api_status(req, job) != "done":
        raise NotReady()
    link = await services.jobs.link(job.id)
    raise web.HTTPFound(link, headers={"Cache-Control": "no-store"})


@paths.operation("/api/v1/jobs/{id}/file", "get")
def _job_file_doc(spec: Spec) -> Operation:
    return {
        "summary": "Redirect to a fresh link to the file",
        "description": "409 while the job has no file, and always for a playlist (each of its items "
        "has its own).",
        "operationId": "getJobFile",
        "security": spec.secured,
        "responses": {
            "302": {
                "description": "To the file.",
                "headers": {"Location": {"schema": {"type": "string"}}},
            },
            **spec.errors(401, 404, 409, 429, 503),
        },
    }


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
    query = request.query
    name = query.get("name", "")
    try:
        path = await asyncio.to_thread(
            storage.resolve_link, request.match_info["key"], query.get("exp", ""), name, query.get("sig", "")
        )
    except FileNotFoundError:
        raise NotFound(N_("This file is no longer available.")) from None
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


paths.parameters(
    "/files/{key}",
    lambda spec: [
        {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "exp", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "name", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "sig", "in": "query", "required": True, "schema": {"type": "string"}},
    ],
)


def _serve_file_doc(method: str, spec: Spec) -> Operation:
    return {
        "summary": "Download a stored file (signed link from file_url; local storage only)",
        "operationId": f"{method}File",
        "responses": {
            "200": {
                "description": "The file.",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            },
            "206": {
                "description": "Part of the file (Range).",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            },
            "304": {"description": "Not modified."},
            "416": {"description": "The range is not satisfiable."},
            **spec.errors(403, 404, 410),
        },
    }


# aiohttp answers HEAD on every GET route; here it is documented too (a client checks a file's size first).
for _method in ("get", "head"):
    paths.operation("/files/{key}", _method)(functools.partial(_serve_file_doc, _method))
