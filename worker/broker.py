"""Taskiq wiring: the broker chosen from the settings, our one task registered on it."""

from __future__ import annotations

from taskiq import AsyncBroker, InMemoryBroker
from taskiq_redis import RedisStreamBroker

from core.config import Settings
from worker.tasks import TASK_NAME, download

STREAM = "mediabot:jobs"
GROUP = "mediabot-workers"


def make_broker(settings: Settings) -> AsyncBroker:
    """Redis streams (acknowledged, shared by every worker) when Redis is set; in-process otherwise."""
    broker: AsyncBroker
    if settings.redis_url:
        broker = RedisStreamBroker(
            settings.redis_url,
            queue_name=STREAM,
            consumer_group_name=GROUP,
            # "0": a group created after Redis restarted empty still sees messages added before it.
            consumer_id="0",
            # One message per read, so an idle worker isn't starved by a busy one holding a batch.
            xread_count=1,
            xread_block=1000,
            maxlen=100_000,
            # Our leases recover dead workers within a minute; the broker's own reclaim is a slow backstop.
            idle_timeout=15 * 60 * 1000,
            unacknowledged_lock_timeout=30,
            socket_connect_timeout=3,
        )
    else:
        broker = InMemoryBroker(max_async_tasks=settings.worker_concurrency * 4, propagate_exceptions=False)
    broker.register_task(download, task_name=TASK_NAME)
    return broker
