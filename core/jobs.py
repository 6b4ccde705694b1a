"""The job service: what every front end calls to submit, follow, cancel and fetch downloads."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.attach import add_playlist_items, dedup_key, find_or_create_job, new_request
from core.config import Settings
from core.downloader import Downloader
from core.errors import (
    IdempotencyConflict,
    InvalidRequest,
    InvalidUrl,
    NotFound,
    Unavailable,
    UnsupportedUrl,
)
from core.events import EventBus, Message, jobs_filter
from core.formats import FormatCache, media_formats
from core.models import (
    Job,
    JobStatus,
    Request,
    RequestStatus,
    Webhook,
    WebhookStatus,
    search_text,
    utcnow,
)
from core.queue import JobQueue
from core.schemas import (
    AUDIO_FORMATS,
    JobView,
    MediaFormats,
    RequestView,
    Submission,
    SubmitRequest,
    fit_variant,
)
from core.storage import Storage
from core.urls import AddressPolicy, check_url, extract_url, normalize_url
from core.webhooks import check_callback_url

log = logging.getLogger(__name__)

ACTIVE_JOB = (JobStatus.QUEUED, JobStatus.RUNNING)
QUALITIES = {"best", "2160", "1440", "1080", "720", "480", "360", "240", "144"}
WATCH_POLL_S = 5.0
# How long an idempotency key returns the request it first made; after that it starts a new one.
IDEMPOTENCY_TTL = timedelta(hours=24)
PROBE_THREADS = 4


def request_view(req: Request) -> RequestView:
    return RequestView(
        id=req.id,
        job_id=req.job_id,
        source=req.source,
        user_id=req.user_id,
        url=req.url,
        kind=req.kind,
        quality=req.quality,
        status=req.status,
        outcome=req.outcome,
        target=dict(req.target or {}),
        created_at=req.created_at,
        finished_at=req.finished_at,
        delivered_at=req.delivered_at,
        parent_id=req.parent_id,
        hidden=req.hidden_at is not None,
    )


def _with_jobs() -> Any:
    """Requests joined to their jobs: every listing of requests starts here."""
    return select(Request, Job).join(Job, Job.id == Request.job_id)


def fingerprint(req: SubmitRequest) -> str:
    """What a submission asked for, so a reused idempotency key with a different ask is caught."""
    asked: dict[str, Any] = {"url": req.text, "kind": req.kind, "quality": req.quality,
                             "callback_url": req.callback_url}  # fmt: skip
    if req.format_id or req.subtitles:
        asked.update(format_id=req.format_id, subtitles=sorted(req.subtitles))
    if req.audio_format:
        asked.update(audio_format=req.audio_format)
    if req.playable:
        asked.update(playable=True)
    return hashlib.sha256(json.dumps(asked, sort_keys=True).encode()).hexdigest()


_FORMAT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$")
_LANG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
MAX_SUBTITLE_LANGS = 8


def check_choices(format_id: str | None, subtitles: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """A format id and subtitle languages as a person typed them: checked, languages deduplicated."""
    if format_id is not None and not _FORMAT_ID.match(format_id):
        raise InvalidRequest("A format id is up to 128 letters, digits, dots, dashes or underscores.")
    langs = tuple(dict.fromkeys(lang.strip() for lang in subtitles if lang.strip()))
    if len(langs) > MAX_SUBTITLE_LANGS:
        raise InvalidRequest(f"Ask for at most {MAX_SUBTITLE_LANGS} subtitle languages.")
    bad = [lang for lang in langs if not _LANG.match(lang)]
    if bad:
        raise InvalidRequest(f'"{bad[0][:20]}" is not a language code (like en, de or pt-BR).')
    return format_id, langs


@dataclass(frozen=True)
class _Checked:
    """A submission after its checks: the link as it will be fetched, its keys, its choices."""

    url: str
    cache_key: str
    key: str  # the dedup key
    quality: str
    callback: str | None
    format_id: str | None
    subtitle_langs: list[str] | None
    audio_format: str | None
    playable: bool = False


class JobService:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        queue: JobQueue,
        storage: Storage,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.bus = bus
        self.queue = queue
        self.storage = storage
        self.policy = AddressPolicy(settings.allow_private_urls, tuple(settings.allowed_private_hosts))
        self._dialect = sessions.kw["bind"].dialect.name
        self._format_cache = FormatCache()
        self._prober: Downloader | None = None
        self._probe_pool: ThreadPoolExecutor | None = None

    # -- submitting -------------------------------------------------------------------------------------

    async def check(self, text: str) -> str:
        """Validate a link the way submit does, without queueing anything."""
        url = extract_url(text)
        try:
            await asyncio.wait_for(check_url(url, self.policy), timeout=10)
        except TimeoutError:
            raise InvalidUrl("The host of that link could not be looked up.") from None
        if self.settings.allowed_extractors and "generic" not in [
            e.lower() for e in self.settings.allowed_extractors
        ]:
            if not await asyncio.to_thread(_supported, url, tuple(self.settings.allowed_extractors)):
                raise UnsupportedUrl()
        return url

    async def formats(self, text: str) -> MediaFormats:
        """What a link offers (formats with sizes, subtitle languages, thumbnail), probed without downloading
        under the same rules as a download; cached for a few minutes."""
        url = await self.check(text)

        async def probe() -> MediaFormats:
            if self._prober is None:
                self._prober = Downloader(self.settings)
                # Probes of their own threads: a flood of slow sites must not take the default executor
                # that storage and file work share.
                self._probe_pool = ThreadPoolExecutor(max_workers=PROBE_THREADS, thread_name_prefix="probe")
            loop = asyncio.get_running_loop()
            raw = await loop.run_in_executor(self._probe_pool, self._prober.probe, url)
            return media_formats(url, raw)

        return await self._format_cache.get(normalize_url(url), probe)

    async def submit(self, req: SubmitRequest) -> Submission:
        if req.kind not in ("video", "audio"):
            raise InvalidRequest("Kind must be video or audio.")
        quality = "best" if req.kind == "audio" else (req.quality or "best")
        if quality not in QUALITIES:
            raise InvalidRequest(
                f"Quality must be one of: {', '.join(sorted(QUALITIES, key=_quality_order))}."
            )
        format_id, subtitles = check_choices(req.format_id, req.subtitles)
        audio_format = self._audio_format(req)
        # Sound has no picture to play: an audio job is the same whoever asks.
        playable = req.playable and req.kind == "video"
        replay = await self.replay(req)
        if replay is not None:
            return replay
        url = await self.check(req.text)
        callback = None
        if req.callback_url is not None:
            callback = await check_callback_url(req.callback_url, self.policy)
        cache_key = normalize_url(url)
        key = dedup_key(
            cache_key, req.kind, quality, format_id=format_id, subtitles=subtitles, audio_format=audio_format,
            playable=playable,
        )  # fmt: skip
        checked = _Checked(
            url, cache_key, key, quality, callback, format_id, sorted(subtitles) or None, audio_format, playable
        )  # fmt: skip
        for _ in range(5):
            result = await self._attach(req, checked)
            if result is not None:
                break
        else:
            raise Unavailable()
        submission, new_jobs = result
        if submission.job.id in new_jobs:
            await self._publish(submission.job)
        for job_id in new_jobs:
            await self._enqueue(job_id)
        return submission

    def _audio_format(self, req: SubmitRequest) -> str | None:
        """The audio file type asked for; None when none was: the sound then keeps its own type when it is
        one of AUDIO_FORMATS, else becomes the operator's (so an ask by name, even for the operator's type,
        is another job: it may be converted where the other is not)."""
        if req.audio_format is None or req.kind != "audio":
            return None
        if req.audio_format not in AUDIO_FORMATS:
            raise InvalidRequest(f"Audio format must be one of: {', '.join(AUDIO_FORMATS)}.")
        return req.audio_format

    async def fit(self, request_id: str, limit: int, *, split: bool = False) -> Submission:
        """A copy of a request's finished file that fits in `limit` bytes, made by a worker (a smaller
        format, a re-encode, or parts when `split`), as a child request of `request_id`. Copies are cached
        like any download: the next request for the same media and limit gets the same job."""
        variant = fit_variant(limit, split)
        now = utcnow()
        async with self.sessions() as session, session.begin():
            row = (await session.execute(_with_jobs().where(Request.id == request_id))).first()
            if row is None:
                raise NotFound()
            parent, source = row
            if source.status != JobStatus.DONE or not source.retained:
                raise NotFound("The file is not available (not finished, or expired).")
            key = dedup_key(
                source.cache_key, source.kind, source.quality, variant,
                format_id=source.format_id, subtitles=source.subtitle_langs, audio_format=source.audio_format,
                playable=source.playable,
            )  # fmt: skip
            for _ in range(5):
                found = await find_or_create_job(
                    session, self._dialect, url=source.url, cache_key=source.cache_key, kind=source.kind,
                    quality=source.quality, key=key, now=now,
                    extra={"variant": variant, "source_job_id": source.id, "title": source.title,
                           "duration": source.duration, "format_id": source.format_id,
                           "subtitle_langs": source.subtitle_langs, "audio_format": source.audio_format,
                           "playable": bool(source.playable), "uploader": source.uploader,
                           "upload_date": source.upload_date},
                )  # fmt: skip
                if found is not None:
                    break
            else:
                raise Unavailable()
            job, created = found
            request, outcome = new_request(
                job, created, now=now, source=parent.source, user_id=parent.user_id, url=parent.url,
                target=dict(parent.target or {}), parent_id=parent.id,
            )  # fmt: skip
            session.add(request)
            await session.flush()
            submission = Submission(request=request_view(request), job=JobView.from_job(job), outcome=outcome)
        if created:
            await self._publish(submission.job)
            await self._enqueue(submission.job.id)
        return submission

    async def replay(self, req: SubmitRequest) -> Submission | None:
        """What an earlier submission with the same idempotency key made, if one did in the last 24 hours;
        IdempotencyConflict when it asked for something else."""
        if req.idempotency_key is None:
            return None
        async with self.sessions() as session:
            row = (
                await session.execute(
                    _with_jobs().where(
                        Request.source == req.source,
                        Request.user_id == str(req.user_id),
                        Request.idempotency_key == req.idempotency_key,
                        Request.created_at >= utcnow() - IDEMPOTENCY_TTL,
                    )
                )
            ).first()
        if row is None:
            return None
        request, job = row
        if request.idempotency_hash != fingerprint(req):
            raise IdempotencyConflict()
        return Submission(
            request=request_view(request), job=JobView.from_job(job), outcome=request.outcome, replayed=True
        )

    async def _attach(self, req: SubmitRequest, checked: _Checked) -> tuple[Submission, list[str]] | None:
        try:
            return await self._attach_once(req, checked)
        except IntegrityError:
            # Only the idempotency index can collide: the same key came in at the same moment elsewhere,
            # and that transaction won (ours, job included, was rolled back).
            replay = await self.replay(req) if req.idempotency_key is not None else None
            if replay is None:
                raise
            return replay, []

    async def _attach_once(
        self, req: SubmitRequest, checked: _Checked
    ) -> tuple[Submission, list[str]] | None:
        url, callback = checked.url, checked.callback
        now = utcnow()
        try:
            async with self.sessions() as session, session.begin():
                if req.idempotency_key is not None:
                    # A key older than the TTL is free again: take it off the request that held it.
                    await session.execute(
                        update(Request)
                        .where(
                            Request.source == req.source,
                            Request.user_id == str(req.user_id),
                            Request.idempotency_key == req.idempotency_key,
                            Request.created_at < now - IDEMPOTENCY_TTL,
                        )
                        .values(idempotency_key=None)
                    )
                found = await find_or_create_job(
                    session, self._dialect, url=url, cache_key=checked.cache_key, kind=req.kind,
                    quality=checked.quality, key=checked.key, now=now,
                    extra={"format_id": checked.format_id, "subtitle_langs": checked.subtitle_langs,
                           "audio_format": checked.audio_format, "playable": checked.playable},
                )  # fmt: skip
                if found is None:
                    # The job we collided with ended (failed, cancelled, expired) in between: try again.
                    return None
                job, created = found
                request, outcome = new_request(
                    job, created, now=now, source=req.source, user_id=str(req.user_id), url=url,
                    target=dict(req.target), idempotency_key=req.idempotency_key,
                    idempotency_hash=fingerprint(req) if req.idempotency_key is not None else None,
                )  # fmt: skip
                session.add(request)
                await session.flush()  # the request row first: webhooks and playlist items refer to it
                new_jobs = [job.id] if created else []
                if job.entries is not None and job.status == JobStatus.DONE:
                    # A playlist expanded earlier: this request gets its own items.
                    new_jobs += await add_playlist_items(session, self._dialect, request, job, now)
                if callback is not None:
                    session.add(
                        Webhook(
                            request_id=request.id,
                            url=callback,
                            status=WebhookStatus.PENDING,
                            attempts=0,
                            created_at=now,
                        )
                    )
                await session.flush()
                return Submission(
                    request=request_view(request), job=JobView.from_job(job), outcome=outcome
                ), new_jobs
        except IntegrityError:
            raise
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning("database unavailable during submit: %s", type(exc).__name__)
            raise Unavailable() from exc

    async def _enqueue(self, job_id: str) -> None:
        try:
            await self.queue.enqueue(job_id)
        except Exception as exc:  # noqa: BLE001 - the reconciler re-enqueues queued jobs the queue lost
            log.warning(
                "queue unavailable (%s); job %s stays queued for the reconciler", type(exc).__name__, job_id
            )

    async def _publish(self, job: JobView) -> None:
        try:
            await self.bus.publish(Message("job", job=job))
        except Exception as exc:  # noqa: BLE001 - events are best effort; the job row is the truth
            log.warning("event bus unavailable (%s)", type(exc).__name__)

    # -- reading ----------------------------------------------------------------------------------------

    async def get_job(self, job_id: str) -> JobView:
        async with self.sessions() as session:
            job = await session.get(Job, job_id)
            if job is None:
                raise NotFound()
            return JobView.from_job(job)

    async def get_request(self, request_id: str) -> tuple[RequestView, JobView]:
        async with self.sessions() as session:
            row = (await session.execute(_with_jobs().where(Request.id == request_id))).first()
            if row is None:
                raise NotFound()
            return request_view(row[0]), JobView.from_job(row[1])

    async def list_requests(
        self,
        source: str,
        user_id: str,
        *,
        statuses: Sequence[str] | None = None,
        limit: int = 20,
        cursor: str | None = None,
        top_level: bool = False,
        kinds: Sequence[str] | None = None,
        search: str | None = None,
    ) -> tuple[list[tuple[RequestView, JobView]], str | None]:
        """A user's requests, newest first, without those removed from history; `statuses` filters by the
        job's status, `kinds` by video/audio, `search` by a case-insensitive piece of the title or link;
        `top_level` leaves out requests made on behalf of others (playlist items, fitted copies)."""
        query = (
            _with_jobs()
            .where(Request.source == source, Request.user_id == str(user_id), Request.hidden_at.is_(None))
            .order_by(Request.created_at.desc(), Request.id.desc())
            .limit(limit + 1)
        )
        if statuses:
            query = query.where(Job.status.in_(list(statuses)))
        if kinds:
            query = query.where(Request.kind.in_(list(kinds)))
        if search and search.strip():
            folded = search_text(search.strip()) or ""
            pattern = "%" + folded.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            # Both sides folded in Python (search_text): SQL's lower() folds only ASCII on SQLite, and on
            # PostgreSQL depends on the database's collation. Rows written before the search columns (by an
            # older process during an upgrade) fall back to lower().
            query = query.where(
                or_(
                    func.coalesce(Job.search_title, func.lower(Job.title)).like(pattern, escape="\\"),
                    func.coalesce(Request.search_url, func.lower(Request.url)).like(pattern, escape="\\"),
                )
            )
        if top_level:
            query = query.where(Request.parent_id.is_(None))
        if cursor:
            created, rid = _decode_cursor(cursor)
            query = query.where(
                or_(Request.created_at < created, and_(Request.created_at == created, Request.id < rid))
            )
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        items = [(request_view(r), JobView.from_job(j)) for r, j in rows[:limit]]
        next_cursor = _encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None
        return items, next_cursor

    async def active_requests(self, source: str, user_id: str) -> list[tuple[RequestView, JobView]]:
        items, _ = await self.list_requests(source, user_id, statuses=list(ACTIVE_JOB), limit=100)
        return [(r, j) for r, j in items if r.status == RequestStatus.ACTIVE]

    async def undelivered(self, source: str, limit: int = 500) -> list[tuple[RequestView, JobView]]:
        """A front end's requests not yet marked delivered, active ones included: what it must resume
        following (and deliver) after a restart."""
        return await self._pairs(
            _with_jobs()
            .where(
                Request.source == source,
                Request.delivered_at.is_(None),
                Request.status != RequestStatus.CANCELLED,
                Request.hidden_at.is_(None),
                # Child requests are delivered by their parent's front-end task.
                Request.parent_id.is_(None),
            )
            .order_by(Request.created_at)
            .limit(limit)
        )

    async def ended_since(
        self, source: str, user_id: str, since: datetime, limit: int = 500
    ) -> list[tuple[RequestView, JobView]]:
        """A user's requests that ended after `since` (and were made in the day before it), oldest first."""
        return await self._pairs(
            _with_jobs()
            .where(
                Request.source == source,
                Request.user_id == str(user_id),
                Request.created_at > since - timedelta(days=1),
                Request.finished_at > since,
            )
            .order_by(Request.finished_at, Request.id)
            .limit(limit)
        )

    async def children(self, request_id: str) -> list[tuple[RequestView, JobView]]:
        """The requests made on behalf of `request_id` (playlist items, fitted copies), oldest first."""
        return await self._pairs(
            _with_jobs().where(Request.parent_id == request_id).order_by(Request.created_at, Request.id)
        )

    async def _pairs(self, query: Any) -> list[tuple[RequestView, JobView]]:
        async with self.sessions() as session:
            rows = (await session.execute(query)).all()
        return [(request_view(r), JobView.from_job(j)) for r, j in rows]

    async def mark_delivered(self, request_id: str, target: dict[str, Any] | None = None) -> None:
        values: dict[str, Any] = {"delivered_at": utcnow()}
        if target is not None:
            values["target"] = target
        async with self.sessions() as session, session.begin():
            await session.execute(update(Request).where(Request.id == request_id).values(**values))

    async def update_target(self, request_id: str, target: dict[str, Any]) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(update(Request).where(Request.id == request_id).values(target=target))

    async def count_active(self, source: str, user_id: str) -> int:
        """How many of a user's asks still wait for their download (for per-user concurrency caps): a
        playlist counts once however many of its items run, and so does a copy being made to fit."""
        async with self.sessions() as session:
            count = await session.scalar(
                select(func.count(func.distinct(func.coalesce(Request.parent_id, Request.id))))
                .select_from(Request)
                .where(
                    Request.source == source,
                    Request.user_id == str(user_id),
                    Request.status == RequestStatus.ACTIVE,
                )
            )
        return int(count or 0)

    async def requests_of_job(self, job_id: str, source: str | None = None) -> list[RequestView]:
        """The requests waiting on (or served by) one job, optionally from one front end only."""
        query = select(Request).where(Request.job_id == job_id).order_by(Request.created_at)
        if source is not None:
            query = query.where(Request.source == source)
        async with self.sessions() as session:
            return [request_view(r) for r in await session.scalars(query)]

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as session:
            rows = (await session.execute(select(Job.status, func.count()).group_by(Job.status))).all()
        return {status: count for status, count in rows}

    # -- following ----------------------------------------------------------------------------------------

    async def watch(self, job_id: str, after_seq: int = 0) -> AsyncIterator[JobView]:
        """The job's current state, then each newer state, ending after a terminal one.

        Subscribes before reading the snapshot so nothing falls between; drops anything not newer than
        what was already yielded; re-reads the row when the bus is quiet, so a lost event only delays.
        """
        with self.bus.subscribe(jobs_filter({job_id})) as sub:
            snapshot = await self.get_job(job_id)
            last = after_seq
            if snapshot.seq > last or snapshot.terminal:
                last = max(last, snapshot.seq)
                yield snapshot
            if snapshot.terminal:
                return
            quiet = 0
            generation = self.bus.generation
            while True:
                try:
                    # Not wait_for: on Python 3.11 it swallows a cancel that lands as a message arrives.
                    async with asyncio.timeout(WATCH_POLL_S):
                        message = await sub.get()
                    view = message.job
                except TimeoutError:
                    quiet += 1
                    # A connected bus loses nothing: re-read the row at once only when the bus dropped since
                    # the last look (events may have been lost), else now and then, in case a publisher's own
                    # connection failed. 1,000 sockets on a quiet job then cost 33 reads/s, not 200.
                    if self.bus.connected and self.bus.generation == generation and quiet % 6:
                        continue
                    generation = self.bus.generation
                    view = await self.get_job(job_id)
                if view is None or (view.seq <= last and not view.terminal):
                    continue
                last = max(last, view.seq)
                yield view
                if view.terminal:
                    return

    async def wait(self, job_id: str, timeout: float | None = None) -> JobView:
        """Block until the job ends; returns its final state."""

        async def _wait() -> JobView:
            final: JobView | None = None
            async for view in self.watch(job_id):
                final = view
            assert final is not None
            return final

        return await asyncio.wait_for(_wait(), timeout=timeout)

    # -- cancelling ---------------------------------------------------------------------------------------

    async def cancel(
        self, request_id: str, *, source: str | None = None, user_id: str | None = None
    ) -> RequestView:
        """Cancel one request and the requests made on its behalf (playlist items, fitted copies); a
        download stops only when no other request still waits for it."""
        view = await self._cancel_one(request_id, source=source, user_id=user_id)
        # Two levels: a playlist's items, and the copies being made to fit for items already downloaded.
        items = select(Request.id).where(Request.parent_id == request_id)
        async with self.sessions() as session:
            children = list(
                await session.scalars(
                    select(Request.id).where(
                        or_(Request.parent_id == request_id, Request.parent_id.in_(items)),
                        Request.status == RequestStatus.ACTIVE,
                    )
                )
            )
        for child in children:
            await self._cancel_one(child)
        return view

    async def _cancel_one(
        self, request_id: str, *, source: str | None = None, user_id: str | None = None
    ) -> RequestView:
        job_view: JobView | None = None
        signal_worker = False
        async with self.sessions() as session, session.begin():
            request = await session.get(Request, request_id)
            if request is None or (
                source is not None and (request.source, request.user_id) != (source, str(user_id))
            ):
                raise NotFound()
            job = await session.scalar(select(Job).where(Job.id == request.job_id).with_for_update())
            assert job is not None
            if request.status != RequestStatus.ACTIVE:
                return request_view(request)
            request.status = RequestStatus.CANCELLED
            request.finished_at = utcnow()
            await session.flush()
            others = await session.scalar(
                select(func.count())
                .select_from(Request)
                .where(Request.job_id == job.id, Request.status == RequestStatus.ACTIVE)
            )
            if not others and job.status in ACTIVE_JOB:
                # Free the dedup slot at once so a new request starts a fresh download.
                job.dedup_key = None
                job.cancel_requested = True
                job.updated_at = utcnow()
                if job.status == JobStatus.QUEUED:
                    job.status = JobStatus.CANCELLED
                    job.error_code = "cancelled"
                    job.error_message = "The download was cancelled."
                    job.finished_at = utcnow()
                    job.seq += 1
                    job_view = JobView.from_job(job)
                else:
                    signal_worker = True
            view = request_view(request)
        if job_view is not None:
            await self._publish(job_view)
        if signal_worker:
            try:
                await self.bus.publish(Message("cancel", job_id=view.job_id))
            except Exception as exc:  # noqa: BLE001 - the worker also sees cancel_requested on its next lease renewal
                log.warning("cancel signal not published (%s)", type(exc).__name__)
        return view

    async def remove(self, request_id: str, *, source: str, user_id: str) -> None:
        """Delete a request from its owner's history: cancel it if it still runs, hide it (and the requests
        made on its behalf), and delete the stored files of every job nobody else still uses."""
        request, _ = await self.get_request(request_id)
        if (request.source, request.user_id) != (source, str(user_id)):
            raise NotFound()
        await self.cancel(request_id)
        now = utcnow()
        items = select(Request.id).where(Request.parent_id == request_id)
        family = or_(Request.id == request_id, Request.parent_id == request_id, Request.parent_id.in_(items))
        async with self.sessions() as session, session.begin():
            job_ids = set(await session.scalars(select(Request.job_id).where(family)))
            await session.execute(update(Request).where(family).values(hidden_at=now))
        for job_id in job_ids:
            await self._drop_files(job_id)

    async def _drop_files(self, job_id: str) -> None:
        """Delete a finished job's files when it owns them and no visible request of anyone uses them."""
        async with self.sessions() as session, session.begin():
            job = await session.scalar(select(Job).where(Job.id == job_id).with_for_update())
            if job is None or not job.retained or not job.storage_key or job.cached_from is not None:
                return
            sharing = select(Job.id).where(Job.storage_key == job.storage_key)
            users = await session.scalar(
                select(func.count())
                .select_from(Request)
                .where(Request.job_id.in_(sharing), Request.hidden_at.is_(None))
            )
            copies = await session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.source_job_id == job.id, Job.retained.is_(True))
            )
            if users or copies:
                return
            keys = [job.storage_key] + [p["key"] for p in job.parts or []]
            keys += [a["key"] for a in (job.assets or {}).values()]
            # The rows first (as retention does): from now on nobody gets a link or a cache hit to them.
            await session.execute(
                update(Job)
                .where(Job.storage_key == job.storage_key)
                .values(retained=False, dedup_key=None, updated_at=utcnow())
            )
        for key in dict.fromkeys(keys):
            try:
                await self.storage.delete(key)
            except Exception as exc:  # noqa: BLE001 - retention deletes what is left later
                log.warning("could not delete a removed file: %s", type(exc).__name__)

    async def retry(self, request_id: str, *, source: str, user_id: str) -> Submission:
        """The same ask again (link, kind, quality, format, subtitles, delivery target, completion callback)
        as a new request, which replaces the old one in its owner's history: the old one is hidden as
        `remove` hides it (its files stay while the new request, or anyone else's, uses them)."""
        request, job = await self.get_request(request_id)
        if (request.source, request.user_id) != (source, str(user_id)):
            raise NotFound()
        if request.status == RequestStatus.ACTIVE:
            raise InvalidRequest("This download is still running.")
        async with self.sessions() as session:
            hook = await session.get(Webhook, request_id)
        submission = await self.submit(
            SubmitRequest(
                text=request.url, source=request.source, user_id=request.user_id,  # type: ignore[arg-type]
                kind=request.kind, quality=request.quality, target=dict(request.target),  # type: ignore[arg-type]
                format_id=job.format_id, subtitles=tuple(job.subtitle_langs), audio_format=job.audio_format,
                playable=job.playable, callback_url=hook.url if hook is not None else None,
            )
        )  # fmt: skip
        # Only once the new request exists: a refused retry (the link no longer allowed) keeps the old one,
        # and a retry answered from the old one's stored file keeps that file.
        await self.remove(request_id, source=source, user_id=user_id)
        return submission

    async def cancel_all(self, source: str, user_id: str) -> int:
        active = await self.active_requests(source, user_id)
        for request, _job in active:
            await self.cancel(request.id)
        return len(active)

    # -- files --------------------------------------------------------------------------------------------

    async def _stored(self, job_id: str) -> Job:
        async with self.sessions() as session:
            job = await session.get(Job, job_id)
        if job is None:
            raise NotFound()
        if job.status != JobStatus.DONE or not job.storage_key or not job.retained:
            raise NotFound("The file is not available (not finished, or expired).")
        return job

    async def _file_of(self, job_id: str, part: int | None, asset: str | None = None) -> tuple[str, str]:
        """(storage key, filename) of a finished job's file, of part `part` (from 1) of a split, or of one
        of its assets (THUMBNAIL, subtitle_asset(lang))."""
        job = await self._stored(job_id)
        if asset is not None:
            found = (job.assets or {}).get(asset)
            if found is None:
                raise NotFound("There is no such file for this download.")
            return found["key"], found["filename"]
        if part is None:
            return job.storage_key or "", job.filename or "media"
        parts = job.parts or []
        if not 1 <= part <= len(parts):
            raise NotFound("No such part.")
        return parts[part - 1]["key"], parts[part - 1]["filename"]

    async def link(
        self, job_id: str, ttl_s: int | None = None, *, part: int | None = None, asset: str | None = None
    ) -> str:
        key, filename = await self._file_of(job_id, part, asset)
        return await self.storage.link(key, filename=filename, ttl_s=ttl_s)

    async def asset_link(self, view: JobView, asset: str, ttl_s: int | None = None) -> str | None:
        """A link to one of a finished job's assets, signed from a view just read; None when it has none."""
        stored = view.stored_assets.get(asset)
        if stored is None:
            return None
        return await self.storage.link(stored[0], filename=stored[1], ttl_s=ttl_s)

    async def link_to(self, view: JobView, ttl_s: int | None = None) -> str:
        """A link to a finished job's file, signed from the view when it was just read from the database
        (no second read: API polling asks for one with every GET)."""
        if view.stored is None:
            return await self.link(view.id, ttl_s)
        key, filename = view.stored
        return await self.storage.link(key, filename=filename, ttl_s=ttl_s)

    async def fetch_file(
        self, job_id: str, dest: Path, *, part: int | None = None, asset: str | None = None
    ) -> Path:
        """Copy the finished file (one part of it, or an asset) to `dest` (chat front ends upload from there)."""
        key, _ = await self._file_of(job_id, part, asset)
        await self.storage.fetch(key, dest)
        return dest

    async def local_path(
        self, job_id: str, *, part: int | None = None, asset: str | None = None
    ) -> Path | None:
        key, _ = await self._file_of(job_id, part, asset)
        path_of = getattr(self.storage, "path_for", None)
        return path_of(key) if path_of else None


def _quality_order(q: str) -> int:
    return -1 if q == "best" else -int(q)


def _encode_cursor(req: Request) -> str:
    raw = f"{req.created_at.isoformat()}|{req.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, rid = raw.split("|", 1)
        return datetime.fromisoformat(created), rid
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("Invalid cursor.") from None


_suitable_cache: dict[tuple[str, ...], list[Any]] = {}


def _supported(url: str, allowed: tuple[str, ...]) -> bool:
    """Whether an allowed extractor claims the link (only meaningful when the generic one is not allowed)."""
    from yt_dlp.extractor import gen_extractor_classes

    classes = _suitable_cache.get(allowed)
    if classes is None:
        wanted = {name.lower() for name in allowed}
        classes = [
            ie
            for ie in gen_extractor_classes()
            if ie.ie_key().lower() in wanted or ie.IE_NAME.lower() in wanted
        ]
        _suitable_cache[allowed] = classes
    return any(ie.suitable(url) for ie in classes)


__all__ = ["JobService"]
