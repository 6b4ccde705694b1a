"""Running jobs on a worker: claim with a lease, download in a thread, store, finish; all writes are
conditional on still holding the lease, so a job never completes twice."""

from __future__ import annotations

import asyncio
import contextlib
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

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.aio import spawn
from core.config import Settings
from core.cuts.chapters import read_chapters
from core.cuts.sponsorblock import SponsorBlockClient
from core.db.models import (
    Job,
    JobStatus,
    utcnow,
)
from core.errors import Cancelled, DownloadFailed, MediabotError, StorageError
from core.events import EventBus, Message
from core.jobs.derived import parse_variant
from core.jobs.views import JobView
from core.media.fitting import Fitter
from core.media.lazy_downloader import LazyDownloader
from core.media.results import MediaInfo, PlaylistFound
from core.pacing import Pacing
from core.queue import JobQueue
from core.storage.base import Storage
from core.storage.keys import make_key
from core.storage.space import check_free_space, download_dirs
from worker.assets import RunnerAssets
from worker.attempt import download_as
from worker.cutting import RunnerCutting
from worker.finishing import RunnerFinishing
from worker.fitting import RunnerFitting
from worker.held import Held
from worker.pacing import HANDED_BACK, RunnerPacing
from worker.playlists import RunnerPlaylists
from worker.progress import RunnerProgress

log = logging.getLogger(__name__)

# How long a cancel for a job this worker does not (yet) run is remembered: a claim takes milliseconds.
EARLY_CANCEL_S = 30.0


