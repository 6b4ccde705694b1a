"""Per-site cookies for logged-in downloads: Netscape cookies.txt files in MEDIABOT_COOKIES_DIR, named by
domain (`youtube.com.txt`). A job gets the file of its own site only, as a private copy (yt-dlp writes the
jar back on exit); contents are never logged, and files others can read are refused."""

from __future__ import annotations

import logging
import os
import shutil
import stat
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


def refusal(path: Path) -> str | None:
    """Why a cookies file is not used, in a few words; None when it is."""
    mode = path.stat().st_mode
    if mode & (stat.S_IROTH | stat.S_IWOTH):
        return "readable by every user: run chmod 600 on it"
    if not os.access(path, os.R_OK):
        return "this user cannot read it: chown it to this user"
    return None


def _usable(path: Path) -> bool:
    reason = refusal(path)
    if reason is not None:
        log.warning("ignoring cookies file %s: %s", path.name, reason)
        return False
    return True


def cookie_file_for(cookies_dir: Path | None, url: str) -> Path | None:
    """The cookies file for the link's host: the longest matching domain (`www.youtube.com`, then
    `youtube.com`); never a bare top-level domain."""
    if cookies_dir is None:
        return None
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    labels = host.split(".")
    candidates = [".".join(labels[i:]) for i in range(len(labels) - 1)] or [host]
    for domain in candidates:
        path = cookies_dir / f"{domain}.txt"
        if path.is_file() and _usable(path):
            return path
    return None


def check_cookies_dir(cookies_dir: Path | None) -> list[str]:
    """Domains with a usable cookies file (warnings logged for the refused ones); called at start-up."""
    if cookies_dir is None:
        return []
    if not cookies_dir.is_dir():
        log.warning("MEDIABOT_COOKIES_DIR is not a directory; no cookies will be used")
        return []
    return sorted(p.name[: -len(".txt")] for p in cookies_dir.glob("*.txt") if p.is_file() and _usable(p))


def private_copy(source: Path, workdir: Path) -> Path:
    target = workdir / "cookies.txt"
    shutil.copyfile(source, target)
    target.chmod(0o600)
    return target
