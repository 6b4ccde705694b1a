"""The history: your jobs listed newest first (filtered by status, kind and text, paged by cursor), and a job
removed from it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiohttp import web

from core.apikeys import ApiKeyInfo
from core.bootstrap import Services
from core.errors import InvalidRequest, NotFound
from core.i18n import N_
from web.auth import SOURCE, authenticate, owned
from web.keys import SERVICES, WEBHOOKS
from web.openapi import Operation, Paths, Spec
from web.present import api_status, dump, is_playlist, to_api
from web.schemas import (
    CONTROL_CHARACTER,
    CURSOR_PATTERN,
    KINDS,
    LIMIT_PATTERN,
    PRINTABLE_PATTERN,
    STATUS_LIST_PATTERN,
    STATUSES,
    Job,
    JobList,
)

routes = web.RouteTableDef()
paths = Paths()

_CURSOR = re.compile(CURSOR_PATTERN)
_LIMIT = re.compile(LIMIT_PATTERN)
_STATUS_LIST = re.compile(STATUS_LIST_PATTERN)
MAX_LIMIT = 100
MAX_SEARCH = 200
# Core pages read at most per listing call (playlist items and filtered-out playlists are skipped).
SCAN_PAGES = 20


@dataclass(frozen=True)
class Filters:
    """What a listing asked for: statuses as shown, kinds, and a piece of the title or link."""

    statuses: list[str]
    kinds: list[str] | None = None
    search: str | None = None


@routes.get("/api/v1/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = await authenticate(request)
    query = request.query
    # Each parameter is read exactly as the OpenAPI document states it (below), no more leniently.
    raw_limit = query.get("limit", "20")
    if not _LIMIT.fullmatch(raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise InvalidRequest("limit must be a whole number from 1 to 100.")
    limit = int(raw_limit)
    statuses = []
    for value in query.getall("status", []):
        if not _STATUS_LIST.fullmatch(value):
            raise InvalidRequest(
                f"status must be among: {', '.join(STATUSES)} (repeated, or comma-separated)."
            )
        statuses += value.split(",")
    kind = query.get("kind")
    if kind is not None and kind not in KINDS:
        raise InvalidRequest("kind must be video or audio.")
    raw_search = query.get("q", "")
    if len(raw_search) > MAX_SEARCH or CONTROL_CHARACTER.search(raw_search):
        raise InvalidRequest(f"q must be at most {MAX_SEARCH} characters, without control characters.")
    search = raw_search.strip() or None
    cursor = query.get("cursor")
    if cursor is not None and not _CURSOR.fullmatch(cursor):
        raise InvalidRequest("cursor must be the next_cursor of a previous page.")
    filters = Filters(statuses=statuses, kinds=[kind] if kind else None, search=search)
    jobs, next_cursor = await _submitted(services, key, filters, limit, cursor)
    return web.json_response(dump(JobList(items=jobs, next_cursor=next_cursor)))


async def _submitted(
    services: Services, key: ApiKeyInfo, filters: Filters, limit: int, cursor: str | None
) -> tuple[list[Job], str | None]:
    """A page of the jobs the key submitted. Playlist items are left out (each is in its playlist's
    `items`). A playlist's status is its items' sum while the core filters on its own (done) listing job,
    so a status filter also asks for done jobs and is applied here. Whole core pages are used, so the
    core's cursor stays exact; with a status filter a page can come back short (even empty) with a cursor
    to follow."""
    statuses = filters.statuses
    asked = sorted({*statuses, "done"}) if set(statuses) - {"done"} else statuses
    jobs: list[Job] = []
    for _ in range(SCAN_PAGES):
        try:
            rows, next_cursor = await services.jobs.list_requests(
                SOURCE,
                key.id,
                statuses=asked or None,
                limit=limit - len(jobs),
                cursor=cursor,
                top_level=True,
                kinds=filters.kinds,
                search=filters.search,
            )
        except InvalidRequest:
            # Every other parameter was checked before: a cursor of the right form that names no position
            # (the document cannot tell it from a real one), so there is no such page.
            raise NotFound(
                N_("This cursor names no page of your jobs: list them again from the start.")
            ) from None
        cursor = next_cursor
        for req, job in rows:
            if statuses and not is_playlist(req, job) and api_status(req, job) not in statuses:
                continue
            shown = await to_api(services, req, job)
            if not statuses or shown.status in statuses:
                jobs.append(shown)
        if len(jobs) >= limit or cursor is None:
            break
    return jobs, cursor


@paths.operation("/api/v1/jobs", "get")
def _list_jobs_doc(spec: Spec) -> Operation:
    return {
        "summary": "Your jobs, newest first",
        "description": "The jobs you submitted. A playlist's items are not listed beside it: they are "
        "in its `items` (and each can be read, followed or cancelled by its own id). `status` filters "
        "on the status shown, a playlist's included. A page may hold fewer than `limit` jobs, even "
        "none, while `next_cursor` is set: follow it until it is null.",
        "operationId": "listJobs",
        "security": spec.secured,
        "parameters": [
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 20},
            },
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                # An opaque token: only one this server handed out names a page, which no pattern can
                # say; "format" names it for clients and fuzzers.
                "schema": {"type": "string", "pattern": CURSOR_PATTERN, "format": "mediabot-cursor"},
                "description": "`next_cursor` of the previous page, as it was given; a token of that "
                "form that names no page is a 404.",
            },
            {
                "name": "status",
                "in": "query",
                "required": False,
                "style": "form",
                "explode": True,
                "schema": {
                    "type": "array",
                    "items": {"type": "string", "pattern": STATUS_LIST_PATTERN},
                },
                "description": "Only jobs in these statuses: "
                + ", ".join(f"`{s}`" for s in STATUSES)
                + " (repeat the parameter, or separate them with commas).",
            },
            {
                "name": "kind",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": list(KINDS)},
                "description": "Only video jobs, or only audio jobs.",
            },
            {
                "name": "q",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "maxLength": MAX_SEARCH, "pattern": PRINTABLE_PATTERN},
                "description": "Only jobs whose title or link contains this text (any case); blank "
                "means no filter.",
            },
        ],
        "responses": {
            "200": {
                **spec.json_body(JobList, "A page of jobs."),
                "links": {
                    "NextPage": {
                        "operationId": "listJobs",
                        "parameters": {"cursor": "$response.body#/next_cursor"},
                    },
                    "FirstJob": {
                        "operationId": "getJob",
                        "parameters": {"id": "$response.body#/items/0/id"},
                    },
                },
            },
            **spec.errors(400, 401, 404, 429, 503),
        },
    }


paths.parameters("/api/v1/history/{id}", lambda spec: [spec.job_id])


@routes.delete("/api/v1/history/{id}")
async def remove_from_history(request: web.Request) -> web.Response:
    """Remove a job from the caller's history (cancelling it if it still runs) and delete its file where
    nobody else uses it. 204, also when it was already removed."""
    services = request.app[SERVICES]
    key = await authenticate(request)
    req, _ = await owned(services, key, request.match_info["id"], removed=True)
    await services.jobs.remove(req.id, source=SOURCE, user_id=key.id)
    request.app[WEBHOOKS].wake()  # a running job removed was cancelled: its webhook is due
    return web.Response(status=204)


@paths.operation("/api/v1/history/{id}", "delete")
def _remove_doc(spec: Spec) -> Operation:
    return {
        "summary": "Remove a job from your history",
        "description": "Cancels it if it still runs, takes it (and a playlist's items) out of "
        "GET /api/v1/jobs, and deletes its file, thumbnail and subtitles unless another job of "
        "anyone still uses them: its links stop working. Removing it again changes nothing.",
        "operationId": "removeJob",
        "security": spec.secured,
        "responses": {"204": {"description": "Removed."}, **spec.errors(401, 404, 429, 503)},
    }
