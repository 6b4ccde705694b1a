"""What a worker answers for the front ends, which never run yt-dlp: what a link offers (its formats and
subtitles, read without downloading) and whether an allowed site claims it."""

from __future__ import annotations

import asyncio
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from core.config import Settings
from core.errors import MediabotError

if TYPE_CHECKING:
    from core.media.downloader import Downloader
    from core.media.lazy_downloader import LazyDownloader

log = logging.getLogger(__name__)

# Probes get threads of their own: a flood of slow sites must not take the threads downloads and storage use.
PROBE_THREADS = 4


class Prober:
    """Reads links for the front ends, in threads of its own. The downloader (and with it yt-dlp) is made on
    the first question, in one of those threads, so a process that is never asked never loads yt-dlp."""

    def __init__(self, settings: Settings, downloader: LazyDownloader | None = None) -> None:
        self.settings = settings
        # The worker's own downloader when its downloads run in child processes: questions are read there too.
        self._elsewhere = downloader if downloader is not None and downloader.pool is not None else None
        self._pool = ThreadPoolExecutor(max_workers=PROBE_THREADS, thread_name_prefix="probe")
        self._downloader: Downloader | None = None
        self._lock = threading.Lock()

    def _reader(self) -> Downloader:
        with self._lock:
            if self._downloader is None:
                from core.media.downloader import Downloader

                self._downloader = Downloader(self.settings)
            return self._downloader

    def _formats(self, url: str) -> dict[str, Any]:
        from core.media.formats import media_formats

        reader = self._elsewhere or self._reader()
        return media_formats(url, reader.probe(url)).model_dump(mode="json")

    def _supported(self, url: str) -> bool:
        allowed = tuple(self.settings.allowed_extractors)
        if self._elsewhere is not None:
            return self._elsewhere.supported_by(url, allowed)
        from core.media.options import supported_by

        return supported_by(url, allowed)

    async def formats(self, url: str) -> dict[str, Any]:
        """The link's MediaFormats as JSON, or {"error": ...} with the MediabotError that stopped it."""
        loop = asyncio.get_running_loop()
        try:
            return {"formats": await loop.run_in_executor(self._pool, self._formats, url)}
        except MediabotError as exc:
            return {"error": error_dict(exc)}

    async def supported(self, url: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._supported, url)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def error_dict(exc: MediabotError) -> dict[str, Any]:
    """A MediabotError as it travels back to the front end (core.errors.MediabotError.from_dict)."""
    return {**exc.to_dict(), "hint": exc.hint}
