"""The operator's API bodies (/api/v1/admin/...): what the OpenAPI document shows and handlers validate."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from core.i18n import N_

Source = Literal["telegram", "discord", "api"]
USER_ID_PATTERN = r"^[A-Za-z0-9_.@:-]{1,128}$"
_USER_ID = Field(
    min_length=1,
    max_length=128,
    pattern=USER_ID_PATTERN,
    description="The person's id on that front end (a Telegram or Discord user id; an API key's id).",
)


class SiteCount(BaseModel):
    site: str = Field(description="yt-dlp's extractor when it named one, else the link's host.")
    requests: int


class UserCount(BaseModel):
    source: Source
    user_id: str
    requests: int


class AdminPeriod(BaseModel):
    name: Literal["today", "7d"] = Field(description="`today`: since midnight UTC; `7d`: the last 7 days.")
    since: datetime
    requests: int = Field(description="People's asks (playlist items and copies made to fit not counted).")
    downloads: int = Field(description="Files downloaded (not answered from a stored file).")
    cache_hits: int = Field(description="Asks answered from a file already stored.")
    bytes: int = Field(description="Bytes of the files downloaded.")
    failures: dict[str, int] = Field(description="Failed downloads by error code.")
    top_sites: list[SiteCount]
    busiest_users: list[UserCount]


class AdminStats(BaseModel):
    periods: list[AdminPeriod]


class BanCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"source": "telegram", "user_id": "123456", "reason": "spam"}]},
    )

    source: Source = Field(description="The front end the person uses.")
    user_id: str = _USER_ID
    reason: str | None = Field(None, max_length=200, description="Shown to the person with the refusal.")


class BanOut(BaseModel):
    source: Source
    user_id: str
    reason: str | None = None
    banned_by: str = Field(description="The operator: `telegram:<id>`, `discord:<id>` or `api:<key name>`.")
    created_at: datetime


class BanList(BaseModel):
    items: list[BanOut] = Field(description="Everyone banned, newest first.")


class LimitSet(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"source": "telegram", "user_id": "123456", "requests_per_hour": 100}]
        },
    )

    source: Source
    user_id: str = _USER_ID
    requests_per_hour: int | None = Field(
        description="Downloads this person may start per hour; null: back to MEDIABOT_USER_REQUESTS_PER_HOUR.",
        ge=1,
        le=100_000,
    )

    @field_validator("requests_per_hour", mode="before")
    @classmethod
    def _a_number(cls, value: object) -> object:
        # JSON has numbers, not ints (40.0 is 40), but true and "3" are no numbers: lax mode would take them.
        if isinstance(value, bool | str):
            raise ValueError(N_("must be a whole number"))
        return value


class LimitOut(BaseModel):
    source: Source
    user_id: str
    requests_per_hour: int
    overridden: bool = Field(description="True when this is the person's own limit, not the default.")


class SiteQueue(BaseModel):
    site: str
    running: int
    queued: int


class QueuedJob(BaseModel):
    job_id: str
    site: str
    status: Literal["queued", "running"]
    title: str | None = None
    age_s: float = Field(description="Seconds since it was queued (waiting) or started (running).")
    requests: int = Field(description="Asks waiting for this download.")
    progress: float | None = Field(None, description="0 to 1, when the size is known.")


class AdminQueue(BaseModel):
    sites: list[SiteQueue] = Field(description="By site, the busiest first.")
    jobs: list[QueuedJob] = Field(description="The oldest 50 jobs running or waiting.")


class Me(BaseModel):
    name: str = Field(description="The calling key's name.")
    admin: bool = Field(
        description="Whether the key may use /api/v1/admin/... (the page shows its Admin panel)."
    )
