"""What a WebSocket sends: one job followed to its end (a playlist: with its items' changes), or every job of
a key. The addresses, their parameters and the handshake are web.routes.events'."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import WSCloseCode, web

from core.apikeys import ApiKeyInfo
from core.bootstrap import Services
from core.events import jobs_filter
from core.jobs.views import JobView, RequestView
from core.jobs.watch import WATCH_POLL_S
from web.auth import SOURCE
from web.present import ENDED, all_ended, api_status, event_json, is_playlist, items_of, playlist_seq, to_api
from web.schemas import JobEvent
from web.state import EventEncoder, JobOwners

log = logging.getLogger(__name__)

# A key's stream resumed at a time T resends what ended since T - RESUME_SLACK (clocks of processes differ
# a little).
RESUME_SLACK = timedelta(seconds=5)


@dataclass(frozen=True)
class Stream:
    """One WebSocket's sending side, and what it reads with."""

    ws: web.WebSocketResponse
    services: Services
    encoder: EventEncoder
    owners: JobOwners

    async def send(self, req: RequestView, job: JobView) -> None:
        if is_playlist(req, job):
            # A playlist's message sums up its items, which its own (finished) job does not show: read it.
            await self.ws.send_str(await event_json(self.services, req, job))
            return
        await self.ws.send_str(await self.encoder.encode(req, job))


async def follow_job(stream: Stream, req: RequestView, job: JobView, after: int) -> None:
    """The job's states newer than `after`, then closed (1000) after its last one; a playlist through
    follow_playlist."""
    services, owners = stream.services, stream.owners
    current = req
    if current.status == "cancelled" and not job.terminal and job.seq <= after:
        return  # cancelled by this caller, who has seen it: nothing newer is theirs
    async for view in services.jobs.watch(job.id, after_seq=after):
        if view.terminal:
            # The request's own final state (finished_at, or cancelled while others kept the download).
            ended = await owners.final(view.id, view.seq)
            current = next((r for r in ended if r.id == current.id), current)
        if is_playlist(current, view):
            await follow_playlist(stream, current, view, after)
            break  # every item has ended
        if view.seq > after:
            await stream.send(current, view)
        if current.status == "cancelled" and not view.terminal:
            # This caller cancelled; the download goes on for others, but this stream is over.
            return
    await stream.ws.close(code=WSCloseCode.OK, message=b"job finished")


async def follow_playlist(stream: Stream, req: RequestView, job: JobView, after: int) -> None:
    """A read playlist: its state (with every item) when newer than `after`, then each item's changes as
    item messages (`job.parent_id` = the playlist), then its final state once every item has ended. Its
    `seq` sums its items', so `?after=` the last playlist message's seq resumes with one catch-up message."""
    ws, services, owners = stream.ws, stream.services, stream.owners
    known = await items_of(services, req)
    with services.bus.subscribe(jobs_filter({j.id for _, j in known}), maxsize=1024) as sub:
        # Subscribed first, so no change after this read is missed.
        items = await items_of(services, req)
        sent = max(after, playlist_seq(job, items))
        if sent > after:
            await ws.send_str(await event_json(services, req, job, items))
        if all_ended(items):
            return  # that was the final state (or the client had it already)
        state = {r.id: (r, j) for r, j in items}

        async def show(request: RequestView, view: JobView) -> None:
            seen, shown = state[request.id]
            if api_status(seen, shown) in ENDED or (view.seq <= shown.seq and request.status == seen.status):
                return
            state[request.id] = (request, view)
            await stream.send(request, view)

        quiet, generation = 0, services.bus.generation
        while not all_ended(list(state.values())):
            try:
                # Not wait_for: on Python 3.11 it swallows a cancel that lands as a message arrives.
                async with asyncio.timeout(WATCH_POLL_S):
                    message = await sub.get()
            except TimeoutError:
                quiet += 1
                # As JobService.watch: re-read at once when the bus dropped, else now and then (an item
                # cancelled while its download goes on for someone else changes no job).
                if services.bus.connected and services.bus.generation == generation and quiet % 6:
                    continue
                generation = services.bus.generation
                for request, view in await items_of(services, req):
                    await show(request, view)
                continue
            view = message.job
            if view is None:
                continue
            try:
                owners_now = await (
                    owners.final(view.id, view.seq) if view.terminal else owners.requests(view.id)
                )
            except Exception as exc:  # noqa: BLE001 - a database hiccup skips one event, not the stream
                log.warning("could not look up the owners of job %s: %s", view.id, type(exc).__name__)
                continue
            for request in owners_now:
                if request.id in state:
                    await show(request, view)
        final = await to_api(services, req, job)
        if final.seq > sent:
            await ws.send_str(JobEvent(job=final).model_dump_json())


