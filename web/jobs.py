"""REST routes for jobs: submit, read, list (with filters), cancel, retry, remove from history, and a redirect
to the file."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from pydantic import ValidationError

from core.apikeys import ApiKeyInfo
from core.errors import InvalidRequest, NotFound, StorageError
from core.schemas import (
    THUMBNAIL,
    ErrorInfo,
    JobView,
    Progress,
    RequestView,
    SubmitRequest,
    subtitle_asset,
)
from core.services import Services
from web.auth import SOURCE, authenticate, refusals_limited, submission_counted
from web.bodies import json_object
from web.errors import NotReady, StillActive
from web.keys import SERVICES, WEBHOOKS
from web.schemas import (
    CONTROL_CHARACTER,
    CURSOR_PATTERN,
    JOB_ID_PATTERN,
    KINDS,
    LIMIT_PATTERN,
    STATUS_LIST_PATTERN,
    STATUSES,
    FilePart,
    Job,
    JobCreate,
    JobList,
    SubtitleFile,
)

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

_ID = re.compile(JOB_ID_PATTERN)
_CURSOR = re.compile(CURSOR_PATTERN)
_LIMIT = re.compile(LIMIT_PATTERN)
_STATUS_LIST = re.compile(STATUS_LIST_PATTERN)
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
MAX_LIMIT = 100
MAX_SEARCH = 200
# Core pages read at most per listing call (playlist items and filtered-out playlists are skipped).
SCAN_PAGES = 20
ACTIVE = ("queued", "running")
ENDED = ("done", "failed", "cancelled")
Pair = tuple[RequestView, JobView]


def api_status(request: RequestView, job: JobView) -> str:
    """The caller's view: a cancelled request reads as cancelled even while others still wait for the job."""
    if request.status == "cancelled":
        return "cancelled"
    return job.status


def is_playlist(request: RequestView, job: JobView) -> bool:
    """A request whose link was read as a playlist: it is answered by its items, not by a file."""
    return job.playlist is not None and request.status != "cancelled"


def playlist_status(statuses: Sequence[str]) -> str:
    """A playlist's status from its items': running while any is active; once all ended, done if any is
    done, else failed if any failed, else cancelled."""
    if any(s in ACTIVE for s in statuses):
        return "running"
    if not statuses or "done" in statuses:
        return "done"
    return "failed" if "failed" in statuses else "cancelled"


def playlist_seq(job: JobView, items: Sequence[Pair]) -> int:
    """Grows with every change of the playlist or of any item: item jobs' seqs only grow, and an item request
    ends once (it may end while its shared download goes on for others)."""
    return job.seq + sum(j.seq + (r.status != "active") for r, j in items)


async def items_of(services: Services, request: RequestView) -> list[Pair]:
    """A playlist request's items, in playlist order."""
    return [(r, j) for r, j in await services.jobs.children(request.id) if j.variant is None]


async def to_api(
    services: Services, request: RequestView, job: JobView, *, items: Sequence[Pair] | None = None
) -> Job:
    """The API's job: one download, or a playlist with its items (read here unless given)."""
    if not is_playlist(request, job):
        return await _single(services, request, job)
    if items is None:
        items = await items_of(services, request)
    shown = list(await asyncio.gather(*(_single(services, r, j) for r, j in items)))
    status = playlist_status([item.status for item in shown])
    ended = status in ENDED
    error = None
    if status == "failed":
        error = next(item.error for item in shown if item.status == "failed")
    elif status == "cancelled":
        error = ErrorInfo(code="cancelled", message="The download was cancelled.")
    percents = [100.0 if item.status in ENDED else (item.progress.percent or 0.0) for item in shown]
    finished = [item.finished_at for item in shown if item.finished_at is not None]
    return Job(
        id=request.id,
        seq=playlist_seq(job, items),
        url=request.url,
        kind=request.kind,
        quality=request.quality,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        progress=Progress(percent=round(sum(percents) / len(percents), 1) if percents else 100.0),
        title=job.title,
        cached=request.outcome == "cached",
        outcome=request.outcome,  # type: ignore[arg-type]
        error=error,
        created_at=request.created_at,
        updated_at=max(
            [job.updated_at, request.finished_at or job.updated_at, *(i.updated_at for i in shown)]
        ),
        started_at=job.started_at,
        finished_at=max([job.finished_at or request.created_at, *finished]) if ended else None,
        parent_id=request.parent_id,
        playlist=job.playlist,
        items=shown,
        uploader=job.uploader,
        upload_date=job.upload_date,
        format_id=job.format_id,
        audio_format=job.audio_format,
        playable=job.playable,
        subtitle_langs=job.subtitle_langs,
    )


async def _link(services: Services, job: JobView, part: int | None = None) -> str | None:
    try:
        if part is None:
            return await services.jobs.link_to(job)
        return await services.jobs.link(job.id, part=part)
    except (NotFound, StorageError) as exc:
        log.debug("no link for job %s: %s", job.id, exc)
        return None


