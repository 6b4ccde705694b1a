"""The event bus: job snapshots out to front ends, cancel signals out to workers.

One subscription per process (a Redis pub/sub connection, or nothing in-process) feeds an in-process hub
that fans out to any number of local subscribers, so 1,000 WebSockets cost one Redis connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from core.errors import Unavailable
from core.jobs.views import JobView

log = logging.getLogger(__name__)

CHANNEL = "mediabot:events"


class Message:
    """A bus message: a job snapshot (`job`) or a control signal (`cancel` with a job id)."""

    __slots__ = ("type", "job", "job_id")

    def __init__(self, type: str, job: JobView | None = None, job_id: str | None = None) -> None:
        self.type = type
        self.job = job
        self.job_id = job_id or (job.id if job else None)

    def encode(self) -> str:
        body: dict[str, Any] = {"type": self.type, "job_id": self.job_id}
        if self.job is not None:
            body["job"] = self.job.model_dump(mode="json")
        return json.dumps(body, separators=(",", ":"))

    @classmethod
    def decode(cls, raw: str | bytes) -> Message:
        body = json.loads(raw)
        job = JobView.model_validate(body["job"]) if body.get("job") else None
        return cls(body["type"], job=job, job_id=body.get("job_id"))


class Subscription:
    """Local queue of messages matching a filter. Overflow drops the oldest: snapshots make that harmless."""

    def __init__(self, hub: Hub, accept: Callable[[Message], bool], maxsize: int) -> None:
        self._hub = hub
        self._accept = accept
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def offer(self, message: Message) -> None:
        if not self._accept(message):
            return
        if self._queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self._queue.get_nowait()
                self.dropped += 1
        self._queue.put_nowait(message)

    async def get(self) -> Message:
        return await self._queue.get()

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message]:
        while True:
            yield await self._queue.get()

    def close(self) -> None:
        self._hub.remove(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Hub:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()

    def add(self, accept: Callable[[Message], bool], maxsize: int = 256) -> Subscription:
        sub = Subscription(self, accept, maxsize)
        self._subs.add(sub)
        return sub

    def remove(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def dispatch(self, message: Message) -> None:
        for sub in list(self._subs):
            sub.offer(message)

    @property
    def size(self) -> int:
        return len(self._subs)


class EventBus(Protocol):
    name: str
    # Bumped each time the bus (re)connects: a subscriber that sees it change may have missed events.
    generation: int

    @property
    def connected(self) -> bool: ...

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    async def publish(self, message: Message) -> None: ...
    def subscribe(self, accept: Callable[[Message], bool], maxsize: int = 256) -> Subscription: ...


def jobs_filter(job_ids: set[str] | None) -> Callable[[Message], bool]:
    """Accept snapshots of these jobs (all jobs when None); the set may grow while subscribed."""
    if job_ids is None:
        return lambda m: m.type == "job"
    return lambda m: m.type == "job" and m.job_id in job_ids


def control_filter(m: Message) -> bool:
    return m.type != "job"


class MemoryEventBus:
    name = "in-process"
    generation = 0
    connected = True

    def __init__(self) -> None:
        self.hub = Hub()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def publish(self, message: Message) -> None:
        self.hub.dispatch(message)

    def subscribe(self, accept: Callable[[Message], bool], maxsize: int = 256) -> Subscription:
        return self.hub.add(accept, maxsize)


class RedisEventBus:
    name = "redis"

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis = Redis.from_url(
            url, socket_connect_timeout=3, socket_timeout=5, health_check_interval=15
        )
        self.hub = Hub()
        self._reader: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self.generation = 0

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def start(self) -> None:
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_forever(), name="event-bus-reader")
            # Wait briefly so a publish right after start is seen by our own subscribers.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), timeout=3)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        await self._redis.aclose()

    async def ping(self) -> None:
        await self._redis.ping()

    async def publish(self, message: Message) -> None:
        try:
            await self._redis.publish(CHANNEL, message.encode())
        except Exception as exc:  # redis.ConnectionError, TimeoutError...
            raise Unavailable() from exc

    def subscribe(self, accept: Callable[[Message], bool], maxsize: int = 256) -> Subscription:
        return self.hub.add(accept, maxsize)

    async def _read_forever(self) -> None:
        delay = 0.2
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                self.generation += 1
                self._connected.set()
                delay = 0.2
                while True:
                    raw = await pubsub.get_message(timeout=5.0)
                    if raw is None:
                        continue
                    try:
                        self.hub.dispatch(Message.decode(raw["data"]))
                    except (ValueError, KeyError) as exc:
                        log.warning("ignoring a malformed bus message: %s", exc)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._connected.clear()
                log.warning("event bus lost Redis (%s); reconnecting in %.1fs", type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


def build_event_bus(redis_url: str | None) -> EventBus:
    return RedisEventBus(redis_url) if redis_url else MemoryEventBus()
