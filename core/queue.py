"""The job queue as the core sees it: something that delivers job ids to workers.

The database is the source of truth; the queue only delivers. Implementations live with the worker
(Taskiq on Redis streams, or Taskiq's in-memory broker).
"""

from __future__ import annotations

from typing import Protocol


class JobQueue(Protocol):
    name: str

    async def enqueue(self, job_id: str) -> None:
        """Deliver `job_id` to some worker; may raise when the broker is unreachable."""
        ...

    async def depth(self) -> int | None:
        """Messages waiting or in flight, when the broker can tell."""
        ...

    async def ping(self) -> None: ...