def new_worker_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class JobRunner(
    RunnerAssets, RunnerCutting, RunnerFitting, RunnerPlaylists, RunnerProgress, RunnerFinishing, RunnerPacing
):
    """Runs downloads for one worker process, at most `worker_concurrency` at a time."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        bus: EventBus,
        storage: Storage,
        downloader: LazyDownloader,
        queue: JobQueue,
        worker_id: str | None = None,
        pacing: Pacing | None = None,
        sponsorblock: SponsorBlockClient | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.bus = bus
        self.storage = storage
        self.downloader = downloader
        self.fitter = Fitter(settings, downloader)
        self.queue = queue
        self.sponsorblock = sponsorblock
        self._dialect = sessions.kw["bind"].dialect.name
        self.worker_id = worker_id or new_worker_id()
        self.running: dict[str, Held] = {}
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
        self._init_pacing(pacing)

    # -- the task body ------------------------------------------------------------------------------------

    async def run(self, job_id: str) -> None:
        # Which site the job counts against is read before it takes a worker slot; the site's slot is asked
        # for with a worker slot in hand (so a granted slot is used at once) and the worker slot is given
        # back as soon as the site says wait, before its place is written: a waiting job holds neither, and
        # a job of another site takes the worker slot at once (tests/pacing/test_waiting.py).
        site = await self._site_to_ask(job_id) if self.accepting else ""
        if site is None:
            return
        waiting = None
        async with self._slots:
            if not self.accepting:
                # Shutting down: leave the job queued and hand it to another worker.
                await self._safe_enqueue(job_id)
                return
            waiting = await self._take_site_slot(job_id, site)
            if waiting is None:
                await self._run_granted(job_id, site)
        if waiting is not None:
            await self._show_waiting(job_id, site, waiting.ahead)

    async def _run_granted(self, job_id: str, site: str) -> None:
        if job_id in self.running and not self.running[job_id].lost:
            # Its lease ran out while this worker still ran it (the database was away): the reconciler queued
            # it again and its message came back here. A second attempt beside the first would share its work
            # folder and its owner (this worker), so the first's file could vanish under it: the running
            # attempt takes its job back instead, and keeps its site slot (same holder: not released here).
            await self._take_back(job_id)
            return
        held = None
        try:
            if job_id in self.running:
                # Already told it lost its lease and stopping: let it clean up, then claim as usual.
                async with asyncio.timeout(60):
                    await self.running[job_id].ended.wait()
            held = await self._claim(job_id)
            if held is None:
                return
            held.site = site
            self.running[job_id] = held
            self.idle.clear()
            if self._early_cancels.pop(job_id, None) is not None:
                held.control.stop()
            try:
                await self._execute(held)
            finally:
                self.running.pop(job_id, None)
                held.ended.set()
                if not self.running:
                    self.idle.set()
                if held.db_write is not None:
                    with contextlib.suppress(Exception):
                        await held.db_write
        finally:
            # Not when the job went back to wait for its site: _all_resting released it already.
            if held is None or held.site:
                await self._release_site_slot(site, job_id)

    async def _take_back(self, job_id: str) -> None:
        now = utcnow()
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.QUEUED, Job.cancel_requested.is_(False))
                .values(
                    status=JobStatus.RUNNING,
                    worker_id=self.worker_id,
                    lease_until=now + timedelta(seconds=self.settings.lease_s),
                    updated_at=now,
                )
            )
        if result.rowcount == 1:
            log.warning("job %s was queued again while it still ran here: its lease is taken back", job_id)

    async def _claim(self, job_id: str) -> Held | None:
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
                    waiting_for=None,  # it waits no more
                    waiting_ahead=None,
                )
            )
            if result.rowcount != 1:
                log.debug("job %s not claimed (taken, finished or cancelled)", job_id)
                return None
            job = await session.get(Job, job_id)
        assert job is not None
        log.info("job %s claimed by %s (attempt %d)", job_id, self.worker_id, job.attempts)
        await self._publish(job)
        return Held(job, self.settings.lease_s)

    async def _execute(self, held: Held) -> None:
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
            derived = parse_variant(job.variant)
            if derived is not None:
                await self._make_derived(held, workdir, derived)
                return
            if job.variant:
                await self._make_fit(held, workdir)
                return
            if self.pacing is not None:
                result = await self._download_paced(held, workdir, on_info)
            else:
                result = await loop.run_in_executor(
                    self._pool, download_as, self.downloader, job, workdir, held.control, on_info
                )
            if result is None or result is HANDED_BACK:
                return  # finished from an existing file of the same media, or waiting for its site
            if held.control.cancel.is_set():
                raise Cancelled()
            if isinstance(result, PlaylistFound):
                await self._expand(held, result)
                return
            chapters = await loop.run_in_executor(
                self._pool, _count_chapters, result.path, self.downloader.ffmpeg
            )
            stored_key = make_key(job.id, result.filename, held.run_id)
            content_type = mimetypes.guess_type(result.filename)[0]
            size = await self.storage.save(
                result.path, stored_key, filename=result.filename, content_type=content_type
            )
            assets = await self._save_assets(held, result)
            if not await self._finish_done(held, result, stored_key, size, assets, chapters):
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

    # -- progress and metadata ------------------------------------------------------------------------------

    # -- finishing ----------------------------------------------------------------------------------------

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
        if self.forget_if_waiting(message.job_id):
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
        if not self.accepting and not self.queue.persistent:
            # The in-process queue dies with us; the job stays queued in the database and the next start
            # picks it up (WorkerRuntime.start).
            return
        try:
            await self.queue.enqueue(job_id)
        except Exception as exc:  # noqa: BLE001 - the reconciler re-enqueues it later
            log.warning("could not re-enqueue %s: %s", job_id, exc)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = spawn(coro, name="runner-write")
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task


def _count_chapters(path: Path, ffmpeg: str | None) -> int | None:
    """The chapters kept in a downloaded mp4/m4a (what its delivery tells); None when they can't be read."""
    if ffmpeg is None or path.suffix.lower() not in (".mp4", ".m4a", ".m4v", ".mov"):
        return None
    try:
        return len(read_chapters(path, ffmpeg=ffmpeg))
    except MediabotError:
        return None
