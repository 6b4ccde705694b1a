"""The canary: a child process loads a freshly installed yt-dlp and probes and downloads each link of
MEDIABOT_CANARY_URLS through our own Downloader (address guard, options, limits as in production).

The child reports one JSON line per step on stdout; the parent gives each link `canary_timeout_s` and kills
the child's whole process group (ffmpeg included) when one takes longer. Run as
`python -m core.ytdlp.canary FOLDER VERSION` with the settings as JSON on stdin.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import re
import signal
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.config import Settings
from core.words import human_size

log = logging.getLogger(__name__)

# Importing yt-dlp and our downloader, before the first link (a cold disk can be slow).
LOAD_TIMEOUT_S = 120.0
# Settings the child has no use for: kept out of its stdin.
_SECRETS = {"secret_key", "webhook_secret", "telegram_token", "discord_token"}


class CanaryFailed(Exception):
    """Why the canary failed, as a clause: "http://…/video.mp4 did not finish within 3 s"."""

    def __init__(self, clause: str) -> None:
        super().__init__(clause)
        self.clause = clause


async def run_canary(settings: Settings, folder: Path, version: str, report: Callable[[str], None]) -> int:
    """Every canary link probed and downloaded on the yt-dlp in `folder`; the number of links that passed.
    Raises CanaryFailed naming the first link that failed and why."""
    payload = settings.model_dump_json(exclude=_SECRETS).encode()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "core.ytdlp.canary",
        str(folder),
        version,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    tail: collections.deque[str] = collections.deque(maxlen=20)
    drain = asyncio.create_task(_drain(proc.stderr, tail), name="canary-stderr")
    try:
        proc.stdin.write(payload)
        await proc.stdin.drain()
        proc.stdin.close()
        first = await _next(proc.stdout, LOAD_TIMEOUT_S, proc, tail)
        if first.get("event") != "loaded":
            raise CanaryFailed(f"yt-dlp {version} does not load: {first.get('reason', 'no reason given')}")
        report(f"Canary: yt-dlp {first.get('version')} loaded from {first.get('path')}.")
        passed = 0
        for url in settings.canary_urls:
            started = await _next(proc.stdout, LOAD_TIMEOUT_S, proc, tail)
            assert started.get("event") == "start", started
            try:
                result = await _next(proc.stdout, settings.canary_timeout_s, proc, tail)
            except TimeoutError:
                raise CanaryFailed(f"{url} did not finish within {settings.canary_timeout_s:g} s") from None
            if result.get("event") != "ok":
                raise CanaryFailed(f"{url} failed: {result.get('reason', 'no reason given')}")
            passed += 1
            report(f"Canary: {url} ok ({human_size(int(result.get('size') or 0))}).")
        await _next(proc.stdout, LOAD_TIMEOUT_S, proc, tail)  # "end"
        return passed
    except TimeoutError:
        raise CanaryFailed(f"yt-dlp {version} did not load within {LOAD_TIMEOUT_S:g} s") from None
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        drain.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await drain
        if tail:
            log.debug("canary stderr:\n%s", "\n".join(tail))


async def _next(
    stream: asyncio.StreamReader,
    timeout_s: float,
    proc: asyncio.subprocess.Process,
    tail: collections.deque[str],
) -> dict[str, Any]:
    line = await asyncio.wait_for(stream.readline(), timeout_s)
    if not line:
        await proc.wait()
        last = next((text for text in reversed(tail) if text.strip()), "")
        detail = f": {last.strip()[:200]}" if last else ""
        raise CanaryFailed(f"the canary process ended unexpectedly (exit code {proc.returncode}){detail}")
    return dict(json.loads(line))


async def _drain(stream: asyncio.StreamReader, tail: collections.deque[str]) -> None:
    async for line in stream:
        tail.append(line.decode(errors="replace").rstrip())


# ---- the child ------------------------------------------------------------------------------------------


def _emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def _reason(exc: BaseException) -> str:
    """yt-dlp's own words when it has them (what an operator needs), else ours."""
    cause = exc.__cause__ or exc.__context__
    if getattr(exc, "code", "download_failed") != "download_failed":
        # Our own sentence says it (out of space, too large, private address...); the cause is only how
        # the download was stopped ("aborted by mediabot").
        cause = None
    elif cause is not None and not hasattr(exc, "code"):
        return _reason(cause)
    text = str(cause) if cause is not None and str(cause) else str(getattr(exc, "message", "") or exc)
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).replace("ERROR: ", "").strip()
    # yt-dlp's request to report unexpected errors to its tracker: not what the operator needs here.
    text = re.sub(r"[;.]?\s*please report this issue on .*", "", text, flags=re.IGNORECASE | re.DOTALL)
    first = text.splitlines()[0] if text else type(exc).__name__
    return first[:300]


def child_main(argv: list[str]) -> int:
    folder, expected = Path(argv[0]), argv[1]
    sys.path.insert(0, str(folder))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    data = json.loads(sys.stdin.read() or "{}")
    try:
        import yt_dlp
        from yt_dlp.version import __version__ as loaded
    except Exception as exc:  # noqa: BLE001 - a broken release: report it, whatever it raised
        _emit(event="load_failed", reason=f"{type(exc).__name__}: {exc}")
        return 1
    where = Path(yt_dlp.__file__).resolve().parent.parent
    from core.ytdlp.versions import same_version

    if where != folder.resolve() or not same_version(loaded, expected):
        _emit(event="load_failed", reason=f"found yt-dlp {loaded} in {where} instead")
        return 1
    try:
        from core.config import Settings
        from core.errors import MediabotError
        from core.media.control import Control
        from core.media.downloader import Downloader

        settings = Settings(**data)
        settings.ensure_dirs()
        downloader = Downloader(settings)
    except Exception as exc:  # noqa: BLE001 - our downloader cannot work with this release
        _emit(event="load_failed", reason=f"mediabot cannot use it: {type(exc).__name__}: {exc}")
        return 1
    _emit(event="loaded", version=loaded, path=str(where))
    for url in settings.canary_urls:
        _emit(event="start", url=url)
        try:
            with tempfile.TemporaryDirectory(prefix="canary-", dir=settings.tmp_dir) as tmp:
                downloader.probe(url)
                result = downloader.run(
                    "canary", url, "video", "best", Path(tmp), Control(), lambda _info: True
                )
                size = result.path.stat().st_size if result is not None and hasattr(result, "path") else 0
        except MediabotError as exc:
            _emit(event="fail", url=url, reason=_reason(exc))
            return 1
        except Exception as exc:  # noqa: BLE001 - anything the new release raises fails the canary
            _emit(event="fail", url=url, reason=f"{type(exc).__name__}: {_reason(exc)}")
            return 1
        _emit(event="ok", url=url, size=size)
    _emit(event="end")
    return 0


if __name__ == "__main__":
    raise SystemExit(child_main(sys.argv[1:]))
