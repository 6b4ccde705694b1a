"""Taskiq tasks. The worker's resources live in the broker state, set up on WORKER_STARTUP."""

from __future__ import annotations

import logging
from typing import Annotated

from taskiq import Context, TaskiqDepends

log = logging.getLogger(__name__)

TASK_NAME = "mediabot.download"


async def download(job_id: str, context: Annotated[Context, TaskiqDepends()]) -> None:
    """Run one job. Claims are conditional, so a duplicate or late message does nothing."""
    runtime = getattr(context.state, "runtime", None)
    if runtime is None:
        # An in-process broker in a process that runs no worker: the job stays queued in the database.
        log.warning("no worker runs in this process; job %s stays queued", job_id)
        return
    await runtime.runner.run(job_id)
