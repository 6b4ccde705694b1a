"""A playlist's items: one child request per entry for every request on the playlist. A split by chapters is
a playlist too: its entries are the chapters, each item a job cut from the one stored download."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.cuts.sections import Section
from core.db.models import Job, Request
from core.jobs.attach import find_or_create_job, new_request
from core.jobs.derived import CHAPTERS, Derivation
from core.jobs.keys import dedup_key
from core.net import normalize_url


async def add_playlist_items(
    session: AsyncSession, dialect: str, parent: Request, playlist: Job, now: datetime
) -> list[str]:
    """One child request per playlist entry for `parent`, each on its own (possibly shared) job. Returns
    the ids of the jobs it created."""
    created_ids: list[str] = []
    for index, entry in enumerate(playlist.entries or []):
        # Items keep the playlist's order when listed by creation time.
        at = now + timedelta(microseconds=index)
        if playlist.variant == CHAPTERS:
            url, cache_key = playlist.url, playlist.cache_key
            key, extra = _chapter_item(playlist, entry)
        else:
            url = entry["url"]
            cache_key = normalize_url(url)
            key, extra = _download_item(playlist, entry, cache_key)
        for _ in range(5):
            found = await find_or_create_job(
                session, dialect, url=url, cache_key=cache_key, kind=playlist.kind, quality=playlist.quality,
                key=key, now=at, extra=extra,
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


def _download_item(playlist: Job, entry: dict[str, Any], cache_key: str) -> tuple[str, dict[str, Any]]:
    """A playlist entry's own download: its dedup key and columns."""
    # Items share the playlist's subtitle languages, audio format and playability; formats are the site's per
    # item, so not its format.
    subtitles = playlist.subtitle_langs or []
    key = dedup_key(
        cache_key, playlist.kind, playlist.quality, subtitles=subtitles, audio_format=playlist.audio_format,
        playable=playlist.playable,
    )  # fmt: skip
    extra = {"parent_id": playlist.id, "title": entry.get("title"), "subtitle_langs": list(subtitles) or None,
             "audio_format": playlist.audio_format, "playable": bool(playlist.playable)}  # fmt: skip
    return key, extra


def _chapter_item(playlist: Job, entry: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A chapter of a split: a job made from the split's stored download (its source), keyed like a clip of
    it, so a second split of the same media (or a restart) finds the chapters already cut."""
    derived = Derivation(section=Section.of(entry["start"], entry["end"]), chapter=int(entry["index"]))
    key = dedup_key(
        playlist.cache_key, playlist.kind, playlist.quality, derived.variant, format_id=playlist.format_id,
        subtitles=playlist.subtitle_langs or [], audio_format=playlist.audio_format, playable=playlist.playable,
    )  # fmt: skip
    extra = {"parent_id": playlist.id, "variant": derived.variant, "source_job_id": playlist.source_job_id,
             "title": entry.get("title"), "duration": entry["end"] - entry["start"],
             "format_id": playlist.format_id, "subtitle_langs": playlist.subtitle_langs,
             "audio_format": playlist.audio_format, "playable": bool(playlist.playable),
             "uploader": playlist.uploader, "upload_date": playlist.upload_date,
             "extractor": playlist.extractor, "media_id": playlist.media_id}  # fmt: skip
    return key, extra
