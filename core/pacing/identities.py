"""Who we are to a site: a cookies file (an account) and a proxy (an address), taken in turn.

An identity is one (cookies file, proxy) pair of the site's pools, and the pairs are the whole cross product,
not two rings turned independently: a site counts per account and per address and does not say which of the
two it held against us, so a rate limit or a bot check rests the pair that was used, and both its account
(through another address) and its address (with another account) stay usable. Where the blame is clear it
falls on the part: `login_required` sets the cookies file aside (every pair with it), a proxy that cannot be
reached rests that proxy (for every site). The pairs are listed so that one turn to the next changes both the
account and the address where it can.

No cookies file and no proxy is one identity: "direct". When every cookies file is set aside the pairs go
without cookies (as a site with no file does today). A rest doubles on repeats up to a cap, less up to
`jitter` of it at random (so workers that were refused together don't come back together); a success clears it.

State (turn, rests, strikes, set-aside files, counters) is in memory for one process, or in Redis for all.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from .cookiejar import CookieFile, cookie_files
from .rules import Proxy, ProxyRules

if TYPE_CHECKING:
    # Only for types: a process without MEDIABOT_REDIS_URL never loads Redis's client (idle memory).
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

KEY_PREFIX = "mediabot:identities"
Counter = Literal["requests", "successes", "rate_limits", "bot_checks", "login_required", "proxy_failures"]
COUNTERS: tuple[Counter, ...] = (
    "requests", "successes", "rate_limits", "bot_checks", "login_required", "proxy_failures",
)  # fmt: skip


@dataclass(frozen=True)
class Identity:
    site: str
    cookies: CookieFile | None
    proxy: Proxy | None

    @property
    def name(self) -> str:
        """Safe to log and show: the file's name and the redacted proxy, e.g. `youtube/a.txt@http://p:3128`."""
        return f"{self.cookies.name if self.cookies else '-'}@{self.proxy.label if self.proxy else 'direct'}"

    def __str__(self) -> str:
        return f"{self.site}:{self.name}"


@dataclass(frozen=True)
class Resting:
    """Every identity of the site rests; the first is back at `until` (Unix time)."""

    site: str
    until: float

    @property
    def retry_after(self) -> float:
        return max(0.0, self.until - time.time())


@dataclass(frozen=True)
class Backoff:
    base_s: float = 60.0  # MEDIABOT_SITE_BACKOFF_S
    cap_s: float = 3600.0  # YouTube rests a session "for up to an hour"
    jitter: float = 0.25  # a rest is between (1 - jitter) and 1 times its doubled length
    forget_after_s: float = 6 * 3600.0  # strikes older than this start again from one

    def rest_s(self, strikes: int, rng: random.Random) -> float:
        full = min(self.cap_s, self.base_s * 2 ** max(0, strikes - 1))
        return full * (1 - self.jitter * rng.random())


@dataclass(frozen=True)
class IdentityStats:
    identity: str
    counts: dict[str, int]
    resting_until: float | None


@dataclass(frozen=True)
class SiteStats:
    site: str
    counts: dict[str, int]
    identities: tuple[IdentityStats, ...]
    set_aside: tuple[str, ...]  # cookies file names


@dataclass(frozen=True)
class PoolStats:
    sites: tuple[SiteStats, ...]
    proxies_resting: dict[str, float] = field(default_factory=dict)  # redacted proxy -> until


class IdentityStore(Protocol):
    """The pool's shared state. Rest scopes: `<site>\\t<identity name>` and `proxy\\t<redacted proxy>`."""

    async def turn(self, site: str) -> tuple[int, dict[str, float], dict[str, str]]:
        """The next turn number for the site, every rest (scope -> until), its set-aside files
        (name -> fingerprint)."""
        ...

    async def strike(self, scope: str, now: float, forget_after_s: float) -> int: ...

    async def rest(self, scope: str, until: float) -> None: ...

    async def clear(self, scope: str) -> None: ...

    async def set_aside(self, site: str, name: str, fingerprint: str | None) -> None:
        """Put a file aside (fingerprint) or take it back (None)."""
        ...

    async def count(self, site: str, identity: str, counter: Counter) -> None: ...

    async def read(
        self,
    ) -> tuple[dict[tuple[str, str, str], int], dict[str, float], dict[str, dict[str, str]]]:
        """Counters ((site, identity or "", counter) -> n), rests, set-aside files per site."""
        ...


