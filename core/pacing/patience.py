"""How long a job has been refused by its site: the first refusal's time, shared by every worker.

A job whose every identity rests goes back to the queue and may come back on another worker; its patience
(MEDIABOT_SITE_PATIENCE_S) counts from the first time any worker found it refused, so it is kept here (in
memory for one process, in Redis for all) rather than on the worker or in a column of its own.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    # Only for types: a process without MEDIABOT_REDIS_URL never loads Redis's client (idle memory).
    from redis.asyncio import Redis


KEY_PREFIX = "mediabot:pacing:refused"


class Patience(Protocol):
    async def since(self, job_id: str, keep_s: float) -> float:
        """When the job was first refused (Unix time); now, when this is the first time."""
        ...

    async def clear(self, job_id: str) -> None: ...


class MemoryPatience:
    def __init__(self) -> None:
        self._first: dict[str, tuple[float, float]] = {}  # job -> (first refusal, forget after)

    async def since(self, job_id: str, keep_s: float) -> float:
        now = time.time()
        for job in [j for j, (_, end) in self._first.items() if end <= now]:
            del self._first[job]
        first, _ = self._first.setdefault(job_id, (now, now + keep_s))
        return first

    async def clear(self, job_id: str) -> None:
        self._first.pop(job_id, None)


class RedisPatience:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def since(self, job_id: str, keep_s: float) -> float:
        key = f"{KEY_PREFIX}:{job_id}"
        now = time.time()
        # SET NX keeps the first writer's time; the TTL forgets a job that ended without clearing it.
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(key, repr(now), nx=True, ex=max(1, int(keep_s) + 1)).get(key)
            _, first = await pipe.execute()
        return float(first) if first is not None else now

    async def clear(self, job_id: str) -> None:
        await self.redis.delete(f"{KEY_PREFIX}:{job_id}")
