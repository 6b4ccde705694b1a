"""The core's JobQueue on Taskiq."""

from __future__ import annotations

from taskiq import AsyncBroker, InMemoryBroker
from taskiq.kicker import AsyncKicker

from worker.broker import GROUP, STREAM
from worker.tasks import TASK_NAME


class TaskiqQueue:
    def __init__(self, broker: AsyncBroker, redis_url: str | None = None) -> None:
        self.broker = broker
        self.name = "redis" if redis_url else "in-process"
        self._redis = None
        if redis_url:
            from redis.asyncio import Redis

            self._redis = Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=5)

    async def enqueue(self, job_id: str) -> None:
        await AsyncKicker(TASK_NAME, self.broker, labels={}).kiq(job_id)

    async def depth(self) -> int | None:
        if self._redis is None:
            if isinstance(self.broker, InMemoryBroker):
                return len(self.broker._running_tasks)
            return None
        try:
            groups = await self._redis.xinfo_groups(STREAM)
        except Exception as exc:  # the stream vanished with a Redis restart: nothing waits in it
            if "no such key" in str(exc).lower():
                return 0
            raise
        for group in groups:
            name = group.get("name")
            if name in (GROUP, GROUP.encode()):
                lag = group.get("lag")
                return int(group.get("pending") or 0) + int(lag or 0)
        return 0

    async def ping(self) -> None:
        if self._redis is not None:
            await self._redis.ping()

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
