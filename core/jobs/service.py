"""The job service: what every front end calls to submit, follow, cancel and fetch downloads."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.admin.service import check_not_banned
from core.config import Settings
from core.db.models import JobStatus, Request, Webhook, WebhookStatus, utcnow
from core.errors import (
    IdempotencyConflict,
    InvalidRequest,
    InvalidUrl,
    NotFound,
    Unavailable,
    UnsupportedUrl,
)
from core.events import EventBus, Message
from core.i18n import N_, _
from core.jobs.attach import find_or_create_job, new_request
from core.jobs.cancelling import JobCancelling
from core.jobs.choices import AUDIO_FORMATS, QUALITIES, SubmitRequest, check_choices, quality_order
from core.jobs.derived import CutRefused, Derivation, derivation
from core.jobs.deriving import derived_job
from core.jobs.files import JobFiles
from core.jobs.formats import FormatCache, MediaFormats
from core.jobs.keys import IDEMPOTENCY_TTL, dedup_key, fingerprint
from core.jobs.playlists import add_playlist_items
from core.jobs.queries import JobQueries, with_jobs
from core.jobs.views import JobView, Submission, fit_variant, request_view
from core.jobs.watch import JobWatch
from core.net import AddressPolicy, check_url, extract_url, normalize_url
from core.queue import JobQueue
from core.storage.base import Storage
from core.webhooks.hooks import check_callback_url

log = logging.getLogger(__name__)


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
    # A clip, chapter split or sponsor removal: `key` is then the derived job's, `full_key` the download's.
    derived: Derivation | None = None
    full_key: str | None = None


class JobService(JobQueries, JobWatch, JobFiles, JobCancelling):
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

    # -- submitting -------------------------------------------------------------------------------------

    async def check(self, text: str) -> str:
        """Validate a link the way submit does, without queueing anything."""
        url = extract_url(text)
        try:
            await asyncio.wait_for(check_url(url, self.policy), timeout=10)
        except TimeoutError:
            raise InvalidUrl(N_("The host of that link could not be looked up.")) from None
        if self.settings.allowed_extractors and "generic" not in [
            e.lower() for e in self.settings.allowed_extractors
        ]:
            if not await self.queue.supported(url):
                raise UnsupportedUrl()
        return url

    async def formats(self, text: str) -> MediaFormats:
        """What a link offers (formats with sizes, subtitle languages, thumbnail), probed without downloading
        under the same rules as a download; cached for a few minutes."""
        url = await self.check(text)

        async def probe() -> MediaFormats:
            # yt-dlp runs in the workers only: a worker reads the link (the in-process one when embedded).
            return await self.queue.probe(url)

        return await self._format_cache.get(normalize_url(url), probe)

    async def submit(self, req: SubmitRequest) -> Submission:
        if req.kind not in ("video", "audio"):
            raise InvalidRequest(N_("Kind must be video or audio."))
        quality = "best" if req.kind == "audio" else (req.quality or "best")
        if quality not in QUALITIES:
            raise InvalidRequest(
                _("Quality must be one of: {choices}.").format(
                    choices=", ".join(sorted(QUALITIES, key=quality_order))
                )
            )
        format_id, subtitles = check_choices(req.format_id, req.subtitles)
        audio_format = self._audio_format(req)
        # Sound has no picture to play: an audio job is the same whoever asks.
        playable = req.playable and req.kind == "video"
        derived = derivation(
            req.section, animation=req.animation, split_chapters=req.split_chapters,
            sponsorblock=req.sponsorblock,
        )  # fmt: skip
        if derived is not None and derived.section is not None:
            # What the text alone tells: a clip longer than the limit (the media's length is checked later).
            derived.section.check(None, self.settings.max_duration_s)
            if derived.animation and req.kind != "video":
                raise CutRefused("An animation is made from a video, not from sound.")
        async with self.sessions() as session:
            # A banned person gets their one sentence from whichever front end or process they ask.
            await check_not_banned(session, req.source, str(req.user_id))
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
        if derived is not None:
            derived_key = dedup_key(
                cache_key, req.kind, quality, derived.variant, format_id=format_id, subtitles=subtitles,
                audio_format=audio_format, playable=playable,
            )  # fmt: skip
            checked = replace(checked, derived=derived, full_key=key, key=derived_key)
        for _attempt in range(5):
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
            raise InvalidRequest(
                _("Audio format must be one of: {choices}.").format(choices=", ".join(AUDIO_FORMATS))
            )
        return req.audio_format

    async def fit(self, request_id: str, limit: int, *, split: bool = False) -> Submission:
        """A copy of a request's finished file that fits in `limit` bytes, made by a worker (a smaller
        format, a re-encode, or parts when `split`), as a child request of `request_id`. Copies are cached
        like any download: the next request for the same media and limit gets the same job."""
        variant = fit_variant(limit, split)
        now = utcnow()
        async with self.sessions() as session, session.begin():
            row = (await session.execute(with_jobs().where(Request.id == request_id))).first()
            if row is None:
                raise NotFound()
            parent, source = row
            if source.status != JobStatus.DONE or not source.retained:
                raise NotFound(N_("The file is not available (not finished, or expired)."))
            key = dedup_key(
                source.cache_key, source.kind, source.quality, variant,
                format_id=source.format_id, subtitles=source.subtitle_langs, audio_format=source.audio_format,
                playable=source.playable,
            )  # fmt: skip
            for _attempt in range(5):
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
                    with_jobs().where(
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
                choices = {"format_id": checked.format_id, "subtitle_langs": checked.subtitle_langs,
                           "audio_format": checked.audio_format, "playable": checked.playable}  # fmt: skip
                starts: list[str] | None = None
                if checked.derived is None:
                    found = await find_or_create_job(
                        session, self._dialect, url=url, cache_key=checked.cache_key, kind=req.kind,
                        quality=checked.quality, key=checked.key, now=now, extra=choices,
                    )  # fmt: skip
                else:
                    assert checked.full_key is not None
                    made = await derived_job(
                        session, self._dialect, url=url, cache_key=checked.cache_key, kind=req.kind,
                        quality=checked.quality, full_key=checked.full_key, key=checked.key,
                        derived=checked.derived, now=now, choices=choices, limit_s=self.settings.max_duration_s,
                    )  # fmt: skip
                    found, starts = (made[:2], made[2]) if made is not None else (None, None)
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
                if starts is not None:
                    new_jobs = starts
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

    async def mark_delivered(self, request_id: str, target: dict[str, Any] | None = None) -> None:
        values: dict[str, Any] = {"delivered_at": utcnow()}
        if target is not None:
            values["target"] = target
        async with self.sessions() as session, session.begin():
            await session.execute(update(Request).where(Request.id == request_id).values(**values))

    async def update_target(self, request_id: str, target: dict[str, Any]) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(update(Request).where(Request.id == request_id).values(target=target))

    # -- following ----------------------------------------------------------------------------------------

    # -- cancelling ---------------------------------------------------------------------------------------

    # -- files --------------------------------------------------------------------------------------------
