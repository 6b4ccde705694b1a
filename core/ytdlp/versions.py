"""Where yt-dlp versions live, which one is current, and putting it first on sys.path at start-up.

    DATA_DIR/ytdlp/
      current.json       the pointer: {"current", "history", "rolled_back", "last_update"}, replaced atomically
      <version>/         a `pip install --target` folder (yt_dlp, yt_dlp_ejs, their dist-info, install.json)
      .staging-<id>/     an install in progress, renamed to <version> once complete
      .lock              held while an update or rollback changes anything
      auto-update.json   when the daily check last ran and what it found

With no pointer (or one saying "bundled"), the yt-dlp installed with mediabot is current.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import json
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.errors import MediabotError

log = logging.getLogger(__name__)

BUNDLED = "bundled"
POINTER = "current.json"
MARKER = "install.json"
STAGING_PREFIX = ".staging-"
# How many earlier versions stay on disk for rollback (and for workers that have not restarted yet).
KEEP_PREVIOUS = 2


class UpdateRefused(MediabotError):
    """An update or rollback that did not happen, in one sentence for the operator."""

    code = "ytdlp_update"


@dataclass
class Pointer:
    current: str = BUNDLED
    # Earlier current versions, oldest first: rollback returns to the last one.
    history: list[str] = field(default_factory=list)
    # Versions an operator rolled back from: the daily check does not install them again.
    rolled_back: list[str] = field(default_factory=list)
    # The last update's outcome: {"version", "ok", "message", "at"}.
    last_update: dict[str, Any] | None = None


@dataclass(frozen=True)
class Installed:
    version: str
    path: Path
    ejs: str | None
    installed_at: str | None


@dataclass(frozen=True)
class Activation:
    """What this process chose at start-up."""

    pointer: str  # what current.json said
    version: str | None  # the yt-dlp it loads
    path: Path | None  # that version's folder; None for the bundled one
    note: str | None = None  # why the pointer's folder was not used


_activation: Activation | None = None


def ytdlp_root(data_dir: Path) -> Path:
    return data_dir / "ytdlp"


def version_dir(data_dir: Path, version: str) -> Path:
    if not re.fullmatch(r"[0-9][0-9A-Za-z.+-]*", version):
        raise UpdateRefused(f"{version!r} is not a yt-dlp version number.")
    return ytdlp_root(data_dir) / version


def version_key(version: str) -> tuple[int, ...]:
    """Orders yt-dlp's date versions; "2025.01.05" (its own spelling) equals "2025.1.5" (pip's)."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


def same_version(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and version_key(a) == version_key(b)


def read_pointer(data_dir: Path) -> Pointer:
    path = ytdlp_root(data_dir) / POINTER
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return Pointer()
    except (OSError, ValueError) as exc:
        log.warning("yt-dlp pointer %s unreadable (%s); the bundled yt-dlp is current", path, exc)
        return Pointer()
    if not isinstance(raw, dict) or not isinstance(raw.get("current"), str):
        log.warning("yt-dlp pointer %s has no current version; the bundled yt-dlp is current", path)
        return Pointer()
    return Pointer(
        current=raw["current"],
        history=[str(v) for v in raw.get("history") or []],
        rolled_back=[str(v) for v in raw.get("rolled_back") or []],
        last_update=raw.get("last_update") if isinstance(raw.get("last_update"), dict) else None,
    )


def write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """A reader sees the old file or the new one, never half of one (and a full disk leaves the old)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_pointer(data_dir: Path, pointer: Pointer) -> None:
    write_json_atomically(ytdlp_root(data_dir) / POINTER, asdict(pointer))


def pointer_stamp(data_dir: Path) -> tuple[int, int] | None:
    """Changes whenever the pointer is replaced: one stat, cheap enough to poll every few seconds."""
    try:
        st = (ytdlp_root(data_dir) / POINTER).stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


def is_installed(folder: Path) -> bool:
    return (folder / MARKER).is_file()


def folder_versions(folder: Path) -> dict[str, str]:
    """{"yt-dlp": version, "yt-dlp-ejs": version} from the dist-info folders pip wrote."""
    found: dict[str, str] = {}
    for info in folder.glob("*.dist-info"):
        name, _, version = info.name[: -len(".dist-info")].partition("-")
        found[name.replace("_", "-").lower()] = version
    return found


def installed_versions(data_dir: Path) -> list[Installed]:
    root = ytdlp_root(data_dir)
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        if folder.name.startswith(".") or not folder.is_dir() or not is_installed(folder):
            continue
        try:
            marker = json.loads((folder / MARKER).read_text())
        except (OSError, ValueError):
            marker = {}
        found.append(
            Installed(
                version=folder.name,
                path=folder,
                ejs=folder_versions(folder).get("yt-dlp-ejs"),
                installed_at=marker.get("installed_at"),
            )
        )
    return sorted(found, key=lambda i: version_key(i.version))


def bundled_version(data_dir: Path | None = None) -> str | None:
    """The yt-dlp installed with mediabot, looked up past any versioned folder on sys.path."""
    skip = [str(ytdlp_root(data_dir).resolve())] if data_dir is not None else []
    if _activation is not None and _activation.path is not None:
        skip.append(str(_activation.path.resolve()))
    paths = [p for p in sys.path if not any(os.path.abspath(p or ".").startswith(s) for s in skip)]
    for dist in importlib.metadata.distributions(name="yt-dlp", path=paths):
        return str(dist.version)
    return None


def activate(data_dir: Path) -> Activation:
    """Put the current version's folder first on sys.path; call before anything imports yt_dlp."""
    global _activation
    pointer = read_pointer(data_dir)
    if "yt_dlp" in sys.modules:
        module = sys.modules["yt_dlp"]
        version = getattr(getattr(module, "version", None), "__version__", None)
        chosen = Activation(pointer.current, version, None, "yt-dlp was imported before start-up chose it")
    elif pointer.current == BUNDLED:
        chosen = Activation(BUNDLED, bundled_version(data_dir), None)
    else:
        folder = ytdlp_root(data_dir) / pointer.current
        if is_installed(folder):
            sys.path.insert(0, str(folder))
            importlib.invalidate_caches()
            chosen = Activation(pointer.current, pointer.current, folder)
        else:
            chosen = Activation(
                pointer.current,
                bundled_version(data_dir),
                None,
                f"{folder} is not a complete install; using the bundled yt-dlp",
            )
    _activation = chosen
    return chosen


def activation() -> Activation | None:
    """What `activate` chose in this process (None when it was not called)."""
    return _activation


def describe(version: str, data_dir: Path) -> str:
    """ "2026.11.23 (bundled)" for the bundled one, the version itself otherwise."""
    if version == BUNDLED:
        return f"{bundled_version(data_dir) or 'unknown'} (bundled)"
    return version


@contextlib.contextmanager
def update_lock(data_dir: Path) -> Iterator[None]:
    """One update or rollback at a time on this DATA_DIR (an operator's and the daily check's)."""
    import fcntl

    root = ytdlp_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpdateRefused(
                "Another yt-dlp update or rollback is running on this data directory; try again when it ends."
            ) from None
        yield
    finally:
        os.close(fd)
