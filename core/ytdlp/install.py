"""Installing a yt-dlp version into its own folder with pip, and asking an index for the newest one.

pip runs as a child process (never on the event loop thread) with `--target` into a staging folder that is
renamed to DATA_DIR/ytdlp/<version> only once complete: a full disk, a damaged wheel or a missing release
leaves nothing behind but one sentence. Only yt-dlp and the yt-dlp-ejs release it pins are installed there
(`--no-deps`): the libraries they use (requests, websockets, curl_cffi...) stay those of mediabot's own
environment, so a versioned folder first on sys.path never shadows what the rest of mediabot imports.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import re
import shutil
import signal
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from core.ytdlp.versions import (
    MARKER,
    STAGING_PREFIX,
    UpdateRefused,
    folder_versions,
    is_installed,
    same_version,
    version_dir,
    version_key,
    write_json_atomically,
    ytdlp_root,
)

log = logging.getLogger(__name__)

PIP_TIMEOUT_S = 600.0
Report = Callable[[str], None]


@dataclass(frozen=True)
class Source:
    """Where releases come from: a folder of wheels, a package index, or pip's own default."""

    find_links: Path | None = None
    index_url: str | None = None

    def pip_args(self) -> list[str]:
        if self.find_links is not None:
            # A folder means that folder only: nothing may be fetched from elsewhere.
            return ["--no-index", "--find-links", str(self.find_links)]
        if self.index_url:
            return ["--index-url", self.index_url]
        return []

    def describe(self) -> str:
        if self.find_links is not None:
            return f"the folder {self.find_links}"
        if self.index_url:
            return f"the index {redact_url(self.index_url)}"
        return "the package index"


def redact_url(url: str) -> str:
    """An index URL without the password it may carry (https://user:token@host/simple)."""
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


async def latest_version(source: Source) -> str:
    """The newest yt-dlp release `source` offers (pre-releases aside)."""
    rc, out = await _pip(["index", "versions", "yt-dlp", *source.pip_args()], PIP_TIMEOUT_S)
    match = re.search(r"^yt-dlp \(([^)]+)\)", out, re.MULTILINE)
    if rc != 0 or not match:
        if re.search(r"No matching distribution found", out) and not _UNREACHABLE.search(out):
            raise UpdateRefused(f"{_capital(source.describe())} offers no yt-dlp release.")
        raise UpdateRefused(_pip_failure(out, "the list of yt-dlp releases", source))
    return match.group(1)


# What pip says when the index does not answer (it then also says "No matching distribution").
_UNREACHABLE = re.compile(
    r"Could not fetch URL|NewConnectionError|Connection refused|Max retries|Name or service not known|"
    r"Temporary failure in name resolution|Read timed out|ConnectTimeoutError",
    re.IGNORECASE,
)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


async def install(data_dir: Path, version: str, source: Source, report: Report) -> Path:
    """DATA_DIR/ytdlp/<version> with yt-dlp and the yt-dlp-ejs it pins; reused when already complete."""
    existing = _installed_folder(data_dir, version)
    if existing is not None:
        report(f"yt-dlp {existing.name} is already installed in {existing}.")
        return existing
    root = ytdlp_root(data_dir)
    staging = root / f"{STAGING_PREFIX}{uuid.uuid4().hex[:8]}"
    try:
        await asyncio.to_thread(_prepare, root)
        report(f"Installing yt-dlp {version} from {source.describe()}...")
        await _pip_install(staging, f"yt-dlp=={version}", f"yt-dlp {version}", source)
        installed = folder_versions(staging).get("yt-dlp")
        if installed is None:
            raise UpdateRefused(f"pip installed no yt-dlp from {source.describe()}.")
        ejs = ejs_pin(staging)
        if ejs is not None:
            report(f"Installing yt-dlp-ejs {ejs}, the release yt-dlp {installed} asks for...")
            await _pip_install(
                staging, f"yt-dlp-ejs=={ejs}", f"yt-dlp-ejs {ejs} (yt-dlp {installed} needs it)", source
            )
        folder = version_dir(data_dir, installed)
        marker = {
            "version": installed,
            "ejs": ejs,
            "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": source.describe(),
        }
        await asyncio.to_thread(_finish, staging, folder, marker)
        return folder
    except OSError as exc:
        raise UpdateRefused(_os_failure(exc, root, version)) from None
    finally:
        await asyncio.to_thread(shutil.rmtree, staging, True)


