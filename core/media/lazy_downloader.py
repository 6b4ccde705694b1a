"""The worker's downloader, made on first use: yt-dlp, its extractors and the picture decoders weigh about
45 MB and half a second of imports, which a `mediabot run` nobody uses yet should not carry. With
`processes`, the downloads run in child processes instead (core.media.procpool), started on the first job:
the process that serves people never loads yt-dlp, and downloads use every core."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from core.config import Settings
from core.media.ffmpeg import find_ffmpeg

if TYPE_CHECKING:
    from core.media.downloader import Downloader
    from core.media.procpool import ProcessPool


def download_processes(settings: Settings, *, warm: bool) -> int:
    """Child processes for downloads: MEDIABOT_DOWNLOAD_PROCESSES, else none in a process that only downloads
    (`warm`: `mediabot worker`, which scales by running more of it), else one per core the process may use,
    never more than the concurrency (`mediabot run`: zero configuration uses the machine's cores)."""
    if settings.download_processes is not None:
        return settings.download_processes
    if warm:
        return 0
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(settings.worker_concurrency, cores))


class LazyDownloader:
    """Stands for `core.media.downloader.Downloader`; builds it (importing yt-dlp) the first time one of its
    blocking methods is called, so on a worker thread, never on the event loop. `warm_up` builds it and
    imports the extractors ahead of the first job, for a process that only downloads. With `processes`
    (> 0), its blocking methods run in up to that many child processes, which exit when idle."""

    def __init__(self, settings: Settings, *, processes: int = 0) -> None:
        self.settings = settings
        # Read without yt-dlp: the fitter asks for it when the worker is built.
        self.ffmpeg = find_ffmpeg(settings.ffmpeg)
        self._real: Downloader | None = None
        self._lock = threading.Lock()
        self.pool: ProcessPool | None = None
        if processes > 0:
            from core.media.procpool import ProcessPool

            self.pool = ProcessPool(settings, processes)

    @property
    def loaded(self) -> bool:
        return self._real is not None

    def real(self) -> Downloader:
        """The downloader itself. Blocking the first time (imports): call it from a worker thread."""
        with self._lock:
            if self._real is None:
                from core.media.downloader import Downloader

                self._real = Downloader(self.settings)
            return self._real

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        if self.pool is not None:
            return self.pool.call(method, *args, **kwargs)
        return getattr(self.real(), method)(*args, **kwargs)

    def warm_up(self) -> None:
        self._call("warm_up")

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("run", *args, **kwargs)

    def probe(self, url: str, access: Any = None) -> dict[str, Any]:
        return self._call("probe", url, access)

    def list_entries(self, url: str, access: Any = None) -> Any:
        """A channel's newest entries (the subscriptions' check): core.media.downloader.Downloader.list_entries."""
        return self._call("list_entries", url, access)

    def site_of_url(self, url: str, allowed: tuple[str, ...] = ()) -> str:
        """core.media.sites.site_of_url (yt-dlp's extractors decide), where the downloads run: pacing asks it
        for every job, and a process whose downloads run in children should not load yt-dlp for it."""
        if self.pool is not None:
            return str(self.pool.call("site_of_url", url, allowed))
        from core.media.sites import site_of_url

        return site_of_url(url, allowed)

    def supported_by(self, url: str, allowed: tuple[str, ...]) -> bool:
        """core.media.options.supported_by, where the downloads run (as `site_of_url`)."""
        if self.pool is not None:
            return bool(self.pool.call("supported_by", url, allowed))
        from core.media.options import supported_by

        return supported_by(url, allowed)

    def close(self) -> None:
        """Stop the child processes, if any (running downloads in them end)."""
        if self.pool is not None:
            self.pool.close()
