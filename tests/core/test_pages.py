"""What the job service makes of ordinary pages (yt-dlp's generic and HTML5 extractors), on SQLite and
PostgreSQL: the title a person sees and which downloads count as the same media."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.bootstrap import Services
from core.jobs.choices import SubmitRequest
from tests.support.services import make_settings, running_services


@pytest.fixture
async def html5(tmp_path: Path, database_url: str) -> AsyncIterator[Services]:
    """The embedded stack with the extractor that reads <video> tags (as with MEDIABOT_ALLOWED_EXTRACTORS
    unset; the tests otherwise allow only the generic one, which is faster to load)."""
    settings = make_settings(tmp_path, database_url=database_url, allowed_extractors=["generic", "html5"])
    async with running_services(settings) as services:
        yield services


def ask(url: str) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id="alice", kind="video")


async def test_a_single_video_on_a_page_keeps_the_pages_title(html5: Services, media_site) -> None:
    """yt-dlp numbers the <video> tags of a page, also a lone one ("Video Tag Clip (1)")."""
    url = media_site.url(f"/video-tag.html?t={uuid.uuid4().hex[:8]}")
    offered = await html5.jobs.formats(url)
    assert offered.title == "Video Tag Clip"
    submission = await html5.jobs.submit(ask(url))
    final = await html5.jobs.wait(submission.job.id, timeout=60)
    assert final.status == "done" and final.title == "Video Tag Clip", final.error
    assert final.filename == "Video Tag Clip.mp4"
    # A page with several keeps the numbers: they tell its items apart.
    playlist = await html5.jobs.submit(ask(media_site.url(f"/playlist.html?n=2&t={uuid.uuid4().hex[:8]}")))
    await html5.jobs.wait(playlist.job.id, timeout=60)
    items = await html5.jobs.children(playlist.request.id)
    assert [job.title for _, job in items] == ["Playlist of 2 (1)", "Playlist of 2 (2)"]


async def test_pages_that_share_a_file_name_are_not_the_same_media(html5: Services, media_site) -> None:
    """yt-dlp names a <video> tag's media after the page's file name ("video-tag-1"), so it is no media id:
    another site's (or folder's) video-tag.html is other media, downloaded for itself."""
    first, second = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    one = await html5.jobs.submit(ask(media_site.url(f"/pages/{first}/video-tag.html")))
    done = await html5.jobs.wait(one.job.id, timeout=60)
    assert done.status == "done", done.error
    other = await html5.jobs.submit(ask(media_site.url(f"/pages/{second}/video-tag.html")))
    final = await html5.jobs.wait(other.job.id, timeout=60)
    assert final.status == "done" and final.stored != done.stored, final.error
    assert media_site.downloads(f"/clip/{second}.mp4") == 1, "the second page's own video was downloaded"
