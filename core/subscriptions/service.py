"""Subscribing, listing, unsubscribing; and the database side of a check (lease, results, pausing)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.admin.service import check_not_banned
from core.config import Settings
from core.db.models import Subscription, utcnow
from core.errors import InvalidRequest, NotFound
from core.i18n import N_, _
from core.jobs.choices import QUALITIES, SubmitRequest
from core.jobs.keys import new_id
from core.jobs.service import JobService
from core.jobs.views import Submission
from core.net import normalize_url
from core.webhooks.hooks import check_callback_url

MAX_BACKFILL = 50
# A check's lease: long enough for a slow listing; a worker that dies mid-check frees it this late.
CHECK_LEASE_S = 120.0
# What a subscription's requests carry in their target: the bots find them by it.
MARK = "subscription"


@dataclass(frozen=True)
class SubscribeRequest:
    """One person's ask to follow a channel or playlist into `place` (where `target` says)."""

    text: str
    source: str
    user_id: str
    place: str
    target: dict[str, Any] = field(default_factory=dict)
    kind: str = "video"
    quality: str = "best"
    callback_url: str | None = None
    backfill: int = 0


@dataclass(frozen=True)
class SubscriptionView:
    id: str
    url: str
    kind: str
    quality: str
    source: str
    user_id: str
    place: str
    target: dict[str, Any]
    title: str | None
    callback_url: str | None
    paused: bool
    failures: int
    last_error: str | None
    checks: int
    delivered: int
    backfill: int
    seen: list[str] | None
    created_at: datetime
    checked_at: datetime | None
    next_check_at: datetime

    @classmethod
    def of(cls, row: Subscription) -> SubscriptionView:
        return cls(
            id=row.id, url=row.url, kind=row.kind, quality=row.quality, source=row.source, user_id=row.user_id,
            place=row.place, target=dict(row.target or {}), title=row.title, callback_url=row.callback_url,
            paused=row.paused, failures=row.failures, last_error=row.last_error, checks=row.checks,
            delivered=row.delivered, backfill=row.backfill, seen=list(row.seen) if row.seen is not None else None,
            created_at=row.created_at, checked_at=row.checked_at, next_check_at=row.next_check_at,
        )  # fmt: skip


@dataclass(frozen=True)
class CheckResult:
    """What one check of a subscription found: entries listed, seen afterwards, delivered; or an error."""

    seen: list[str] | None = None
    title: str | None = None
    delivered: int = 0
    error: str | None = None
    # The site kept us waiting (no slot in time, every identity resting): not checked, not a failure; the
    # next check is this many seconds away (at most the interval).
    retry_after: float | None = None


