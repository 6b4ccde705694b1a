"""The API's job shape, built in one place: what GET /api/v1/jobs/{id}, the listing, every WebSocket message and
every completion webhook show of a request and its job (a playlist summed up from its items)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from core.bootstrap import Services
from core.errors import NotFound, StorageError
from core.jobs.views import THUMBNAIL, ErrorInfo, JobView, Progress, RequestView, subtitle_asset
from web.schemas import FilePart, Job, JobEvent, JobList, SubtitleFile

log = logging.getLogger(__name__)

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


def all_ended(items: Sequence[Pair]) -> bool:
    return all(api_status(r, j) in ENDED for r, j in items)


async def items_of(services: Services, request: RequestView) -> list[Pair]:
    """A playlist request's items, in playlist order (a split's are its chapters), without copies made to fit."""
    return [
        (r, j)
        for r, j in await services.jobs.children(request.id)
        if not (j.variant or "").startswith("fit:")
    ]


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
        variant=job.variant,
        chapters=job.chapters,
        note=job.note,
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
        waiting_for=job.waiting_for if status == "queued" else None,
        ahead=job.ahead if status == "queued" else None,
        created_at=request.created_at,
        updated_at=updated_at,
        started_at=job.started_at,
        finished_at=finished_at if status in ENDED else None,
        parts=parts,
        parent_id=request.parent_id,
        uploader=job.uploader,
        upload_date=job.upload_date,
        variant=job.variant,
        chapters=job.chapters,
        note=job.note,
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


async def event_json(
    services: Services, request: RequestView, job: JobView, items: Sequence[Pair] | None = None
) -> str:
    """One WebSocket message: the job as the API shows it (a playlist with `items`, read here unless given)."""
    return JobEvent(job=await to_api(services, request, job, items=items)).model_dump_json()


async def webhook_body(services: Services, request_id: str) -> bytes:
    """A completion webhook's body: the same shape as GET /api/v1/jobs/{id}, rendered at each try (so its
    file_url is fresh)."""
    request, job = await services.jobs.get_request(request_id)
    return (await to_api(services, request, job)).model_dump_json().encode()
