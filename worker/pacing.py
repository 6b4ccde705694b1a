"""Per-site pacing in the runner (issue 23): a slot of the job's site before the claim, an identity
(cookies file + proxy) per attempt, and what a site's refusal does to both.

A job whose site has no free slot stays `queued`: its snapshot says what it waits for and how many are ahead
(`waiting_for`, `ahead`: published, never a column), and this worker asks again after `retry_after` by
enqueueing it anew, meanwhile taking other messages. If this worker dies meanwhile, the reconciler's
stale-queued pass enqueues it. A job whose site refuses every identity goes back to the queue the same way
until MEDIABOT_SITE_PATIENCE_S has passed since the first refusal, then fails with `rate_limited`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import shutil
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import select, update

from core.db.models import Job, JobStatus, utcnow
from core.errors import MediabotError, RateLimited
from core.events import Message
from core.jobs.views import JobView
from core.media.control import Control
from core.media.results import Downloaded, PlaylistFound
from core.media.sites import display_name
from core.pacing import Granted, Identity, Pacing, Resting, checkout, write_back
from worker.held import Held
from worker.memory import trim_memory

if TYPE_CHECKING:
    from core.media.lazy_downloader import LazyDownloader as Downloader

log = logging.getLogger(__name__)

# Identities tried within one claim before the job goes back to the queue (each refusal rests the one
# used, so this only bounds a pool of many identities that all refuse in turn).
MAX_IDENTITIES_PER_CLAIM = 6
# When the pacing store (Redis) does not answer: ask again this much later.
UNAVAILABLE_RETRY_S = 5.0
HANDED_BACK = object()


class RunnerPacing:
    """The runner's side of core.pacing. Expects `pacing`, `sessions`, `settings`, `queue` on the runner."""

    pacing: Pacing | None

    def _init_pacing(self, pacing: Pacing | None) -> None:
        self.pacing = pacing
        self._timers: dict[str, asyncio.TimerHandle] = {}  # job -> its next ask, for jobs waiting here
        self._waiting_sites: dict[str, str] = {}  # job -> its site, while it waits here
        self._shown: dict[
            str, tuple[str, int | None, float]
        ] = {}  # job -> (site, ahead, when) last published

    # -- the slot ---------------------------------------------------------------------------------------------

    async def _take_site_slot(self, job_id: str) -> str | None:
        """The job's site once it holds a slot of it; None when the job should not run now (it waits, and
        comes back by itself; or it is not queued any more). Without pacing, ""."""
        self._drop_timer(job_id)
        if self.pacing is None or not (self.pacing.limits.by_site or self.pacing.limits.default):
            return ""  # nothing is paced: no read, no call (identities still turn, from the claimed row)
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(Job.url, Job.status, Job.cancel_requested).where(Job.id == job_id)
                )
            ).one_or_none()
        if row is None or row.status != JobStatus.QUEUED or row.cancel_requested:
            await self._forget_place(job_id)
            return None
        site = self._waiting_sites.get(job_id) or await asyncio.to_thread(
            self.downloader.site_of_url, row.url, tuple(self.settings.allowed_extractors)
        )
        try:
            answer = await self.pacing.pacer.try_acquire(site, job_id)
        except Exception as exc:  # noqa: BLE001 - Redis away: ask again soon rather than run unpaced
            log.warning("job %s: pacing unavailable (%s); asking again shortly", job_id, type(exc).__name__)
            self._ask_again(job_id, UNAVAILABLE_RETRY_S)
            return None
        if isinstance(answer, Granted):
            self._waiting_sites.pop(job_id, None)
            self._shown.pop(job_id, None)
            return site
        self._waiting_sites[job_id] = site
        log.debug("job %s waits for %s (%d ahead, %.2fs)", job_id, site, answer.ahead, answer.retry_after)
        await self._show_waiting(job_id, site, answer.ahead)
        self._ask_again(job_id, answer.retry_after)
        return None

    async def _release_site_slot(self, site: str, job_id: str) -> None:
        if self.pacing is None or not site:
            return
        try:
            await self.pacing.pacer.release(site, job_id)
        except Exception as exc:  # noqa: BLE001 - the slot's lease ends by itself
            log.warning("job %s: slot of %s not released (%s)", job_id, site, type(exc).__name__)
            return
        # The first job waiting here for this site asks now rather than at its next poll (jobs waiting on
        # other workers still ask at theirs: a freed slot waits at most SlotTimings.poll_s for them).
        for waiting, waits_for in self._waiting_sites.items():
            if waits_for == site and waiting in self._timers:
                self._ask_again(waiting, 0)
                break

    async def renew_site_slots(self) -> None:
        """Extend the site slots of the jobs running here, with their job leases."""
        if self.pacing is None:
            return
        for job_id, held in list(self.running.items()):
            if held.site:
                if not await self.pacing.pacer.renew(held.site, job_id):
                    log.warning("job %s: its slot of %s had lapsed", job_id, held.site)

    def _ask_again(self, job_id: str, delay: float) -> None:
        loop = asyncio.get_running_loop()
        self._drop_timer(job_id)
        self._timers[job_id] = loop.call_later(
            max(0.02, delay), lambda: self._spawn(self._enqueue_waiting(job_id))
        )

    async def _enqueue_waiting(self, job_id: str) -> None:
        self._timers.pop(job_id, None)
        await self._safe_enqueue(job_id)

    def _drop_timer(self, job_id: str) -> None:
        timer = self._timers.pop(job_id, None)
        if timer is not None:
            timer.cancel()

    async def _forget_place(self, job_id: str) -> None:
        """The job does not wait any more (cancelled, finished elsewhere): the jobs behind it move up now."""
        self._drop_timer(job_id)
        self._shown.pop(job_id, None)
        site = self._waiting_sites.pop(job_id, None)
        if site and self.pacing is not None:
            with contextlib.suppress(Exception):
                await self.pacing.pacer.forget(site, job_id)

    def forget_if_waiting(self, job_id: str) -> bool:
        """A cancel for a job waiting here: drop its place at once. True when it was waiting here."""
        if job_id not in self._waiting_sites:
            return False
        self._spawn(self._forget_place(job_id))
        return True

    async def flush_waiting(self) -> None:
        """Shutting down: the jobs waiting here are asked for again now, by whichever worker takes them."""
        ids = list(self._timers)
        for job_id in ids:
            self._drop_timer(job_id)
        if self.queue.persistent:
            for job_id in ids:
                with contextlib.suppress(Exception):
                    await self.queue.enqueue(job_id)

    async def _show_waiting(self, job_id: str, site: str, ahead: int | None) -> None:
        """Publish the job's place (a new seq, written, so a later event never reuses it); only when it
        changed, or now and then so the reconciler does not take the job for one the queue lost."""
        now = time.monotonic()
        last = self._shown.get(job_id)
        changed = last is None or last[:2] != (site, ahead)
        if not changed and last is not None and now - last[2] < self.settings.stale_queued_s / 3:
            return
        stamp = utcnow()
        values: dict[str, Any] = dict(enqueued_at=stamp)
        if changed:
            values.update(seq=Job.seq + 1, updated_at=stamp)
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED).values(**values)
            )
            job = await session.get(Job, job_id) if result.rowcount == 1 and changed else None
        self._shown[job_id] = (site, ahead, now)
        if job is not None:
            await self._publish_view(waiting_view(job, site, ahead))

    async def _publish_view(self, view: JobView) -> None:
        try:
            await self.bus.publish(Message("job", job=view))
        except Exception as exc:  # noqa: BLE001 - events are best effort
            log.debug("event not published: %s", exc)

    # -- identities -------------------------------------------------------------------------------------------

    async def _download_paced(
        self, held: Held, workdir: Path, on_info: Any
    ) -> Downloaded | PlaylistFound | None | object:
        """The download, with an identity of the site's pool per attempt: a refusal rests the identity and
        the next one is tried. Returns HANDED_BACK when every identity rests and the job went back
        to the queue; raises RateLimited once the site has refused it for longer than the patience."""
        assert self.pacing is not None
        pool = self.pacing.identities
        job = held.job
        site = held.site or await asyncio.to_thread(
            self.downloader.site_of_url, job.url, tuple(self.settings.allowed_extractors)
        )
        loop = asyncio.get_running_loop()
        for _ in range(MAX_IDENTITIES_PER_CLAIM):
            identity = await pool.choose(site, job.url)
            if isinstance(identity, Resting):
                return await self._all_resting(held, site, identity)
            try:
                result = await loop.run_in_executor(
                    self._pool, _download_as, self.downloader, job, workdir, held.control, on_info, identity
                )
            except MediabotError as exc:
                if exc.outcome is None or held.control.cancel.is_set():
                    raise
                await self._refused(identity, exc.outcome)
                await asyncio.to_thread(shutil.rmtree, workdir, True)
                continue
            await pool.succeeded(identity)
            with contextlib.suppress(Exception):
                await self.pacing.patience.clear(job.id)
            return result
        resting = Resting(site, time.time() + self.settings.site_backoff_s)
        return await self._all_resting(held, site, resting)

    async def _refused(self, identity: Identity, outcome: str) -> None:
        assert self.pacing is not None
        pool = self.pacing.identities
        if outcome == "proxy_failed":
            await pool.proxy_failed(identity)
        elif outcome == "login_required":
            if identity.cookies is None:
                # No account of ours helps: the site wants one we do not have.
                raise _login_required()
            await pool.login_required(identity)
        else:
            await pool.rate_limited(identity, bot_check=outcome == "bot_check")

    async def _all_resting(self, held: Held, site: str, resting: Resting) -> object:
        """Every identity of the site rests: back to the queue until the patience runs out, then fail."""
        assert self.pacing is not None
        job = held.job
        patience = self.settings.site_patience_s
        first = await self.pacing.patience.since(job.id, patience * 2 + 3600)
        left = first + patience - time.time()
        name = display_name(site)
        if left <= 0:
            wait_s = max(60.0, resting.retry_after)
            raise RateLimited(wait_s, refusing_sentence(name, wait_s))
        log.info("job %s: every identity for %s rests; back in the queue", job.id, site)
        await self._release_site_slot(site, job.id)
        held.site = ""
        if await self._hand_back_waiting(held, site):
            self._waiting_sites[job.id] = site
            # Back when the first identity is, or at the end of the patience to fail then.
            self._ask_again(job.id, min(max(resting.retry_after, 0.05), left + 0.05))
        return HANDED_BACK

    async def _hand_back_waiting(self, held: Held, site: str) -> bool:
        job = held.job
        now = utcnow()
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                self._owned(job.id).values(
                    status=JobStatus.QUEUED,
                    worker_id=None,
                    lease_until=None,
                    attempts=Job.attempts - 1,
                    enqueued_at=now,
                    updated_at=now,
                    speed=None,
                    eta=None,
                    seq=job.seq + 1,
                )
            )
            fresh = await session.get(Job, job.id, populate_existing=True) if result.rowcount == 1 else None
        if fresh is None:
            return False
        self._shown[job.id] = (site, None, time.monotonic())
        await self._publish_view(waiting_view(fresh, site, None))
        return True


