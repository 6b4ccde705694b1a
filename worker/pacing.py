"""Per-site pacing in the runner (issue 23): a slot of the job's site before the claim, an identity
(cookies file + proxy) per attempt, and what a site's refusal does to both.

A job whose site has no free slot stays `queued`: its row and snapshot say what it waits for and how many are
ahead (`waiting_for`, `ahead`; cleared by the claim), and this worker asks again after `retry_after` by
enqueueing it anew, meanwhile taking other messages. If this worker dies meanwhile, the reconciler's
stale-queued pass enqueues it. A job whose site refuses every identity goes back to the queue the same way
until MEDIABOT_SITE_PATIENCE_S has passed since the first refusal, then fails with `rate_limited`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from core.db.models import Job, JobStatus, utcnow
from core.errors import MediabotError, RateLimited
from core.events import Message
from core.jobs.views import JobView
from core.media.results import Downloaded, PlaylistFound
from core.media.sites import display_name, site_of_url
from core.pacing import Granted, Pacing, Resting, Waiting
from worker.attempt import (
    MAX_IDENTITIES,
    UNAVAILABLE_RETRY_S,
    download_as,
    refused,
    refusing_sentence,
)
from worker.held import Held

log = logging.getLogger(__name__)

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

    def _paced(self) -> bool:
        return self.pacing is not None and bool(self.pacing.limits.by_site or self.pacing.limits.default)

    async def _site_to_ask(self, job_id: str) -> str | None:
        """The site whose slot the job needs, read before the job asks for a worker slot (the row, and yt-dlp's
        extractors matching the link, can take a while: no worker slot waits for them); None when the job is
        not queued any more. Without limits, "": nothing to ask."""
        self._drop_timer(job_id)
        if not self._paced():
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
        return self._waiting_sites.get(job_id) or await asyncio.to_thread(
            site_of_url, row.url, tuple(self.settings.allowed_extractors)
        )

    async def _take_site_slot(self, job_id: str, site: str) -> Waiting | None:
        """Ask the site's slot for the job, with a worker slot in hand: None when granted (or nothing is
        paced); else the job waits and comes back by itself, and the caller gives the worker slot back
        before it shows the place (_show_waiting)."""
        if not site or self.pacing is None:
            return None
        try:
            answer = await self.pacing.pacer.try_acquire(site, job_id)
        except Exception as exc:  # noqa: BLE001 - Redis away: ask again soon rather than run unpaced
            log.warning("job %s: pacing unavailable (%s); asking again shortly", job_id, type(exc).__name__)
            self._ask_again(job_id, UNAVAILABLE_RETRY_S)
            return Waiting(site, -1, UNAVAILABLE_RETRY_S)
        if isinstance(answer, Granted):
            self._waiting_sites.pop(job_id, None)
            self._shown.pop(job_id, None)
            return None
        self._waiting_sites[job_id] = site
        log.debug("job %s waits for %s (%d ahead, %.2fs)", job_id, site, answer.ahead, answer.retry_after)
        self._ask_again(job_id, answer.retry_after)
        return answer

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
        if ahead is not None and ahead < 0:
            return  # the pacing store did not answer: no place to show
        now = time.monotonic()
        last = self._shown.get(job_id)
        changed = last is None or last[:2] != (site, ahead)
        if not changed and last is not None and now - last[2] < self.settings.stale_queued_s / 3:
            return
        stamp = utcnow()
        values: dict[str, Any] = dict(enqueued_at=stamp)
        if changed:
            values.update(
                seq=Job.seq + 1, updated_at=stamp, waiting_for=display_name(site), waiting_ahead=ahead
            )
        async with self.sessions() as session, session.begin():
            result = await session.execute(
                update(Job).where(Job.id == job_id, Job.status == JobStatus.QUEUED).values(**values)
            )
            job = await session.get(Job, job_id) if result.rowcount == 1 and changed else None
        self._shown[job_id] = (site, ahead, now)
        if job is not None:
            await self._publish_view(JobView.from_job(job))

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
            site_of_url, job.url, tuple(self.settings.allowed_extractors)
        )
        loop = asyncio.get_running_loop()
        for _ in range(MAX_IDENTITIES):
            identity = await pool.choose(site, job.url)
            if isinstance(identity, Resting):
                return await self._all_resting(held, site, identity)
            try:
                result = await loop.run_in_executor(
                    self._pool, download_as, self.downloader, job, workdir, held.control, on_info, identity
                )
            except MediabotError as exc:
                if exc.outcome is None or held.control.cancel.is_set():
                    raise
                await refused(self.pacing, identity, exc.outcome)
                await asyncio.to_thread(shutil.rmtree, workdir, True)
                continue
            await pool.succeeded(identity)
            with contextlib.suppress(Exception):
                await self.pacing.patience.clear(job.id)
            return result
        resting = Resting(site, time.time() + self.settings.site_backoff_s)
        return await self._all_resting(held, site, resting)

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
                    waiting_for=display_name(site),
                    waiting_ahead=None,
                )
            )
            fresh = await session.get(Job, job.id, populate_existing=True) if result.rowcount == 1 else None
        if fresh is None:
            return False
        self._shown[job.id] = (site, None, time.monotonic())
        await self._publish_view(JobView.from_job(fresh))
        return True
