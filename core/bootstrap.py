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
from core.jobs.quotas import RateLimiter, build_rate_limiter
from core.jobs.service import JobService
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

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.bus.close()
        with contextlib.suppress(Exception):
            await self.limits.close()
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
    )


def build_storage(settings: Settings) -> Storage:
    """Local disk, or S3 when MEDIABOT_STORAGE=s3: only then is boto3 imported (core.storage.s3), so a
    process on local storage never loads it."""
    if settings.storage == "s3":
        from core.storage.s3 import S3Storage

        return S3Storage(settings)
    return LocalStorage(settings)
