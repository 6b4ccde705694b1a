"""What a worker answers for the front ends, which never run yt-dlp: what a link offers (its formats and
subtitles, read without downloading) and whether an allowed site claims it.

A probe is a request of the site like a download (issue 23): it goes as the site's next identity (cookies
file, proxy), a refusal rests that identity and the next is tried, and when every identity rests the person
hears when to try again, without the site being asked. It takes no download slot of the site: a person waits
for it in a chat (core.queue.PROBE_WAIT_S), and a slot is held for a whole download, often minutes."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from core.config import Settings
from core.errors import MediabotError, RateLimited
from core.media.sites import display_name
from worker.attempt import Deferred, paced_call, refusing_sentence

if TYPE_CHECKING:
    from core.media.downloader import Access, Downloader
    from core.pacing import Pacing

log = logging.getLogger(__name__)

# Probes get threads of their own: a flood of slow sites must not take the threads downloads and storage use.
PROBE_THREADS = 4


class Prober:
    """Reads links for the front ends, in threads of its own. The downloader (and with it yt-dlp) is made on
    the first question, in one of those threads, so a process that is never asked never loads yt-dlp."""

    def __init__(self, settings: Settings, pacing: Pacing | None = None) -> None:
        self.settings = settings
        self.pacing = pacing
        self._pool = ThreadPoolExecutor(max_workers=PROBE_THREADS, thread_name_prefix="probe")
        self._downloader: Downloader | None = None
        self._lock = threading.Lock()

    def _reader(self) -> Downloader:
        with self._lock:
            if self._downloader is None:
                from core.media.downloader import Downloader

                self._downloader = Downloader(self.settings)
            return self._downloader

    def _formats(self, url: str, access: Access | None = None) -> dict[str, Any]:
        from core.media.formats import media_formats

        return media_formats(url, self._reader().probe(url, access)).model_dump(mode="json")

    def _site(self, url: str) -> str:
        from core.media.sites import site_of_url

        return site_of_url(url, tuple(self.settings.allowed_extractors))

    def _supported(self, url: str) -> bool:
        from core.media.options import supported_by

        return supported_by(url, tuple(self.settings.allowed_extractors))

    async def formats(self, url: str) -> dict[str, Any]:
        """The link's MediaFormats as JSON, or {"error": ...} with the MediabotError that stopped it."""
        loop = asyncio.get_running_loop()
        try:
            if self.pacing is None:
                return {"formats": await loop.run_in_executor(self._pool, self._formats, url)}
            site = await loop.run_in_executor(self._pool, self._site, url)
            formats = await paced_call(
                self.pacing,
                site,
                f"probe-{uuid.uuid4().hex[:12]}",
                url,
                lambda access: self._formats(url, access),
                wait_s=0,
                tmp_dir=self.settings.tmp_dir,
                run=lambda attempt: loop.run_in_executor(self._pool, attempt),
                slot=False,
            )
            return {"formats": formats}
        except Deferred as exc:
            log.info("probe of a %s link: every identity rests for %.0fs", exc.site, exc.retry_after)
            wait_s = max(60.0, exc.retry_after)
            sentence = refusing_sentence(display_name(exc.site), wait_s)
            return {"error": error_dict(RateLimited(wait_s, sentence))}
        except MediabotError as exc:
            return {"error": error_dict(exc)}

    async def supported(self, url: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._supported, url)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def error_dict(exc: MediabotError) -> dict[str, Any]:
    """A MediabotError as it travels back to the front end (core.errors.MediabotError.from_dict)."""
    return {**exc.to_dict(), "hint": exc.hint}
