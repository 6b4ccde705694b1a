"""Running jobs on a worker: claim with a lease, download in a thread, store, finish; all writes are
conditional on still holding the lease, so a job never completes twice."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import mimetypes
import os
import shutil
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.attach import add_playlist_items, choice_suffix
from core.config import Settings
from core.db import is_unavailable
from core.downloader import (
    GENERIC_EXTRACTORS,
    Control,
    Downloaded,
    Downloader,
    MediaInfo,
    PlaylistFound,
    ProgressUpdate,
    user_filename,
)
from core.errors import Cancelled, DownloadFailed, MediabotError, StorageError, WontFit
from core.events import EventBus, Message, control_filter
from core.fitting import Fitted, Fitter
from core.jobs import IDEMPOTENCY_TTL
from core.models import (
    Job,
    JobStatus,
    Request,
    RequestStatus,
    Webhook,
    WebhookStatus,
    Worker,
    search_text,
    utcnow,
)
from core.queue import JobQueue
from core.schemas import THUMBNAIL, JobView, subtitle_asset
from core.storage import Storage, check_free_space, download_dirs, make_key, safe_filename

log = logging.getLogger(__name__)

PROGRESS_DB_INTERVAL_S = 1.0
# How long a cancel for a job this worker does not (yet) run is remembered: a claim takes milliseconds.
EARLY_CANCEL_S = 30.0
# A playlist link is listed again after this long: channels and mixes change.
PLAYLIST_TTL = timedelta(hours=1)


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class _Running:
    """A job this worker holds: its row (detached, updated in memory), the control shared with yt-dlp."""

    def __init__(self, job: Job, lease_s: float) -> None:
        self.job = job
        # When our lease runs out by our own clock (the one that wrote it): until then a final write that
        # fails because the database is away can be tried again, and nobody else will take the job.
        self.lease_deadline = time.monotonic() + lease_s
        self.control = Control()
        self.last_db_write = 0.0
        self.db_write: asyncio.Task[None] | None = None
        self.lost = False
        self.handback = False
        # This attempt's own folder in storage (see make_key).
        self.run_id = uuid.uuid4().hex[:12]


class JobRunner:
    """Runs downloads for one worker process, at most `worker_concurrency` at a time."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        storage: Storage,
        downloader: Downloader,
        queue: JobQueue,
        worker_id: str | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.bus = bus
        self.storage = storage
        self.downloader = downloader
        self.fitter = Fitter(settings, downloader)
        self.queue = queue
        self._dialect = sessions.kw["bind"].dialect.name
        self.worker_id = worker_id or new_worker_id()
        self.running: dict[str, _Running] = {}
        # Cancels that arrived for jobs this worker was still claiming (claim committed, not yet in
        # `running`): honoured when the job is registered, instead of at the next lease renewal.
        self._early_cancels: dict[str, float] = {}
        self.idle = asyncio.Event()
        self.idle.set()
        self.accepting = True
        self._slots = asyncio.Semaphore(settings.worker_concurrency)
        # yt-dlp gets threads of its own, one per slot: each thread that allocates gets a malloc arena,
        # so a small fixed pool keeps a long-running worker's memory flat.
        self._pool = ThreadPoolExecutor(
            max_workers=settings.worker_concurrency, thread_name_prefix="download"
        )
        self._background: set[asyncio.Task[Any]] = set()
        self.workdir_root = settings.tmp_dir / self.worker_id

    # -- the task body ------------------------------------------------------------------------------------

    async def run(self, job_id: str) -> None:
        async with self._slots:
            if not self.accepting:
                # Shutting down: leave the job queued and hand it to another worker.
                await self._safe_enqueue(job_id)
                return
            held = await self._claim(job_id)
            if held is None:
                return
            self.running[job_id] = held
            self.idle.clear()
            if self._early_cancels.pop(job_id, None) is not None:
                held.control.stop()
            try:
                await self._execute(held)
            finally:
                self.running.pop(job_id, None)
                if not self.running:
                    self.idle.set()
                if held.db_write is not None:
                    with contextlib.suppress(Exception):
                        await held.db_write

    async def _claim(self, job_id: str) -> _Running | None:
        now = utcnow()
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.QUEUED, Job.cancel_requested.is_(False))
                .values(
                    status=JobStatus.RUNNING,
                    worker_id=self.worker_id,
                    attempts=Job.attempts + 1,
                    lease_until=now + timedelta(seconds=self.settings.lease_s),
                    started_at=now,
                    updated_at=now,
                    seq=Job.seq + 1,
                )
            )
            if result.rowcount != 1:
                log.debug("job %s not claimed (taken, finished or cancelled)", job_id)
                return None
            job = await session.get(Job, job_id)
        assert job is not None
        log.info("job %s claimed by %s (attempt %d)", job_id, self.worker_id, job.attempts)
        await self._publish(job)
        return _Running(job, self.settings.lease_s)

    async def _execute(self, held: _Running) -> None:
        job = held.job
        loop = asyncio.get_running_loop()
        workdir = self.workdir_root / job.id
        held.control.on_progress = lambda update_: loop.call_soon_threadsafe(self._on_progress, held, update_)

        def on_info(info: MediaInfo) -> bool:
            # Called from yt-dlp's thread between extraction and download.
            future = asyncio.run_coroutine_threadsafe(self._on_info(held, info), loop)
            return future.result(timeout=60)

        started = time.monotonic()
        try:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
            if job.total_bytes and not job.variant:
                # Tried before (a lost lease) and its size known: no new attempt into a disk still full.
                await asyncio.to_thread(check_free_space, download_dirs(self.settings), job.total_bytes)
            if job.variant:
                await self._make_fit(held, workdir)
                return
            result = await loop.run_in_executor(
                self._pool, _download, self.downloader, job, workdir, held.control, on_info
            )
            if result is None:
                return  # finished from an existing file of the same media
            if held.control.cancel.is_set():
                raise Cancelled()
            if isinstance(result, PlaylistFound):
                await self._expand(held, result)
                return
            stored_key = make_key(job.id, result.filename, held.run_id)
            content_type = mimetypes.guess_type(result.filename)[0]
            size = await self.storage.save(
                result.path, stored_key, filename=result.filename, content_type=content_type
            )
            assets = await self._save_assets(held, result)
            if not await self._finish_done(held, result, stored_key, size, assets):
                for key in [stored_key] + [a["key"] for a in assets.values()]:
                    await self.storage.delete(key)
                return
            log.info("job %s done in %.2fs (%d bytes)", job.id, time.monotonic() - started, size)
        # Partial files go before the outcome is written: on a full disk the database (SQLite in DATA_DIR) can
        # only record the failure once the download's own bytes are freed.
        except Cancelled:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
            if held.lost:
                log.warning("job %s: lease lost, stopped without writing", job.id)
            elif held.handback:
                await self._hand_back(held)
            else:
                await self._finish(held, JobStatus.CANCELLED, Cancelled())
        except MediabotError as exc:
            await asyncio.to_thread(shutil.rmtree, workdir, True)
            await self._finish(held, JobStatus.FAILED, exc)
        except Exception as exc:
            # A disk that filled up outside yt-dlp (a thumbnail, a probe, a copy) is said as plainly.
            full = isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)
            if not full:
                log.exception("job %s failed unexpectedly", job.id)
            await asyncio.to_thread(shutil.rmtree, workdir, True)
            error = StorageError.from_os_error(exc) if isinstance(exc, OSError) and full else DownloadFailed()
            await self._finish(held, JobStatus.FAILED, error)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _save_assets(self, held: _Running, result: Downloaded) -> dict[str, Any]:
        """Store the thumbnail and subtitle files beside the media: {asset name: {key, filename, size}}."""
        files: dict[str, tuple[Path, str]] = {}
        if result.thumbnail is not None:
            files[THUMBNAIL] = (result.thumbnail, "thumbnail.jpg")
        stem = Path(result.filename).stem
        for lang, path in sorted(result.subtitles.items()):
            files[subtitle_asset(lang)] = (path, f"{stem}.{lang}.srt")
        return await self._store_files(held, files)

    async def _store_files(self, held: _Running, files: dict[str, tuple[Path, str]]) -> dict[str, Any]:
        """Store what comes with the media. Each is optional: one that can't be stored is left out (the
        person gets the media without it), never a reason to fail the download."""
        assets: dict[str, Any] = {}
        job_id = held.job.id
        try:
            for name, (path, filename) in files.items():
                key = make_key(job_id, filename, held.run_id)
                try:
                    size = await self.storage.save(
                        path, key, filename=filename, content_type=mimetypes.guess_type(filename)[0]
                    )
                except StorageError as exc:
                    log.warning("job %s: %s not stored (%s); delivered without it", job_id, name, exc.code)
                    continue
                assets[name] = {"key": key, "filename": filename, "size": size}
        except BaseException:
            for asset in assets.values():
                with contextlib.suppress(Exception):
                    await self.storage.delete(asset["key"])
            raise
        return assets

    async def _copy_assets(self, source: Job | None, held: _Running, workdir: Path) -> dict[str, Any]:
        """A fitted copy gets its own copies of the original's thumbnail and subtitles (small files), so the
        two can expire apart."""
        if source is None or not source.retained or not source.assets:
            return {}
        directory = workdir / "assets"
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        files: dict[str, tuple[Path, str]] = {}
        for name, asset in source.assets.items():
            dest = directory / safe_filename(asset["filename"])
            try:
                await self.storage.fetch(asset["key"], dest)
            except StorageError as exc:
                log.info("job %s: asset %s not copied: %s", held.job.id, name, exc.code)
                continue
            files[name] = (dest, asset["filename"])
        return await self._store_files(held, files)

    async def _make_fit(self, held: _Running, workdir: Path) -> None:
        """A copy of a finished job that fits the variant's limit (see core.fitting)."""
        job = held.job
        loop = asyncio.get_running_loop()
        async with self.sessions() as session:
            source = await session.get(Job, job.source_job_id) if job.source_job_id else None
        stored = source.storage_key if source is not None and source.retained else None

        def fetch_source(directory: Path) -> Path:
            # On a download thread: the full-quality file, in place when local, else fetched beside us.
            if not stored or source is None:
                raise WontFit("The full-quality file has expired. Send the link again.")
            path_of = getattr(self.storage, "path_for", None)
            if path_of is not None and path_of(stored).exists():
                return Path(path_of(stored))
            directory.mkdir(parents=True, exist_ok=True)
            dest = directory / safe_filename(source.filename or "media")
            asyncio.run_coroutine_threadsafe(self.storage.fetch(stored, dest), loop).result(timeout=3600)
            return dest

        fitted: Fitted = await loop.run_in_executor(
            self._pool, _fit, self.fitter, job, fetch_source, workdir, held.control
        )
        if held.control.cancel.is_set():
            raise Cancelled()
        parts: list[dict[str, Any]] = []
        assets: dict[str, Any] = {}
        try:
            assets = await self._copy_assets(source, held, workdir)
            for path, name in zip(fitted.paths, fitted.filenames, strict=True):
                key = make_key(job.id, name, held.run_id)
                size = await self.storage.save(
                    path, key, filename=name, content_type=mimetypes.guess_type(name)[0]
                )
                parts.append({"key": key, "filename": name, "size": size})
            info = fitted.info
            done = await self._complete(
                held,
                JobStatus.DONE,
                dict(
                    storage_key=parts[0]["key"],
                    filename=parts[0]["filename"] if len(parts) == 1 else user_filename(info.title, info.ext),
                    filesize=sum(p["size"] for p in parts),
                    parts=parts if len(parts) > 1 else None,
                    fit_method=fitted.method,
                    ext=info.ext,
                    duration=info.duration or job.duration,
                    width=info.width,
                    height=info.height,
                    retained=True,
                    downloaded_bytes=sum(p["size"] for p in parts),
                    total_bytes=sum(p["size"] for p in parts),
                    assets=assets or None,
                    subtitles_missing=source.subtitles_missing if source is not None else None,
                ),
            )
        except BaseException:
            for key in [p["key"] for p in parts] + [a["key"] for a in assets.values()]:
                with contextlib.suppress(Exception):
                    await self.storage.delete(key)
            raise
        if not done:
            for key in [p["key"] for p in parts] + [a["key"] for a in assets.values()]:
                await self.storage.delete(key)
            return
        log.info("job %s: fitted by %s into %d file(s)", job.id, fitted.method, len(parts))

    async def _expand(self, held: _Running, found: PlaylistFound) -> None:
        """A playlist: the job ends listing its entries, and every request on it gets an item per entry."""
        job = held.job
        now = utcnow()
        created: list[str] = []
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                self._owned(job.id).values(
                    status=JobStatus.DONE, entries=found.entries, playlist_total=found.total,
                    title=found.title or job.title, search_title=search_text(found.title or job.title),
                    finished_at=now, updated_at=now, lease_until=None,
                    speed=None, eta=None, seq=job.seq + 1,
                )
            )  # fmt: skip
            if result.rowcount != 1:
                log.warning("job %s: lease lost before expanding the playlist", job.id)
                return
            playlist = await session.get(Job, job.id, populate_existing=True)
            assert playlist is not None
            requests = list(
                await session.scalars(
                    select(Request).where(Request.job_id == job.id, Request.status == RequestStatus.ACTIVE)
                )
            )
            for request in requests:
                created += await add_playlist_items(session, self._dialect, request, playlist, now)
                request.status = RequestStatus.DONE
                request.finished_at = now
        log.info("job %s: playlist of %d items (%s in all)", job.id, len(found.entries), found.total or "?")
        held.job = playlist
        await self._publish(playlist)
        for job_id in created:
            await self._safe_enqueue(job_id)

    # -- progress and metadata ------------------------------------------------------------------------------

    def _on_progress(self, held: _Running, upd: ProgressUpdate) -> None:
        if held.lost or held.control.cancel.is_set():
            return
        job = held.job
        if upd.status == "downloading":
            job.downloaded_bytes = upd.downloaded_bytes
            job.total_bytes = upd.total_bytes
            job.speed = upd.speed
            job.eta = upd.eta
        else:
            job.speed = None
            job.eta = None
        job.seq += 1
        job.updated_at = utcnow()
        self._spawn(self._publish(job))
        now = time.monotonic()
        if now - held.last_db_write >= PROGRESS_DB_INTERVAL_S and (
            held.db_write is None or held.db_write.done()
        ):
            held.last_db_write = now
            held.db_write = self._spawn(self._write_progress(held))

    async def _write_progress(self, held: _Running) -> None:
        job = held.job
        try:
            async with self.sessions() as session, session.begin():
                await session.execute(
                    self._owned(job.id).values(
                        **self._metadata(job),
                        downloaded_bytes=job.downloaded_bytes,
                        speed=job.speed,
                        eta=job.eta,
                        seq=job.seq,
                    )
                )
        except Exception as exc:  # noqa: BLE001 - progress is advisory; the lease loop notices real outages
            log.debug("progress write failed: %s", exc)

    async def _on_info(self, held: _Running, info: MediaInfo) -> bool:
        job = held.job
        # The generic extractor names a bare file after its URL; a playlist entry's own title says more.
        if not (job.title and (info.extractor or "").lower() in GENERIC_EXTRACTORS):
            job.title = info.title
        job.duration, job.extractor, job.media_id = info.duration, info.extractor, info.media_id
        job.width, job.height, job.uploader, job.ext = info.width, info.height, info.uploader, info.ext
        job.upload_date = info.upload_date
        job.total_bytes = info.filesize
        choices = choice_suffix(job.format_id, job.subtitle_langs, job.audio_format, job.playable)
        job.media_key = f"{info.media_key}|{job.kind}:{job.quality}{choices}" if info.media_key else None
        job.seq += 1
        job.updated_at = utcnow()
        source = None
        if job.media_key:
            # Only a named media can be in the cache already; a generic link's metadata rides along with the
            # next progress write instead of costing a round trip before the download starts.
            async with self.sessions() as session, session.begin():
                await session.execute(self._owned(job.id).values(**self._metadata(job), seq=job.seq))
                source = await session.scalar(
                    select(Job)
                    .where(
                        Job.media_key == job.media_key,
                        Job.status == JobStatus.DONE,
                        Job.retained.is_(True),
                        Job.id != job.id,
                    )
                    .limit(1)
                )
        else:
            held.last_db_write = 0.0
        await self._publish(job)
        if source is None:
            return True
        log.info("job %s: same media as finished job %s, reusing its file", job.id, source.id)
        await self._finish_from(held, source)
        return False

    @staticmethod
    def _metadata(job: Job) -> dict[str, Any]:
        return dict(
            title=job.title,
            search_title=search_text(job.title),
            duration=job.duration,
            extractor=job.extractor,
            media_id=job.media_id,
            width=job.width,
            height=job.height,
            uploader=job.uploader,
            upload_date=job.upload_date,
            ext=job.ext,
            total_bytes=job.total_bytes,
            media_key=job.media_key,
            updated_at=job.updated_at,
        )

    # -- finishing ----------------------------------------------------------------------------------------

    def _owned(self, job_id: str) -> Any:
        return update(Job).where(
            Job.id == job_id, Job.worker_id == self.worker_id, Job.status == JobStatus.RUNNING
        )

    async def _finish_done(
        self, held: _Running, result: Downloaded, key: str, size: int, assets: dict[str, Any]
    ) -> bool:
        info = result.info
        job = held.job
        return await self._complete(
            held,
            JobStatus.DONE,
            dict(
                extractor=job.extractor,
                media_id=job.media_id,
                uploader=job.uploader,
                media_key=job.media_key,
                storage_key=key,
                filename=result.filename,
                filesize=size,
                ext=info.ext,
                title=job.title or info.title,
                search_title=search_text(job.title or info.title),
                duration=info.duration,
                width=info.width,
                height=info.height,
                retained=True,
                downloaded_bytes=size,
                total_bytes=size,
                upload_date=job.upload_date or info.upload_date,
                assets=assets or None,
                subtitles_missing=result.subtitles_missing or None,
            ),
        )

    async def _finish_from(self, held: _Running, source: Job) -> bool:
        return await self._complete(
            held,
            JobStatus.DONE,
            dict(
                storage_key=source.storage_key,
                filename=source.filename,
                filesize=source.filesize,
                ext=source.ext,
                duration=source.duration,
                width=source.width,
                height=source.height,
                retained=True,
                downloaded_bytes=source.filesize,
                total_bytes=source.filesize,
                cached_from=source.id,
                # The same files (they expire with the source's), and what the source found missing.
                assets=source.assets,
                subtitles_missing=source.subtitles_missing,
            ),
        )

    async def _finish(self, held: _Running, status: JobStatus, error: MediabotError) -> bool:
        log.info("job %s %s: %s", held.job.id, status, error.code)
        return await self._complete(
            held, status, dict(error_code=error.code, error_message=error.message, dedup_key=None)
        )

    async def _complete(self, held: _Running, status: JobStatus, values: dict[str, Any]) -> bool:
        job = held.job
        now = utcnow()
        values = dict(
            values,
            status=status,
            finished_at=now,
            updated_at=now,
            lease_until=None,
            speed=None,
            eta=None,
            seq=job.seq + 1,
        )
        request_status = {
            JobStatus.DONE: RequestStatus.DONE,
            JobStatus.FAILED: RequestStatus.FAILED,
            JobStatus.CANCELLED: RequestStatus.CANCELLED,
        }[status]
        delay = 0.5
        while True:
            try:
                async with self.sessions() as session, session.begin():
                    result = await session.execute(self._owned(job.id).values(**values))
                    if result.rowcount != 1:
                        log.warning(
                            "job %s: lease lost before finishing; leaving it to its new owner", job.id
                        )
                        return False
                    await session.execute(
                        update(Request)
                        .where(Request.job_id == job.id, Request.status == RequestStatus.ACTIVE)
                        .values(status=request_status, finished_at=now)
                    )
                    fresh = await session.get(Job, job.id, populate_existing=True)
                break
            except Exception as exc:
                # The database went away just as the work was done: keep trying while the lease is ours,
                # rather than leaving the job to be downloaded again once the lease runs out.
                if not is_unavailable(exc) or time.monotonic() + delay >= held.lease_deadline:
                    raise
                log.warning("job %s: database unavailable while finishing; trying again", job.id)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        assert fresh is not None
        held.job = fresh
        await self._publish(fresh)
        return True

    async def _hand_back(self, held: _Running) -> None:
        """Graceful shutdown: the job goes back to the queue for another worker, attempt not counted."""
        job = held.job
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                self._owned(job.id).values(
                    status=JobStatus.QUEUED,
                    worker_id=None,
                    lease_until=None,
                    attempts=Job.attempts - 1,
                    enqueued_at=utcnow(),
                    updated_at=utcnow(),
                    seq=job.seq + 1,
                )
            )
            fresh = await session.get(Job, job.id, populate_existing=True) if result.rowcount == 1 else None
        if fresh is not None:
            log.info("job %s handed back to the queue", job.id)
            await self._publish(fresh)
            await self._safe_enqueue(job.id)

    # -- leases and control -----------------------------------------------------------------------------

    async def renew_leases(self) -> None:
        """Extend our leases; notice jobs we lost (another worker took over) or that were cancelled."""
        if not self.running:
            return
        ids = list(self.running)
        renewed_at = time.monotonic()
        until = utcnow() + timedelta(seconds=self.settings.lease_s)
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(Job)
                .where(Job.id.in_(ids), Job.worker_id == self.worker_id, Job.status == JobStatus.RUNNING)
                .values(lease_until=until)
            )
            rows = (
                await session.execute(
                    select(Job.id, Job.cancel_requested).where(
                        Job.id.in_(ids), Job.worker_id == self.worker_id, Job.status == JobStatus.RUNNING
                    )
                )
            ).all()
        still_ours = {row[0]: row[1] for row in rows}
        for job_id in ids:
            held = self.running.get(job_id)
            if held is None:
                continue
            if job_id not in still_ours:
                if not held.control.cancel.is_set():
                    held.lost = True
                    held.control.stop()
            else:
                held.lease_deadline = renewed_at + self.settings.lease_s
                if still_ours[job_id]:
                    held.control.stop()

    def on_control(self, message: Message) -> None:
        if message.type != "cancel" or message.job_id is None:
            return
        held = self.running.get(message.job_id)
        if held is not None:
            log.info("job %s: cancel received", message.job_id)
            held.control.stop()
            return
        now = time.monotonic()
        for job_id in [k for k, at in self._early_cancels.items() if now - at > EARLY_CANCEL_S]:
            del self._early_cancels[job_id]
        self._early_cancels[message.job_id] = now

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def hand_back_all(self) -> None:
        for held in self.running.values():
            if held.control.cancel.is_set():
                continue  # already being cancelled (or lost): let that finish as it is
            held.handback = True
            held.control.stop()

    # -- helpers ------------------------------------------------------------------------------------------

    async def _publish(self, job: Job) -> None:
        try:
            await self.bus.publish(Message("job", job=JobView.from_job(job)))
        except Exception as exc:  # noqa: BLE001 - events are best effort; the row is the truth
            log.debug("event not published: %s", exc)

    async def _safe_enqueue(self, job_id: str) -> None:
        if not self.accepting and self.queue.name == "in-process":
            # The in-process queue dies with us; the job stays queued in the database and the next start
            # picks it up (WorkerRuntime.start).
            return
        try:
            await self.queue.enqueue(job_id)
        except Exception as exc:  # noqa: BLE001 - the reconciler re-enqueues it later
            log.warning("could not re-enqueue %s: %s", job_id, exc)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task


