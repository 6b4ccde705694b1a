"""Taskiq tasks. The worker's resources live in the broker state, set up on WORKER_STARTUP."""

from __future__ import annotations

from typing import Annotated

from taskiq import Context, TaskiqDepends

TASK_NAME = "mediabot.download"


async def download(job_id: str, context: Annotated[Context, TaskiqDepends()]) -> None:
    """Run one job. Claims are conditional, so a duplicate or late message does nothing."""
    runtime = context.state.runtime
    await runtime.runner.run(job_id)
