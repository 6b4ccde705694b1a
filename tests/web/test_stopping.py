"""Stopping the web app's background loops when an event arrives at the same moment as the stop.

On Python 3.11, `asyncio.wait_for(event.wait(), t)` swallows a cancel that lands in the loop iteration in
which the event was set: the loop then goes on and whoever awaits it after cancelling waits for ever (the
hang seen in tests/web/test_media_api.py::test_retry_of_a_running_job_is_a_conflict, whose cancelled
download's final event reached the webhook sender just as the app stopped).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from core.events import Message
from core.jobs.views import JobView
from tests.support.services import make_settings, running_services
from tests.web.conftest import Api
from web.webhooks import build_sender


async def _stops(task: asyncio.Task[None], within_s: float = 10) -> bool:
    # asyncio.wait does not cancel what it waits for: a task that ignored its cancel stays pending.
    done, _ = await asyncio.wait({task}, timeout=within_s)
    return task in done


async def test_webhook_sender_stops_when_woken_as_it_is_closed(tmp_path: Path) -> None:
    async with running_services(make_settings(tmp_path), worker=False) as services:
        for spins in range(3):
            sender = build_sender(services)
            await sender.start()
            await asyncio.sleep(0.2)  # its loop now waits to be woken
            sender.wake()  # as a job's final event or a cancel in this process does
            for _ in range(spins):
                await asyncio.sleep(0)
            closing = asyncio.create_task(sender.close())
            assert await _stops(closing), f"close() did not return (woken {spins} iterations before)"


async def test_job_watch_stops_when_an_event_arrives_as_it_is_cancelled(
    start_api: Any, media_site: Any
) -> None:
    async with start_api(worker=False) as api:  # no worker: the job stays queued
        status, job = await api.submit(media_site.url("/video.mp4"))
        assert status == 202, job
        _, view = await api.services.jobs.get_request(job["id"])
        for spins in range(3):
            await _watch_then_cancel(api, view, spins)


async def _watch_then_cancel(api: Api, view: JobView, spins: int) -> None:
    started = asyncio.Event()

    async def follow() -> None:
        async for _state in api.services.jobs.watch(view.id):
            started.set()

    watcher = asyncio.create_task(follow())
    await asyncio.wait_for(started.wait(), 10)
    await asyncio.sleep(0.05)  # it now waits for the next event
    newer = view.model_copy(update={"seq": view.seq + 1 + spins})
    await api.services.bus.publish(Message("job", job=newer))
    for _ in range(spins):
        await asyncio.sleep(0)
    watcher.cancel()
    assert await _stops(watcher), f"watch() ignored its cancel (event {spins} iterations before)"
