"""The job queue as the core sees it: something that delivers work to workers.

The database is the source of truth; the queue only delivers. Implementations live with the worker
(Taskiq on Redis streams, or Taskiq's in-memory broker). Besides job ids it carries the questions only a
worker can answer, because only workers run yt-dlp: what a link offers, and whether an allowed site
claims it.
"""

from __future__ import annotations

from typing import Protocol

from core.jobs.formats import MediaFormats


class JobQueue(Protocol):
    name: str
    # Whether a queued message outlives this process (Redis) or dies with it (in-process): a worker on a
    # queue that does not re-enqueues at start-up whatever the database says is queued.
    persistent: bool

    async def enqueue(self, job_id: str) -> None:
        """Deliver `job_id` to some worker; may raise when the broker is unreachable."""
        ...

    async def probe(self, url: str) -> MediaFormats:
        """What a link offers, read by a worker without downloading. Raises the worker's MediabotError
        (UnsupportedUrl, PrivateAddress...), or Unavailable when no worker answers in time."""
        ...

    async def supported(self, url: str) -> bool:
        """Whether one of MEDIABOT_ALLOWED_EXTRACTORS claims the link, as a worker's yt-dlp sees it."""
        ...

    async def depth(self) -> int | None:
        """Messages waiting or in flight, when the broker can tell."""
        ...

    async def ping(self) -> None: ...
