"""The API's request and response models. They validate requests, shape responses and generate the
OpenAPI document, so the three cannot drift apart."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.schemas import ErrorInfo, Progress

Quality = Literal["best", "2160", "1440", "1080", "720", "480", "360", "240", "144"]
Status = Literal["queued", "running", "done", "failed", "cancelled"]
STATUSES: tuple[str, ...] = ("queued", "running", "done", "failed", "cancelled")


class JobCreate(BaseModel):
    """A download to start."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"url": "https://example.com/v.mp4"}]}
    )

    url: str = Field(min_length=1, max_length=4096, description="The page or media link (http or https).")
    kind: Literal["video", "audio"] = Field("video", description="`audio` extracts the sound track only.")
    quality: Quality = Field("best", description="`best`, or a cap on the video height. Ignored for audio.")
    callback_url: str | None = Field(
        None,
        min_length=1,
        max_length=2048,
        description="An http(s) address to POST the job to (signed) once it is done, failed or cancelled. "
        "Private addresses are refused like download links.",
    )


class Job(BaseModel):
    """One of your downloads. `id` is yours alone: two keys asking for the same link share the download
    but get different ids."""

    id: str
    seq: int = Field(
        description="Grows with every change of the download; a WebSocket reconnecting with `?after=seq` "
        "gets only newer states."
    )
    url: str
    kind: Literal["video", "audio"]
    quality: str
    status: Status
    progress: Progress
    title: str | None = None
    duration: float | None = Field(None, description="Seconds.")
    filename: str | None = None
    filesize: int | None = Field(None, description="Bytes.")
    ext: str | None = None
    width: int | None = None
    height: int | None = None
    file_url: str | None = Field(
        None,
        description="A link to the file, valid for MEDIABOT_LINK_TTL_S seconds; set when status is done.",
    )
    cached: bool = Field(
        False, description="True when the file came from an earlier download of the same media."
    )
    outcome: Literal["queued", "coalesced", "cached"] = Field(
        description="What the submission did: started a download, joined a running one, or used a stored file."
    )
    error: ErrorInfo | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobList(BaseModel):
    items: list[Job]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` to get the next page; null on the last page."
    )


class JobEvent(BaseModel):
    """One WebSocket message: the job's whole state after a change."""

    type: Literal["job"] = "job"
    job: Job


class ErrorResponse(BaseModel):
    error: ErrorInfo


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class ComponentHealth(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: Literal["ok", "fail"]
    latency_ms: float
    error: str | None = None


class HealthDetailed(BaseModel):
    status: Literal["ok", "fail"]
    components: dict[str, ComponentHealth]
