"""A stored file as a path on this machine for the time of an upload: storage's own file when it is local,
else a copy fetched into a temporary folder that is removed afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from core.errors import MediabotError
from core.jobs.service import JobService
from core.storage.keys import safe_filename

log = logging.getLogger(__name__)


class LocalFiles:
    def __init__(self, jobs: JobService, tmp_dir: Path) -> None:
        """`tmp_dir`: where fetched copies go (one folder per fetch, removed after the upload)."""
        self.jobs = jobs
        self.tmp_dir = tmp_dir

    @contextlib.asynccontextmanager
    async def path(
        self, job_id: str, name: str, *, part: int | None = None, asset: str | None = None
    ) -> AsyncIterator[Path]:
        """The job's file (one part of it, or one of its assets); `name` is the fetched copy's file name.
        Raises the core's error when the file can't be had (expired, storage down)."""
        path = await self.jobs.local_path(job_id, part=part, asset=asset)
        if path is not None and await asyncio.to_thread(path.exists):
            yield path
            return
        workdir = self.tmp_dir / uuid.uuid4().hex
        await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
        try:
            yield await self.jobs.fetch_file(job_id, workdir / safe_filename(name), part=part, asset=asset)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    @contextlib.asynccontextmanager
    async def optional(self, job_id: str, name: str, *, asset: str) -> AsyncIterator[Path | None]:
        """One of the job's assets, or None when it can't be had: the upload goes on without it (a missing
        thumbnail or subtitle file is nothing to fail a delivery for)."""
        async with contextlib.AsyncExitStack() as stack:
            try:
                found: Path | None = await stack.enter_async_context(self.path(job_id, name, asset=asset))
            except MediabotError as exc:
                log.info("%s of job %s not available (%s)", asset, job_id, exc.code)
                found = None
            yield found
