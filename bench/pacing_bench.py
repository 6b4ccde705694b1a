"""What pacing costs per job, and that a limited host does not hold up the others (issue 23).

    .venv/bin/python bench/pacing_bench.py            # about 20 s; needs Redis (database 14, emptied)

1. One `try_acquire` + `release` per job, and one `choose` + `succeeded` of an identity, 1,000 times each,
   in process (embedded mode) and on Redis: median and p95 in ms.
2. 50 jobs across 5 hosts (10 each), 10 workers, each "download" 100 ms, host0 limited to 1 at a time: when
   the jobs of the four other hosts are done, against the same run with no limit. Jobs wait as the runner
   will make them wait: a job told `Waiting` gives its worker back and comes back after `retry_after`.
3. The same through the real service (`--runner`): 50 jobs submitted as a front end does, downloaded by the
   real runner (yt-dlp) from five guarded sites on 127.0.0.1-5, 127.0.0.1 limited to 1 at a time, worker
   concurrency 10; embedded (SQLite, in-process queue) and with Redis (queue, bus and pacing). Per host,
   seconds until its jobs are done; per job, the time spent in pacing (the slot: its database read and
   Redis call; the identity: choose + succeeded), median and p95.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.pacing import (
    Granted,
    IdentityPool,
    MemoryIdentityStore,
    MemoryPacer,
    Pacer,
    RedisIdentityStore,
    RedisPacer,
    SlotTimings,
    parse_proxies,
    parse_site_limits,
)

REDIS = os.environ.get("MEDIABOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/14"
TIMINGS = SlotTimings(lease_s=30, wait_ttl_s=30, poll_s=0.02)


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"median {statistics.median(ordered) * 1000:.3f} ms, p95 {p95 * 1000:.3f} ms"


async def slot_cost(pacer: Pacer, n: int) -> list[float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        answer = await pacer.try_acquire("youtube", f"job{i}")
        await pacer.release("youtube", f"job{i}")
        samples.append(time.perf_counter() - start)
        assert isinstance(answer, Granted)
    return samples


async def identity_cost(pool: IdentityPool, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        identity = await pool.choose("youtube", "https://www.youtube.com/watch?v=x")
        await pool.succeeded(identity)  # type: ignore[arg-type]
        samples.append(time.perf_counter() - start)
    return samples


async def throughput(pacer: Pacer, workers: int = 10, per_host: int = 10, hosts: int = 5) -> dict[str, float]:
    """Seconds until each host's jobs are all done."""
    queue: asyncio.Queue[tuple[float, str, str]] = asyncio.Queue()
    for i in range(per_host):
        for h in range(hosts):
            queue.put_nowait((0.0, f"host{h}", f"host{h}-{i}"))
    done: dict[str, float] = {}
    left = {f"host{h}": per_host for h in range(hosts)}
    started = time.monotonic()
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        while any(left.values()):
            try:
                not_before, site, job = queue.get_nowait()
            except asyncio.QueueEmpty:
                await asyncio.sleep(0.005)
                continue
            if not_before > loop.time():  # parked: back on the queue, the worker takes the next job
                queue.put_nowait((not_before, site, job))
                await asyncio.sleep(0.001)
                continue
            answer = await pacer.try_acquire(site, job)
            if not isinstance(answer, Granted):
                queue.put_nowait((loop.time() + answer.retry_after, site, job))
                continue
            await asyncio.sleep(0.1)  # the download
            await pacer.release(site, job)
            left[site] -= 1
            if not left[site]:
                done[site] = time.monotonic() - started

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(workers))), 120)
    return done


