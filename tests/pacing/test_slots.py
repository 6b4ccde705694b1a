"""Per-site slots, the same on both backends: first come first served, N at once, S seconds apart, leases
that free a dead worker's slot, places that a cancelled or vanished job gives up."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from core.pacing import Granted, SlotTimings, Waiting, parse_site_limits

from .conftest import PacerFactory

FAST = SlotTimings(lease_s=5.0, wait_ttl_s=5.0, poll_s=0.05)
ROOT = Path(__file__).resolve().parents[2]


async def test_first_come_first_served(make_pacer: PacerFactory) -> None:
    pacer = await make_pacer(parse_site_limits("site=1"), FAST)
    other = await make_pacer(parse_site_limits("site=1"), FAST)  # another worker, same slots
    assert await pacer.try_acquire("site", "a") == Granted("site")
    b = await other.try_acquire("site", "b")
    c = await pacer.try_acquire("site", "c")
    d = await other.try_acquire("site", "d")
    assert [(w.ahead, w.retry_after > 0) for w in (b, c, d) if isinstance(w, Waiting)] == [
        (0, True),
        (1, True),
        (2, True),
    ]
    assert await pacer.try_acquire("site", "c") == Waiting("site", 1, pytest.approx(0.05, abs=0.01))
    await pacer.release("site", "a")
    # c asks first after the release, but b came first: c keeps waiting, b gets the slot.
    assert isinstance(await pacer.try_acquire("site", "c"), Waiting)
    assert await other.try_acquire("site", "b") == Granted("site")
    assert (await other.try_acquire("site", "d")).ahead == 1  # type: ignore[union-attr]
    assert (await pacer.slots("site")).holders == 1
    assert (await pacer.slots("site")).waiting == 2


async def test_at_most_n_at_once_and_other_sites_unaffected(make_pacer: PacerFactory) -> None:
    pacer = await make_pacer(parse_site_limits("slow=2,*=8"), FAST)
    results = [await pacer.try_acquire("slow", f"job{i}") for i in range(5)]
    assert [isinstance(r, Granted) for r in results] == [True, True, False, False, False]
    others = [await pacer.try_acquire("fast.example", f"x{i}") for i in range(8)]
    assert all(isinstance(r, Granted) for r in others)
    assert isinstance(await pacer.try_acquire("fast.example", "x9"), Waiting)
    # No rule at all (no `*`): never paced, nothing stored.
    unpaced = await make_pacer(parse_site_limits("slow=1"), FAST)
    assert all([isinstance(await unpaced.try_acquire("free", f"y{i}"), Granted) for i in range(20)])
    assert (await unpaced.slots("free")).holders == 0


async def test_spacing_between_starts(make_pacer: PacerFactory) -> None:
    pacer = await make_pacer(parse_site_limits("site=5/0.4s"), FAST)
    assert isinstance(await pacer.try_acquire("site", "a"), Granted)
    started = time.monotonic()
    waiting = await pacer.try_acquire("site", "b")
    assert isinstance(waiting, Waiting) and waiting.ahead == 0
    assert 0.3 < waiting.retry_after <= 0.4
    await asyncio.sleep(waiting.retry_after)
    granted = await pacer.try_acquire("site", "b")
    while isinstance(granted, Waiting):  # Redis rounds to milliseconds: at most one more short wait
        assert granted.retry_after <= 0.01
        await asyncio.sleep(granted.retry_after + 0.001)
        granted = await pacer.try_acquire("site", "b")
    assert time.monotonic() - started >= 0.39


async def test_lease_frees_a_dead_workers_slot_and_renew_keeps_it(make_pacer: PacerFactory) -> None:
    timings = SlotTimings(lease_s=0.4, wait_ttl_s=5.0, poll_s=0.05)
    pacer = await make_pacer(parse_site_limits("site=1"), timings)
    assert isinstance(await pacer.try_acquire("site", "alive"), Granted)
    for _ in range(3):  # renewed: still held after three lease lengths... of 0.25 s steps
        await asyncio.sleep(0.25)
        assert await pacer.renew("site", "alive")
        assert isinstance(await pacer.try_acquire("site", "next"), Waiting)
    await pacer.release("site", "alive")
    assert isinstance(await pacer.try_acquire("site", "next"), Granted)
    # "next" dies without releasing: its lease runs out and "third" gets the slot.
    assert isinstance(await pacer.try_acquire("site", "third"), Waiting)
    await asyncio.sleep(0.45)
    assert isinstance(await pacer.try_acquire("site", "third"), Granted)
    assert not await pacer.renew("site", "next")


async def test_cancel_forgets_a_waiting_job(make_pacer: PacerFactory) -> None:
    pacer = await make_pacer(parse_site_limits("site=1"), FAST)
    await pacer.try_acquire("site", "holder")
    await pacer.try_acquire("site", "cancelled")
    assert (await pacer.try_acquire("site", "c")).ahead == 1  # type: ignore[union-attr]
    await pacer.forget("site", "cancelled")
    assert (await pacer.try_acquire("site", "c")).ahead == 0  # type: ignore[union-attr]
    await pacer.release("site", "holder")
    assert isinstance(await pacer.try_acquire("site", "c"), Granted)


async def test_a_job_that_stops_asking_loses_its_place(make_pacer: PacerFactory) -> None:
    timings = SlotTimings(lease_s=5.0, wait_ttl_s=0.2, poll_s=0.05)
    pacer = await make_pacer(parse_site_limits("site=1"), timings)
    await pacer.try_acquire("site", "holder")
    await pacer.try_acquire("site", "vanished")  # its worker died while it waited
    assert (await pacer.try_acquire("site", "patient")).ahead == 1  # type: ignore[union-attr]
    for _ in range(6):
        await asyncio.sleep(0.06)
        answer = await pacer.try_acquire("site", "patient")
    assert isinstance(answer, Waiting) and answer.ahead == 0


async def test_a_retry_after_never_outlives_the_place(make_pacer: PacerFactory) -> None:
    """A job told to come back in 2 s (spacing) keeps its place although that is longer than wait_ttl_s."""
    timings = SlotTimings(lease_s=5.0, wait_ttl_s=0.1, poll_s=0.05)
    pacer = await make_pacer(parse_site_limits("site=3/0.5s"), timings)
    await pacer.try_acquire("site", "a")
    first = await pacer.try_acquire("site", "b")
    await pacer.try_acquire("site", "c")
    assert isinstance(first, Waiting) and first.retry_after > timings.wait_ttl_s
    await asyncio.sleep(first.retry_after)
    assert isinstance(await pacer.try_acquire("site", "b"), Granted | Waiting)
    assert (await pacer.slots("site")).waiting + (await pacer.slots("site")).holders == 3


WORKER = textwrap.dedent(
    """
    import asyncio, sys
    from redis.asyncio import Redis
    from core.pacing import Granted, RedisPacer, SlotTimings, parse_site_limits

    async def main(url, name, rounds):
        redis = Redis.from_url(url)
        pacer = RedisPacer(redis, parse_site_limits("site=1"), SlotTimings(lease_s=5, wait_ttl_s=5, poll_s=0.01))
        for i in range(rounds):
            job = f"{name}-{i}"
            while not isinstance(answer := await pacer.try_acquire("site", job), Granted):
                await asyncio.sleep(answer.retry_after)
            inside = await redis.incr("test:inside")
            if inside != 1:
                await redis.incr("test:overlaps")
            await redis.rpush("test:order", job)
            await asyncio.sleep(0.01)
            await redis.decr("test:inside")
            await pacer.release("site", job)
        await redis.aclose()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
    """
)


async def test_limit_of_one_holds_across_processes(redis_url: str) -> None:
    """Two worker processes with their own Redis clients: never two holders at once, and neither starves."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, redis_url, name, "15"], env=env, cwd=ROOT)
        for name in ("p1", "p2")
    ]
    try:
        for proc in procs:
            assert await asyncio.to_thread(proc.wait, 60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    redis = Redis.from_url(redis_url)
    try:
        order = [item.decode() for item in await redis.lrange("test:order", 0, -1)]
        assert len(order) == 30
        assert int(await redis.get("test:overlaps") or 0) == 0
        assert {job.split("-")[0] for job in order[:20]} == {"p1", "p2"}
    finally:
        await redis.aclose()
