"""The one place that builds the core's services from the settings (DESIGN.md section 7): each choice
(SQLite or PostgreSQL, local disk or S3, Redis or in-process) is made here, once."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.apikeys import ApiKeyService
from core.config import Settings
from core.db.session import create_engine, session_factory
from core.delivery.filecache import DeliveryCacheService
from core.events import EventBus, build_event_bus
from core.groups import GroupSettingsService
from core.jobs.quotas import RateLimiter, build_rate_limiter
from core.jobs.service import JobService
from core.pacing import Backoff, Pacing, SlotTimings, build_pacing, parse_proxies, parse_site_limits
from core.prefs import PrefsService
from core.queue import JobQueue
from core.storage.base import Storage
from core.storage.local import LocalStorage
from core.subscriptions.service import SubscriptionService


@dataclass(frozen=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    bus: EventBus
    queue: JobQueue
    storage: Storage
    jobs: JobService
    keys: ApiKeyService
    limits: RateLimiter
    prefs: PrefsService
    deliveries: DeliveryCacheService
    subscriptions: SubscriptionService
    groups: GroupSettingsService
    # Per-site slots and identities (issue 23): the worker paces with it, doctor and /metrics read it.
    pacing: Pacing | None = None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.bus.close()
        with contextlib.suppress(Exception):
            await self.limits.close()
        redis = getattr(self.pacing.pacer, "redis", None) if self.pacing is not None else None
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()
        await self.engine.dispose()


async def build_services(settings: Settings, queue: JobQueue) -> Services:
    """Front-end side services. The queue comes from the caller: the worker package owns Taskiq."""
    settings.ensure_dirs()
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    bus = build_event_bus(settings.redis_url)
    await bus.start()
    storage = build_storage(settings)
    jobs = JobService(settings, sessions, bus, queue, storage)
    keys = ApiKeyService(sessions, settings)
    limits = build_rate_limiter(settings)
    return Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        bus=bus,
        queue=queue,
        storage=storage,
        jobs=jobs,
        keys=keys,
        limits=limits,
        prefs=PrefsService(sessions),
        deliveries=DeliveryCacheService(sessions),
        subscriptions=SubscriptionService(settings, sessions, jobs),
        groups=GroupSettingsService(sessions),
        pacing=build_site_pacing(settings),
    )


def build_site_pacing(settings: Settings) -> Pacing:
    """Per-site pacing from the settings: shared by every process on MEDIABOT_REDIS_URL, else this one's.
    No I/O here: the Redis client connects on first use."""
    redis = None
    if settings.redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=5)
    return build_pacing(
        limits=parse_site_limits(settings.site_limits),
        proxies=parse_proxies(settings.proxies),
        cookies_dir=settings.cookies_dir,
        backoff=Backoff(base_s=settings.site_backoff_s, cap_s=max(3600.0, settings.site_backoff_s)),
        redis=redis,
        # A slot is renewed with the job lease (every lease_s / 3), so it lasts at least as long.
        timings=SlotTimings(lease_s=max(30.0, settings.lease_s)),
    )


def build_storage(settings: Settings) -> Storage:
    """Local disk, or S3 when MEDIABOT_STORAGE=s3: only then is boto3 imported (core.storage.s3), so a
    process on local storage never loads it."""
    if settings.storage == "s3":
        from core.storage.s3 import S3Storage

        return S3Storage(settings)
    return LocalStorage(settings)
