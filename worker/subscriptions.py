"""The subscription scheduler in every worker: checks due subscriptions, one worker per subscription at a time.

Each round takes the lease of a few due subscriptions (core.subscriptions.service.claim_due: a conditional
UPDATE, so two workers never check the same one), lists each channel's newest entries flat (one listing, at
most MAX_PLAYLIST_ITEMS, stopping at the last seen entry), and submits each new entry as an ordinary request
of the subscription's owner: coalescing makes one download however many subscriptions follow the channel,
and each front end delivers its requests the way it delivers any (the bots pick them up from the database).

A listing is a request of the site like a download (issue 23): it waits for a slot of the site's budget, goes
as the site's next identity, and a rate limit rests that identity and puts the check off until it is back
(`CheckResult.retry_after`): a back-off, never a failure that counts towards pausing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from core.errors import MediabotError
from core.events import EventBus, Message
from core.media.results import PlaylistFound
from core.media.sites import site_of_url
from core.net import normalize_url
from core.pacing import Pacing
from core.subscriptions.entries import new_entries
from core.subscriptions.service import CheckResult, SubscriptionService, SubscriptionView
from worker.attempt import Deferred, paced_call

if TYPE_CHECKING:
    # Only the type: the worker's downloader is a LazyDownloader, so yt-dlp loads with the first job.
    from core.media.lazy_downloader import LazyDownloader as Downloader

log = logging.getLogger(__name__)

BATCH = 50  # subscriptions leased per claim
PARALLEL = 4  # listings (and submissions of what they found) at once in one worker
CHAT_SOURCES = ("telegram", "discord")
# The bus message that tells the bots a subscription made requests (or was paused) for them.
WAKE = "subscription"
# How long a check waits in place for a slot of its site: a round waits for its slowest check, so a site with
# a long line puts its checks off (they keep their place: attempt.paced_call's keep_place) and asks again at
# the next round, seconds later, as a waiting job does; the other sites' checks go on meanwhile.
SLOT_WAIT_S = 1.0


class SubscriptionScheduler:
    def __init__(
        self,
        subscriptions: SubscriptionService,
        downloader: Downloader,
        bus: EventBus,
        worker_id: str,
        pacing: Pacing | None = None,
    ) -> None:
        self.subscriptions = subscriptions
        self.pacing = pacing
        self.settings = subscriptions.settings
        self.downloader = downloader
        self.bus = bus
        self.worker_id = worker_id
        self._slots = asyncio.Semaphore(PARALLEL)
        # Listings read in the current round, by channel: many subscriptions to one channel (a chat each)
        # cost the site one listing per worker and round, not one each.
        # None outside a round (a check on its own lists afresh).
        self._listings: dict[str, asyncio.Future[PlaylistFound]] | None = None

    @property
    def tick_s(self) -> float:
        """How often a worker looks for due subscriptions: often enough that none waits long past its time."""
        return min(max(self.settings.subscription_interval_s / 4, 0.05), 5.0)

    async def once(self) -> int:
        """Check every subscription due now (in batches); how many were checked."""
        checked = 0
        self._listings = {}
        try:
            while True:
                due = await self.subscriptions.claim_due(self.worker_id, BATCH)
                if not due:
                    return checked
                results = await asyncio.gather(*(self._check_one(sub) for sub in due))
                checked += len(due)
                if any(results):
                    await self._wake()
        finally:
            self._listings = None

    async def _check_one(self, sub: SubscriptionView) -> bool:
        """Check one subscription; True when a chat has something new to deliver (or to be told)."""
        result = await self.check(sub)
        paused = await self.subscriptions.finish_check(sub, self.worker_id, result)
        if paused:
            log.warning("subscription %s paused after %d failed checks", sub.id, sub.failures + 1)
        return sub.source in CHAT_SOURCES and (result.delivered > 0 or paused)

    async def check(self, sub: SubscriptionView) -> CheckResult:
        try:
            listed = await self._listing(sub.url)
        except Deferred as exc:
            # A busy site's line is asked again every few seconds: only a rest is worth a line at INFO.
            log.log(
                logging.INFO if exc.retry_after >= 60 else logging.DEBUG,
                "subscription %s: %s makes us wait; checked again in %.0fs",
                sub.id,
                exc.site,
                exc.retry_after,
            )
            return CheckResult(retry_after=exc.retry_after)
        except MediabotError as exc:
            log.info("subscription %s: listing failed (%s)", sub.id, exc.code)
            return CheckResult(error=exc.message)
        except Exception as exc:  # noqa: BLE001 - any failure counts towards pausing, none stops the loop
            log.warning("subscription %s: listing failed (%s)", sub.id, type(exc).__name__)
            return CheckResult(error="The channel could not be read.")
        fresh, seen = new_entries(listed.entries, sub.seen, sub.backfill)
        playable = self.settings.chat_playable and sub.source in CHAT_SOURCES and sub.kind == "video"
        delivered = 0
        async with self._slots:
            for entry in fresh:
                try:
                    await self.subscriptions.submit_entry(sub, entry["url"], playable=playable)
                    delivered += 1
                except MediabotError as exc:
                    # One entry refused (a private address, an unsupported link): the others still go.
                    log.info("subscription %s: entry not submitted (%s)", sub.id, exc.code)
        if fresh:
            log.info("subscription %s: %d new of %d listed", sub.id, len(fresh), len(listed.entries))
        return CheckResult(seen=seen, title=listed.title, delivered=delivered)

    async def _listing(self, url: str) -> PlaylistFound:
        """The channel's newest entries, listed once per round however many subscriptions follow it."""
        if self._listings is None:
            return await self._list(url)
        key = normalize_url(url)
        listing = self._listings.get(key)
        if listing is None:
            listing = asyncio.ensure_future(self._list(url))
            listing.add_done_callback(_retrieved)
            self._listings[key] = listing
        return await asyncio.shield(listing)

    async def _list(self, url: str) -> PlaylistFound:
        """One listing, paced like a download of the same site (its slots, its identities). Only the listing
        itself takes one of this worker's PARALLEL places: a check waiting for its site holds none."""
        if self.pacing is None:
            async with self._slots:
                return await asyncio.to_thread(self.downloader.list_entries, url)
        site = await asyncio.to_thread(site_of_url, url, tuple(self.settings.allowed_extractors))
        # One name per channel and worker: a check put off by a long line keeps its place for the next one
        # (seconds later), and two workers listing one channel are two holders.
        channel = hashlib.sha256(normalize_url(url).encode()).hexdigest()[:16]
        return await paced_call(
            self.pacing,
            site,
            f"list-{self.worker_id}-{channel}",
            url,
            lambda access: self.downloader.list_entries(url, access),
            wait_s=SLOT_WAIT_S,
            tmp_dir=self.settings.tmp_dir,
            run=self._in_place,
            keep_place=True,
        )

    async def _in_place(self, listing: Callable[[], PlaylistFound]) -> PlaylistFound:
        async with self._slots:
            return await asyncio.to_thread(listing)

    async def _wake(self) -> None:
        try:
            await self.bus.publish(Message(WAKE))
        except Exception as exc:  # noqa: BLE001 - the bots also look on their own every interval
            log.warning("event bus unavailable (%s)", type(exc).__name__)


def _retrieved(future: asyncio.Future[Any]) -> None:
    """A listing's failure is each waiting check's to report; never "exception was never retrieved"."""
    if not future.cancelled():
        future.exception()
