"""A worker process's side of yt-dlp updates.

It watches the pointer (one stat every POLL_S) and, when another version became current, asks the process to
stop: the host's shutdown lets running jobs finish within MEDIABOT_SHUTDOWN_GRACE_S and hands the rest back
to the queue; then the process re-executes itself with the same command line, and start-up
(core.ytdlp.versions.activate) loads the new version. With MEDIABOT_YTDLP_AUTO_UPDATE=daily it also runs the
daily check, in the one worker that holds the update lease (core.ytdlp.lease).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn

from core.config import Settings
from core.ytdlp.lease import Lease, update_lease
from core.ytdlp.updates import AUTO_STATE, UpdateOutcome, UpdateRefused, read_auto_state, update
from core.ytdlp.versions import activation, pointer_stamp, read_pointer, write_json_atomically, ytdlp_root

log = logging.getLogger(__name__)

POLL_S = 2.0
DAY_S = 24 * 3600.0
# How often a worker without the lease asks for it, and the holder confirms it still has it.
LEASE_RETRY_S = 60.0


def loaded_ytdlp() -> tuple[str | None, str | None]:
    """(version, folder) of the yt-dlp this process imported, or will import: a process that runs downloads
    may import it only on its first job (core.media.lazy_downloader), from where sys.path finds it now."""
    module = sys.modules.get("yt_dlp")
    if module is None:
        return _findable_ytdlp()
    version = getattr(getattr(module, "version", None), "__version__", None)
    where = str(Path(module.__file__).resolve().parent.parent) if module.__file__ else None
    return version, where


_VERSION_LINE = re.compile(r"""^__version__\s*=\s*['"]([^'"]+)['"]""", re.M)


def _findable_ytdlp() -> tuple[str | None, str | None]:
    """(version, folder) of the yt-dlp an import would load, read from its version.py without importing."""
    try:
        spec = importlib.util.find_spec("yt_dlp")
    except (ImportError, ValueError):
        return None, None
    if spec is None or not spec.origin:
        return None, None
    package = Path(spec.origin).resolve().parent
    try:
        found = _VERSION_LINE.search((package / "version.py").read_text(encoding="utf-8"))
    except OSError:
        found = None
    return (found.group(1) if found else None), str(package.parent)


@contextlib.asynccontextmanager
async def ytdlp_upkeep(
    settings: Settings, stop: asyncio.Event, *, enabled: bool = True
) -> AsyncIterator[None]:
    """Around a process that runs a worker: restart into a new current yt-dlp; the daily check.

    Enter it before the services, so that it exits after them: the re-execution happens once every job has
    finished or been handed back and every connection is closed."""
    if not enabled:
        yield
        return
    chosen = activation()
    started_with = chosen.pointer if chosen is not None else read_pointer(settings.data_dir).current
    version, where = loaded_ytdlp()
    log.info("this process runs yt-dlp %s from %s", version or "(not yet imported)", where or "?")
    if chosen is not None and chosen.note:
        log.warning("yt-dlp: %s", chosen.note)
    changed = asyncio.Event()
    tasks = [asyncio.create_task(_watch(settings, started_with, changed, stop), name="ytdlp-watch")]
    if settings.ytdlp_auto_update == "daily":
        tasks.append(asyncio.create_task(AutoUpdater(settings).run(), name="ytdlp-daily-check"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if changed.is_set():
        restart_process()


async def _watch(settings: Settings, started_with: str, changed: asyncio.Event, stop: asyncio.Event) -> None:
    stamp: tuple[int, int] | None = (-1, -1)  # compare at once: the pointer may have moved since start-up
    while not stop.is_set():
        now = pointer_stamp(settings.data_dir)
        if now != stamp:
            stamp = now
            current = read_pointer(settings.data_dir).current
            if current != started_with:
                log.warning(
                    "yt-dlp %s is current now (this process started with %s): restarting once running jobs "
                    "finish (up to %g s; the rest go back to the queue)",
                    current,
                    started_with,
                    settings.shutdown_grace_s,
                )
                changed.set()
                stop.set()
                _signals_mean_exit(changed, stop)
                return
        await asyncio.sleep(POLL_S)


def _signals_mean_exit(changed: asyncio.Event, stop: asyncio.Event) -> None:
    """SIGTERM or SIGINT while the restart waits for running jobs: the operator wants the process gone, so
    it exits instead of starting again."""

    def exit_instead() -> None:
        changed.clear()
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, exit_instead)


def restart_process() -> NoReturn:
    """The same command line again, in this process (same pid, so a supervisor sees no exit)."""
    argv = [sys.executable, *sys.orig_argv[1:]]
    log.warning("restarting to load the current yt-dlp: %s", " ".join(argv[1:]))
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.execv(sys.executable, argv)


class AutoUpdater:
    """MEDIABOT_YTDLP_AUTO_UPDATE=daily: whoever holds the lease checks the index once per `interval_s`
    (the last check's time is kept in DATA_DIR/ytdlp, so restarts don't check again) and runs the same
    update path as `mediabot ytdlp update`."""

    def __init__(
        self,
        settings: Settings,
        *,
        interval_s: float = DAY_S,
        retry_s: float = LEASE_RETRY_S,
        lease: Lease | None = None,
    ) -> None:
        self.settings = settings
        self.interval_s = interval_s
        self.retry_s = retry_s
        self.lease = lease or update_lease(settings.database_url, settings.data_dir)
        self.checks = 0
        self.rounds_held = 0  # lease rounds this checker held the lease

    async def run(self) -> None:
        try:
            while True:
                delay = self.retry_s
                try:
                    if await self.lease.acquire():
                        self.rounds_held += 1
                        due = self.seconds_until_due()
                        if due <= 0:
                            await self.check_once()
                            due = self.interval_s
                        delay = min(due, self.retry_s)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - database away: ask again next round
                    log.warning("yt-dlp daily check: lease unavailable (%s)", type(exc).__name__)
                await asyncio.sleep(delay)
        finally:
            with contextlib.suppress(Exception):
                await self.lease.release()

    def seconds_until_due(self) -> float:
        checked = read_auto_state(self.settings.data_dir).get("checked_at")
        if not checked:
            return 0.0
        try:
            last = datetime.fromisoformat(checked)
        except ValueError:
            return 0.0
        return self.interval_s - (datetime.now(UTC) - last).total_seconds()

    async def check_once(self) -> UpdateOutcome | None:
        """One check and, when a newer release is offered, the update; never raises."""
        self.checks += 1
        path = ytdlp_root(self.settings.data_dir) / AUTO_STATE
        started = datetime.now(UTC).isoformat(timespec="seconds")
        # Written first: a worker that dies mid-update does not make the next holder start over at once.
        self._save(path, {"checked_at": started, "outcome": "checking"})
        outcome: UpdateOutcome | None = None
        try:
            outcome = await update(
                self.settings, auto=True, report=lambda line: log.info("yt-dlp daily check: %s", line)
            )
            message = outcome.message
            log.info("yt-dlp daily check: %s", message)
        except UpdateRefused as exc:
            message = exc.message
            log.warning("yt-dlp daily check: %s", message)
        except Exception as exc:  # noqa: BLE001 - a check that crashed must not take the worker with it
            message = f"the check failed ({type(exc).__name__})"
            log.exception("yt-dlp daily check failed")
        self._save(path, {"checked_at": started, "outcome": message})
        return outcome

    @staticmethod
    def _save(path: Path, state: dict[str, str]) -> None:
        try:
            write_json_atomically(path, state)
        except OSError as exc:
            log.warning("yt-dlp daily check: could not record the check (%s)", exc)