async def _asset_link(services: Services, job: JobView, asset: str) -> str | None:
    try:
        return await services.jobs.asset_link(job, asset)
    except StorageError as exc:
        log.debug("no %s link for job %s: %s", asset, job.id, exc)
        return None


async def _single(services: Services, request: RequestView, job: JobView) -> Job:
    status = api_status(request, job)
    done = status == "done"
    file_url = await _link(services, job) if done else None
    parts = None
    if job.parts:
        parts = [
            FilePart(
                index=part.index,
                filename=part.filename,
                size=part.size,
                file_url=await _link(services, job, part.index) if status == "done" else None,
            )
            for part in job.parts
        ]
    subtitles = [
        SubtitleFile(
            lang=sub.lang,
            filename=sub.filename,
            size=sub.size,
            url=await _asset_link(services, job, subtitle_asset(sub.lang)) if done else None,
        )
        for sub in job.subtitles
    ]
    error = job.error
    if status == "cancelled" and job.status != "cancelled":
        error = ErrorInfo(code="cancelled", message="The download was cancelled.")
    finished_at = request.finished_at or job.finished_at
    updated_at = max(job.updated_at, request.finished_at) if request.finished_at else job.updated_at
    return Job(
        id=request.id,
        seq=job.seq,
        url=request.url,
        kind=request.kind,
        quality=request.quality,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        progress=job.progress,
        title=job.title,
        duration=job.duration,
        filename=job.filename,
        filesize=job.filesize,
        ext=job.ext,
        width=job.width,
        height=job.height,
        file_url=file_url,
        cached=request.outcome == "cached" or job.cached_from is not None,
        outcome=request.outcome,  # type: ignore[arg-type]
        error=error,
        created_at=request.created_at,
        updated_at=updated_at,
        started_at=job.started_at,
        finished_at=finished_at if status in ENDED else None,
        parts=parts,
        parent_id=request.parent_id,
        uploader=job.uploader,
        upload_date=job.upload_date,
        format_id=job.format_id,
        audio_format=job.audio_format,
        playable=job.playable,
        subtitle_langs=job.subtitle_langs,
        subtitles=subtitles,
        subtitles_missing=job.subtitles_missing,
        thumbnail_url=await _asset_link(services, job, THUMBNAIL) if done else None,
    )


def dump(model: Job | JobList) -> dict[str, object]:
    return model.model_dump(mode="json")


async def owned(
    services: Services, key: ApiKeyInfo, request_id: str, *, removed: bool = False
) -> tuple[RequestView, JobView]:
    """The caller's request and its job; 404 for anything else, including other keys' requests and, unless
    `removed`, requests removed from the history."""
    if not _ID.fullmatch(request_id):
        raise NotFound()
    request, job = await services.jobs.get_request(request_id)
    if request.source != SOURCE or request.user_id != key.id or (request.hidden and not removed):
        raise NotFound()
    return request, job


async def _body(request: web.Request) -> JobCreate:
    data = json_object(await request.read())  # client_max_size caps the read: 413 beyond
    try:
        return JobCreate.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc)) from None


_PLAIN_PATTERNS = {
    "url": "a link without control characters",
    "callback_url": "a link without control characters",
    "format_id": "a format id from GET /api/v1/formats (letters, digits, dots, dashes, underscores)",
    "subtitles": "language codes such as en, de or pt-BR",
}


def _describe(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors()[:5]:
        where = ".".join(str(part) for part in err["loc"]) or "body"
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        elif err["type"] == "string_pattern_mismatch":
            # The pattern itself means nothing to a person: say what is allowed.
            message = _PLAIN_PATTERNS.get(str(err["loc"][0]), "not in the expected form")
        else:
            message = err["msg"]
        problems.append(f"{where}: {message}")
    return "Invalid request: " + "; ".join(problems) + "."


def _idempotency_key(request: web.Request) -> str | None:
    value = request.headers.get("Idempotency-Key")
    if value is None:
        return None
    value = value.strip()
    if not _IDEMPOTENCY_KEY.fullmatch(value):
        raise InvalidRequest("Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID, say).")
    return value


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


def _submitted_response(job: Job, status: int, headers: dict[str, str] | None = None) -> web.Response:
    headers = {"Location": f"/api/v1/jobs/{job.id}", **(headers or {})}
    return web.json_response(dump(job), status=status, headers=headers)


@routes.get("/api/v1/jobs")
async def list_jobs(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = await authenticate(request)
    query = request.query
    # Each parameter is read exactly as the OpenAPI document states it (web.openapi), no more leniently.
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


@dataclass(frozen=True)
class Filters:
    """What a listing asked for: statuses as shown, kinds, and a piece of the title or link."""

    statuses: list[str]
    kinds: list[str] | None = None
    search: str | None = None


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
                "This cursor names no page of your jobs: list them again from the start."
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


@routes.get("/api/v1/jobs/{id}")
async def get_job(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    key = await authenticate(request)
    req, job = await owned(services, key, request.match_info["id"])
    return web.json_response(dump(await to_api(services, req, job)))


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
