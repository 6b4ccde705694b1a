"""The core's JobQueue on Taskiq."""

from __future__ import annotations

import logging
import time

from taskiq import AsyncBroker, InMemoryBroker
from taskiq.exceptions import TaskiqError, TaskiqResultTimeoutError
from taskiq.kicker import AsyncKicker

from core.errors import MediabotError, Unavailable
from core.jobs.formats import MediaFormats
from worker.broker import GROUP, STREAM
from worker.tasks import PROBE_TASK, SUPPORTED_TASK, TASK_NAME

log = logging.getLogger(__name__)

# How long a front end waits for a worker to read a link (a slow site, files described from their first
# bytes): past it the person hears that the service is busy.
PROBE_WAIT_S = 90.0
# How long a submit waits to learn whether an allowed site claims a link; past it the link is queued and the
# worker's own check refuses it if no allowed site does.
SUPPORTED_WAIT_S = 15.0
_POLL_S = 0.1


class TaskiqQueue:
    def __init__(
        self, broker: AsyncBroker, probes: AsyncBroker | None = None, redis_url: str | None = None
    ) -> None:
        self.broker = broker
        self.probes = probes or broker
        self.name = "redis" if redis_url else "in-process"
        self.persistent = bool(redis_url)
        self._redis = None
        # What "the queue is unavailable" looks like; Redis's own errors only where Redis is used, so a
        # process without it never imports its client.
        self._unavailable: tuple[type[BaseException], ...] = (OSError, TaskiqError)
        if redis_url:
            from redis.asyncio import Redis
            from redis.exceptions import RedisError

            self._redis = Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=5)
            self._unavailable = (RedisError, OSError, TaskiqError)

    async def enqueue(self, job_id: str) -> None:
        await AsyncKicker(TASK_NAME, self.broker, labels={}).kiq(job_id)

    async def _ask(self, task: str, url: str, wait_s: float) -> object:
        try:
            sent = await AsyncKicker(task, self.probes, labels={}).kiq(url, time.time() + wait_s)
            result = await sent.wait_result(check_interval=_POLL_S, timeout=wait_s)
        except TaskiqResultTimeoutError:
            log.warning("no worker answered %s within %.0f s", task, wait_s)
            raise Unavailable() from None
        except self._unavailable as exc:
            log.warning("queue unavailable for %s (%s)", task, type(exc).__name__)
            raise Unavailable() from exc
        if result.is_err:
            log.warning("%s failed in the worker: %s", task, result.error)
            raise Unavailable()
        return result.return_value

    async def probe(self, url: str) -> MediaFormats:
        answer = await self._ask(PROBE_TASK, url, PROBE_WAIT_S)
        if not isinstance(answer, dict) or answer.get("expired"):
            raise Unavailable()
        if "error" in answer:
            raise MediabotError.from_dict(answer["error"])
        return MediaFormats.model_validate(answer["formats"])

    async def supported(self, url: str) -> bool:
        try:
            answer = await self._ask(SUPPORTED_TASK, url, SUPPORTED_WAIT_S)
        except Unavailable:
            return True  # the worker that downloads it refuses it then (yt-dlp's allowed_extractors)
        return answer is not False

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
