"""What the operator's queries return: plain values, with the JSON the API sends."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class BanView:
    source: str
    user_id: str
    reason: str | None
    banned_by: str
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "created_at": self.created_at.isoformat()}


@dataclass(frozen=True)
class Quota:
    """One person's downloads per hour: their own (`overridden`) or the operator's default."""

    requests_per_hour: int
    overridden: bool = False


@dataclass(frozen=True)
class SiteCount:
    site: str
    requests: int


@dataclass(frozen=True)
class UserCount:
    source: str
    user_id: str
    requests: int


@dataclass(frozen=True)
class PeriodStats:
    name: str  # "today" | "7d"
    label: str  # how the chat answer heads it
    since: datetime
    requests: int
    downloads: int
    cache_hits: int
    bytes: int
    failures: dict[str, int] = field(default_factory=dict)
    top_sites: list[SiteCount] = field(default_factory=list)
    busiest_users: list[UserCount] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["since"] = self.since.isoformat()
        del data["label"]
        return data


@dataclass(frozen=True)
class QueuedJob:
    job_id: str
    site: str
    status: str  # queued | running
    title: str | None
    age_s: float  # since queued (waiting) or started (running)
    requests: int
    progress: float | None  # 0..1 when the size is known


@dataclass(frozen=True)
class SiteQueue:
    site: str
    running: int
    queued: int


@dataclass(frozen=True)
class QueueView:
    sites: list[SiteQueue]
    jobs: list[QueuedJob]  # the oldest first, at most QUEUE_LISTED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
