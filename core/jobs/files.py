"""A finished job's files: links to them, a local path or a fetched copy (what the chat front ends upload)."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db.models import Job, JobStatus
from core.errors import NotFound
from core.i18n import N_
from core.jobs.views import JobView
from core.storage.base import Storage

log = logging.getLogger(__name__)


class JobFiles:
    """The job service's file links and copies."""

    sessions: async_sessionmaker[AsyncSession]
    storage: Storage

    async def _stored(self, job_id: str) -> Job:
        async with self.sessions() as session:
            job = await session.get(Job, job_id)
        if job is None:
            raise NotFound()
        if job.status != JobStatus.DONE or not job.storage_key or not job.retained:
            raise NotFound(N_("The file is not available (not finished, or expired)."))
        return job

    async def _file_of(self, job_id: str, part: int | None, asset: str | None = None) -> tuple[str, str]:
        """(storage key, filename) of a finished job's file, of part `part` (from 1) of a split, or of one
        of its assets (THUMBNAIL, subtitle_asset(lang))."""
        job = await self._stored(job_id)
        if asset is not None:
            found = (job.assets or {}).get(asset)
            if found is None:
                raise NotFound(N_("There is no such file for this download."))
            return found["key"], found["filename"]
        if part is None:
            return job.storage_key or "", job.filename or "media"
        parts = job.parts or []
        if not 1 <= part <= len(parts):
            raise NotFound(N_("No such part."))
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
        return self.storage.local_path(key)
