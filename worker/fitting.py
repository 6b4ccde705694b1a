"""Fitted copies: a finished job's file made to fit a chat's upload limit (core.media.fitting does the work)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
from pathlib import Path
from typing import Any

from core.db.models import (
    Job,
    JobStatus,
)
from core.errors import Cancelled, WontFit
from core.media.control import Control
from core.media.fitting import Fitted, Fitter
from core.media.results import user_filename
from core.media.sites import site_of_url
from core.pacing import Identity, Pacing
from core.storage.keys import make_key, safe_filename
from worker.attempt import as_identity, refused
from worker.held import Held
from worker.memory import trim_memory

log = logging.getLogger(__name__)


class RunnerFitting:
    """The runner's fitted copies."""

    async def _make_fit(self, held: Held, workdir: Path) -> None:
        """A copy of a finished job that fits the variant's limit (see core.media.fitting)."""
        job = held.job
        loop = asyncio.get_running_loop()
        async with self.sessions() as session:
            source = await session.get(Job, job.source_job_id) if job.source_job_id else None
        stored = source.storage_key if source is not None and source.retained else None

        def fetch_source(directory: Path) -> Path:
            # On a download thread: the full-quality file, in place when local, else fetched beside us.
            if not stored or source is None:
                raise WontFit("The full-quality file has expired. Send the link again.")
            local = self.storage.local_path(stored)
            if local is not None and local.exists():
                return local
            directory.mkdir(parents=True, exist_ok=True)
            dest = directory / safe_filename(source.filename or "media")
            asyncio.run_coroutine_threadsafe(self.storage.fetch(stored, dest), loop).result(timeout=3600)
            return dest

        # The smaller format is a request of the site: as its next identity, and not at all while all rest.
        identity: Identity | None = None
        ask_site = True
        if self.pacing is not None and self.settings.fit_smaller_format:
            site = held.site or await asyncio.to_thread(
                site_of_url, job.url, tuple(self.settings.allowed_extractors)
            )
            chosen = await self.pacing.identities.choose(site, job.url)
            identity = chosen if isinstance(chosen, Identity) else None
            ask_site = identity is not None

        def site_refused(outcome: str) -> None:
            # On the download thread: the identity rests (or its cookies file is set aside) as after a download.
            if identity is not None and self.pacing is not None:
                told = asyncio.run_coroutine_threadsafe(_report(self.pacing, identity, outcome), loop)
                told.result(timeout=30)

        fitted: Fitted = await loop.run_in_executor(
            self._pool, _fit, self.fitter, job, fetch_source, workdir, held.control, identity, site_refused,
            ask_site,
        )  # fmt: skip
        if identity is not None and fitted.method == "smaller_format" and self.pacing is not None:
            await self.pacing.identities.succeeded(identity)
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


async def _report(pacing: Pacing, identity: Identity, outcome: str) -> None:
    with contextlib.suppress(Exception):  # a login we have no account for: the stored file still serves
        await refused(pacing, identity, outcome)


def _fit(
    fitter: Fitter,
    job: Job,
    source: Any,
    workdir: Path,
    control: Control,
    identity: Identity | None = None,
    site_refused: Any = None,
    ask_site: bool = True,
) -> Fitted:
    def fit(access: Any) -> Fitted:
        return fitter.run(
            job.id, job.url, job.kind, job.quality, job.variant or "", source, workdir, control, title=job.title,
            playable=bool(job.playable), access=access, refused=site_refused, ask_site=ask_site,
        )  # fmt: skip

    try:
        return as_identity(identity, workdir / "identity", fit)
    finally:
        trim_memory()
