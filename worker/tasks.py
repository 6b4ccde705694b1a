"""Taskiq tasks. The worker's resources live in the broker state: the runtime, set up on WORKER_STARTUP; the
prober, made on the first question (also in a process that hosts no worker but has the in-process broker)."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Annotated, Any

from taskiq import Context, TaskiqDepends, TaskiqState

from core.config import Settings
from worker.probing import Prober

log = logging.getLogger(__name__)

TASK_NAME = "mediabot.download"
PROBE_TASK = "mediabot.probe"
SUPPORTED_TASK = "mediabot.supported"


async def download(job_id: str, context: Annotated[Context, TaskiqDepends()]) -> None:
    """Run one job. Claims are conditional, so a duplicate or late message does nothing."""
    runtime = getattr(context.state, "runtime", None)
    if runtime is None:
        # An in-process broker in a process that runs no worker: the job stays queued in the database.
        log.warning("no worker runs in this process; job %s stays queued", job_id)
        return
    try:
        await runtime.runner.run(job_id)
    except asyncio.CancelledError:
        # The worker is stopping (Ctrl-C, SIGTERM, the CLI's own shutdown): the runner has handed the job back
        # or recorded its cancel. taskiq's receiver catches the cancel whatever we do, but would log it as an
        # ERROR with a traceback, which a person at `mediabot download` or `run` then reads as a crash.
        log.info("job %s stopped with the worker", job_id)


def prober(state: TaskiqState) -> Prober:
    found: Prober | None = getattr(state, "prober", None)
    if found is None:
        settings: Settings = state.settings
        # The worker's pacing when this process runs one (worker.host): probes turn its identities.
        found = state.prober = Prober(settings, getattr(state, "pacing", None))
    return found


async def probe(url: str, deadline: float, context: Annotated[Context, TaskiqDepends()]) -> dict[str, Any]:
    """What a link offers (core.queue.JobQueue.probe). A question nobody waits for any more is dropped."""
    if time.time() > deadline:
        return {"expired": True}
    return await prober(context.state).formats(url)


async def supported(url: str, deadline: float, context: Annotated[Context, TaskiqDepends()]) -> bool | None:
    """Whether an allowed extractor claims the link (core.queue.JobQueue.supported)."""
    if time.time() > deadline:
        return None
    return await prober(context.state).supported(url)


def close_prober(state: TaskiqState) -> None:
    found: Prober | None = getattr(state, "prober", None)
    if found is not None:
        found.close()
        state.prober = None
