"""Rate limits shared by every front end: `hit(bucket, limit, window_s)` counts one event in a sliding window.

With Redis the window lives in Redis (a sorted set per bucket, updated by one Lua script using Redis's own
clock), so several web or bot processes share one limit. Without Redis it lives in this process.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from typing import Any, Protocol

from core.config import Settings

log = logging.getLogger(__name__)

KEY_PREFIX = "mediabot:rl:"


class RateLimiter(Protocol):
    name: str

    async def hit(
        self, bucket: str, limit: int, window_s: float, event_id: str | None = None
    ) -> tuple[bool, float]:
        """Count one event in `bucket`. Returns (allowed, seconds until the next event would be allowed).

        A refused event is not counted, so a client that keeps retrying gets through as soon as the
        window has room again. An `event_id` names the event for `undo`.
        """
        ...

    async def check(self, bucket: str, limit: int, window_s: float) -> tuple[bool, float]:
        """Whether an event would be allowed now, as `hit` answers, without counting one."""
        ...

    async def undo(self, bucket: str, event_id: str) -> None:
        """Forget a counted event (one that turned out not to count, such as a refused submission)."""
        ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    """A sliding log per bucket in this process."""

    name = "in-process"

    def __init__(self, max_buckets: int = 100_000) -> None:
        # Each bucket holds (time, event id) pairs, oldest first.
        self._buckets: dict[str, deque[tuple[float, str | None]]] = {}
        self._max_buckets = max_buckets

    def _events(self, bucket: str, now: float, window_s: float) -> deque[tuple[float, str | None]]:
        events = self._buckets.get(bucket)
        if events is None:
            if len(self._buckets) >= self._max_buckets:
                self._prune(now, window_s)
            events = self._buckets[bucket] = deque()
        while events and events[0][0] <= now - window_s:
            events.popleft()
        return events

    async def hit(
        self, bucket: str, limit: int, window_s: float, event_id: str | None = None
    ) -> tuple[bool, float]:
        now = time.monotonic()
        events = self._events(bucket, now, window_s)
        if len(events) < limit:
            events.append((now, event_id))
            return True, 0.0
        return False, max(0.0, events[0][0] + window_s - now)

    async def check(self, bucket: str, limit: int, window_s: float) -> tuple[bool, float]:
        now = time.monotonic()
        events = self._events(bucket, now, window_s)
        if len(events) < limit:
            return True, 0.0
        return False, max(0.0, events[0][0] + window_s - now)

    async def undo(self, bucket: str, event_id: str) -> None:
        events = self._buckets.get(bucket)
        if not events:
            return
        for event in events:
            if event[1] == event_id:
                events.remove(event)
                return

    def _prune(self, now: float, window_s: float) -> None:
        for name in [
            name for name, events in self._buckets.items() if not events or events[-1][0] <= now - window_s
        ]:
            del self._buckets[name]

    async def close(self) -> None:
        self._buckets.clear()


# KEYS[1] the bucket; ARGV: limit, window in ms, the event's id (its member: unique), 1 to count it or 0
# to only ask.
_SLIDING_LOG = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < limit then
  if ARGV[4] == '1' then
    redis.call('ZADD', KEYS[1], now, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], window)
  end
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now}
"""


class RedisRateLimiter:
    """A sliding log per bucket in Redis, shared by every process that uses the same Redis.

    When Redis cannot be reached the limiter lets events through (and says so in the log): an outage of
    the limiter should not take the API down with it.
    """

    name = "redis"

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis: Any = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
        self._script = self._redis.register_script(_SLIDING_LOG)
        self._warned_at = 0.0

    async def hit(
        self, bucket: str, limit: int, window_s: float, event_id: str | None = None
    ) -> tuple[bool, float]:
        return await self._run(bucket, limit, window_s, event_id or secrets.token_hex(8), count=True)

    async def check(self, bucket: str, limit: int, window_s: float) -> tuple[bool, float]:
        return await self._run(bucket, limit, window_s, "", count=False)

    async def undo(self, bucket: str, event_id: str) -> None:
        try:
            await self._redis.zrem(KEY_PREFIX + bucket, event_id)
        except Exception as exc:  # noqa: BLE001 - the event then counts until it leaves the window
            self._warn(exc)

    async def _run(
        self, bucket: str, limit: int, window_s: float, event_id: str, *, count: bool
    ) -> tuple[bool, float]:
        try:
            allowed, retry_ms = await self._script(
                keys=[KEY_PREFIX + bucket],
                args=[limit, max(1, int(window_s * 1000)), event_id, 1 if count else 0],
            )
        except Exception as exc:  # noqa: BLE001 - redis.ConnectionError, TimeoutError...: fail open
            self._warn(exc)
            return True, 0.0
        return bool(allowed), max(0.0, float(retry_ms) / 1000)

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at > 30:
            self._warned_at = now
            log.warning("rate limiter cannot reach Redis (%s); not limiting meanwhile", type(exc).__name__)

    async def close(self) -> None:
        await self._redis.aclose()


def build_rate_limiter(settings: Settings) -> RateLimiter:
    return RedisRateLimiter(settings.redis_url) if settings.redis_url else MemoryRateLimiter()
