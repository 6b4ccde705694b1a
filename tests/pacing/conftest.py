"""Fixtures of the pacing tests: both slot and identity backends, the guarded site and recording proxies."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from core.pacing import (
    MemoryIdentityStore,
    MemoryPacer,
    Pacer,
    RedisIdentityStore,
    RedisPacer,
    SiteLimits,
    SlotTimings,
)
from core.pacing.identities import IdentityStore
from tests.support.guarded_site import GuardedSite
from tests.support.media import MediaFiles
from tests.support.proxy import RecordingProxy
from tests.support.services import REDIS_URL, redis_test_url, require

PacerFactory = Callable[[SiteLimits, SlotTimings], Awaitable[Pacer]]
StoreFactory = Callable[[], Awaitable[IdentityStore]]


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for the in-process backend, else the URL of this test process's Redis database, emptied."""
    if request.param == "memory":
        yield None
        return
    require(REDIS_URL, 6379, "Redis")
    url = redis_test_url()
    with SyncRedis.from_url(url) as client:
        client.flushdb()
        yield url
        client.flushdb()


@pytest.fixture
async def make_pacer(backend: str | None) -> AsyncIterator[PacerFactory]:
    """Pacers of one backend; on Redis each has a client of its own, as separate processes would; in memory
    the pacers with the same rules are one (a process's jobs share it)."""
    clients: list[Redis] = []
    memory: dict[tuple[str, SlotTimings], MemoryPacer] = {}

    async def make(limits: SiteLimits, timings: SlotTimings) -> Pacer:
        if backend is None:
            return memory.setdefault((str(limits), timings), MemoryPacer(limits, timings))
        client = Redis.from_url(backend)
        clients.append(client)
        return RedisPacer(client, limits, timings)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def make_store(backend: str | None) -> AsyncIterator[StoreFactory]:
    """Identity stores of one backend: on Redis, separate clients sharing one state; in memory, one store
    (a process shares it between its jobs)."""
    clients: list[Redis] = []
    memory = MemoryIdentityStore()

    async def make() -> IdentityStore:
        if backend is None:
            return memory
        client = Redis.from_url(backend)
        clients.append(client)
        return RedisIdentityStore(client)

    yield make
    for client in clients:
        await client.aclose()


@pytest.fixture
async def guarded_site(media_files: MediaFiles) -> AsyncIterator[GuardedSite]:
    site = GuardedSite(media_files)
    await site.start()
    yield site
    await site.stop()


@pytest.fixture
async def recording_proxy() -> AsyncIterator[Callable[..., Awaitable[RecordingProxy]]]:
    started: list[RecordingProxy] = []

    async def make(**kwargs: object) -> RecordingProxy:
        proxy = RecordingProxy(**kwargs)  # type: ignore[arg-type]
        await proxy.start()
        started.append(proxy)
        return proxy

    yield make
    for proxy in started:
        await proxy.stop()
