"""The Redis stream broker the workers share, made to ride out Redis going away (worker.broker chooses it when
MEDIABOT_REDIS_URL is set; only then is the Redis client imported)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator

from redis.exceptions import RedisError
from taskiq import AckableMessage, AsyncBroker
from taskiq_redis import RedisStreamBroker

log = logging.getLogger(__name__)


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


def stream_broker(redis_url: str, stream: str, group: str, *, maxlen: int) -> ResilientStreamBroker:
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
