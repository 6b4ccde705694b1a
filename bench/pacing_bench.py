"""What pacing costs per job, and that a limited host does not hold up the others (issue 23).

    .venv/bin/python bench/pacing_bench.py            # about 20 s; needs Redis (database 14, emptied)

1. One `try_acquire` + `release` per job, and one `choose` + `succeeded` of an identity, 1,000 times each,
   in process (embedded mode) and on Redis: median and p95 in ms.
2. 50 jobs across 5 hosts (10 each), 10 workers, each "download" 100 ms, host0 limited to 1 at a time: when
   the jobs of the four other hosts are done, against the same run with no limit. Jobs wait as the runner
   will make them wait: a job told `Waiting` gives its worker back and comes back after `retry_after`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

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


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
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
