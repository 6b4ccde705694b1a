"""Download slots per site: at most N at once across every worker, at least S seconds between two starts,
handed out first come, first served.

A job asks with `try_acquire(site, job_id)` and gets `Granted` or `Waiting(ahead, retry_after)`; it never
blocks, so a waiting job gives its worker back and asks again after `retry_after` seconds. Asking again keeps
its place; a job that stops asking for `wait_ttl_s` past its `retry_after` loses it (its worker died, or it
was cancelled without `forget`). A holder's lease lasts `lease_s`: `renew` it while downloading (every
lease_s / 3, as the job lease), `release` it at the end; a dead worker's slot frees itself when the lease ends.

Two backends with one behaviour (tests/pacing run the same tests on both): `MemoryPacer` for one process
(embedded mode), `RedisPacer` for every process sharing one Redis (each step is one Lua script, timed by the
Redis server's clock, so machines with skewed clocks still keep one spacing).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .rules import SiteLimits

if TYPE_CHECKING:
    # Only for types: a process without MEDIABOT_REDIS_URL never loads Redis's client (idle memory).
    from redis.asyncio import Redis

KEY_PREFIX = "mediabot:pacing"


@dataclass(frozen=True)
class Granted:
    site: str


@dataclass(frozen=True)
class Waiting:
    """Not yet: `ahead` jobs are before this one for the site; ask again in `retry_after` seconds."""

    site: str
    ahead: int
    retry_after: float


@dataclass(frozen=True)
class SlotTimings:
    lease_s: float = 30.0  # a holder that stops renewing loses its slot after this long
    wait_ttl_s: float = 60.0  # a waiting job that stops asking loses its place this long after retry_after
    poll_s: float = 2.0  # how soon a job waiting for a free slot (not for the spacing) asks again


@dataclass(frozen=True)
class SiteSlots:
    """What a site's slots look like now (for doctor and /metrics)."""

    site: str
    holders: int
    waiting: int


class Pacer(Protocol):
    async def try_acquire(self, site: str, job_id: str) -> Granted | Waiting: ...

    async def renew(self, site: str, job_id: str) -> bool:
        """Extend a holder's lease; False when it had already lapsed (the slot may be someone else's)."""
        ...

    async def release(self, site: str, job_id: str) -> None: ...

    async def forget(self, site: str, job_id: str) -> None:
        """A waiting job is not waiting any more (cancelled): the jobs behind it move up now."""
        ...

    async def slots(self, site: str) -> SiteSlots: ...


@dataclass
class _Site:
    holders: dict[str, float] = field(default_factory=dict)  # job -> lease end
    waiting: dict[str, float] = field(default_factory=dict)  # job -> place kept until; dict order is FIFO
    last_start: float = float("-inf")


class MemoryPacer:
    """One process's slots (embedded mode). Not thread-safe: called from the event loop only."""

    def __init__(self, limits: SiteLimits, timings: SlotTimings | None = None) -> None:
        self.limits = limits
        self.timings = timings or SlotTimings()
        self._sites: dict[str, _Site] = {}

    def _site(self, site: str, now: float) -> _Site:
        state = self._sites.setdefault(site, _Site())
        for job in [j for j, end in state.holders.items() if end <= now]:
            del state.holders[job]
        for job in [j for j, end in state.waiting.items() if end <= now]:
            del state.waiting[job]
        return state

    async def try_acquire(self, site: str, job_id: str) -> Granted | Waiting:
        limit = self.limits.for_site(site)
        if limit is None:
            return Granted(site)
        now = time.monotonic()
        state = self._site(site, now)
        if job_id in state.holders:
            state.holders[job_id] = now + self.timings.lease_s
            return Granted(site)
        queue = list(state.waiting)
        ahead = queue.index(job_id) if job_id in state.waiting else len(queue)
        free = limit.concurrency - len(state.holders)
        gap = state.last_start + limit.spacing_s - now
        if ahead < free and gap <= 0:
            state.waiting.pop(job_id, None)
            state.holders[job_id] = now + self.timings.lease_s
            state.last_start = now
            return Granted(site)
        retry = gap if ahead < free else max(gap, self.timings.poll_s)
        state.waiting[job_id] = now + retry + self.timings.wait_ttl_s  # a new job joins at the end
        return Waiting(site, ahead, retry)

    async def renew(self, site: str, job_id: str) -> bool:
        if self.limits.for_site(site) is None:
            return True
        now = time.monotonic()
        state = self._site(site, now)
        if job_id not in state.holders:
            return False
        state.holders[job_id] = now + self.timings.lease_s
        return True

    async def release(self, site: str, job_id: str) -> None:
        state = self._sites.get(site)
        if state is not None:
            state.holders.pop(job_id, None)
            state.waiting.pop(job_id, None)

    async def forget(self, site: str, job_id: str) -> None:
        await self.release(site, job_id)

    async def slots(self, site: str) -> SiteSlots:
        state = self._site(site, time.monotonic())
        return SiteSlots(site, len(state.holders), len(state.waiting))


