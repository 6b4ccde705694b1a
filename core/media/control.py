"""What a job's coroutine and yt-dlp's thread share: the cancel flag, the progress callback, open sockets."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field

from core.errors import MediabotError

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.25


@dataclass
class ProgressUpdate:
    status: str  # downloading | processing
    downloaded_bytes: int | None = None
    total_bytes: int | None = None
    speed: float | None = None
    eta: float | None = None


@dataclass
class Control:
    """Shared between the job's coroutine and yt-dlp's thread."""

    cancel: threading.Event = field(default_factory=threading.Event)
    on_progress: Callable[[ProgressUpdate], None] | None = None
    error: MediabotError | None = None
    max_bytes: int | None = None
    # The sockets yt-dlp opened for this job (the connection guard records them), so a stop reaches a
    # download that is stalled in recv() at once instead of after the socket timeout.
    _sockets: weakref.WeakSet[socket.socket] = field(default_factory=weakref.WeakSet)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
        if self.cancel.is_set():
            self._shut(sock)

    def stop(self) -> None:
        """Cancel from any thread: the hooks see the flag, and open connections are shut under yt-dlp."""
        self.cancel.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
