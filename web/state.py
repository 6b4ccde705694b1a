"""What the app keeps while it runs, one object per application (web.keys names where each lives): open
WebSockets, connections per client, and the shared caches that let 1,000 sockets cost what one does.

Plain classes over the core's services: nothing here imports another web module, so web.keys can name
these types without an import loop.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

from aiohttp import web

from core.jobs.service import JobService
from core.jobs.views import JobView, RequestView

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
OWNERS_TTL_S = 1.0


class ClientSlots:
    """Connections (or, through a trusted proxy, requests in progress) per client address."""

    def __init__(self, limit: int, trusted: tuple[Network, ...]) -> None:
        self.limit = limit
        self._trusted = trusted
        self._held: Counter[str] = Counter()

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def take(self, address: str) -> bool:
        """Take a slot for `address`; False (and nothing taken) when it holds `limit` already."""
        if self._held[address] >= self.limit:
            return False
        self._held[address] += 1
        return True

    def give_back(self, address: str) -> None:
        self._held[address] -= 1
        if self._held[address] <= 0:
            del self._held[address]

    def held(self, address: str) -> int:
        return self._held[address]


class OpenSockets:
    """Open WebSockets and the API key each was opened with; forgets a socket once it is gone."""

    def __init__(self) -> None:
        self._keys: weakref.WeakKeyDictionary[web.WebSocketResponse, str] = weakref.WeakKeyDictionary()

    def add(self, ws: web.WebSocketResponse, key_id: str) -> None:
        self._keys[ws] = key_id

    def __iter__(self) -> Iterator[web.WebSocketResponse]:
        return iter([ws for ws in list(self._keys) if not ws.closed])

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def key_ids(self) -> set[str]:
        return {key_id for ws, key_id in list(self._keys.items()) if not ws.closed}

    def of_keys(self, key_ids: set[str]) -> list[web.WebSocketResponse]:
        return [ws for ws, key_id in list(self._keys.items()) if key_id in key_ids and not ws.closed]


# The lookups below are shared tasks, not background work: each is awaited (shielded) by every asker and
# kept in its cache, so an asker leaving neither cancels it nor leaves it unreferenced.


class JobOwners:
    """Which requests of `source` wait on a job, looked up once per job per second for the whole process,
    however many WebSockets ask (a request made through another process is found within that second)."""

    def __init__(self, jobs: JobService, source: str, ttl_s: float = OWNERS_TTL_S) -> None:
        self._jobs = jobs
        self._source = source
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, list[RequestView]]] = {}
        # One lookup task per job, shared by every asker; a task, so an asker leaving does not cancel it.
        self._inflight: dict[str, asyncio.Task[list[RequestView]]] = {}
        self._final: OrderedDict[tuple[str, int], asyncio.Task[list[RequestView]]] = OrderedDict()

    async def requests(self, job_id: str) -> list[RequestView]:
        cached = self._cache.get(job_id)
        if cached is not None and time.monotonic() - cached[0] < self._ttl_s:
            return cached[1]
        task = self._inflight.get(job_id)
        if task is None:
            task = self._inflight[job_id] = asyncio.create_task(self._lookup(job_id))
        return await asyncio.shield(task)

    async def final(self, job_id: str, seq: int) -> list[RequestView]:
        """The requests as they ended with the job's terminal state `seq`: read once for the process (the
        terminal event is published after its commit, so a read started on receiving it sees it)."""
        key = (job_id, seq)
        task = self._final.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._final[key] = asyncio.create_task(self._jobs.requests_of_job(job_id, self._source))
            if len(self._final) > 1024:
                self._final.popitem(last=False)
        return await asyncio.shield(task)

    async def _lookup(self, job_id: str) -> list[RequestView]:
        try:
            found = await self._jobs.requests_of_job(job_id, self._source)
        finally:
            del self._inflight[job_id]
        self._cache[job_id] = (time.monotonic(), found)
        if len(self._cache) > 10_000:
            cutoff = time.monotonic() - 60
            for stale in [k for k, (at, _) in self._cache.items() if at < cutoff]:
                del self._cache[stale]
        return found


class EventEncoder:
    """Each request's state at each job snapshot is encoded once (by `render`), however many sockets send it
    (1,000 dashboards following one job cost one serialisation per event, not 1,000)."""

    def __init__(
        self, render: Callable[[RequestView, JobView], Coroutine[Any, Any, str]], size: int = 4096
    ) -> None:
        self._render = render
        self._size = size
        self._cache: OrderedDict[tuple[object, ...], asyncio.Task[str]] = OrderedDict()

    async def encode(self, req: RequestView, view: JobView) -> str:
        # The minute is part of the key: a finished job's message holds a fresh file link, not an old one.
        minute = int(time.monotonic() // 60)
        key = (req.id, req.status, req.finished_at, view.id, view.seq, view.status, minute)
        task = self._cache.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            # A task, so a socket closing mid-encode does not leave the others waiting on nothing.
            task = self._cache[key] = asyncio.create_task(self._render(req, view))
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return await asyncio.shield(task)
