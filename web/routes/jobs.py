"""Jobs: submit one, read one, cancel one, ask for the same download again. Listing and removing are the
history's (web.routes.history), the file the files' (web.routes.files)."""

from __future__ import annotations

import re

from aiohttp import web
from pydantic import ValidationError

from core.cuts.sections import parse_section
from core.errors import InvalidRequest
from core.i18n import N_, _
from core.jobs.choices import SubmitRequest
from core.jobs.derived import sponsor_choice
from web.auth import SOURCE, authenticate, owned, refusals_limited, submission_counted
from web.bodies import json_object
from web.errors import StillActive
from web.keys import SERVICES, WEBHOOKS
from web.openapi import Operation, Paths, Spec
from web.present import ACTIVE, dump, to_api
from web.schemas import Job, JobCreate

routes = web.RouteTableDef()
paths = Paths()

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
_PLAIN_PATTERNS = {
    "url": N_("a link without control characters"),
    "callback_url": N_("a link without control characters"),
    "format_id": N_("a format id from GET /api/v1/formats (letters, digits, dots, dashes, underscores)"),
    "subtitles": N_("language codes such as en, de or pt-BR"),
}
_NOT_EXPECTED = N_("not in the expected form")
_REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the job an earlier call with the same Idempotency-Key made.",
        "schema": {"type": "string", "enum": ["true"]},
    }
}