def waiting_view(job: Job, site: str, ahead: int | None) -> JobView:
    """The job's snapshot with what it waits for: `ahead` jobs before it, or None: the site refuses us."""
    return JobView.from_job(job).model_copy(update={"waiting_for": display_name(site), "ahead": ahead})


def refusing_sentence(name: str, wait_s: float) -> str:
    minutes = max(1, math.ceil(wait_s / 60))
    when = f"in about {minutes} minute{'s' if minutes != 1 else ''}"
    if minutes >= 90:
        hours = round(minutes / 60)
        when = f"in about {hours} hour{'s' if hours != 1 else ''}"
    return f"{name} is refusing our downloads for now; try again {when}."


def _login_required() -> MediabotError:
    from core.errors import LoginRequired

    return LoginRequired()


def _download_as(
    downloader: Downloader, job: Job, workdir: Path, control: Control, on_info: Any, identity: Identity
) -> Downloaded | PlaylistFound | None:
    """One attempt as `identity`, on a download thread: a private copy of its cookies file (what the site
    refreshed is written back after a success), its proxy."""
    from core.media.access import Access  # no yt-dlp: the download itself may run in a child process

    try:
        workdir.mkdir(parents=True, exist_ok=True)
        copy = checkout(identity.cookies.path, workdir) if identity.cookies is not None else None
        access = Access(copy.copy if copy else None, identity.proxy.url if identity.proxy else None)
        try:
            result = downloader.run(
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
                access=access,
            )
        except MediabotError as exc:
            if exc.outcome is None and access.proxy and not _reachable(access.proxy):
                exc.outcome = "proxy_failed"
            raise
        if copy is not None:
            write_back(copy)
        return result
    finally:
        trim_memory()


def _reachable(proxy: str) -> bool:
    """Whether the proxy takes a connection: a download that could not reach its site through a proxy that
    does not is the proxy's failure, not the site's."""
    parts = urlsplit(proxy)
    port = parts.port or (1080 if parts.scheme.startswith("socks") else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=3):
            return True
    except OSError:
        return False
