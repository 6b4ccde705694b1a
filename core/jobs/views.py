"""How a job and a request look to the front ends (JobView, RequestView, Submission): read-only snapshots
of the rows, built in one place."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.db.models import Job, JobStatus, Request
from core.jobs.formats import Playlist, Subtitle

log = logging.getLogger(__name__)


class Progress(BaseModel):
    downloaded_bytes: int | None = None
    total_bytes: int | None = None
    percent: float | None = None
    speed: float | None = None
    eta: float | None = None


class ErrorInfo(BaseModel):
    code: str
    message: str


def fit_variant(limit: int, split: bool = False) -> str:
    """The variant of a copy made to fit `limit` bytes (part of its cache key): "fit:<bytes>[:split]"."""
    return f"fit:{int(limit)}" + (":split" if split else "")


def variant_limit(variant: str) -> tuple[int, bool]:
    """fit_variant's inverse: (bytes, split)."""
    parts = variant.split(":")
    if len(parts) < 2 or parts[0] != "fit" or not parts[1].isdigit():
        raise ValueError(f"not a fit variant: {variant!r}")
    return int(parts[1]), "split" in parts[2:]


THUMBNAIL = "thumbnail"  # the asset name of a job's stored thumbnail (JPEG, <= 320 px a side, <= 200 KB)


def subtitle_asset(lang: str) -> str:
    """The asset name of a job's .srt file in `lang`."""
    return f"subtitles.{lang}"


class Part(BaseModel):
    """One file of a split: parts are numbered from 1 and each fits the limit they were made for."""

    index: int
    filename: str
    size: int


