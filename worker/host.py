"""Hosting the worker: inside `mediabot run` (in-process broker) or as `mediabot worker` (Redis)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from taskiq import AsyncBroker, InMemoryBroker, TaskiqEvents, TaskiqState
from taskiq.api import run_receiver_task

from core.aio import cancel_and_wait, spawn
from core.bootstrap import Services
from worker.build import build_worker
from worker.probing import PROBE_THREADS
from worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)


def attach_runtime(
    broker: AsyncBroker,
    services: Services,
    worker_id: str | None = None,
    hurry: asyncio.Event | None = None,
    *,
    warm: bool = True,
) -> None:
    """Create the worker's resources on WORKER_STARTUP and release them on WORKER_SHUTDOWN (at once,
    handing running jobs back, when `hurry` is set). `warm`: import yt-dlp at start, not on the first job."""

    async def startup(state: TaskiqState) -> None:
        runtime = build_worker(services, worker_id, warm=warm)
        # Reachable before it starts: start() hands an in-process queue the jobs the last run left queued,
        # and their tasks look the runtime up here. Set afterwards, they found none, dropped the jobs,
        # and those waited for the reconciler's stale-queue sweep (MEDIABOT_STALE_QUEUED_S) instead.
        state.runtime = runtime
        await runtime.start()
        log.info(
            "worker %s started (concurrency %d)",
            runtime.runner.worker_id,
            services.settings.worker_concurrency,
        )

    async def shutdown(state: TaskiqState) -> None:
        runtime: WorkerRuntime | None = getattr(state, "runtime", None)
        if runtime is not None:
            await runtime.stop(grace_s=services.settings.shutdown_grace_s, hurry=hurry)
            log.info("worker %s stopped", runtime.runner.worker_id)

    broker.add_event_handler(TaskiqEvents.WORKER_STARTUP, startup)
    broker.add_event_handler(TaskiqEvents.WORKER_SHUTDOWN, shutdown)


@contextlib.asynccontextmanager
async def hosted_worker(
    broker: AsyncBroker,
    services: Services,
    *,
    probes: AsyncBroker | None = None,
    hurry: asyncio.Event | None = None,
    warm: bool = True,
) -> AsyncIterator[WorkerRuntime]:
    """Run the worker in this process until the block exits: jobs from `broker`, and the front ends'
    questions about links from `probes` (when it is another broker: Redis)."""
    attach_runtime(broker, services, hurry=hurry, warm=warm)
    for answering in {id(b): b for b in (broker, probes) if b is not None}.values():
        answering.state.pacing = services.pacing  # probes made here go as the site's identities
    receivers: list[asyncio.Task[None]] = []
    async with contextlib.AsyncExitStack() as stack:
        broker.is_worker_process = True
        await broker.startup()
        stack.push_async_callback(broker.shutdown)
        if probes is not None and probes is not broker:
            probes.is_worker_process = True
            await probes.startup()
            stack.push_async_callback(probes.shutdown)
            receivers.append(spawn(_receive_forever(probes, PROBE_THREADS * 2), name="probe-receiver"))
        if not isinstance(broker, InMemoryBroker):
            receivers.append(
                spawn(_receive_forever(broker, services.settings.worker_concurrency), name="receiver")
            )
        try:
            yield broker.state.runtime
        finally:
            # Stop fetching first, so nothing new is taken while running jobs finish or are handed back.
            for receiver in receivers:
                await cancel_and_wait(receiver)


async def _receive_forever(broker: AsyncBroker, concurrency: int) -> None:
    # The broker's own listen() rides out Redis outages (worker.redis_broker.ResilientStreamBroker).
    await run_receiver_task(broker, max_async_tasks=concurrency, max_prefetch=0, run_startup=False)
