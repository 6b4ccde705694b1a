"""Playlist and channel links: cut at MEDIABOT_MAX_PLAYLIST_ITEMS, one job per item, one child request per
item for every request on the playlist, cancel reaching the items. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.bootstrap import Services
from core.delivery.planner import finished_items, playlist_line
from core.jobs.choices import SubmitRequest
from tests.support.services import make_settings, running_services, wait_until


def ask(url: str, user: str = "lister", kind: str = "video") -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id=user, kind=kind)  # type: ignore[arg-type]


@pytest.mark.both_databases
async def test_a_channel_is_cut_at_the_limit_and_each_item_is_its_own_job(
    tmp_path: Path, database_url: str, media_site
) -> None:
    settings = make_settings(tmp_path, database_url=database_url, max_playlist_items=3)
    async with running_services(settings) as services:
        media_site.reset_counts()
        sub = await services.jobs.submit(ask(media_site.url("/feed.xml?n=143")))
        playlist = await services.jobs.wait(sub.job.id, timeout=60)
        assert playlist.status == "done", playlist.error
        assert playlist.playlist is not None and (playlist.playlist.count, playlist.playlist.total) == (
            3,
            143,
        )
        assert playlist_line(playlist) == "Playlist: 3 of 143 items"
        assert playlist.title == "Channel of 143"
        items = await services.jobs.children(sub.request.id)
        assert [job.title for _, job in items] == ["Clip 1", "Clip 2", "Clip 3"]
        assert len({job.id for _, job in items}) == 3
        assert all(r.parent_id == sub.request.id and r.source == "cli" for r, _ in items)
        finished = [(r, j) async for r, j in finished_items(services.jobs, sub.request.id)]
        assert sorted(j.title or "" for _, j in finished) == ["Clip 1", "Clip 2", "Clip 3"]
        assert all(j.status == "done" and j.filesize for _, j in finished)
        for i in (1, 2, 3):
            assert media_site.downloads(f"/clip/{i}.mp4") == 1
        assert media_site.downloads("/clip/4.mp4") == 0, "items past the limit are never fetched"
        assert media_site.hits("/feed.xml") == 1
        # The parent request is answered by its items: a front end delivers them, not the parent.
        assert [r.id for r, _ in await services.jobs.undelivered("cli")] == [sub.request.id]

        # Someone else sends the same channel: the listing is reused and the items come from the cache.
        again = await services.jobs.submit(ask(media_site.url("/feed.xml?n=143"), user="other"))
        assert again.outcome == "cached" and again.job.id == sub.job.id
        theirs = await services.jobs.children(again.request.id)
        assert [j.id for _, j in theirs] == [j.id for _, j in items]
        assert all(r.outcome == "cached" and r.status == "done" and r.user_id == "other" for r, _ in theirs)
        assert media_site.hits("/feed.xml") == 1
        assert sum(media_site.downloads(f"/clip/{i}.mp4") for i in (1, 2, 3)) == 3


async def test_kind_applies_to_every_item(embedded: Services, media_site) -> None:
    sub = await embedded.jobs.submit(ask(media_site.url("/feed.xml?n=2"), kind="audio"))
    playlist = await embedded.jobs.wait(sub.job.id, timeout=60)
    assert playlist.playlist is not None and playlist.playlist.count == 2
    finished = [j async for _, j in finished_items(embedded.jobs, sub.request.id)]
    assert len(finished) == 2
    assert all(j.status == "done" and j.kind == "audio" and j.ext == "m4a" for j in finished), finished


async def test_cancelling_the_playlist_cancels_its_items(tmp_path: Path, media_site) -> None:
    settings = make_settings(tmp_path, max_playlist_items=4, worker_concurrency=2)
    async with running_services(settings) as services:
        sub = await services.jobs.submit(ask(media_site.url("/feed.xml?n=50&item=slow&rate=200000")))
        await services.jobs.wait(sub.job.id, timeout=60)
        items = await services.jobs.children(sub.request.id)
        assert len(items) == 4

        async def two_running() -> bool:
            jobs = [j for _, j in await services.jobs.children(sub.request.id)]
            return sum(j.status == "running" for j in jobs) == 2

        await wait_until(two_running, timeout=30)
        await services.jobs.cancel(sub.request.id)
        finals = [await services.jobs.wait(j.id, timeout=30) for _, j in items]
        assert [j.status for j in finals] == ["cancelled"] * 4
        assert all(r.status == "cancelled" for r, _ in await services.jobs.children(sub.request.id))
        assert await services.jobs.count_active("cli", "lister") == 0


async def test_cancelling_the_playlist_cancels_copies_being_made_for_its_items(
    tmp_path: Path, media_site
) -> None:
    # One worker slot, held by a slow download, so the copy of an item waits in the queue when cancelled.
    settings = make_settings(tmp_path, max_playlist_items=2, worker_concurrency=1, reencode_to_fit=True)
    async with running_services(settings) as services:
        sub = await services.jobs.submit(ask(media_site.url("/feed.xml?n=9&copy=1")))
        await services.jobs.wait(sub.job.id, timeout=60)
        items = [(r, j) async for r, j in finished_items(services.jobs, sub.request.id)]
        assert all(j.status == "done" for _, j in items)
        blocker = await services.jobs.submit(
            ask(media_site.url("/slow.mp4?rate=100000&copy=1"), user="other")
        )
        await wait_until(lambda: _running(services, blocker.job.id), timeout=30)
        item_request, item_job = items[0]
        copy = await services.jobs.fit(item_request.id, (item_job.filesize or 0) // 2)
        assert copy.job.status == "queued"
        await services.jobs.cancel(sub.request.id)
        final = await services.jobs.get_job(copy.job.id)
        assert final.status == "cancelled"
        child, _ = await services.jobs.get_request(copy.request.id)
        assert child.status == "cancelled" and child.parent_id == item_request.id
        await services.jobs.cancel(blocker.request.id)


async def _running(services: Services, job_id: str) -> bool:
    return (await services.jobs.get_job(job_id)).status == "running"


async def test_a_playlist_counts_once_against_a_persons_limit(tmp_path: Path, media_site) -> None:
    settings = make_settings(tmp_path, max_playlist_items=4, worker_concurrency=1)
    async with running_services(settings) as services:
        sub = await services.jobs.submit(ask(media_site.url("/feed.xml?n=20&item=slow&rate=100000&count=1")))
        await services.jobs.wait(sub.job.id, timeout=60)
        assert len(await services.jobs.children(sub.request.id)) == 4
        assert await services.jobs.count_active("cli", "lister") == 1
        await services.jobs.cancel(sub.request.id)
        assert await services.jobs.count_active("cli", "lister") == 0


async def test_an_empty_channel_fails_in_words(embedded: Services, media_site) -> None:
    sub = await embedded.jobs.submit(ask(media_site.url("/feed.xml?n=0")))
    final = await embedded.jobs.wait(sub.job.id, timeout=60)
    assert final.status == "failed" and final.error is not None
    assert (
        final.error.code == "unsupported_url"
        and final.error.message == "That page has no video or sound we can find."
    )
    assert await embedded.jobs.children(sub.request.id) == []


async def test_items_on_pages_of_their_own_keep_the_feeds_titles(tmp_path: Path, media_site) -> None:
    """A <video> page's extractor (html5) names media after the page, as the generic one names a file after
    its URL: the feed's own title for the item says more, and stays."""
    settings = make_settings(tmp_path, max_playlist_items=2)
    async with running_services(settings) as services:
        sub = await services.jobs.submit(ask(media_site.url("/feed.xml?n=2&item=page")))
        assert (await services.jobs.wait(sub.job.id, timeout=60)).status == "done"
        finished = [(r, j) async for r, j in finished_items(services.jobs, sub.request.id)]
        assert all(j.status == "done" for _, j in finished), [j.error for _, j in finished]
        assert sorted(j.title or "" for _, j in finished) == ["Clip 1", "Clip 2"]
