"""Live progress over WebSockets: one job (closed after its end), or every job of the calling key."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone

from aiohttp import WSCloseCode, web

from core.apikeys import ApiKeyInfo
from core.errors import InvalidRequest, MediabotError
from core.events import jobs_filter
from core.jobs import WATCH_POLL_S, JobService
from core.schemas import JobView, RequestView
from core.services import Services
from web.auth import PROTOCOL, SOURCE, authenticate
from web.jobs import ENDED, Pair, api_status, is_playlist, items_of, owned, playlist_seq, to_api
from web.keys import API_KEY, ENCODER, OWNERS, SERVICES, SOCKETS
from web.schemas import (
    MAX_SEQ,
    SECONDS_PATTERN,
    TIME_PATTERN,
    WS_CONNECTION_PATTERN,
    WS_KEY_PATTERN,
    WS_UPGRADE_PATTERN,
    WS_VERSION,
    JobEvent,
)

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

HEARTBEAT_S = 30.0
OWNERS_TTL_S = 1.0
# /api/v1/events?after=T resends what ended since T - RESUME_SLACK (clocks of processes differ a little),
# looking back at most RESUME_WINDOW.
RESUME_SLACK = timedelta(seconds=5)
RESUME_WINDOW = timedelta(hours=24)
_DIGITS = re.compile(r"[0-9]{1,19}")
_SECONDS = re.compile(SECONDS_PATTERN)
_TIME = re.compile(TIME_PATTERN)
_WS_UPGRADE = re.compile(WS_UPGRADE_PATTERN)
_WS_CONNECTION = re.compile(WS_CONNECTION_PATTERN)
_WS_KEY = re.compile(WS_KEY_PATTERN)


class JobOwners:
    """Which API requests wait on a job, looked up once per job per second for the whole process, however
    many WebSockets ask (a request made through another process is found within that second)."""

    def __init__(self, jobs: JobService, ttl_s: float = OWNERS_TTL_S) -> None:
        self._jobs = jobs
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, list[RequestView]]] = {}
        # One lookup task per job, shared by every asker; a task, so an asker leaving does not cancel it.
        self._inflight: dict[str, asyncio.Task[list[RequestView]]] = {}
        self._final: OrderedDict[tuple[str, int], asyncio.Task[list[RequestView]]] = OrderedDict()

    async def requests(self, job_id: str) -> list[RequestView]:
        cached = self._cache.get(job_id)
        if cached is not None and time.monotonic() - cached[0] < self._ttl_s:
            return cached[1]
        task = self._inflight.get(job_id)
        if task is None:
            task = self._inflight[job_id] = asyncio.create_task(self._lookup(job_id))
        return await asyncio.shield(task)

    async def final(self, job_id: str, seq: int) -> list[RequestView]:
        """The requests as they ended with the job's terminal state `seq`: read once for the process (the
        terminal event is published after its commit, so a read started on receiving it sees it)."""
        key = (job_id, seq)
        task = self._final.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = self._final[key] = asyncio.create_task(self._jobs.requests_of_job(job_id, SOURCE))
            if len(self._final) > 1024:
                self._final.popitem(last=False)
        return await asyncio.shield(task)

    async def _lookup(self, job_id: str) -> list[RequestView]:
        try:
            found = await self._jobs.requests_of_job(job_id, SOURCE)
        finally:
            del self._inflight[job_id]
        self._cache[job_id] = (time.monotonic(), found)
        if len(self._cache) > 10_000:
            cutoff = time.monotonic() - 60
            for stale in [k for k, (at, _) in self._cache.items() if at < cutoff]:
                del self._cache[stale]
        return found


def _after_seq(request: web.Request) -> int:
    """`?after=N` on a job's stream: only states with a larger seq are sent."""
    raw = request.query.get("after")
    if raw is None:
        return 0
    if not _DIGITS.fullmatch(raw) or int(raw) > MAX_SEQ:
        raise InvalidRequest("after must be a job's seq: a whole number, 0 or more.")
    return int(raw)


def _after_time(request: web.Request) -> datetime | None:
    """`?after=T` on the key's stream: Unix seconds, or an ISO 8601 time (a job's `updated_at`). Only the
    last RESUME_WINDOW matters: earlier times read as its start, later ones as now."""
    raw = request.query.get("after")
    if raw is None:
        return None
    now = datetime.now(UTC)
    if _SECONDS.fullmatch(raw):
        try:
            when = datetime.fromtimestamp(float(raw), UTC)
        except (ValueError, OverflowError, OSError):
            when = now  # beyond the calendar: the future
    elif (parts := _TIME.fullmatch(raw)) is not None:
        when = _time_of(parts)
    else:
        raise InvalidRequest(
            "after must be a time: Unix seconds, or ISO 8601 such as 2026-01-31T12:00:00Z (a job's updated_at)."
        )
    return min(max(when, now - RESUME_WINDOW), now)