class MemoryIdentityStore:
    def __init__(self) -> None:
        self._turns: dict[str, int] = {}
        self._rests: dict[str, float] = {}
        self._strikes: dict[str, tuple[int, float]] = {}  # scope -> (strikes, last strike)
        self._aside: dict[str, dict[str, str]] = {}
        self._counts: dict[tuple[str, str, str], int] = {}

    async def turn(self, site: str) -> tuple[int, dict[str, float], dict[str, str]]:
        self._turns[site] = self._turns.get(site, 0) + 1
        return self._turns[site], dict(self._rests), dict(self._aside.get(site, {}))

    async def strike(self, scope: str, now: float, forget_after_s: float) -> int:
        strikes, last = self._strikes.get(scope, (0, now))
        strikes = 1 if now - last > forget_after_s else strikes + 1
        self._strikes[scope] = (strikes, now)
        return strikes

    async def rest(self, scope: str, until: float) -> None:
        self._rests[scope] = until

    async def clear(self, scope: str) -> None:
        self._rests.pop(scope, None)
        self._strikes.pop(scope, None)

    async def set_aside(self, site: str, name: str, fingerprint: str | None) -> None:
        files = self._aside.setdefault(site, {})
        if fingerprint is None:
            files.pop(name, None)
        else:
            files[name] = fingerprint

    async def count(self, site: str, identity: str, counter: Counter) -> None:
        for key in ((site, "", counter), (site, identity, counter)):
            self._counts[key] = self._counts.get(key, 0) + 1

    async def read(
        self,
    ) -> tuple[dict[tuple[str, str, str], int], dict[str, float], dict[str, dict[str, str]]]:
        return dict(self._counts), dict(self._rests), {s: dict(f) for s, f in self._aside.items()}