# KEYS: holders (zset job -> lease end ms), queue (zset job -> arrival number), seen (zset job -> place kept
# until ms), last (last start ms, expires after the spacing), seq (arrival counter).
# ARGV: job, concurrency, spacing ms, lease ms, wait ttl ms, poll ms.
# Returns {1} granted, or {0, ahead, retry_after ms}.
_PRUNE = """
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for i = 1, #stale, 1000 do
  local part = {unpack(stale, i, math.min(i + 999, #stale))}
  redis.call('ZREM', KEYS[2], unpack(part))
  redis.call('ZREM', KEYS[3], unpack(part))
end
"""

_ACQUIRE = (
    _PRUNE
    + """
local job = ARGV[1]
local limit, spacing = tonumber(ARGV[2]), tonumber(ARGV[3])
local lease, wait_ttl, poll = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local keep = math.max(lease, wait_ttl + spacing) * 2
if redis.call('ZSCORE', KEYS[1], job) then
  redis.call('ZADD', KEYS[1], now + lease, job)
  redis.call('PEXPIRE', KEYS[1], keep)
  return {1}
end
local free = limit - redis.call('ZCARD', KEYS[1])
local rank = redis.call('ZRANK', KEYS[2], job)
local ahead = rank or redis.call('ZCARD', KEYS[2])
local gap = 0
local last = redis.call('GET', KEYS[4])
if last then gap = tonumber(last) + spacing - now end
if ahead < free and gap <= 0 then
  redis.call('ZADD', KEYS[1], now + lease, job)
  redis.call('PEXPIRE', KEYS[1], keep)
  redis.call('ZREM', KEYS[2], job)
  redis.call('ZREM', KEYS[3], job)
  if spacing > 0 then redis.call('SET', KEYS[4], now, 'PX', spacing) end
  return {1}
end
if not rank then redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[5]), job) end
local retry = poll
if ahead < free then retry = gap elseif gap > poll then retry = gap end
redis.call('ZADD', KEYS[3], now + retry + wait_ttl, job)
for _, key in ipairs({KEYS[2], KEYS[3], KEYS[5]}) do redis.call('PEXPIRE', key, keep + retry) end
return {0, ahead, retry}
"""
)

_RENEW = (
    _PRUNE
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return 1
"""
)

_COUNT = (
    _PRUNE
    + """
return {redis.call('ZCARD', KEYS[1]), redis.call('ZCARD', KEYS[2])}
"""
)


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


class RedisPacer:
    """Slots shared by every process on one Redis."""

    def __init__(self, redis: Redis, limits: SiteLimits, timings: SlotTimings | None = None) -> None:
        self.redis = redis
        self.limits = limits
        self.timings = timings or SlotTimings()
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._count = redis.register_script(_COUNT)

    @staticmethod
    def keys(site: str) -> list[str]:
        # One hash tag per site: a Redis Cluster keeps a site's keys on one node, as a script needs.
        base = f"{KEY_PREFIX}:{{{site}}}"
        return [f"{base}:holders", f"{base}:queue", f"{base}:seen", f"{base}:last", f"{base}:seq"]

    async def try_acquire(self, site: str, job_id: str) -> Granted | Waiting:
        limit = self.limits.for_site(site)
        if limit is None:
            return Granted(site)
        t = self.timings
        args = [
            job_id,
            limit.concurrency,
            _ms(limit.spacing_s),
            _ms(t.lease_s),
            _ms(t.wait_ttl_s),
            _ms(t.poll_s),
        ]
        answer = await self._acquire(keys=self.keys(site), args=args)
        if int(answer[0]) == 1:
            return Granted(site)
        return Waiting(site, int(answer[1]), int(answer[2]) / 1000)

    async def renew(self, site: str, job_id: str) -> bool:
        if self.limits.for_site(site) is None:
            return True
        return bool(await self._renew(keys=self.keys(site), args=[job_id, _ms(self.timings.lease_s)]))

    async def release(self, site: str, job_id: str) -> None:
        holders, queue, seen, _, _ = self.keys(site)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zrem(holders, job_id).zrem(queue, job_id).zrem(seen, job_id)
            await pipe.execute()

    async def forget(self, site: str, job_id: str) -> None:
        await self.release(site, job_id)

    async def slots(self, site: str) -> SiteSlots:
        holders, waiting = await self._count(keys=self.keys(site), args=[])
        return SiteSlots(site, int(holders), int(waiting))