def _time_of(parts: re.Match[str]) -> datetime:
    """The time a TIME_PATTERN match names; a day past its month's end rolls over (31 February is 3 March),
    as it only places the time before or after the resume window."""
    year, month, day, hour, minute = (int(parts.group(n)) for n in (1, 2, 3, 4, 5))
    second = int(parts.group(7) or 0)
    micro = int((parts.group(9) or "0").ljust(6, "0"))
    zone = UTC
    if parts.group(11):
        sign = -1 if parts.group(11) == "-" else 1  # " " is a "+" the client left unencoded
        zone = timezone(sign * timedelta(hours=int(parts.group(12)), minutes=int(parts.group(13))))
    if year < 1:
        return datetime.min.replace(tzinfo=UTC)
    start = datetime(year, month, 1, hour, minute, second, micro, tzinfo=zone)
    try:
        return (start + timedelta(days=day - 1)).astimezone(UTC)
    except OverflowError:  # at an end of the calendar: long before, or long after, the window
        return (datetime.min if year < 5000 else datetime.max).replace(tzinfo=UTC)


def _handshake_problem(request: web.Request) -> str | None:
    """What keeps the request from being a WebSocket handshake (RFC 6455), checked as the document states
    it; None when it is one."""
    headers = request.headers
    if not _WS_UPGRADE.fullmatch(headers.get("Upgrade", "")) or not _WS_CONNECTION.search(
        headers.get("Connection", "")
    ):
        return "This address is a WebSocket: connect with a WebSocket client."
    if headers.get("Sec-WebSocket-Version") != WS_VERSION:
        return f"This server speaks WebSocket version {WS_VERSION} (Sec-WebSocket-Version: {WS_VERSION})."
    if not _WS_KEY.fullmatch(headers.get("Sec-WebSocket-Key", "")):
        return "Sec-WebSocket-Key must be 16 random bytes in base64."
    return None


async def _open(request: web.Request) -> web.WebSocketResponse:
    problem = _handshake_problem(request)
    if problem is not None:
        raise InvalidRequest(problem)
    # Answers with PROTOCOL when the client offered it (the page offers it beside its key).
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=4096, protocols=(PROTOCOL,))
    if not ws.can_prepare(request).ok:
        raise InvalidRequest("This address is a WebSocket: connect with a WebSocket client.")
    await ws.prepare(request)
    request.app[SOCKETS].add(ws, request[API_KEY].id)  # closed if that key is revoked
    return ws


async def _serve(ws: web.WebSocketResponse, send: Callable[[], Awaitable[None]]) -> None:
    """Run `send` while reading (and ignoring) what the client sends; whichever side closes ends both."""

    async def run() -> None:
        try:
            await send()
        except asyncio.CancelledError:
            raise
        except (ConnectionError, RuntimeError) as exc:  # the client went away mid-send
            log.debug("websocket send ended: %s", exc)
        except MediabotError as exc:
            log.warning("websocket stream ended: %s", exc.code)
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=exc.code.encode())
        except Exception:
            log.exception("websocket stream failed")
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
        finally:
            if not ws.closed:
                await ws.close()

    sender = asyncio.create_task(run())
    try:
        async for _message in ws:  # ends when the client closes, or when we do (job over, shutdown)
            pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender


