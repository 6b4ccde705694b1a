"""Making a YoutubeDL safely from several threads at once."""

from __future__ import annotations

import threading
from typing import Any

import yt_dlp

# The first YoutubeDL of a process loads yt-dlp's plugins (the bgutil PO token provider among them). Two made
# at the same moment in a fresh process both load them, and one fails with "PoTokenProvider BgUtilHTTP already
# registered", leaving that download without PO tokens. Until one has been made, they are made one at a time.
_first = threading.Lock()
_loaded = False


def new_ydl(params: dict[str, Any]) -> yt_dlp.YoutubeDL:
    """yt_dlp.YoutubeDL(params), the plugins loaded once per process whatever the threads."""
    global _loaded
    if _loaded:
        return yt_dlp.YoutubeDL(params)
    with _first:
        ydl = yt_dlp.YoutubeDL(params)
        _loaded = True
        return ydl
