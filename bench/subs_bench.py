"""Subscription checks (issue 26 item 4): what one check of a big channel costs, and that two workers share
1,000 subscriptions with none checked twice.

    .venv/bin/python bench/subs_bench.py                 # about a minute; needs PostgreSQL

1. A channel of 1,000 entries on the local media site (newest first, one RSS listing), followed with
   MEDIABOT_MAX_PLAYLIST_ITEMS at 10 and at 500: the first check (records what is there, submits nothing),
   then 3 new videos appear and the second check runs. Figures: time per check (median of 5 checks with
   nothing new, and the one with 3 new), requests made to the site, entries looked at before stopping at
   the last seen one, requests submitted.
2. 1,000 subscriptions on PostgreSQL and two workers (each its own services and database pool, as two
   processes would have) running their schedulers at once: every subscription checked exactly once in the
   round, none twice, and none again before its interval has passed; then once more after it. All follow
   one channel: each worker lists it once per round for all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import Settings, load_settings  # noqa: E402
from core.db import migrate  # noqa: E402
from core.media.downloader import Downloader  # noqa: E402
from core.subscriptions.entries import new_entries  # noqa: E402
from core.subscriptions.service import SubscribeRequest, SubscriptionView  # noqa: E402
from mediabot.cli import services_for  # noqa: E402
from tests.support.media_site import MediaSite  # noqa: E402
from worker.subscriptions import SubscriptionScheduler  # noqa: E402

PG = os.environ.get("MEDIABOT_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def settings_for(work: Path, **overrides: Any) -> Settings:
    return load_settings(
        data_dir=work,
        allowed_extractors=["generic"],
        allow_private_urls=True,
        log_level="WARNING",
        **overrides,
    )


def site_requests(site: MediaSite, path: str) -> int:
    return sum(1 for r in site.requests if r.path == path)


async def big_channel(site: MediaSite, work: Path, max_items: int) -> dict[str, Any]:
    settings = settings_for(
        work / f"big{max_items}", max_playlist_items=max_items, subscription_interval_s=3600
    )
    await migrate.upgrade(settings.database_url)
    name = f"big{max_items}"
    feed = site.channel(name, 1000)
    path = f"/channel/{name}.xml"
    async with services_for(settings, worker=False) as services:
        downloader = Downloader(settings)
        await asyncio.to_thread(downloader.warm_up)
        scheduler = SubscriptionScheduler(services.subscriptions, downloader, services.bus, "bench")
        sub, _ = await services.subscriptions.subscribe(
            SubscribeRequest(text=feed, source="cli", user_id="bench", place="bench:1")
        )
        result = await scheduler.check(sub)
        sub = dataclasses.replace(sub, seen=result.seen)
        quiet = []
        for _ in range(5):
            before = site_requests(site, path)
            started = time.perf_counter()
            result = await scheduler.check(sub)
            quiet.append(time.perf_counter() - started)
            assert result.delivered == 0 and site_requests(site, path) - before == 1
        site.channel(name, 1003)  # three new videos
        before = site_requests(site, path)
        listed = await asyncio.to_thread(downloader.list_entries, feed)
        fresh, _ = new_entries(listed.entries, sub.seen, 0)
        started = time.perf_counter()
        result = await scheduler.check(sub)
        with_new = time.perf_counter() - started
        made = [r for r, _ in await services.jobs.undelivered("cli")]
    return {
        "max_items": max_items,
        "listed": len(listed.entries),
        "looked_at": len(fresh) + 1,  # the new ones, then the last seen one where the walk stops
        "quiet_ms": statistics.median(quiet) * 1000,
        "new_ms": with_new * 1000,
        "requests_per_check": site_requests(site, path) - before - 1,  # minus the listing made above
        "submitted": result.delivered,
        "requests_made": len(made),
    }


async def two_workers(site: MediaSite, work: Path, count: int, interval_s: float) -> dict[str, Any]:
    import asyncpg

    name = f"mb_subs_bench_{os.getpid()}"
    admin = await asyncpg.connect(PG.replace("+asyncpg", ""))
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = PG.rsplit("/", 1)[0] + f"/{name}"
    try:
        await migrate.upgrade(url)
        settings = settings_for(work / "two", database_url=url, subscription_interval_s=interval_s)
        feed = site.channel("shared", 20)
        async with services_for(settings, worker=False) as a, services_for(settings, worker=False) as b:
            for i in range(count):
                await a.subscriptions.subscribe(
                    SubscribeRequest(text=feed, source="cli", user_id=f"u{i}", place=f"bench:{i}")
                )
            checked: Counter[str] = Counter()
            times: dict[str, list[float]] = {}
            by_worker: Counter[str] = Counter()
            schedulers = []
            for services, worker in ((a, "worker-a"), (b, "worker-b")):
                downloader = Downloader(settings)
                await asyncio.to_thread(downloader.warm_up)
                scheduler = SubscriptionScheduler(services.subscriptions, downloader, services.bus, worker)
                check = scheduler.check

                async def recording(sub: SubscriptionView, check: Any = check, worker: str = worker) -> Any:
                    checked[sub.id] += 1
                    by_worker[worker] += 1
                    times.setdefault(sub.id, []).append(time.monotonic())
                    return await check(sub)

                scheduler.check = recording  # type: ignore[method-assign]
                schedulers.append(scheduler)
            started = time.perf_counter()
            await asyncio.gather(*(s.once() for s in schedulers))
            round_s = time.perf_counter() - started
            first, first_split = dict(checked), dict(by_worker)
            again = sum(await asyncio.gather(*(s.once() for s in schedulers)))  # none due yet
            views = await a.subscriptions.list(source="cli")
            wait = max(v.next_check_at for v in views).timestamp() - time.time()
            await asyncio.sleep(max(wait, 0) + 0.2)
            await asyncio.gather(*(s.once() for s in schedulers))
            views = await a.subscriptions.list(source="cli")
            gaps = [later - earlier for t in times.values() for earlier, later in zip(t, t[1:], strict=False)]
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    return {
        "subscriptions": count,
        "round_s": round_s,
        "checked_in_round": len(first),
        "checked_twice_in_round": sum(1 for n in first.values() if n > 1),
        "by_worker": first_split,
        "checked_before_due": again,
        "checks_after_two_intervals": Counter(v.checks for v in views),
        "listing_requests": site_requests(site, "/channel/shared.xml"),
        "shortest_gap_s": min(gaps) if gaps else None,
    }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="subs-bench-") as tmp:
        work = Path(tmp)
        async with MediaSite() as site:
            for max_items in (10, 500):
                r = await big_channel(site, work, max_items)
                print(
                    f"channel of 1,000 (MAX_PLAYLIST_ITEMS={r['max_items']}): listed {r['listed']}, "
                    f"check with nothing new {r['quiet_ms']:.1f} ms (median of 5), with 3 new {r['new_ms']:.1f} ms; "
                    f"{r['requests_per_check']} request(s) to the site per check; looked at {r['looked_at']} "
                    f"entries (stopped at the last seen); submitted {r['submitted']}, requests made {r['requests_made']}"
                )
            r = await two_workers(site, work, args.subscriptions, args.interval)
            print(
                f"{r['subscriptions']} subscriptions, two workers on PostgreSQL: round {r['round_s']:.1f} s, "
                f"checked {r['checked_in_round']} ({r['by_worker']}), twice in the round: "
                f"{r['checked_twice_in_round']}, checked again before due: {r['checked_before_due']}, "
                f"checks each after the next interval: {dict(r['checks_after_two_intervals'])}, "
                f"shortest time between two checks of one subscription {r['shortest_gap_s']:.1f} s "
                f"(interval {args.interval:g} s), listing requests {r['listing_requests']}"
            )


if __name__ == "__main__":
    asyncio.run(main())
