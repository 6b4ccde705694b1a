"""Who we are to a site for one download attempt, in a module without yt-dlp: a worker builds it in the
process that serves people, and the download may run in a child process (core.media.procpool)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Access:
    """Who we are to the site for one attempt (a core.pacing identity): a private copy of a cookies file
    (None: no cookies at all, not even the legacy per-domain file) and a proxy URL (None: direct)."""

    cookiefile: Path | None = None
    proxy: str | None = None
