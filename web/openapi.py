"""The OpenAPI 3.1 document, generated from the pydantic models in web.schemas, and the docs page."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from core.schemas import MediaFormats
from web.formats import MAX_URL
from web.jobs import MAX_SEARCH
from web.keys import OPENAPI
from web.page import ASSETS
from web.schemas import (
    CURSOR_PATTERN,
    JOB_ID_PATTERN,
    KINDS,
    LINK_PATTERN,
    MAX_SEQ,
    PRINTABLE_PATTERN,
    SECONDS_PATTERN,
    STATUS_LIST_PATTERN,
    STATUSES,
    TIME_PATTERN,
    WS_CONNECTION_PATTERN,
    WS_KEY_PATTERN,
    WS_UPGRADE_PATTERN,
    WS_VERSION,
    ErrorResponse,
    Health,
    HealthDetailed,
    Job,
    JobCreate,
    JobEvent,
    JobList,
)

routes = web.RouteTableDef()

REF = "#/components/schemas/{model}"
_MODELS: list[tuple[type[BaseModel], JsonSchemaMode]] = [
    (JobCreate, "validation"),
    (Job, "serialization"),
    (JobList, "serialization"),
    (JobEvent, "serialization"),
    (MediaFormats, "serialization"),
    (ErrorResponse, "serialization"),
    (Health, "serialization"),
    (HealthDetailed, "serialization"),
]
ERROR_TEXT = {
    400: "The request is malformed (bad JSON, unknown or invalid fields, bad query parameters or "
    "Idempotency-Key).",
    408: "The request's headers or body did not arrive in time (MEDIABOT_REQUEST_HEADER_TIMEOUT_S, "
    "MEDIABOT_REQUEST_BODY_TIMEOUT_S).",
    401: "No valid API key.",
    403: "The link's signature is not valid.",
    404: "Not found (or not yours).",
    405: "Method not allowed.",
    409: "The job has no file (yet) (not_ready), or is still queued or running (still_active).",
    410: "The link has expired.",
    413: "The request body is too large.",
    422: "The link or callback_url was refused (invalid_url, private_address, unsupported_url), the site "
    "would not hand out the link's formats (download_failed, login_required), or the Idempotency-Key was "
    "used for a different request (idempotency_conflict).",
    429: "Over the key's rate (rate_limited: accepted submissions, refused submissions, or calls), too many "
    "running downloads (too_many_jobs), or too many connections from your address (too_many_connections).",
    503: "A dependency (database, queue) is unavailable; try again shortly.",
}
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer", "minimum": 1}}
}


def build_openapi(version: str) -> dict[str, Any]:
    refs, top = models_json_schema(_MODELS, ref_template=REF)

    def ref(model: type[BaseModel], mode: JsonSchemaMode = "serialization") -> dict[str, Any]:
        return dict(refs[(model, mode)])

    def json_body(model: type[BaseModel], description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": ref(model)}}}

    def errors(*statuses: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for status in statuses:
            out[str(status)] = json_body(ErrorResponse, ERROR_TEXT[status])
            if status == 429:
                out[str(status)]["headers"] = RETRY_AFTER
        return out

    job_id = {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "The job id.",
        "schema": {"type": "string", "pattern": JOB_ID_PATTERN},
    }
    # Links: the id a response names leads to the operations on that job (stateful clients and fuzzers
    # follow them).
    job_links = {
        name: {"operationId": operation, "parameters": {"id": "$response.body#/id"}}
        for name, operation in (
            ("GetJob", "getJob"),
            ("FollowJob", "jobEvents"),
            ("GetJobFile", "getJobFile"),
            ("RetryJob", "retryJob"),
            ("CancelJob", "cancelJob"),
            ("RemoveJob", "removeJob"),
        )
    }
    handshake = [
        {
            "name": "Upgrade",
            "in": "header",
            "required": True,
            "description": "`websocket`: these addresses answer only a WebSocket handshake (RFC 6455); a "
            "plain GET is refused with 400.",
            "schema": {"type": "string", "pattern": WS_UPGRADE_PATTERN},
        },
        {
            "name": "Connection",
            "in": "header",
            "required": True,
            "description": "Names `Upgrade`.",
            "schema": {"type": "string", "pattern": WS_CONNECTION_PATTERN},
        },
        {
            "name": "Sec-WebSocket-Key",
            "in": "header",
            "required": True,
            "description": "16 random bytes in base64.",
            "schema": {"type": "string", "pattern": WS_KEY_PATTERN},
        },
        {
            "name": "Sec-WebSocket-Version",
            "in": "header",
            "required": True,
            "schema": {"type": "string", "enum": [WS_VERSION]},
        },
    ]
    secured = [{"bearer": []}, {"apiKeyHeader": []}]
    ws_secured = [*secured, {"tokenQuery": []}]
    websocket = {
        "101": {
            "description": "Switching to the WebSocket protocol. Each message is a JobEvent (JSON). The "
            "server closes with 1000 when a job's stream is over, 1001 when it shuts down, and 4401 "
            '("api key revoked") when the key is revoked.'
        },
        **errors(400, 401, 404, 429, 503),
    }
    events_note = 'Messages are `JobEvent` objects: `{"type": "job", "job": {...}}`.'
    replayed = {
        "Idempotent-Replayed": {
            "description": "`true` when this is the job an earlier call with the same Idempotency-Key made.",
            "schema": {"type": "string", "enum": ["true"]},
        }
    }

    paths: dict[str, Any] = {
        "/api/v1/jobs": {
            "post": {
                "summary": "Start a download",
                "description": "202 when a download was queued or joined an identical running one; 200 with the "
                "finished job when a stored file of the same media was used. A playlist or channel link is "
                "read by a worker and becomes a job with `playlist` and `items` (one job per entry, each with "
                "its own id, status, progress and file_url); a playlist read before answers 200 only when "
                "every item's file was stored too.",
                "operationId": "createJob",
                "security": secured,
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": False,
                        "description": "Repeating a call with the same key (and body) within 24 hours returns "
                        "the job the first call made, with its status code, instead of a new one; the same key "
                        "with a different body is refused with 422 idempotency_conflict, however valid the "
                        "body.",
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": ref(JobCreate, "validation")}},
                },
                "responses": {
                    "200": {
                        **json_body(Job, "Finished at once from a stored file (cached: true)."),
                        "headers": replayed,
                        "links": job_links,
                    },
                    "202": {
                        **json_body(Job, "Queued, or joined a running download of the same media."),
                        "headers": {
                            "Location": {"description": "The job's address.", "schema": {"type": "string"}},
                            **replayed,
                        },
                        "links": job_links,
                    },
                    **errors(400, 401, 408, 413, 422, 429, 503),
                },
            },
            "get": {
                "summary": "Your jobs, newest first",
                "description": "The jobs you submitted. A playlist's items are not listed beside it: they are "
                "in its `items` (and each can be read, followed or cancelled by its own id). `status` filters "
                "on the status shown, a playlist's included. A page may hold fewer than `limit` jobs, even "
                "none, while `next_cursor` is set: follow it until it is null.",
                "operationId": "listJobs",
                "security": secured,
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "required": False,
                        # An opaque token: only one this server handed out names a page, which no pattern
                        # can say; "format" names it for clients and fuzzers.
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
                        **json_body(JobList, "A page of jobs."),
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
                    **errors(400, 401, 404, 429, 503),
                },
            },
        },
        "/api/v1/jobs/{id}": {
            "parameters": [job_id],
            "get": {
                "summary": "One job",
                "operationId": "getJob",
                "security": secured,
                "responses": {"200": json_body(Job, "The job."), **errors(401, 404, 429, 503)},
            },
            "delete": {
                "summary": "Cancel a job (it is not deleted)",
                "description": "Cancels your request; the job is not deleted: it stays readable here (status "
                "`cancelled`) and in your history until DELETE /api/v1/history/{id} removes it. The download "
                "stops only when nobody else waits for it. Cancelling a job that already ended changes nothing "
                "and returns it as it is. Cancelling a playlist cancels its items that have not ended (items "
                "already done keep their files); cancelling one item leaves the others running.",
                "operationId": "cancelJob",
                "security": secured,
                "responses": {
                    "200": json_body(Job, "The job after cancelling."),
                    **errors(401, 404, 429, 503),
                },
            },
        },
        "/api/v1/jobs/{id}/retry": {
            "parameters": [job_id],
            "post": {
                "summary": "Ask for the same download again",
                "description": "A new job with the same link, kind, quality, `format_id` and subtitles (no "
                "`callback_url`), counted like a submission. 409 `still_active` while the job is queued or "
                "running. A file still stored answers at once (the new job is then already done).",
                "operationId": "retryJob",
                "security": secured,
                "responses": {
                    "202": {
                        **json_body(Job, "The new job."),
                        "headers": {
                            "Location": {
                                "description": "The new job's address.",
                                "schema": {"type": "string"},
                            }
                        },
                        "links": job_links,
                    },
                    **errors(401, 404, 409, 422, 429, 503),
                },
            },
        },
        "/api/v1/history/{id}": {
            "parameters": [job_id],
            "delete": {
                "summary": "Remove a job from your history",
                "description": "Cancels it if it still runs, takes it (and a playlist's items) out of "
                "GET /api/v1/jobs, and deletes its file, thumbnail and subtitles unless another job of "
                "anyone still uses them: its links stop working. Removing it again changes nothing.",
                "operationId": "removeJob",
                "security": secured,
                "responses": {"204": {"description": "Removed."}, **errors(401, 404, 429, 503)},
            },
        },
        "/api/v1/formats": {
            "get": {
                "summary": "What a link offers: formats with sizes, subtitles, thumbnail",
                "description": "Reads the link without downloading it, under the same rules as a download "
                "(so the same 422 refusals), and answers from a short-lived cache (`cached: true`) when it "
                "was read in the last 5 minutes. `formats` are best first (video by height, then sound "
                "only); pass one's `format_id` to POST /api/v1/jobs. `filesize` is in bytes, estimated "
                "from the bitrate when `filesize_estimated`; `tbr` is in kbit/s; `label` is ready for a "
                "button. `subtitles` lists the languages to ask for. `thumbnail` is the site's own address "
                "for it. A playlist link has `playlist` set and no formats (each item picks its own).",
                "operationId": "getFormats",
                "security": secured,
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
                    "200": json_body(MediaFormats, "What the link offers."),
                    **errors(400, 401, 422, 429, 503),
                },
            },
        },
        "/api/v1/jobs/{id}/file": {
            "parameters": [job_id],
            "get": {
                "summary": "Redirect to a fresh link to the file",
                "description": "409 while the job has no file, and always for a playlist (each of its items "
                "has its own).",
                "operationId": "getJobFile",
                "security": secured,
                "responses": {
                    "302": {
                        "description": "To the file.",
                        "headers": {"Location": {"schema": {"type": "string"}}},
                    },
                    **errors(401, 404, 409, 429, 503),
                },
            },
        },
        "/api/v1/jobs/{id}/events": {
            "parameters": [job_id],
            "get": {
                "summary": "Follow one job (WebSocket)",
                "description": "The current state first, then one message per change; the server closes the "
                "socket (1000) after the last state. For a playlist: its state while the link is read, then "
                "its state with `playlist` and every item, then one message per change of an item (the "
                "item's own job, with `parent_id` set to the playlist's id), then the playlist's final "
                "state once every item has ended. " + events_note,
                "operationId": "jobEvents",
                "parameters": [
                    *handshake,
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "description": "Resume: send only states whose `seq` is larger (the last one you got). "
                        "When the job ended at or before it, the socket closes at once (1000). For a playlist, "
                        "pass the `seq` of the last message about the playlist itself: its `seq` sums its "
                        "items', so one message with the playlist and every item brings you up to date, and "
                        "item changes follow.",
                        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
                    },
                ],
                "security": ws_secured,
                "responses": websocket,
            },
        },
        "/api/v1/events": {
            "get": {
                "summary": "Follow all your jobs (WebSocket)",
                "description": "The current state of each running job, then every change of any of your jobs, "
                "including ones started after connecting. A playlist is sent (with its items) before its "
                "items' own messages, and again once its last item has ended. " + events_note,
                "operationId": "keyEvents",
                "parameters": [
                    *handshake,
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "description": "Resume: a time, as Unix seconds or ISO 8601 to the minute at least "
                        "(`2026-01-31T12:00:00Z`, e.g. the last `updated_at` you got; a `+` before the offset "
                        "may arrive unencoded); first sends the final state of each of your jobs that ended "
                        "since then (up to 24 hours back: an earlier time means 24 hours ago). Drop states you "
                        "already have by `id` and `seq`.",
                        "schema": {
                            "type": "string",
                            "anyOf": [{"pattern": SECONDS_PATTERN}, {"pattern": TIME_PATTERN}],
                        },
                    },
                ],
                "security": ws_secured,
                "responses": websocket,
            },
        },
        "/files/{key}": {
            "parameters": [
                {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}},
                {"name": "exp", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "name", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "sig", "in": "query", "required": True, "schema": {"type": "string"}},
            ],
            **{
                method: {
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
                        **errors(403, 404, 410),
                    },
                }
                for method in ("get", "head")
            },
        },
        "/health": {
            "get": {
                "summary": "The process is up",
                "operationId": "health",
                "responses": {"200": json_body(Health, "Up.")},
            },
        },
        "/health/detailed": {
            "get": {
                "summary": "Each dependency with its status and latency",
                "operationId": "healthDetailed",
                "responses": {
                    "200": json_body(HealthDetailed, "Everything works."),
                    "503": json_body(HealthDetailed, "Something does not."),
                },
            },
        },
        "/metrics": {
            "get": {
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
            },
        },
        "/api/openapi.json": {
            "get": {
                "summary": "This document",
                "operationId": "openapi",
                "responses": {
                    "200": {
                        "description": "OpenAPI 3.1.",
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    }
                },
            },
        },
        "/api/docs": {
            "get": {
                "summary": "This document as a page",
                "operationId": "docs",
                "responses": {
                    "200": {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}}
                },
            },
        },
        "/": {
            "get": {
                "summary": "The web page: paste a link, follow the download, save the file",
                "operationId": "page",
                "responses": {
                    "200": {"description": "HTML.", "content": {"text/html": {"schema": {"type": "string"}}}}
                },
            },
        },
        "/static/{name}": {
            "get": {
                "summary": "The web page's script and style sheet",
                "operationId": "pageAsset",
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": list(ASSETS)},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "`app.js` or `app.css`.",
                        "content": {
                            "text/javascript": {"schema": {"type": "string"}},
                            "text/css": {"schema": {"type": "string"}},
                        },
                    },
                    **errors(404),
                },
            },
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mediabot",
            "version": version,
            "description": "Download media from a link: submit a job, follow it live, fetch the file. "
            'Every error is `{"error": {"code", "message"}}`, including those of the HTTP layer: 408 '
            "`request_timeout` (headers or body too slow), 414 `uri_too_long`, 431 `headers_too_large`, 429 "
            "`too_many_connections` (per client address), 400 `invalid_request` (not valid HTTP).",
        },
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer mb_..."},
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "tokenQuery": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "token",
                    "description": "WebSockets only (browsers cannot set headers there).",
                },
            },
        },
    }


@routes.get("/api/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


@functools.cache
def _docs_page() -> str:
    return resources.files("web").joinpath("static/docs.html").read_text(encoding="utf-8")


# The page is self-contained: its script and styles are inline, it only fetches /api/openapi.json.
DOCS_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'"


@routes.get("/api/docs")
async def docs(request: web.Request) -> web.Response:
    return web.Response(
        text=_docs_page(),
        content_type="text/html",
        headers={"Cache-Control": "no-cache", "Content-Security-Policy": DOCS_CSP},
    )
