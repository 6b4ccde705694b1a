"""Bans, per-person quotas, figures and the queue, for the operator's commands in every front end."""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import String, and_, case, func, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.admin import texts
from core.admin.views import (
    BanView,
    PeriodStats,
    QueuedJob,
    QueueView,
    Quota,
    SiteCount,
    SiteQueue,
    UserCount,
)
from core.config import Settings
from core.db.models import Ban, Job, JobStatus, QuotaOverride, Request, UserPrefs, utcnow
from core.errors import InvalidRequest, MediabotError, NotFound

log = logging.getLogger(__name__)

SOURCES = ("telegram", "discord", "api")
_USER_ID = re.compile(r"[A-Za-z0-9_.@:-]{1,128}")
MAX_REASON = 200
MAX_PER_HOUR = 100_000
TOP = 5  # sites and users listed in the figures
QUEUE_LISTED = 50  # jobs listed one by one in the queue view


class Banned(MediabotError):
    """The person asking is banned: the one sentence they read, whatever they sent."""

    code = "banned"
    default_message = texts.BANNED


class CannotBan(MediabotError):
    """A well-formed ban that must not be made: on yourself, or on an operator."""

    code = "cannot_ban"
    default_message = texts.BAN_SELF


def site_of(extractor: str | None, url: str) -> str:
    """What the operator calls a site: yt-dlp's extractor when it named one, else the link's host."""
    if extractor and extractor.lower() not in ("generic", "html5"):
        return extractor.lower().split(":")[0]
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.") or "unknown"


def _authority(dialect: str) -> Any:
    """A link's authority (host, maybe a port or a login) in SQL, the same on SQLite and PostgreSQL, so the
    figures count sites in the database and site_of tidies the few distinct ones."""
    find = func.strpos if dialect == "postgresql" else func.instr
    rest = func.substr(Job.url, find(Job.url, "://") + 3, type_=String)
    return func.substr(rest, 1, find(rest.concat("/"), "/") - 1, type_=String)


def check_who(source: str, user_id: str) -> tuple[str, str]:
    source, user_id = str(source).strip().lower(), str(user_id).strip()
    if source not in SOURCES:
        raise InvalidRequest(texts.BAD_SOURCE)
    if not _USER_ID.fullmatch(user_id):
        raise InvalidRequest(texts.BAD_USER_ID)
    return source, user_id


async def check_not_banned(session: AsyncSession, source: str, user_id: str) -> None:
    """Banned when (source, user_id) is: the core's submit path calls this, so every front end obeys."""
    ban = await session.get(Ban, (source, str(user_id)))
    if ban is not None:
        raise Banned(texts.banned(ban.reason))


def _ban(row: Ban) -> BanView:
    return BanView(row.source, row.user_id, row.reason, row.banned_by, row.created_at)