async def follow_key(stream: Stream, key: ApiKeyInfo, since: datetime | None = None) -> None:
    """Every job of `key`: with `since`, first the final state of each job that ended since then; then the
    active ones' current state; then every change of any of them, including jobs submitted after this
    started (through any process)."""
    ws, services, owners = stream.ws, stream.services, stream.owners
    last_seq: dict[str, int] = {}
    ended: dict[str, float] = {}
    # Playlists whose state was sent (`shown`), and those sent in their final state (`settled`): a playlist
    # is announced before its first item, and sent again once its last item has ended.
    shown: set[str] = set()
    settled: set[str] = set()

    async def playlist(parent_id: str, *, final_only: bool = False) -> None:
        if parent_id in settled:
            return
        try:
            req, job = await services.jobs.get_request(parent_id)
            items = await items_of(services, req) if is_playlist(req, job) else None
        except Exception as exc:  # noqa: BLE001 - a database hiccup skips one message, not the stream
            log.warning("could not read playlist %s: %s", parent_id, type(exc).__name__)
            return
        if len(shown) > 10_000:
            shown.clear()
            settled.clear()
        shown.add(parent_id)
        if items is None:
            settled.add(parent_id)  # not a playlist: nothing to sum up
            return
        if final_only and not all_ended(items):
            return
        await ws.send_str(await event_json(services, req, job, items))
        if all_ended(items):
            settled.add(parent_id)

    async def send(req: RequestView, job: JobView) -> None:
        if req.parent_id is not None and req.parent_id not in shown:
            await playlist(req.parent_id)
        if is_playlist(req, job):
            await playlist(req.id)
            return
        await stream.send(req, job)
        if req.parent_id is not None and api_status(req, job) in ENDED:
            await playlist(req.parent_id, final_only=True)

    with services.bus.subscribe(jobs_filter(None), maxsize=1024) as sub:
        # Subscribed first, so nothing happening while we read the snapshot is missed.
        if since is not None:
            for req, job in await services.jobs.ended_since(SOURCE, key.id, since - RESUME_SLACK):
                await send(req, job)
                if job.terminal:
                    ended[job.id] = time.monotonic()
        active, _ = await services.jobs.list_requests(
            SOURCE, key.id, statuses=["queued", "running"], limit=100
        )
        for req, job in reversed(active):
            if req.status != "active":
                continue
            last_seq[job.id] = max(last_seq.get(job.id, 0), job.seq)
            await send(req, job)
        while True:
            message = await sub.get()
            view = message.job
            if view is None or view.id in ended:
                continue
            if view.seq <= last_seq.get(view.id, 0) and not view.terminal:
                continue
            try:
                mine = [
                    r
                    for r in await (
                        owners.final(view.id, view.seq) if view.terminal else owners.requests(view.id)
                    )
                    # Requests this key cancelled while others kept the download going are over for it.
                    if r.user_id == key.id and not (r.status == "cancelled" and view.status != "cancelled")
                ]
            except Exception as exc:  # noqa: BLE001 - a database hiccup skips one event, not the stream
                log.warning("could not look up the owners of job %s: %s", view.id, type(exc).__name__)
                continue
            if not mine:
                continue
            last_seq[view.id] = view.seq
            for req in mine:
                await send(req, view)
            if view.terminal:
                last_seq.pop(view.id, None)
                ended[view.id] = time.monotonic()
                if len(ended) > 1000:
                    cutoff = time.monotonic() - 300
                    for job_id in [k for k, at in ended.items() if at < cutoff]:
                        del ended[job_id]