class JobView(BaseModel):
    """A job's state at one `seq`. Every event carries a whole snapshot, so a subscriber that missed some
    events still ends up with the newest state."""

    model_config = ConfigDict(frozen=True)

    id: str
    seq: int
    url: str
    kind: str
    quality: str
    status: str
    progress: Progress
    title: str | None = None
    duration: float | None = None
    extractor: str | None = None
    media_id: str | None = None
    ext: str | None = None
    width: int | None = None
    height: int | None = None
    uploader: str | None = None
    filename: str | None = None
    filesize: int | None = None
    cached_from: str | None = None
    # A copy made to fit a size limit: the variant, how it was made, from which job; a split's parts.
    variant: str | None = None
    fit_method: str | None = None
    source_job_id: str | None = None
    parts: list[Part] | None = None
    playlist: Playlist | None = None
    parent_id: str | None = None
    # The format the person chose (None: chosen by kind and quality), the subtitle languages asked for, the
    # .srt files made and the languages the media lacks; whether a thumbnail is stored.
    format_id: str | None = None
    # The audio format asked for, None when none was (the file's `ext` says what came out).
    audio_format: str | None = None
    # A video made to play on every phone (H.264 + AAC in MP4: core.media.playable).
    playable: bool = False
    subtitle_langs: list[str] = Field(default_factory=list)
    subtitles: list[Subtitle] = Field(default_factory=list)
    subtitles_missing: list[str] = Field(default_factory=list)
    thumbnail: bool = False
    upload_date: str | None = None  # YYYYMMDD
    # Chapters kept in the file; what the delivery adds about a cut (sponsor segments removed, or why not).
    chapters: int | None = None
    note: str | None = None
    error: ErrorInfo | None = None
    # A queued job held back by its site's pacing (issue 23): the site's name and how many jobs are before
    # this one (None: the site is refusing us for now). Only while queued.
    waiting_for: str | None = None
    ahead: int | None = None
    # Where the finished file is stored, when this view was read from the database: lets a link be signed
    # without reading the row again. Never serialised (not in events, not in any API).
    stored: tuple[str, str] | None = Field(default=None, exclude=True, repr=False)
    # The same for its assets (thumbnail, subtitles): name -> (storage key, filename).
    stored_assets: dict[str, tuple[str, str]] = Field(default_factory=dict, exclude=True, repr=False)
    attempts: int = 0
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def terminal(self) -> bool:
        return JobStatus(self.status).terminal

    @property
    def fit_limit(self) -> int | None:
        """The size limit a copy was made to fit, None for anything else."""
        return variant_limit(self.variant)[0] if self.variant and self.variant.startswith("fit:") else None

    @classmethod
    def from_job(cls, job: Job) -> JobView:
        total = job.total_bytes
        done = job.downloaded_bytes
        percent = round(100.0 * done / total, 1) if total and done is not None else None
        if job.status == JobStatus.DONE:
            percent = 100.0
        retained = job.status == JobStatus.DONE and bool(job.retained)
        assets: dict[str, Any] = (job.assets or {}) if retained else {}
        return cls(
            id=job.id,
            seq=job.seq,
            url=job.url,
            kind=job.kind,
            quality=job.quality,
            status=job.status,
            progress=Progress(
                downloaded_bytes=done, total_bytes=total, percent=percent, speed=job.speed, eta=job.eta
            ),
            title=job.title,
            duration=job.duration,
            extractor=job.extractor,
            media_id=job.media_id,
            ext=job.ext,
            width=job.width,
            height=job.height,
            uploader=job.uploader,
            filename=job.filename,
            filesize=job.filesize,
            cached_from=job.cached_from,
            variant=job.variant,
            fit_method=job.fit_method,
            source_job_id=job.source_job_id,
            parts=[Part(index=i, filename=p["filename"], size=p["size"]) for i, p in enumerate(job.parts, 1)]
            if job.parts
            else None,
            playlist=Playlist(count=len(job.entries), total=job.playlist_total)
            if job.entries is not None
            else None,
            parent_id=job.parent_id,
            format_id=job.format_id,
            audio_format=job.audio_format,
            playable=bool(job.playable),
            subtitle_langs=list(job.subtitle_langs or []),
            subtitles=[
                Subtitle(lang=name.split(".", 1)[1], filename=a["filename"], size=a["size"])
                for name, a in sorted(assets.items())
                if name.startswith("subtitles.")
            ],
            subtitles_missing=list(job.subtitles_missing or []),
            thumbnail=THUMBNAIL in assets,
            upload_date=job.upload_date,
            chapters=job.chapters,
            note=job.note,
            waiting_for=job.waiting_for if job.status == JobStatus.QUEUED else None,
            ahead=job.waiting_ahead if job.status == JobStatus.QUEUED and job.waiting_for else None,
            stored_assets={name: (a["key"], a["filename"]) for name, a in assets.items()} if retained else {},
            stored=(job.storage_key, job.filename or "media") if retained and job.storage_key else None,
            error=ErrorInfo(code=job.error_code, message=job.error_message or "") if job.error_code else None,
            attempts=job.attempts,
            created_at=job.created_at,
            updated_at=job.updated_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
        )


@dataclass(frozen=True)
class RequestView:
    id: str
    job_id: str
    source: str
    user_id: str
    url: str
    kind: str
    quality: str
    status: str
    outcome: str
    target: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    delivered_at: datetime | None
    parent_id: str | None = None
    hidden: bool = False  # removed from its owner's history (JobService.remove)


@dataclass(frozen=True)
class Submission:
    request: RequestView
    job: JobView
    # queued: a new download; coalesced: joined one already queued or running; cached: finished from a stored file.
    outcome: Literal["queued", "coalesced", "cached"]
    # True when an earlier submission with the same idempotency key was returned instead of a new one.
    replayed: bool = False


def request_view(req: Request) -> RequestView:
    return RequestView(
        id=req.id,
        job_id=req.job_id,
        source=req.source,
        user_id=req.user_id,
        url=req.url,
        kind=req.kind,
        quality=req.quality,
        status=req.status,
        outcome=req.outcome,
        target=dict(req.target or {}),
        created_at=req.created_at,
        finished_at=req.finished_at,
        delivered_at=req.delivered_at,
        parent_id=req.parent_id,
        hidden=req.hidden_at is not None,
    )