class AdminService:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.settings = settings
        self.sessions = sessions

    # -- who may ask, and how much ------------------------------------------------------------------------

    async def admit(self, source: str, user_id: str) -> Quota:
        """The person's quota, or Banned: what a chat front end asks before its own limit checks."""
        async with self.sessions() as session:
            await check_not_banned(session, source, user_id)
            row = await session.get(QuotaOverride, (source, str(user_id)))
        if row is not None:
            return Quota(row.requests_per_hour, overridden=True)
        return Quota(self.settings.user_requests_per_hour)

    async def banned(self, source: str, user_id: str) -> str | None:
        """The sentence a banned person reads, or None when they are not banned (or the bans cannot be read
        now: the front end then answers as usual, and submit, which checks again, says the service is down)."""
        try:
            async with self.sessions() as session:
                await check_not_banned(session, source, user_id)
        except Banned as exc:
            return exc.message
        except (OperationalError, DBAPIError, OSError) as exc:
            log.warning(
                "bans not readable (%s); %s:%s let through to submit", type(exc).__name__, source, user_id
            )
        return None

    # -- bans -----------------------------------------------------------------------------------------------

    async def ban(
        self,
        source: str,
        user_id: str,
        *,
        reason: str | None,
        by: str,
        by_user: tuple[str, str] | None = None,
    ) -> BanView:
        """Ban (or re-ban with a new reason) someone who has used the service. `by` names the operator in
        the record; `by_user` is their own (source, id) when they have one, so they cannot ban themselves."""
        source, user_id = check_who(source, user_id)
        reason = " ".join((reason or "").split()) or None
        if reason is not None and len(reason) > MAX_REASON:
            raise InvalidRequest(texts.REASON_TOO_LONG)
        if by_user is not None and by_user == (source, user_id):
            raise CannotBan(texts.BAN_SELF)
        if self._operator(source, user_id):
            raise CannotBan(texts.BAN_OPERATOR)
        async with self.sessions() as session, session.begin():
            if not await self._known(session, source, user_id):
                raise NotFound(texts.UNKNOWN_USER)
            row = await session.get(Ban, (source, user_id), with_for_update=True)
            if row is None:
                row = Ban(source=source, user_id=user_id, created_at=utcnow(), banned_by=by)
                session.add(row)
            row.reason, row.banned_by = reason, by
            view = _ban(row)
        log.info("%s:%s banned by %s", source, user_id, by)
        return view

    async def unban(self, source: str, user_id: str, *, by: str) -> None:
        source, user_id = check_who(source, user_id)
        async with self.sessions() as session, session.begin():
            row = await session.get(Ban, (source, user_id))
            if row is None:
                raise NotFound(texts.NOT_BANNED)
            await session.delete(row)
        log.info("%s:%s unbanned by %s", source, user_id, by)

    async def bans(self) -> list[BanView]:
        async with self.sessions() as session:
            rows = await session.scalars(select(Ban).order_by(Ban.created_at.desc(), Ban.user_id))
            return [_ban(row) for row in rows]

    def _operator(self, source: str, user_id: str) -> bool:
        admins = {"telegram": self.settings.telegram_admins, "discord": self.settings.discord_admins}
        return user_id in admins.get(source, [])

    @staticmethod
    async def _known(session: AsyncSession, source: str, user_id: str) -> bool:
        """Whether the person ever asked for anything or chose a setting (an id typed wrong is not)."""
        for table in (Request, UserPrefs):
            found = await session.scalar(
                select(table.user_id).where(table.source == source, table.user_id == user_id).limit(1)
            )
            if found is not None:
                return True
        return False

    # -- quotas ---------------------------------------------------------------------------------------------

    async def quota(self, source: str, user_id: str) -> Quota:
        source, user_id = check_who(source, user_id)
        async with self.sessions() as session:
            row = await session.get(QuotaOverride, (source, user_id))
        if row is not None:
            return Quota(row.requests_per_hour, overridden=True)
        return Quota(self.settings.user_requests_per_hour)

    async def set_quota(self, source: str, user_id: str, per_hour: int | None, *, by: str) -> Quota:
        """Give one person `per_hour` downloads per hour; None: back to MEDIABOT_USER_REQUESTS_PER_HOUR."""
        source, user_id = check_who(source, user_id)
        if per_hour is not None and (isinstance(per_hour, bool) or not 1 <= per_hour <= MAX_PER_HOUR):
            raise InvalidRequest(texts.BAD_LIMIT)
        async with self.sessions() as session, session.begin():
            row = await session.get(QuotaOverride, (source, user_id), with_for_update=True)
            if per_hour is None:
                if row is not None:
                    await session.delete(row)
            else:
                if not await self._known(session, source, user_id):
                    raise NotFound(texts.UNKNOWN_USER)
                if row is None:
                    row = QuotaOverride(source=source, user_id=user_id)
                    session.add(row)
                row.requests_per_hour, row.set_by, row.updated_at = per_hour, by, utcnow()
        log.info("%s:%s quota set to %s by %s", source, user_id, per_hour or "default", by)
        if per_hour is None:
            return Quota(self.settings.user_requests_per_hour)
        return Quota(per_hour, overridden=True)

    # -- figures --------------------------------------------------------------------------------------------

    async def stats(self, now: datetime | None = None) -> list[PeriodStats]:
        """Today (since midnight UTC) and the last 7 days."""
        now = now or utcnow()
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return [
            await self._period("today", texts.TODAY, midnight),
            await self._period("7d", texts.LAST_7_DAYS, now - timedelta(days=7)),
        ]

    async def _period(self, name: str, label: str, since: datetime) -> PeriodStats:
        asked = and_(Request.created_at >= since, Request.parent_id.is_(None))
        downloaded = and_(
            Job.finished_at >= since,
            Job.status == JobStatus.DONE,
            Job.cached_from.is_(None),
            Job.filesize.is_not(None),  # a playlist is its items' downloads, not one of its own
        )
        async with self.sessions() as session:
            requests, hits = (
                await session.execute(
                    select(
                        func.count(),
                        func.coalesce(func.sum(case((Request.outcome == "cached", 1), else_=0)), 0),
                    ).where(asked)
                )
            ).one()
            downloads, size = (
                await session.execute(
                    select(func.count(), func.coalesce(func.sum(Job.filesize), 0)).where(downloaded)
                )
            ).one()
            code = func.coalesce(Job.error_code, "unknown")
            failures = (
                await session.execute(
                    select(code, func.count())
                    .where(Job.finished_at >= since, Job.status == JobStatus.FAILED)
                    .group_by(code)
                    .order_by(func.count().desc(), code)
                )
            ).all()
            authority = _authority(self.sessions.kw["bind"].dialect.name)
            per_site = (
                await session.execute(
                    select(Job.extractor, authority, func.count())
                    .join(Request, Request.job_id == Job.id)
                    .where(asked)
                    .group_by(Job.extractor, authority)
                )
            ).all()
            users = (
                await session.execute(
                    select(Request.source, Request.user_id, func.count())
                    .where(asked)
                    .group_by(Request.source, Request.user_id)
                    .order_by(func.count().desc(), Request.source, Request.user_id)
                    .limit(TOP)
                )
            ).all()
        sites: Counter[str] = Counter()
        for extractor, where, count in per_site:
            sites[site_of(extractor, f"http://{where or ''}")] += int(count)
        return PeriodStats(
            name=name,
            label=label,
            since=since,
            requests=int(requests or 0),
            downloads=int(downloads or 0),
            cache_hits=int(hits or 0),
            bytes=int(size or 0),
            failures={str(c): int(n) for c, n in failures},
            top_sites=[SiteCount(s, n) for s, n in sorted(sites.items(), key=lambda i: (-i[1], i[0]))[:TOP]],
            busiest_users=[UserCount(s, u, int(n)) for s, u, n in users],
        )

    # -- the queue ------------------------------------------------------------------------------------------

    async def queue(self) -> QueueView:
        """What runs and waits now, by site (every worker's: the job rows are the truth)."""
        now = utcnow()
        active = (JobStatus.QUEUED, JobStatus.RUNNING)
        async with self.sessions() as session:
            rows = (
                (
                    await session.execute(
                        select(Job).where(Job.status.in_(active)).order_by(Job.created_at, Job.id).limit(5000)
                    )
                )
                .scalars()
                .all()
            )
            asks = dict(
                (
                    await session.execute(
                        select(Request.job_id, func.count())
                        .where(Request.job_id.in_([j.id for j in rows[:QUEUE_LISTED]]))
                        .group_by(Request.job_id)
                    )
                ).all()
            ) if rows else {}  # fmt: skip
        by_site: dict[str, list[int]] = {}
        listed = []
        for job in rows:
            site = site_of(job.extractor, job.url)
            counts = by_site.setdefault(site, [0, 0])
            counts[0 if job.status == JobStatus.RUNNING else 1] += 1
            if len(listed) < QUEUE_LISTED:
                since = (
                    job.started_at if job.status == JobStatus.RUNNING and job.started_at else job.created_at
                )
                progress = None
                if job.total_bytes and job.downloaded_bytes is not None:
                    progress = min(1.0, job.downloaded_bytes / job.total_bytes)
                listed.append(
                    QueuedJob(
                        job_id=job.id, site=site, status=str(job.status), title=job.title,
                        age_s=max(0.0, (now - since).total_seconds()), requests=int(asks.get(job.id, 0)),
                        progress=progress,
                    )
                )  # fmt: skip
        sites = [SiteQueue(site, r, q) for site, (r, q) in by_site.items()]
        sites.sort(key=lambda s: (-(s.running + s.queued), s.site))
        return QueueView(sites=sites, jobs=listed)