async def _body(request: web.Request) -> JobCreate:
    data = json_object(await request.read())  # client_max_size caps the read: 413 beyond
    try:
        return JobCreate.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    """The body's problems in the asker's language (field names stay as the API spells them); pydantic's own
    wording, for the rarer checks, stays English."""
    problems = []
    for err in exc.errors()[:5]:
        where = ".".join(str(part) for part in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            message = _("unknown field")
        elif err["type"] == "string_pattern_mismatch":
            # The pattern itself means nothing to a person: say what is allowed.
            message = _(_PLAIN_PATTERNS.get(str(err["loc"][0]), _NOT_EXPECTED))
        elif err["type"] == "value_error" and isinstance((err.get("ctx") or {}).get("error"), ValueError):
            # Our validators' sentences (N_-marked where raised), without pydantic's "Value error, ".
            message = _(str(err["ctx"]["error"]))
        else:
            message = err["msg"]
        problems.append(f"{where}: {message}")
    return _("Invalid request: {problems}.").format(problems="; ".join(problems))


def _idempotency_key(request: web.Request) -> str | None:
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    value = value.strip()
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidRequest(N_("Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID, say)."))
    return value


def _submitted_response(job: Job, status: int, headers: dict[str, str] | None = None) -> web.Response:
    headers = {"Location": f"/api/v1/jobs/{job.id}", **(headers or {})}
    return web.json_response(dump(job), status=status, headers=headers)


@routes.post("/api/v1/jobs")
async def create_job(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = await authenticate(request)
    async with refusals_limited(request, key):
        idempotency_key = _idempotency_key(request)
        body = await _body(request)
        ask = SubmitRequest(
            text=body.url,
            source=SOURCE,
            user_id=key.id,
            kind=body.kind,
            quality=body.quality,
            callback_url=body.callback_url,
            idempotency_key=idempotency_key,
            format_id=body.format_id,
            subtitles=tuple(body.subtitles),
            audio_format=body.audio_format,
            playable=body.playable,
            section=parse_section(body.section.model_dump(exclude_none=True)) if body.section else None,
            split_chapters=body.split_chapters,
            sponsorblock=sponsor_choice(body.sponsorblock),
        )
        # A repeat starts nothing, so it is answered even when the key is over its limits.
        submission = await services.jobs.replay(ask)
        if submission is None:
            async with submission_counted(request, key):
                submission = await services.jobs.submit(ask)
    if body.callback_url is not None and submission.request.status != "active":
        request.app[WEBHOOKS].wake()  # finished at once (cached): its webhook is due now
    job = await to_api(services, submission.request, submission.job)
    # 200: finished at once from stored files (a playlist read before, whose items were all stored too).
    cached = submission.outcome == "cached" and all(item.outcome == "cached" for item in job.items or ())
    headers = {"Idempotent-Replayed": "true"} if submission.replayed else {}
    return _submitted_response(job, 200 if cached else 202, headers)


@paths.operation("/api/v1/jobs", "post")
def _create_job_doc(spec: Spec) -> Operation:
    return {
        "summary": "Start a download",
        "description": "202 when a download was queued or joined an identical running one; 200 with the "
        "finished job when a stored file of the same media was used. A playlist or channel link is "
        "read by a worker and becomes a job with `playlist` and `items` (one job per entry, each with "
        "its own id, status, progress and file_url); a playlist read before answers 200 only when "
        "every item's file was stored too.",
        "operationId": "createJob",
        "security": spec.secured,
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
            "content": {"application/json": {"schema": spec.ref(JobCreate, "validation")}},
        },
        "responses": {
            "200": {
                **spec.json_body(Job, "Finished at once from a stored file (cached: true)."),
                "headers": _REPLAYED,
                "links": spec.job_links,
            },
            "202": {
                **spec.json_body(Job, "Queued, or joined a running download of the same media."),
                "headers": {
                    "Location": {"description": "The job's address.", "schema": {"type": "string"}},
                    **_REPLAYED,
                },
                "links": spec.job_links,
            },
            **spec.errors(400, 401, 403, 408, 413, 422, 429, 503),
        },
    }


paths.parameters("/api/v1/jobs/{id}", lambda spec: [spec.job_id])


@routes.get("/api/v1/jobs/{id}")
async def get_job(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = await authenticate(request)
    req, job = await owned(services, key, request.match_info["id"])
    return web.json_response(dump(await to_api(services, req, job)))


@paths.operation("/api/v1/jobs/{id}", "get")
def _get_job_doc(spec: Spec) -> Operation:
    return {
        "summary": "One job",
        "operationId": "getJob",
        "security": spec.secured,
        "responses": {"200": spec.json_body(Job, "The job."), **spec.errors(401, 404, 429, 503)},
    }


@routes.delete("/api/v1/jobs/{id}")
async def cancel_job(request: web.Request) -> web.Response:
    """Cancel the caller's request; the download itself stops only when nobody else waits for it."""
    services = request.app[SERVICES]
    key = await authenticate(request)
    req, _ = await owned(services, key, request.match_info["id"])
    await services.jobs.cancel(req.id, source=SOURCE, user_id=key.id)
    request.app[WEBHOOKS].wake()
    req, job = await services.jobs.get_request(req.id)
    return web.json_response(dump(await to_api(services, req, job)))


@paths.operation("/api/v1/jobs/{id}", "delete")
def _cancel_job_doc(spec: Spec) -> Operation:
    return {
        "summary": "Cancel a job (it is not deleted)",
        "description": "Cancels your request; the job is not deleted: it stays readable here (status "
        "`cancelled`) and in your history until DELETE /api/v1/history/{id} removes it. The download "
        "stops only when nobody else waits for it. Cancelling a job that already ended changes nothing "
        "and returns it as it is. Cancelling a playlist cancels its items that have not ended (items "
        "already done keep their files); cancelling one item leaves the others running.",
        "operationId": "cancelJob",
        "security": spec.secured,
        "responses": {
            "200": spec.json_body(Job, "The job after cancelling."),
            **spec.errors(401, 404, 429, 503),
        },
    }


paths.parameters("/api/v1/jobs/{id}/retry", lambda spec: [spec.job_id])


@routes.post("/api/v1/jobs/{id}/retry")
async def retry_job(request: web.Request) -> web.Response:
    """The same ask again as a new job (202 with it); 409 while the job is still queued or running."""
    services = request.app[SERVICES]
    key = await authenticate(request)
    async with refusals_limited(request, key):
        req, job = await owned(services, key, request.match_info["id"])
        # As the caller sees it: a playlist runs while any of its items does, though its own request ended.
        if (await to_api(services, req, job)).status in ACTIVE:
            raise StillActive()
        async with submission_counted(request, key):
            submission = await services.jobs.retry(req.id, source=SOURCE, user_id=key.id)
    job = await to_api(services, submission.request, submission.job)
    return _submitted_response(job, 202)


@paths.operation("/api/v1/jobs/{id}/retry", "post")
def _retry_job_doc(spec: Spec) -> Operation:
    return {
        "summary": "Ask for the same download again",
        "description": "A new job with the same link, kind, quality, `format_id` and subtitles (no "
        "`callback_url`), counted like a submission. 409 `still_active` while the job is queued or "
        "running. A file still stored answers at once (the new job is then already done).",
        "operationId": "retryJob",
        "security": spec.secured,
        "responses": {
            "202": {
                **spec.json_body(Job, "The new job."),
                "headers": {
                    "Location": {
                        "description": "The new job's address.",
                        "schema": {"type": "string"},
                    }
                },
                "links": spec.job_links,
            },
            **spec.errors(401, 403, 404, 409, 422, 429, 503),
        },
    }