def _installed_folder(data_dir: Path, version: str) -> Path | None:
    root = ytdlp_root(data_dir)
    if not root.is_dir():
        return None
    for folder in root.iterdir():
        if not folder.name.startswith(".") and same_version(folder.name, version) and is_installed(folder):
            return folder
    return None


def _prepare(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    # Staging folders of an update that died half-way (we hold the update lock: none is in use).
    for leftover in root.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _finish(staging: Path, folder: Path, marker: dict[str, object]) -> None:
    write_json_atomically(staging / MARKER, marker)
    if folder.exists():
        shutil.rmtree(folder)  # an incomplete folder (no marker), e.g. copied in by hand
    os.rename(staging, folder)


def ejs_pin(folder: Path) -> str | None:
    """The yt-dlp-ejs release the installed yt-dlp pins in its `default` extra (None: it pins none)."""
    for info in folder.glob("yt_dlp-*.dist-info"):
        try:
            metadata = (info / "METADATA").read_text(errors="replace")
        except OSError:
            continue
        for line in metadata.splitlines():
            match = re.match(
                r"Requires-Dist:\s*yt[-_]dlp[-_]ejs\s*==\s*([^\s;]+)\s*;(.*)", line, re.IGNORECASE
            )
            if match and re.search(r"extra\s*==\s*['\"]default['\"]", match.group(2)):
                return match.group(1)
    return None


async def _pip_install(target: Path, requirement: str, what: str, source: Source) -> None:
    rc, out = await _pip(
        [
            "install",
            "--target",
            str(target),
            "--no-deps",
            # Wheels only: an update never builds anything.
            "--only-binary",
            ":all:",
            "--upgrade",
            "--no-cache-dir",
            *source.pip_args(),
            requirement,
        ],
        PIP_TIMEOUT_S,
    )
    if rc != 0:
        raise UpdateRefused(_pip_failure(out, what, source))


async def _pip(args: list[str], timeout_s: float) -> tuple[int, str]:
    """pip as a child of its own process group (killed whole on timeout): exit code and its output."""
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pip",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )
    try:
        raw, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        return 124, f"pip did not finish within {timeout_s:g} s"
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    out = raw.decode(errors="replace")
    log.debug("pip %s -> %s\n%s", args[0], proc.returncode, out[-4000:])
    return proc.returncode or 0, out


def _pip_failure(out: str, what: str, source: Source) -> str:
    """pip's complaint as one sentence naming what could not be had and why."""
    if re.search(r"No space left on device|Errno 28|Disk quota exceeded|Errno 122", out):
        return f"There is not enough disk space to install {what}."
    if re.search(
        r"BadZipFile|not a zip file|invalid wheel|is invalid|Wheel .* has an invalid|has no .dist-info",
        out,
        re.I,
    ):
        wheel = re.search(r"([\w.+-]+\.whl)", out)
        named = f" ({wheel.group(1)})" if wheel else ""
        return f"The wheel of {what} in {source.describe()}{named} is damaged: it is not a valid wheel file."
    if re.search(r"did not finish within", out):
        return f"Installing {what} took too long: {out.strip()}."
    if _UNREACHABLE.search(out):
        return f"{_capital(source.describe())} could not be reached to get {what}."
    if re.search(r"No matching distribution found|Could not find a version that satisfies", out):
        return f"{_capital(source.describe())} has no {what}."
    last = [line.strip() for line in out.splitlines() if line.strip().startswith("ERROR")] or [
        line.strip() for line in out.splitlines() if line.strip()
    ]
    detail = last[-1].removeprefix("ERROR: ")[:200] if last else "no output"
    return f"pip could not install {what}: {detail}"


def _os_failure(exc: OSError, root: Path, version: str) -> str:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"There is not enough disk space in {root} to install yt-dlp {version}."
    return f"yt-dlp {version} could not be installed in {root}: {exc.strerror or exc}."


__all__ = ["Source", "install", "latest_version", "ejs_pin", "version_key"]
