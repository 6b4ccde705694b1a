"""Subscriptions in the core and the workers: a channel's new entries become requests (one download however
many follow it), nothing of the back catalogue unless asked, paused after N failures, one checker at a time."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from pathlib import Path

import pytest

from core.bootstrap import Services
from core.subscriptions.entries import new_entries
from core.subscriptions.service import SubscribeRequest
from tests.support.services import make_settings, running_services, wait_until


def follow(url: str, place: str, *, user: str = "owner", backfill: int = 0) -> SubscribeRequest:
    return SubscribeRequest(text=url, source="cli", user_id=user, place=place, backfill=backfill)


def test_the_walk_stops_at_the_last_seen_entry() -> None:
    listed = [{"url": f"https://x.test/{i}"} for i in (5, 4, 3, 2, 1)]
    fresh, seen = new_entries(listed, ["https://x.test/3", "https://x.test/2"], 0)
    assert [e["url"] for e in fresh] == ["https://x.test/4", "https://x.test/5"]  # oldest first
    assert seen[:3] == ["https://x.test/5", "https://x.test/4", "https://x.test/3"]
    first, _ = new_entries(listed, None, 0)
    assert first == []  # subscribing is not the back catalogue
    backfilled, _ = new_entries(listed, None, 2)
    assert [e["url"] for e in backfilled] == ["https://x.test/4", "https://x.test/5"]


async def _requests(services: Services, source: str = "cli") -> list:
    # Entry links carry yt-dlp's smuggled id after a '#', as playlist items do: compare without it.
    return [
        dataclasses.replace(r, url=r.url.split("#")[0]) for r, _ in await services.jobs.undelivered(source)
    ]


@pytest.mark.both_databases
async def test_a_new_entry_reaches_every_follower_with_one_download(
    tmp_path: Path, database_url: str, media_site
) -> None:
    settings = make_settings(tmp_path, database_url=database_url, subscription_interval_s=0.3)
    name = f"grow-{uuid.uuid4().hex[:8]}"  # the media site's counts are shared by the tests of a process
    feed = media_site.channel(name, 3)
    async with running_services(settings) as services:
        subs = services.subscriptions
        one, created = await subs.subscribe(follow(feed, "chat:1"))
        two, _ = await subs.subscribe(follow(feed, "chat:2", user="other", backfill=1))
        assert created
        again, created_again = await subs.subscribe(follow(feed, "chat:1"))
        assert again.id == one.id and not created_again

        async def both_checked() -> bool:
            views = await subs.list(source="cli")
            return all(v.checks >= 1 for v in views)

        await wait_until(both_checked, timeout=30)
        # Only the backfilled newest entry, and only for the subscription that asked for it.
        requests = await _requests(services)
        assert [(r.user_id, r.url) for r in requests] == [("other", media_site.url(f"/clip/{name}-3.mp4"))]

        media_site.channel(name, 4)  # a new video appears
        new_url = media_site.url(f"/clip/{name}-4.mp4")

        async def both_have_it() -> bool:
            return len([r for r in await _requests(services) if r.url == new_url]) == 2

        await wait_until(both_have_it, timeout=30)
        mine = [r for r in await _requests(services) if r.url == new_url]
        assert {r.target["subscription"] for r in mine} == {one.id, two.id}
        assert len({r.job_id for r in mine}) == 1  # coalesced
        await services.jobs.wait(mine[0].job_id, timeout=60)
        await asyncio.sleep(1.0)  # more checks pass: nothing is submitted twice
        assert len([r for r in await _requests(services) if r.url == new_url]) == 2
        assert media_site.downloads(f"/clip/{name}-4.mp4") == 1
        assert media_site.downloads(f"/clip/{name}-2.mp4") == 0  # the back catalogue is never fetched
        views = {v.id: v for v in await subs.list(source="cli")}
        assert views[one.id].delivered == 1 and views[two.id].delivered == 2


async def test_a_failing_source_is_paused_and_its_owner_told_once(tmp_path: Path, media_site) -> None:
    settings = make_settings(tmp_path, subscription_interval_s=0.1, subscription_max_failures=3)
    async with running_services(settings) as services:
        subs = services.subscriptions
        sub, _ = await subs.subscribe(follow(media_site.url("/nomedia.html"), "chat:9"))

        async def paused() -> bool:
            return (await subs.get(sub.id, source="cli", user_id="owner")).paused

        await wait_until(paused, timeout=30)
        view = await subs.get(sub.id, source="cli", user_id="owner")
        assert view.failures == 3 and view.checks == 3 and view.last_error
        await asyncio.sleep(0.5)
        assert (await subs.get(sub.id, source="cli", user_id="owner")).checks == 3  # paused: not checked
        told = await subs.to_tell("cli")
        assert [t.id for t in told] == [sub.id]
        assert await subs.to_tell("cli") == []  # once
        counts = await subs.counts()
        assert counts["paused"] == 1 and counts["checks"] == 3


async def test_two_workers_never_check_the_same_subscription(tmp_path: Path, pg_url: str, media_site) -> None:
    """Two runtimes on one PostgreSQL claim concurrently: every subscription is taken by exactly one."""
    settings = make_settings(tmp_path, database_url=pg_url, subscription_interval_s=3600)
    feed = media_site.channel(f"many-{uuid.uuid4().hex[:8]}", 2)
    async with running_services(settings, worker=False) as a, running_services(settings, worker=False) as b:
        for i in range(60):
            await a.subscriptions.subscribe(follow(feed, f"chat:{i}"))
        taken_a: list[str] = []
        taken_b: list[str] = []

        async def claim(services: Services, into: list[str], worker: str) -> None:
            while batch := await services.subscriptions.claim_due(worker, 7):
                into += [s.id for s in batch]

        await asyncio.gather(claim(a, taken_a, "wa"), claim(b, taken_b, "wb"), claim(a, taken_a, "wa2"))
        assert len(taken_a) + len(taken_b) == 60
        assert len(set(taken_a) | set(taken_b)) == 60
        assert await a.subscriptions.claim_due("wc", 100) == []  # leased: nobody else takes them
