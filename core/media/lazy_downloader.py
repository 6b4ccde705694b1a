"""The worker's downloader, made on first use: yt-dlp, its extractors and the picture decoders weigh about
45 MB and half a second of imports, which a `mediabot run` nobody uses yet should not carry."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from core.config import Settings
from core.media.ffmpeg import find_ffmpeg

if TYPE_CHECKING:
    from core.media.downloader import Downloader


class LazyDownloader:
    """Stands for `core.media.downloader.Downloader`; builds it (importing yt-dlp) the first time one of its
    blocking methods is called, so on a worker thread, never on the event loop. `warm_up` builds it and
    imports the extractors ahead of the first job, for a process that only downloads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Read without yt-dlp: the fitter asks for it when the worker is built.
        self.ffmpeg = find_ffmpeg(settings.ffmpeg)
        self._real: Downloader | None = None
        self._lock = threading.Lock()

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

    def warm_up(self) -> None:
        self.real().warm_up()

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return self.real().run(*args, **kwargs)

    def probe(self, url: str, access: Any = None) -> dict[str, Any]:
        return self.real().probe(url, access)

    def list_entries(self, url: str, access: Any = None) -> Any:
        """A channel's newest entries (the subscriptions' check): core.media.downloader.Downloader.list_entries."""
        return self.real().list_entries(url, access)
