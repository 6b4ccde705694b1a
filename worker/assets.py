"""What comes with the media (thumbnail, subtitles): stored beside it, each optional."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
from pathlib import Path
from typing import Any

from core.db.models import Job
from core.errors import StorageError
from core.jobs.views import THUMBNAIL, subtitle_asset
from core.media.results import Downloaded
from core.storage.base import Storage
from core.storage.keys import make_key, safe_filename
from worker.held import Held

log = logging.getLogger(__name__)


class RunnerAssets:
    """The runner's storing of a job's thumbnail and subtitles."""

    storage: Storage

    async def _save_assets(self, held: Held, result: Downloaded) -> dict[str, Any]:
        """Store the thumbnail and subtitle files beside the media: {asset name: {key, filename, size}}."""
        files: dict[str, tuple[Path, str]] = {}
        if result.thumbnail is not None:
            files[THUMBNAIL] = (result.thumbnail, "thumbnail.jpg")
        stem = Path(result.filename).stem
        for lang, path in sorted(result.subtitles.items()):
            files[subtitle_asset(lang)] = (path, f"{stem}.{lang}.srt")
        return await self._store_files(held, files)

    async def _store_files(self, held: Held, files: dict[str, tuple[Path, str]]) -> dict[str, Any]:
        """Store what comes with the media. Each is optional: one that can't be stored is left out (the
        person gets the media without it), never a reason to fail the download."""
        assets: dict[str, Any] = {}
        job_id = held.job.id
        try:
            for name, (path, filename) in files.items():
                key = make_key(job_id, filename, held.run_id)
                try:
                    size = await self.storage.save(
                        path, key, filename=filename, content_type=mimetypes.guess_type(filename)[0]
                    )
                except StorageError as exc:
                    log.warning("job %s: %s not stored (%s); delivered without it", job_id, name, exc.code)
                    continue
                assets[name] = {"key": key, "filename": filename, "size": size}
        except BaseException:
            for asset in assets.values():
                with contextlib.suppress(Exception):
                    await self.storage.delete(asset["key"])
            raise
        return assets

    async def _copy_assets(self, source: Job | None, held: Held, workdir: Path) -> dict[str, Any]:
        """A fitted copy gets its own copies of the original's thumbnail and subtitles (small files), so the
        two can expire apart."""
        if source is None or not source.retained or not source.assets:
            return {}
        directory = workdir / "assets"
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        files: dict[str, tuple[Path, str]] = {}
        for name, asset in source.assets.items():
            dest = directory / safe_filename(asset["filename"])
            try:
                await self.storage.fetch(asset["key"], dest)
            except StorageError as exc:
                log.info("job %s: asset %s not copied: %s", held.job.id, name, exc.code)
                continue
            files[name] = (dest, asset["filename"])
        return await self._store_files(held, files)
