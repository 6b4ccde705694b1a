"""Per-site pacing and identities, shared by every worker (issue 23).

    pacing = build_pacing(limits=parse_site_limits(...), proxies=parse_proxies(...), cookies_dir=...,
                          backoff=Backoff(base_s=...), redis=redis_or_None)
    site = await asyncio.to_thread(core.media.sites.site_of_url, url, settings.allowed_extractors)
    slot = await pacing.pacer.try_acquire(site, job_id)        # Granted | Waiting(ahead, retry_after)
    identity = await pacing.identities.choose(site, url)       # Identity | Resting(until)
    ... download with identity.cookies / identity.proxy, pacing.pacer.renew() with the job lease ...
    await pacing.identities.succeeded(identity)  or  await pacing.identities.report(identity, classify(text, status))
    await pacing.pacer.release(site, job_id)

Nothing here imports yt-dlp at import time or does I/O before it is called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .classify import Outcome, classify
from .cookiejar import CookieCopy, CookieFile, checkout, cookie_files, write_back
from .identities import (
    Backoff,
    Identity,
    IdentityPool,
    MemoryIdentityStore,
    PoolStats,
    RedisIdentityStore,
    Resting,
)
from .patience import MemoryPatience, Patience, RedisPatience
from .rules import Proxy, ProxyRules, SiteLimit, SiteLimits, parse_proxies, parse_site_limits
from .slots import Granted, MemoryPacer, Pacer, RedisPacer, SiteSlots, SlotTimings, Waiting

if TYPE_CHECKING:
    # Only for types: a process without MEDIABOT_REDIS_URL never loads Redis's client (idle memory).
    from redis.asyncio import Redis


@dataclass(frozen=True)
class Pacing:
    limits: SiteLimits
    proxies: ProxyRules
    pacer: Pacer
    identities: IdentityPool
    patience: Patience = field(default_factory=MemoryPatience)


def build_pacing(
    *,
    limits: SiteLimits,
    proxies: ProxyRules,
    cookies_dir: Path | None,
    backoff: Backoff | None = None,
    redis: Redis | None = None,
    timings: SlotTimings | None = None,
) -> Pacing:
    """In one process without Redis (embedded), else shared by every process on that Redis."""
    if redis is None:
        pacer: Pacer = MemoryPacer(limits, timings)
        store: MemoryIdentityStore | RedisIdentityStore = MemoryIdentityStore()
        patience: Patience = MemoryPatience()
    else:
        pacer = RedisPacer(redis, limits, timings)
        store = RedisIdentityStore(redis)
        patience = RedisPatience(redis)
    pool = IdentityPool(store, cookies_dir=cookies_dir, proxies=proxies, backoff=backoff)
    return Pacing(limits, proxies, pacer, pool, patience)


__all__ = [
    "Backoff",
    "CookieCopy",
    "CookieFile",
    "Granted",
    "Identity",
    "IdentityPool",
    "MemoryIdentityStore",
    "MemoryPacer",
    "Outcome",
    "Pacer",
    "Pacing",
    "Patience",
    "PoolStats",
    "Proxy",
    "ProxyRules",
    "RedisIdentityStore",
    "RedisPacer",
    "Resting",
    "SiteLimit",
    "SiteLimits",
    "SiteSlots",
    "SlotTimings",
    "Waiting",
    "build_pacing",
    "checkout",
    "classify",
    "cookie_files",
    "parse_proxies",
    "parse_site_limits",
    "write_back",
]
