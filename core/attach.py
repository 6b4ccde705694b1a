"""Attaching requests to jobs inside one transaction: the only place job and request rows are created.

Submissions, copies made to fit a chat's limit and playlist items all come through here, so all three
coalesce the same way: a unique `dedup_key` lets the database, not a process, decide which request starts
a download.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Job, JobStatus, Request, RequestStatus, search_text
from core.urls import normalize_url


def new_id() -> str:
    return uuid.uuid4().hex


def choice_suffix(
    format_id: str | None = None,
    subtitles: Sequence[str] | None = (),
    audio_format: str | None = None,
    playable: bool | None = False,
) -> str:
    """What a person chose beyond kind and quality, as it enters the dedup and media keys. A playable video
    is a variant of its own: its file may be another format, or a conversion."""
    suffix = f"|f={format_id}" if format_id else ""
    suffix += f"|s={','.join(sorted(subtitles))}" if subtitles else ""
    suffix += "|p=h264" if playable else ""
    return suffix + (f"|a={audio_format}" if audio_format else "")


def dedup_key(
    cache_key: str,
    kind: str,
    quality: str,
    variant: str | None = None,
    *,
    format_id: str | None = None,
    subtitles: Sequence[str] | None = (),
    audio_format: str | None = None,
    playable: bool | None = False,
) -> str:
    key = f"{cache_key}|{kind}:{quality}{choice_suffix(format_id, subtitles, audio_format, playable)}"
    return f"{key}|{variant}" if variant else key


def insert_ignoring_conflict(dialect: str, values: dict[str, Any]) -> Any:
    """INSERT ... ON CONFLICT (dedup_key) DO NOTHING on both SQLite and PostgreSQL."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(Job).values(**values).on_conflict_do_nothing(index_elements=["dedup_key"])


@dataclass
class Attached:
    """What one transaction attached: the rows it touched and the jobs it created (to enqueue after
    commit)."""

    job: Job
    request: Request
    outcome: str  # queued | coalesced | cached
    created: list[str] = field(default_factory=list)


async def find_or_create_job(
    session: AsyncSession,
    dialect: str,
    *,
    url: str,
    cache_key: str,
    kind: str,
    quality: str,
    key: str,
    now: datetime,
    extra: dict[str, Any] | None = None,
) -> tuple[Job, bool] | None:
    """The live job for `key` (locked), or a new queued one. None when the job collided with ended in
    between: the caller tries again."""
    # Look first: a cache hit or a join then costs one read and one insert.
    job = await session.scalar(select(Job).where(Job.dedup_key == key).with_for_update())
    if job is not None:
        return job, False
    values = dict(
        id=new_id(),
        url=url,
        cache_key=cache_key,
        kind=kind,
        quality=quality,
        dedup_key=key,
        status=JobStatus.QUEUED,
        seq=1,
        retained=False,
        attempts=0,
        cancel_requested=False,
        created_at=now,
        updated_at=now,
        enqueued_at=now,
        **(extra or {}),
    )
    values["search_title"] = search_text(values.get("title"))
    # The unique dedup key decides between processes inserting the same job at once.
    inserted = await session.execute(insert_ignoring_conflict(dialect, values))
    if inserted.rowcount == 1:
        return Job(**values), True
    job = await session.scalar(select(Job).where(Job.dedup_key == key).with_for_update())
    return (job, False) if job is not None else None


def new_request(job: Job, created: bool, *, now: datetime, **fields: Any) -> tuple[Request, str]:
    """A request row on `job`; a finished job answers it at once (cached)."""
    outcome = "queued" if created else ("cached" if job.status == JobStatus.DONE else "coalesced")
    ended = job.status == JobStatus.DONE
    request = Request(
        id=new_id(),
        job_id=job.id,
        kind=job.kind,
        quality=job.quality,
        outcome=outcome,
        created_at=now,
        status=RequestStatus.DONE if ended else RequestStatus.ACTIVE,
        finished_at=now if ended else None,
        search_url=search_text(fields.get("url")),
        **fields,
    )
    return request, outcome


async def add_playlist_items(
    session: AsyncSession, dialect: str, parent: Request, playlist: Job, now: datetime
) -> list[str]:
    """One child request per playlist entry for `parent`, each on its own (possibly shared) job. Returns
    the ids of the jobs it created."""
    created_ids: list[str] = []
    for index, entry in enumerate(playlist.entries or []):
        # Items keep the playlist's order when listed by creation time.
        at = now + timedelta(microseconds=index)
        url = entry["url"]
        cache_key = normalize_url(url)
        # Items share the playlist's subtitle languages, audio format and playability; formats are the site's
        # per item, so not its format.
        subtitles = playlist.subtitle_langs or []
        key = dedup_key(
            cache_key,
            playlist.kind,
            playlist.quality,
            subtitles=subtitles,
            audio_format=playlist.audio_format,
            playable=playlist.playable,
        )
        for _ in range(5):
            found = await find_or_create_job(
                session, dialect, url=url, cache_key=cache_key, kind=playlist.kind, quality=playlist.quality,
                key=key, now=at, extra={"parent_id": playlist.id, "title": entry.get("title"),
                                        "subtitle_langs": list(subtitles) or None,
                                        "audio_format": playlist.audio_format,
                                        "playable": bool(playlist.playable)},
            )  # fmt: skip
            if found is not None:
                break
        else:
            continue
        job, created = found
        if created:
            created_ids.append(job.id)
        request, _ = new_request(
            job, created, now=at, source=parent.source, user_id=parent.user_id, url=url,
            target=dict(parent.target or {}), parent_id=parent.id,
        )  # fmt: skip
        session.add(request)
    return created_ids
