"""A playlist's items: one child request per entry for every request on the playlist."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Job, Request
from core.jobs.attach import find_or_create_job, new_request
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
