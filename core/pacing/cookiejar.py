"""A site's cookies files, and the cookies a site refreshed written back to the file they came from.

Files: `MEDIABOT_COOKIES_DIR/<site>/*.txt` (several accounts), plus the single file used before pools
(`<domain>.txt` for the link's host, the longest match first, or `<site>.txt`). Files other users can read are
refused, as core.cookies does. Contents are never logged: only names relative to the folder.

A download gets a private copy (`checkout`); yt-dlp saves its jar into the copy when it ends. `write_back`
then applies what the site changed (cookies set, renewed or deleted since the checkout) to the file as it is
now, so two downloads with one account that refreshed different cookies both keep theirs. The file is
replaced atomically (a temporary file in the same folder, then os.replace) under an exclusive flock, so a
reader never sees half a file and two write-backs never interleave. Blocking: call from a thread.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

_HTTPONLY = "#HttpOnly_"


@dataclass(frozen=True)
class CookieFile:
    name: str  # relative to the cookies folder: "youtube/alice.txt", "youtube.com.txt"
    path: Path
    fingerprint: str  # changes when the operator replaces the file (a set-aside file comes back then)


def _refusal(path: Path, st: os.stat_result) -> str | None:
    if st.st_mode & (stat.S_IROTH | stat.S_IWOTH):
        return "readable by every user: run chmod 600 on it"
    if not os.access(path, os.R_OK):
        return "this user cannot read it: chown it to this user"
    return None


def _file(cookies_dir: Path, path: Path) -> CookieFile | None:
    try:
        st = path.stat()
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    name = path.relative_to(cookies_dir).as_posix()
    reason = _refusal(path, st)
    if reason is not None:
        log.warning("ignoring cookies file %s: %s", name, reason)
        return None
    return CookieFile(name, path, f"{st.st_mtime_ns}:{st.st_size}")


def cookie_files(cookies_dir: Path | None, site: str, url: str | None = None) -> list[CookieFile]:
    """The site's usable cookies files, in a stable order (every process rotates through the same list)."""
    if cookies_dir is None or not cookies_dir.is_dir():
        return []
    found: list[CookieFile] = []
    folder = cookies_dir / site
    if folder.is_dir():
        found.extend(f for p in sorted(folder.glob("*.txt")) if (f := _file(cookies_dir, p)))
    legacy = [f"{site}.txt"]
    if url:
        labels = (urlsplit(url).hostname or "").lower().rstrip(".").split(".")
        legacy[:0] = [".".join(labels[i:]) + ".txt" for i in range(len(labels) - 1)]
    for name in legacy:
        if (single := _file(cookies_dir, cookies_dir / name)) is not None:
            found.append(single)
            break
    return found


@dataclass(frozen=True)
class CookieCopy:
    source: Path
    copy: Path
    snapshot: str  # the source as it was copied: what the site changed is the copy minus this


def checkout(source: Path, workdir: Path) -> CookieCopy:
    """A private copy (mode 0600) of a cookies file for one download."""
    target = workdir / "cookies.txt"
    with _locked(source) as text:
        snapshot = text
    with open(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(snapshot)
    target.chmod(0o600)
    return CookieCopy(source, target, snapshot)


def _parse(text: str) -> tuple[list[str], dict[tuple[str, str, str], str]]:
    """Netscape cookies.txt: (comment lines, (domain, path, name) -> line)."""
    header: list[str] = []
    cookies: dict[tuple[str, str, str], str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#") and not line.startswith(_HTTPONLY):
            header.append(line)
            continue
        fields = line.split("\t")
        if len(fields) != 7:
            continue  # not a cookie: yt-dlp would refuse the file before we ever read it back
        domain = fields[0].removeprefix(_HTTPONLY)
        cookies[(domain, fields[2], fields[5])] = line
    return header, cookies


def merged(current: str, snapshot: str, refreshed: str) -> str | None:
    """`current` with the changes from `snapshot` to `refreshed` applied; None when there are none."""
    _, before = _parse(snapshot)
    _, after = _parse(refreshed)
    header, now = _parse(current)
    changed = False
    for key, line in after.items():
        if before.get(key) != line and now.get(key) != line:
            now[key] = line
            changed = True
    for key in before.keys() - after.keys():
        if key in now:
            del now[key]
            changed = True
    if not changed:
        return None
    header = header or ["# Netscape HTTP Cookie File"]
    return "\n".join([*header, "", *now.values()]) + "\n"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[str]:
    """The file's text, under an exclusive flock of the file now at `path`.

    The lock is on the inode: once a writer has replaced the file, a waiter that opened the old one finds
    its inode gone from the path and opens the new file instead."""
    while True:
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_ino != os.stat(path).st_ino:
                continue
            with open(fd, closefd=False) as handle:
                yield handle.read()
            return
        finally:
            os.close(fd)


def _shown(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def write_back(copy: CookieCopy) -> bool:
    """Apply the cookies the site changed during the download to the source file; True if it changed.

    A folder we may not write to (mounted read-only) is left as it is, with one log line."""
    try:
        refreshed = copy.copy.read_text()
    except OSError:
        return False  # the download left no jar (it failed before yt-dlp saved one)
    if refreshed == copy.snapshot:
        return False
    with _locked(copy.source) as current:
        text = merged(current, copy.snapshot, refreshed)
        if text is None:
            return False
        folder = copy.source.parent
        mode = stat.S_IMODE(copy.source.stat().st_mode) & 0o660 or 0o600
        try:
            fd, temp = tempfile.mkstemp(prefix=f".{copy.source.name}.", suffix=".tmp", dir=folder)
        except OSError as exc:
            log.info("cookies file %s not refreshed: %s", _shown(copy.source), exc.strerror)
            return False
        try:
            with open(fd, "w") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(temp, mode)
            with contextlib.suppress(OSError):  # keep the owner an operator gave it, where we may
                st = copy.source.stat()
                os.chown(temp, st.st_uid, st.st_gid)
            os.replace(temp, copy.source)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    log.info("cookies file %s refreshed from the site", _shown(copy.source))
    return True


__all__ = ["CookieCopy", "CookieFile", "checkout", "cookie_files", "merged", "write_back"]