class SubscriptionService:
    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], jobs: JobService
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.jobs = jobs

    # -- people's side ------------------------------------------------------------------------------------

    async def subscribe(self, req: SubscribeRequest) -> tuple[SubscriptionView, bool]:
        """Follow a link into a place; the same link, kind and quality in the same place is the existing
        subscription (False: not new), resumed if it was paused."""
        if req.kind not in ("video", "audio"):
            raise InvalidRequest(N_("Kind must be video or audio."))
        quality = "best" if req.kind == "audio" else (req.quality or "best")
        if quality not in QUALITIES:
            raise InvalidRequest(
                _("Quality must be one of: {choices}.").format(choices=", ".join(sorted(QUALITIES)))
            )
        if not 0 <= req.backfill <= MAX_BACKFILL:
            raise InvalidRequest(_("Backfill must be from 0 to {max}.").format(max=MAX_BACKFILL))
        async with self.sessions() as session:
            await check_not_banned(session, req.source, str(req.user_id))  # issue 24: as submit does
        url = await self.jobs.check(req.text)
        callback = None
        if req.callback_url is not None:
            callback = await check_callback_url(req.callback_url, self.jobs.policy)
        now = utcnow()
        row = Subscription(
            id=new_id(), url=url, cache_key=normalize_url(url), kind=req.kind, quality=quality,
            source=req.source, user_id=str(req.user_id), place=req.place, target=dict(req.target),
            callback_url=callback, seen=None, backfill=req.backfill, failures=0, paused=False,
            next_check_at=now, checks=0, delivered=0, created_at=now,
        )  # fmt: skip
        try:
            async with self.sessions() as session, session.begin():
                session.add(row)
            return SubscriptionView.of(row), True
        except IntegrityError:
            pass
        async with self.sessions() as session, session.begin():
            existing = await session.scalar(
                select(Subscription).where(
                    Subscription.place == req.place, Subscription.cache_key == row.cache_key,
                    Subscription.kind == req.kind, Subscription.quality == quality,
                )
            )  # fmt: skip
            if existing is None:
                raise NotFound()
            if existing.paused:
                existing.paused, existing.failures, existing.told_at = False, 0, None
                existing.next_check_at = now
            return SubscriptionView.of(existing), False

    async def list(
        self, *, source: str, user_id: str | None = None, place: str | None = None
    ) -> list[SubscriptionView]:
        """A person's subscriptions (`user_id`), or those delivered into a place (`place`), oldest first."""
        query = select(Subscription).where(Subscription.source == source)
        if user_id is not None:
            query = query.where(Subscription.user_id == str(user_id))
        if place is not None:
            query = query.where(Subscription.place == place)
        async with self.sessions() as session:
            rows = await session.scalars(query.order_by(Subscription.created_at, Subscription.id))
            return [SubscriptionView.of(r) for r in rows]

    async def get(self, subscription_id: str, *, source: str, user_id: str) -> SubscriptionView:
        async with self.sessions() as session:
            row = await session.get(Subscription, subscription_id)
        if row is None or row.source != source or row.user_id != str(user_id):
            raise NotFound(N_("No such subscription."))
        return SubscriptionView.of(row)

    async def unsubscribe(
        self, subscription_id: str, *, source: str, user_id: str | None = None, place: str | None = None
    ) -> SubscriptionView:
        """Stop one subscription of its owner (`user_id`) or of a place (`place`: anyone there may)."""
        async with self.sessions() as session, session.begin():
            row = await session.get(Subscription, subscription_id)
            mine = row is not None and row.source == source
            if mine and user_id is not None and row is not None:
                mine = row.user_id == str(user_id)
            if mine and place is not None and row is not None:
                mine = row.place == place
            if row is None or not mine:
                raise NotFound(N_("No such subscription."))
            view = SubscriptionView.of(row)
            await session.execute(delete(Subscription).where(Subscription.id == subscription_id))
        return view

    # -- the scheduler's side -----------------------------------------------------------------------------

    async def claim_due(
        self, worker_id: str, limit: int, now: datetime | None = None
    ) -> list[SubscriptionView]:
        """Take the lease of up to `limit` subscriptions due for a check. One conditional UPDATE ... RETURNING:
        a row whose lease another worker took in between no longer matches, on SQLite and PostgreSQL alike."""
        now = now or utcnow()
        free = or_(Subscription.lease_until.is_(None), Subscription.lease_until < now)
        due = (
            select(Subscription.id)
            .where(Subscription.paused.is_(False), Subscription.next_check_at <= now, free)
            .order_by(Subscription.next_check_at)
            .limit(limit)
        )
        async with self.sessions() as session, session.begin():
            ids = list(await session.scalars(due))
            if not ids:
                return []
            claimed = await session.scalars(
                update(Subscription)
                .where(Subscription.id.in_(ids), Subscription.paused.is_(False), free)
                .values(lease_until=now + timedelta(seconds=CHECK_LEASE_S), worker_id=worker_id)
                .returning(Subscription)
                .execution_options(synchronize_session=False)
            )
            return [SubscriptionView.of(r) for r in claimed]

    async def submit_entry(self, sub: SubscriptionView, url: str, *, playable: bool) -> Submission:
        """A new entry as an ordinary request of the subscription's owner, delivered where it asked. The
        idempotency key makes a check repeated after a crash find the same request, not make another."""
        key = "sub:" + hashlib.sha256(f"{sub.id} {normalize_url(url)}".encode()).hexdigest()[:40]
        return await self.jobs.submit(
            SubmitRequest(
                text=url, source=sub.source, user_id=sub.user_id, kind=sub.kind,  # type: ignore[arg-type]
                quality=sub.quality, target={**sub.target, MARK: sub.id}, callback_url=sub.callback_url,
                idempotency_key=key, playable=playable,
            )
        )  # fmt: skip

    async def finish_check(self, sub: SubscriptionView, worker_id: str, result: CheckResult) -> bool:
        """Record a check and free the lease (only if still ours). True when this check paused it."""
        now = utcnow()
        values: dict[str, Any] = {
            "lease_until": None, "worker_id": None, "checked_at": now, "checks": Subscription.checks + 1,
            "next_check_at": now + timedelta(seconds=self.settings.subscription_interval_s),
        }  # fmt: skip
        paused = False
        if result.retry_after is not None:
            wait_s = min(max(result.retry_after, 1.0), self.settings.subscription_interval_s)
            values = {
                "lease_until": None,
                "worker_id": None,
                "next_check_at": now + timedelta(seconds=wait_s),
            }
        elif result.error is None:
            values.update(failures=0, last_error=None, seen=result.seen, backfill=0,
                          delivered=Subscription.delivered + result.delivered)  # fmt: skip
            if result.title and not sub.title:
                values["title"] = result.title
        else:
            failures = sub.failures + 1
            paused = failures >= self.settings.subscription_max_failures
            values.update(failures=failures, last_error=result.error[:500], paused=paused)
        async with self.sessions() as session, session.begin():
            done = await session.execute(
                update(Subscription)
                .where(Subscription.id == sub.id, Subscription.worker_id == worker_id)
                .values(**values)
            )
        return paused and done.rowcount == 1

    async def to_tell(self, source: str) -> list[SubscriptionView]:
        """Paused subscriptions of a front end whose owner nobody told yet, each handed out once: the
        conditional update makes one process (and one call) take each."""
        now = utcnow()
        async with self.sessions() as session, session.begin():
            rows = await session.scalars(
                update(Subscription)
                .where(
                    Subscription.source == source,
                    Subscription.paused.is_(True),
                    Subscription.told_at.is_(None),
                )
                .values(told_at=now)
                .returning(Subscription)
                .execution_options(synchronize_session=False)
            )
            return [SubscriptionView.of(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        """For /metrics: subscriptions (active, paused), checks made, entries delivered, failing ones."""
        async with self.sessions() as session:
            row = (
                await session.execute(
                    select(
                        func.count(),
                        func.count().filter(Subscription.paused.is_(True)),
                        func.coalesce(func.sum(Subscription.checks), 0),
                        func.coalesce(func.sum(Subscription.delivered), 0),
                        func.count().filter(Subscription.failures > 0),
                    ).select_from(Subscription)
                )
            ).one()
        total, paused, checks, delivered, failing = (int(v) for v in row)
        return {"subscriptions": total - paused, "paused": paused, "checks": checks,
                "new_items": delivered, "failing": failing}  # fmt: skip