class Reconciler:
    """Repairs what crashes leave behind. Safe to run in every worker at once: each repair is a
    conditional update, and only the process whose update matched acts on it."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        storage: Storage,
        queue: JobQueue,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.bus = bus
        self.storage = storage
        self.queue = queue
        self._last_retention = 0.0

    async def once(self) -> dict[str, int]:
        stats = {"requeued": 0, "lost": 0, "reenqueued": 0, "expired": 0}
        await self._expired_leases(stats)
        await self._stale_queued(stats)
        if time.monotonic() - self._last_retention > self.settings.retention_interval_s:
            self._last_retention = time.monotonic()
            stats["expired"] = await self.retention()
        return stats

    async def _expired_leases(self, stats: dict[str, int]) -> None:
        now = utcnow()
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Job.id, Job.attempts).where(Job.status == JobStatus.RUNNING, Job.lease_until < now)
                )
            ).all()
        for job_id, attempts in rows:
            expired = (Job.id == job_id, Job.status == JobStatus.RUNNING, Job.lease_until < now)
            give_up = attempts >= self.settings.max_attempts
            async with self.sessions() as session, session.begin():
                if give_up:
                    values: dict[str, Any] = dict(
                        status=JobStatus.FAILED,
                        error_code="worker_lost",
                        dedup_key=None,
                        finished_at=now,
                        error_message="The download was interrupted several times and was given up. Please try again.",
                    )
                else:
                    values = dict(status=JobStatus.QUEUED, enqueued_at=now)
                # A gap in seq: the dead worker may have published progress it never wrote down.
                values.update(worker_id=None, lease_until=None, updated_at=now, seq=Job.seq + 100)
                result = await session.execute(update(Job).where(*expired).values(**values))
                if result.rowcount != 1:
                    continue
                if give_up:
                    await session.execute(
                        update(Request)
                        .where(Request.job_id == job_id, Request.status == RequestStatus.ACTIVE)
                        .values(status=RequestStatus.FAILED, finished_at=now)
                    )
                job = await session.get(Job, job_id)
            stats["lost" if give_up else "requeued"] += 1
            log.warning("job %s: worker lost; %s", job_id, "failed" if give_up else "re-queued")
            if job is not None:
                await self._publish(job)
            if not give_up:
                await self._enqueue(job_id)

    async def _stale_queued(self, stats: dict[str, int]) -> None:
        """Queued jobs whose message the queue lost (Redis restarted empty): the queue is idle, yet the
        database still has jobs waiting."""
        try:
            depth = await self.queue.depth()
        except Exception:  # noqa: BLE001 - broker down: nothing to re-enqueue into
            return
        now = utcnow()
        threshold = now - timedelta(seconds=self.settings.stale_queued_s)
        # Whatever the depth says, a job waiting ten thresholds long gets a fresh message.
        long_threshold = now - timedelta(seconds=self.settings.stale_queued_s * 10)
        cutoff = threshold if depth == 0 else long_threshold
        async with self.sessions() as session, session.begin():
            ids = list(
                await session.scalars(
                    select(Job.id).where(Job.status == JobStatus.QUEUED, Job.enqueued_at < cutoff).limit(1000)
                )
            )
            if ids:
                await session.execute(update(Job).where(Job.id.in_(ids)).values(enqueued_at=now))
        for job_id in ids:
            await self._enqueue(job_id)
        stats["reenqueued"] += len(ids)
        if ids:
            log.warning("re-enqueued %d queued jobs the queue had lost", len(ids))

    async def enqueue_all_queued(self) -> int:
        async with self.sessions() as session:
            ids = list(await session.scalars(select(Job.id).where(Job.status == JobStatus.QUEUED)))
        for job_id in ids:
            await self._enqueue(job_id)
        if ids:
            log.info("enqueued %d jobs left queued by the previous run", len(ids))
        return len(ids)

    async def retention(self) -> int:
        """Delete files older than the retention period and drop their cache entries; let playlists be
        listed afresh after PLAYLIST_TTL (channels grow); forget ended webhooks and used idempotency keys."""
        now = utcnow()
        cutoff = now - timedelta(hours=self.settings.retention_hours)
        async with self.sessions() as session, session.begin():
            # Bookkeeping that would otherwise grow for ever: ended webhooks, idempotency keys past their day.
            await session.execute(
                delete(Webhook).where(Webhook.status != WebhookStatus.PENDING, Webhook.created_at < cutoff)
            )
            await session.execute(
                update(Request)
                .where(Request.idempotency_key.is_not(None), Request.created_at < now - IDEMPOTENCY_TTL)
                .values(idempotency_key=None)
            )
            await session.execute(
                update(Job)
                .where(
                    Job.entries.is_not(None),
                    Job.dedup_key.is_not(None),
                    Job.finished_at < now - min(PLAYLIST_TTL, timedelta(hours=self.settings.retention_hours)),
                )
                .values(dedup_key=None, updated_at=now)
            )
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(Job.storage_key, Job.parts, Job.assets)
                    .where(
                        Job.status == JobStatus.DONE,
                        Job.retained.is_(True),
                        Job.finished_at < cutoff,
                        Job.cached_from.is_(None),
                    )
                    .limit(500)
                )
            ).all()
        removed = 0
        for key, (parts, assets) in {row[0]: (row[1], row[2]) for row in rows}.items():
            if not key:
                continue
            # The rows first: from then on nobody is handed a link to the file, or the file as a cache hit.
            async with self.sessions() as session, session.begin():
                await session.execute(
                    update(Job)
                    .where(Job.storage_key == key)
                    .values(retained=False, dedup_key=None, updated_at=utcnow())
                )
            try:
                for part in parts or []:
                    await self.storage.delete(part["key"])
                for asset in (assets or {}).values():
                    await self.storage.delete(asset["key"])
                await self.storage.delete(key)
            except StorageError as exc:
                log.warning("retention: could not delete a file (tried again next round): %s", exc)
                async with self.sessions() as session, session.begin():
                    await session.execute(update(Job).where(Job.storage_key == key).values(retained=True))
                continue
            removed += 1
        if removed:
            log.info("retention: deleted %d expired files", removed)
        return removed

    async def _publish(self, job: Job) -> None:
        try:
            await self.bus.publish(Message("job", job=JobView.from_job(job)))
        except Exception:  # noqa: BLE001
            pass

    async def _enqueue(self, job_id: str) -> None:
        try:
            await self.queue.enqueue(job_id)
        except Exception as exc:  # noqa: BLE001 - tried again on the next round
            log.warning("re-enqueue of %s failed: %s", job_id, exc)


class WorkerRuntime:
    """One worker process's background duties around the runner: heartbeat, leases, cancel signals,
    reconciling. Started and stopped by whoever hosts the worker (the Taskiq worker, or `mediabot run`)."""

    def __init__(self, runner: JobRunner, reconciler: Reconciler) -> None:
        self.runner = runner
        self.reconciler = reconciler
        self.settings = runner.settings
        self._tasks: list[asyncio.Task[None]] = []
        self._started = utcnow()

    async def start(self) -> None:
        await asyncio.to_thread(self.runner.downloader.warm_up)
        await self._heartbeat()
        if self.runner.queue.name == "in-process":
            # Nothing outlives an in-process queue: whatever the database says is queued needs a message.
            await self.reconciler.enqueue_all_queued()
        await asyncio.to_thread(self._sweep_orphan_dirs)
        self._tasks = [
            asyncio.create_task(self._loop(self._tick, self.settings.lease_s / 3), name="worker-heartbeat"),
            asyncio.create_task(
                self._loop(self._reconcile, self.settings.reconcile_interval_s), name="reconciler"
            ),
            asyncio.create_task(self._listen(), name="worker-control"),
        ]

    async def stop(self, grace_s: float = 10.0, hurry: asyncio.Event | None = None) -> None:
        """Stop taking jobs; give running ones `grace_s` to finish (less when `hurry` is set meanwhile: a
        second Ctrl-C), then hand them back to the queue, their attempt not counted."""
        self.runner.accepting = False
        await _first_of(grace_s, self.runner.idle, *([hurry] if hurry is not None else []))
        if self.runner.running:
            self.runner.hand_back_all()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.runner.idle.wait(), 10)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(Exception):
            async with self.runner.sessions() as session, session.begin():
                await session.execute(delete(Worker).where(Worker.id == self.runner.worker_id))
        self.runner.close()

    async def _reconcile(self) -> None:
        await self.reconciler.once()
        await asyncio.to_thread(self._sweep_orphan_dirs)

    async def _tick(self) -> None:
        await self.runner.renew_leases()
        await self._heartbeat()

    async def _heartbeat(self) -> None:
        now = utcnow()
        runner = self.runner
        async with runner.sessions() as session, session.begin():
            result = await session.execute(
                update(Worker)
                .where(Worker.id == runner.worker_id)
                .values(heartbeat_at=now, running=len(runner.running))
            )
            if result.rowcount == 0:
                session.add(
                    Worker(
                        id=runner.worker_id,
                        hostname=socket.gethostname()[:255],
                        pid=os.getpid(),
                        concurrency=self.settings.worker_concurrency,
                        running=len(runner.running),
                        started_at=self._started,
                        heartbeat_at=now,
                    )
                )
            # Workers silent for ten leases are gone; forget them.
            await session.execute(
                delete(Worker).where(
                    Worker.heartbeat_at < now - timedelta(seconds=self.settings.lease_s * 10)
                )
            )

    def _sweep_orphan_dirs(self) -> None:
        """Temp dirs of workers on this machine that no longer run (killed mid-download)."""
        root = self.settings.tmp_dir
        if not root.exists():
            return
        host_prefix = socket.gethostname()[:40] + "-"
        for entry in root.iterdir():
            if (
                not entry.is_dir()
                or entry.name == self.runner.worker_id
                or not entry.name.startswith(host_prefix)
            ):
                continue
            pid = entry.name[len(host_prefix) :].split("-")[0]
            if pid.isdigit() and _pid_alive(int(pid)):
                continue
            shutil.rmtree(entry, ignore_errors=True)

    async def _listen(self) -> None:
        with self.runner.bus.subscribe(control_filter, maxsize=1024) as sub:
            async for message in sub:
                self.runner.on_control(message)

    async def _loop(self, fn: Any, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a database or Redis outage: try again next round
                log.warning("%s failed: %s", getattr(fn, "__name__", fn), type(exc).__name__)


async def _first_of(timeout: float, *events: asyncio.Event) -> None:
    """Wait until any of `events` is set, or `timeout` seconds."""
    if any(event.is_set() for event in events):
        return
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


_libc: Any = None


def _download(
    downloader: Downloader, job: Job, workdir: Path, control: Control, on_info: Any
) -> Downloaded | PlaylistFound | None:
    """The blocking part of a job, on a download thread. Only a link someone sent expands as a playlist;
    a playlist's own items never do."""
    try:
        return downloader.run(
            job.id,
            job.url,
            job.kind,
            job.quality,
            workdir,
            control,
            on_info,
            expand_playlist=job.parent_id is None,
            format_id=job.format_id,
            subtitles=tuple(job.subtitle_langs or ()),
            audio_format=job.audio_format,
            playable=bool(job.playable),
        )
    finally:
        _trim()


def _fit(fitter: Fitter, job: Job, source: Any, workdir: Path, control: Control) -> Fitted:
    try:
        return fitter.run(
            job.id, job.url, job.kind, job.quality, job.variant or "", source, workdir, control, title=job.title,
            playable=bool(job.playable),
        )  # fmt: skip
    finally:
        _trim()


def _trim() -> None:
    """Give freed memory back to the OS after each job (glibc keeps it otherwise, and a worker's RSS
    creeps up job after job)."""
    global _libc
    if _libc is None:
        try:
            _libc = ctypes.CDLL("libc.so.6")
        except OSError:
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A killed process its parent has not reaped yet is a zombie: dead for our purposes.
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


__all__ = ["JobRunner", "Reconciler", "WorkerRuntime"]