class EventEncoder:
    """Each request's state at each job snapshot is encoded once, however many sockets send it (1,000
    dashboards following one job cost one serialisation per event, not 1,000)."""

    def __init__(self, services: Services, size: int = 4096) -> None:
        self._services = services
        self._size = size
        self._cache: OrderedDict[tuple[object, ...], asyncio.Task[str]] = OrderedDict()

    async def encode(self, req: RequestView, view: JobView) -> str:
        if is_playlist(req, view):
            # A playlist's message sums up its items, which its own (finished) job does not show: read it.
            return await encode_playlist(self._services, req, view)
        # The minute is part of the key: a finished job's message holds a fresh file link, not an old one.
        minute = int(time.monotonic() // 60)
        key = (req.id, req.status, req.finished_at, view.id, view.seq, view.status, minute)
        task = self._cache.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            # A task, so a socket closing mid-encode does not leave the others waiting on nothing.
            task = self._cache[key] = asyncio.create_task(self._encode(req, view))
            if len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return await asyncio.shield(task)

    async def _encode(self, req: RequestView, view: JobView) -> str:
        return JobEvent(job=await to_api(self._services, req, view)).model_dump_json()


async def encode_playlist(
    services: Services, req: RequestView, view: JobView, items: list[Pair] | None = None
) -> str:
    return JobEvent(job=await to_api(services, req, view, items=items)).model_dump_json()


async def _send(ws: web.WebSocketResponse, encoder: EventEncoder, req: RequestView, job: JobView) -> None:
    await ws.send_str(await encoder.encode(req, job))


def _ended(items: list[Pair]) -> bool:
    return all(api_status(r, j) in ENDED for r, j in items)


@routes.get("/api/v1/jobs/{id}/events")
async def job_events(request: web.Request) -> web.WebSocketResponse:
    """The job's current state, then one message per change; closed (1000) after its last state.
    With `?after=N`, only states whose seq is larger than N (none, and closed at once, if the job ended
    at or before N). A playlist: its state once read, then its items' changes, then its final state."""
    services = request.app[SERVICES]
    key = await authenticate(request, websocket=True)
    after = _after_seq(request)
    req, job = await owned(services, key, request.match_info["id"])
    ws = await _open(request)
    encoder, owners = request.app[ENCODER], request.app[OWNERS]

    async def send() -> None:
        current = req
        if current.status == "cancelled" and not job.terminal and job.seq <= after:
            return  # cancelled by this caller, who has seen it: nothing newer is theirs
        async for view in services.jobs.watch(job.id, after_seq=after):
            if view.terminal:
                # The request's own final state (finished_at, or cancelled while others kept the download).
                ended = await owners.final(view.id, view.seq)
                current = next((r for r in ended if r.id == current.id), current)
            if is_playlist(current, view):
                await _follow_playlist(ws, services, encoder, owners, current, view, after)
                break  # every item has ended
            if view.seq > after:
                await _send(ws, encoder, current, view)
            if current.status == "cancelled" and not view.terminal:
                # This caller cancelled; the download goes on for others, but this stream is over.
                return
        await ws.close(code=WSCloseCode.OK, message=b"job finished")

    await _serve(ws, send)
    return ws


async def _follow_playlist(
    ws: web.WebSocketResponse,
    services: Services,
    encoder: EventEncoder,
    owners: JobOwners,
    req: RequestView,
    job: JobView,
    after: int,
) -> None:
    """A read playlist: its state (with every item) when newer than `after`, then each item's changes as
    item messages (`job.parent_id` = the playlist), then its final state once every item has ended. Its
    `seq` sums its items', so `?after=` the last playlist message's seq resumes with one catch-up message."""
    known = await items_of(services, req)
    with services.bus.subscribe(jobs_filter({j.id for _, j in known}), maxsize=1024) as sub:
        # Subscribed first, so no change after this read is missed.
        items = await items_of(services, req)
        sent = max(after, playlist_seq(job, items))
        if sent > after:
            await ws.send_str(await encode_playlist(services, req, job, items))
        if _ended(items):
            return  # that was the final state (or the client had it already)
        state = {r.id: (r, j) for r, j in items}

        async def show(request: RequestView, view: JobView) -> None:
            seen, shown = state[request.id]
            if api_status(seen, shown) in ENDED or (view.seq <= shown.seq and request.status == seen.status):
                return
            state[request.id] = (request, view)
            await _send(ws, encoder, request, view)

        quiet, generation = 0, services.bus.generation
        while not _ended(list(state.values())):
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


@routes.get("/api/v1/events")
async def key_events(request: web.Request) -> web.WebSocketResponse:
    """Every job of the calling key: the active ones' current state first, then every change of any of
    them, including jobs submitted after connecting (through any process). With `?after=T` (a time),
    first the final state of each job that ended since T."""
    services = request.app[SERVICES]
    key = await authenticate(request, websocket=True)
    since = _after_time(request)
    ws = await _open(request)
    owners = request.app[OWNERS]

    async def send() -> None:
        await _stream_key(ws, services, owners, request.app[ENCODER], key, since)

    await _serve(ws, send)
    return ws


async def _stream_key(
    ws: web.WebSocketResponse,
    services: Services,
    owners: JobOwners,
    encoder: EventEncoder,
    key: ApiKeyInfo,
    since: datetime | None = None,
) -> None:
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
        if final_only and not _ended(items):
            return
        await ws.send_str(await encode_playlist(services, req, job, items))
        if _ended(items):
            settled.add(parent_id)

    async def send(req: RequestView, job: JobView) -> None:
        if req.parent_id is not None and req.parent_id not in shown:
            await playlist(req.parent_id)
        if is_playlist(req, job):
            await playlist(req.id)
            return
        await _send(ws, encoder, req, job)
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


__all__ = ["EventEncoder", "JobOwners", "routes"]
