"""Taskiq wiring: the brokers chosen from the settings, our tasks registered on them.

Two streams on Redis: jobs (acknowledged, no results kept) and probes (the front ends' questions about a
link, answered through a result backend; a stream of their own so a question never waits behind
downloads). In-process, one in-memory broker carries both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator

from redis.exceptions import RedisError
from taskiq import AckableMessage, AsyncBroker, InMemoryBroker, TaskiqEvents, TaskiqState
from taskiq_redis import RedisAsyncResultBackend, RedisStreamBroker

from core.config import Settings
from worker.tasks import PROBE_TASK, SUPPORTED_TASK, TASK_NAME, close_prober, download, probe, supported

log = logging.getLogger(__name__)

STREAM = "mediabot:jobs"
GROUP = "mediabot-workers"
PROBE_STREAM = "mediabot:probes"
PROBE_GROUP = "mediabot-probers"
# How long an answer waits in Redis for the front end that asked (it polls for it within seconds).
PROBE_RESULT_TTL_S = 300


class ResilientStreamBroker(RedisStreamBroker):
    """A stream broker that survives Redis going away. Taskiq's receiver restarts a failing `listen()`
    at once, in a tight loop that starves the event loop; here the listener waits with back-off and
    re-creates the consumer group (gone when Redis restarted empty) before reading again."""

    async def startup(self) -> None:
        """Like the stream broker's, except that Redis being down is not fatal: a web process still starts
        (submits stay queued in the database for the reconciler) and a worker's listener declares the
        consumer group once Redis answers."""
        await AsyncBroker.startup(self)
        try:
            await self._declare_consumer_group()
        except (RedisError, OSError) as exc:
            log.warning("queue unavailable at start-up (%s); carrying on without it", type(exc).__name__)

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        delay = 0.5
        while True:
            try:
                async for message in super().listen():
                    delay = 0.5
                    yield message
            except (RedisError, OSError) as exc:
                log.warning("queue unavailable (%s); listening again in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                with contextlib.suppress(RedisError, OSError):
                    await self._declare_consumer_group()


def make_brokers(settings: Settings) -> tuple[AsyncBroker, AsyncBroker]:
    """(jobs, probes): Redis streams (acknowledged, shared by every worker) when Redis is set, each its
    own stream; one in-process broker for both otherwise."""
    if not settings.redis_url:
        broker = InMemoryBroker(max_async_tasks=settings.worker_concurrency * 4, propagate_exceptions=False)
        broker.register_task(download, task_name=TASK_NAME)
        _answers_probes(broker, settings)
        return broker, broker
    jobs = _stream_broker(settings.redis_url, STREAM, GROUP, maxlen=100_000)
    jobs.register_task(download, task_name=TASK_NAME)
    probes = _stream_broker(settings.redis_url, PROBE_STREAM, PROBE_GROUP, maxlen=10_000).with_result_backend(
        RedisAsyncResultBackend(
            settings.redis_url, result_ex_time=PROBE_RESULT_TTL_S, socket_connect_timeout=3, socket_timeout=5
        )
    )
    _answers_probes(probes, settings)
    return jobs, probes


def _stream_broker(redis_url: str, stream: str, group: str, *, maxlen: int) -> ResilientStreamBroker:
    return ResilientStreamBroker(
        redis_url,
        queue_name=stream,
        consumer_group_name=group,
        # "0": a group created after Redis restarted empty still sees messages added before it.
        consumer_id="0",
        # One message per read, so an idle worker isn't starved by a busy one holding a batch.
        xread_count=1,
        xread_block=1000,
        maxlen=maxlen,
        # Our leases recover dead workers within a minute; the broker's own reclaim is a slow backstop.
        idle_timeout=15 * 60 * 1000,
        unacknowledged_lock_timeout=30,
        socket_connect_timeout=3,
    )


def _answers_probes(broker: AsyncBroker, settings: Settings) -> None:
    broker.state.settings = settings
    broker.register_task(probe, task_name=PROBE_TASK)
    broker.register_task(supported, task_name=SUPPORTED_TASK)

    async def close(state: TaskiqState) -> None:
        close_prober(state)

    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, close)
    broker.add_event_handler(TaskiqEvents.CLIENT_SHUTDOWN, close)