class RedisIdentityStore:
    """The same state in a few Redis hashes, so every worker turns one wheel and sees every rest."""

    def __init__(self, redis: Redis, prefix: str = KEY_PREFIX) -> None:
        self.redis = redis
        self.turns = f"{prefix}:turns"
        self.rests = f"{prefix}:rests"
        self.strikes = f"{prefix}:strikes"
        self.aside = f"{prefix}:aside"
        self.counts = f"{prefix}:counts"

    async def turn(self, site: str) -> tuple[int, dict[str, float], dict[str, str]]:
        # One round trip; the rests hash holds one field per identity that ever rested (tens), read whole.
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(self.turns, site, 1).hgetall(self.rests).hgetall(self.aside)
            number, rests, aside = await pipe.execute()
        prefix = f"{site}\t"
        files = {
            k.decode()[len(prefix) :]: v.decode() for k, v in aside.items() if k.decode().startswith(prefix)
        }
        return int(number), {k.decode(): float(v) for k, v in rests.items()}, files

    async def strike(self, scope: str, now: float, forget_after_s: float) -> int:
        # Not one atomic step: two refusals of one identity at the same instant may count once, which only
        # makes that rest the shorter one. Not worth a script.
        last_key = f"{scope}\tlast"
        last = await self.redis.hget(self.strikes, last_key)
        async with self.redis.pipeline(transaction=True) as pipe:
            if last is not None and now - float(last) > forget_after_s:
                pipe.hset(self.strikes, scope, 0)
            pipe.hincrby(self.strikes, scope, 1).hset(self.strikes, last_key, repr(now))
            answers = await pipe.execute()
        return int(answers[-2])

    async def rest(self, scope: str, until: float) -> None:
        await self.redis.hset(self.rests, scope, repr(until))

    async def clear(self, scope: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(self.rests, scope).hdel(self.strikes, scope, f"{scope}\tlast")
            await pipe.execute()

    async def set_aside(self, site: str, name: str, fingerprint: str | None) -> None:
        if fingerprint is None:
            await self.redis.hdel(self.aside, f"{site}\t{name}")
        else:
            await self.redis.hset(self.aside, f"{site}\t{name}", fingerprint)

    async def count(self, site: str, identity: str, counter: Counter) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(self.counts, f"{site}\t\t{counter}", 1)
            pipe.hincrby(self.counts, f"{site}\t{identity}\t{counter}", 1)
            await pipe.execute()

    async def read(
        self,
    ) -> tuple[dict[tuple[str, str, str], int], dict[str, float], dict[str, dict[str, str]]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.counts).hgetall(self.rests).hgetall(self.aside)
            counts, rests, aside = await pipe.execute()
        parsed: dict[tuple[str, str, str], int] = {}
        for key, value in counts.items():
            site, identity, counter = key.decode().split("\t")
            parsed[(site, identity, counter)] = int(value)
        files: dict[str, dict[str, str]] = {}
        for key, value in aside.items():
            site, name = key.decode().split("\t", 1)
            files.setdefault(site, {})[name] = value.decode()
        return parsed, {k.decode(): float(v) for k, v in rests.items()}, files


def _scope(identity: Identity) -> str:
    return f"{identity.site}\t{identity.name}"


def _proxy_scope(proxy: Proxy) -> str:
    return f"proxy\t{proxy.label}"


def pairs(
    files: list[CookieFile | None], proxies: list[Proxy | None]
) -> list[tuple[CookieFile | None, Proxy | None]]:
    """Every (file, proxy) pair once, in an order where one to the next changes both where it can.

    Pair k is (k mod files, k mod proxies), which changes both at every step and, when the two counts have
    no common divisor, meets every pair once (Chinese remainders). Otherwise it comes back to its start after
    lcm(files, proxies) steps, so each later round moves the proxy on by one more."""
    n, m = len(files), len(proxies)
    cycle = math.lcm(n, m)
    return [(files[k % n], proxies[(k + k // cycle) % m]) for k in range(n * m)]


class IdentityPool:
    def __init__(
        self,
        store: IdentityStore,
        *,
        cookies_dir: Path | None,
        proxies: ProxyRules,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.cookies_dir = cookies_dir
        self.proxies = proxies
        self.backoff = backoff or Backoff()
        self.rng = rng or random.Random()

    def _identities(self, site: str, files: list[CookieFile], aside: dict[str, str]) -> list[Identity]:
        usable: list[CookieFile | None] = [f for f in files if aside.get(f.name) != f.fingerprint]
        proxies: list[Proxy | None] = list(self.proxies.for_site(site)) or [None]
        return [Identity(site, f, p) for f, p in pairs(usable or [None], proxies)]

    async def choose(self, site: str, url: str | None = None) -> Identity | Resting:
        """The next identity of the site that is not resting (and count a request for it), or when the
        first one is back. `url` finds the single legacy cookies file named by its domain."""
        files = await asyncio.to_thread(cookie_files, self.cookies_dir, site, url)
        number, rests, aside = await self.store.turn(site)
        for f in files:  # a file the operator replaced since it was set aside is used again
            if f.name in aside and aside[f.name] != f.fingerprint:
                await self.store.set_aside(site, f.name, None)
                log.info("cookies file %s for %s is back in use: it was replaced", f.name, site)
        identities = self._identities(site, files, aside)
        now = time.time()

        def back_at(identity: Identity) -> float:
            until = rests.get(_scope(identity), 0.0)
            if identity.proxy is not None:
                until = max(until, rests.get(_proxy_scope(identity.proxy), 0.0))
            return until

        start = number % len(identities)
        for identity in identities[start:] + identities[:start]:
            if back_at(identity) <= now:
                await self.store.count(site, identity.name, "requests")
                return identity
        return Resting(site, min(back_at(identity) for identity in identities))

    async def _rest(self, scope: str) -> float:
        now = time.time()
        strikes = await self.store.strike(scope, now, self.backoff.forget_after_s)
        until = now + self.backoff.rest_s(strikes, self.rng)
        await self.store.rest(scope, until)
        return until

    async def rate_limited(self, identity: Identity, *, bot_check: bool = False) -> float:
        """The site refused this identity for now: it rests (returns until when)."""
        await self.store.count(identity.site, identity.name, "bot_checks" if bot_check else "rate_limits")
        until = await self._rest(_scope(identity))
        log.warning(
            "%s rests until %s: %s",
            identity,
            time.strftime("%H:%M:%S", time.localtime(until)),
            "bot check" if bot_check else "rate limited",
        )
        return until

    async def succeeded(self, identity: Identity) -> None:
        await self.store.count(identity.site, identity.name, "successes")
        await self.store.clear(_scope(identity))
        if identity.proxy is not None:
            await self.store.clear(_proxy_scope(identity.proxy))

    async def login_required(self, identity: Identity) -> None:
        """The site wants a login with these cookies: the file is set aside until the operator replaces it."""
        await self.store.count(identity.site, identity.name, "login_required")
        if identity.cookies is None:
            return
        await self.store.set_aside(identity.site, identity.cookies.name, identity.cookies.fingerprint)
        log.warning(
            "cookies file %s set aside for %s: the site asked to log in; replace the file to use it again",
            identity.cookies.name,
            identity.site,
        )

    async def proxy_failed(self, identity: Identity) -> float | None:
        """The proxy could not be reached: it rests for every site (returns until when)."""
        if identity.proxy is None:
            return None
        await self.store.count(identity.site, identity.name, "proxy_failures")
        until = await self._rest(_proxy_scope(identity.proxy))
        log.warning(
            "proxy %s rests until %s: unreachable",
            identity.proxy,
            time.strftime("%H:%M:%S", time.localtime(until)),
        )
        return until

    async def report(self, identity: Identity, outcome: str | None) -> None:
        """Apply `classify()`'s verdict on a failed attempt (None: not the identity's fault, nothing)."""
        if outcome in ("rate_limited", "bot_check"):
            await self.rate_limited(identity, bot_check=outcome == "bot_check")
        elif outcome == "login_required":
            await self.login_required(identity)
        elif outcome == "proxy_failed":
            await self.proxy_failed(identity)

    async def stats(self) -> PoolStats:
        counts, rests, aside = await self.store.read()
        now = time.time()
        sites: dict[str, dict[str, dict[str, int]]] = {}
        for (site, identity, counter), n in counts.items():
            sites.setdefault(site, {}).setdefault(identity, dict.fromkeys(COUNTERS, 0))[counter] = n
        for scope, until in rests.items():
            site, _, identity = scope.partition("\t")
            if site != "proxy" and until > now:
                sites.setdefault(site, {}).setdefault(identity, dict.fromkeys(COUNTERS, 0))
        result = []
        for site in sorted(sites.keys() | aside.keys()):
            by_identity = sites.get(site, {})
            identities = tuple(
                IdentityStats(
                    name,
                    counts,
                    until if (until := rests.get(f"{site}\t{name}", 0.0)) > now else None,
                )
                for name, counts in sorted(by_identity.items())
                if name
            )
            totals = by_identity.get("", dict.fromkeys(COUNTERS, 0))
            result.append(SiteStats(site, totals, identities, tuple(sorted(aside.get(site, {})))))
        proxies = {
            scope.partition("\t")[2]: until
            for scope, until in rests.items()
            if scope.startswith("proxy\t") and until > now
        }
        return PoolStats(tuple(result), proxies)
