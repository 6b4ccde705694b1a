"""Retention: files older than MEDIABOT_RETENTION_HOURS are deleted, bookkeeping that would grow for ever
is forgotten."""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import delete, select, update

from core.db.models import (
    Job,
    JobStatus,
    Request,
    Webhook,
    WebhookStatus,
    utcnow,
)
from core.errors import StorageError
from core.jobs.keys import IDEMPOTENCY_TTL

log = logging.getLogger(__name__)

# A playlist link is listed again after this long: channels and mixes change.
PLAYLIST_TTL = timedelta(hours=1)


class Retention:
    """The reconciler's retention sweep."""

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