def _timed(samples: dict[str, float], key: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """`fn`, adding the time each call takes to samples[key]."""

    async def wrapped(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            samples[key] = samples.get(key, 0.0) + time.perf_counter() - start

    return wrapped


async def runner_run(redis_url: str | None, work: Path, per_host: int = 10, hosts: int = 5) -> None:
    """50 real jobs through the service; 127.0.0.1 limited to one download at a time."""
    from core.config import load_settings
    from core.db import migrate
    from core.jobs.choices import SubmitRequest
    from mediabot.cli import services_for
    from tests.support.guarded_site import GuardedSite
    from tests.support.media import generate_media

    files = await asyncio.to_thread(generate_media)
    sites = [await GuardedSite(files, host=f"127.0.0.{h + 1}").start() for h in range(hosts)]
    label = "redis" if redis_url else "embedded"
    settings = load_settings(
        data_dir=work / label,
        allowed_extractors=["generic"],
        allow_private_urls=True,
        worker_concurrency=10,
        redis_url=redis_url,
        site_limits="127.0.0.1=1",
        user_max_concurrent=1000,
        user_requests_per_hour=100_000,
        log_level="WARNING",
    )
    await migrate.upgrade(settings.database_url)
    per_job: dict[str, dict[str, float]] = {}
    try:
        async with services_for(settings, worker=True) as services:
            runner = services.queue.broker.state.runtime.runner  # type: ignore[attr-defined]
            pool = runner.pacing.identities
            calls: dict[str, float] = {}

            def per(fn: Callable[..., Awaitable[Any]], ask: bool) -> Callable[..., Any]:
                async def wrapped(job_id: str, *args: Any) -> Any:
                    start = time.perf_counter()
                    try:
                        return await fn(job_id, *args)
                    finally:
                        spent = per_job.setdefault(job_id, {"asks": 0, "s": 0.0})
                        spent["asks"] += ask
                        spent["s"] += time.perf_counter() - start

                return wrapped

            # The slot: the job's site read before a worker slot is taken, then the pacer's answer.
            runner._site_to_ask = per(runner._site_to_ask, False)
            runner._take_site_slot = per(runner._take_site_slot, True)
            runner._release_site_slot = _timed(calls, "release", runner._release_site_slot)
            pool.choose = _timed(calls, "choose", pool.choose)
            pool.succeeded = _timed(calls, "succeeded", pool.succeeded)
            warm = await services.jobs.submit(
                SubmitRequest(text=sites[1].url("/media/warm.mp4"), source="cli", user_id="bench")
            )
            await services.jobs.wait(warm.job.id, timeout=60)
            per_job.clear()
            calls.clear()
            started = time.monotonic()
            subs = []
            for i in range(per_host):
                for h, site in enumerate(sites):
                    url = site.url(f"/media/{label}-{h}-{i}.mp4")
                    subs.append(
                        (
                            h,
                            await services.jobs.submit(
                                SubmitRequest(text=url, source="cli", user_id="bench")
                            ),
                        )
                    )
            done: dict[int, float] = {}

            async def finish(h: int, job_id: str) -> None:
                final = await services.jobs.wait(job_id, timeout=300)
                assert final.status == "done", final.error
                done[h] = max(done.get(h, 0.0), time.monotonic() - started)

            await asyncio.gather(*(finish(h, sub.job.id) for h, sub in subs))
        shown = ", ".join(f"127.0.0.{h + 1} {seconds:.2f}" for h, seconds in sorted(done.items()))
        print(f"  {label:9} {shown}")
        limited_ids = {sub.job.id for h, sub in subs if h == 0}
        free = [v["s"] for j, v in per_job.items() if j not in limited_ids]
        held = [v for j, v in per_job.items() if j in limited_ids]
        n = len(subs)
        print(f"  {label:9} slot ask, jobs of free hosts (one ask each): {summary(free)}")
        print(
            f"  {label:9} slot asks, jobs of 127.0.0.1: {statistics.mean(v['asks'] for v in held):.1f} asks "
            f"per job, {statistics.mean(v['s'] for v in held) * 1000:.1f} ms per job in all"
        )
        print(
            f"  {label:9} release {calls.get('release', 0) / n * 1000:.3f} ms, choose+succeeded "
            f"{(calls.get('choose', 0) + calls.get('succeeded', 0)) / n * 1000:.3f} ms (means per job)"
        )
        print(f"  {label:9} max overlapping downloads at 127.0.0.1: {sites[0].max_active}")
    finally:
        for site in sites:
            await site.stop()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--runner", action="store_true", help="only the real-runner run (part 3)")
    args = parser.parse_args()
    if args.runner:
        work = Path(tempfile.mkdtemp(prefix="mediabot-pacing-bench-"))
        client = Redis.from_url(REDIS)
        await client.flushdb()
        try:
            print(
                "50 real jobs, 5 hosts, worker concurrency 10, 127.0.0.1=1: seconds until each host is done"
            )
            await runner_run(None, work)
            await runner_run(REDIS, work)
        finally:
            await client.flushdb()
            await client.aclose()
            shutil.rmtree(work, ignore_errors=True)
        return
    limits = parse_site_limits("youtube=1000,*=8")
    redis = Redis.from_url(REDIS)
    await redis.flushdb()
    try:
        print(f"try_acquire + release, {args.n} jobs")
        print("  embedded:", summary(await slot_cost(MemoryPacer(limits, TIMINGS), args.n)))
        print("  redis:   ", summary(await slot_cost(RedisPacer(redis, limits, TIMINGS), args.n)))
        print(f"choose + succeeded (2 cookies files x 2 proxies), {args.n} jobs")
        folder = Path("/tmp/mediabot-pacing-bench/youtube")
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("a.txt", "b.txt"):
            (folder / name).write_text("# Netscape HTTP Cookie File\n")
            (folder / name).chmod(0o600)
        proxies = parse_proxies("http://p1:3128|http://p2:3128")
        for label, store in (("embedded", MemoryIdentityStore()), ("redis", RedisIdentityStore(redis))):
            pool = IdentityPool(store, cookies_dir=folder.parent, proxies=proxies)
            print(f"  {label}:".ljust(12), summary(await identity_cost(pool, args.n)))
        print("50 jobs, 5 hosts, 10 workers, 100 ms per download: seconds until each host is done")
        for label, rule in (("no limit", "*=100"), ("host0=1", "host0=1,*=100")):
            for backend, pacer in (
                ("embedded", MemoryPacer(parse_site_limits(rule), TIMINGS)),
                ("redis", RedisPacer(redis, parse_site_limits(rule), TIMINGS)),
            ):
                await redis.flushdb()
                done = await throughput(pacer)
                shown = ", ".join(f"{site} {seconds:.2f}" for site, seconds in sorted(done.items()))
                print(f"  {label:9} {backend:9} {shown}")
    finally:
        await redis.flushdb()
        await redis.aclose()


if __name__ == "__main__":
    asyncio.run(main())
