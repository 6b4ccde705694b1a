"""`mediabot ytdlp status | update | rollback`: a new yt-dlp becomes current only after its canary passed.

An update installs into a versioned folder (core.ytdlp.install), runs the canary on it in a child process
(core.ytdlp.canary), and only then replaces the pointer; workers notice the new pointer and restart
(core.ytdlp.upkeep). Every refusal is one sentence and leaves the current version as it was.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.config import Settings
from core.ytdlp.canary import CanaryFailed, run_canary
from core.ytdlp.install import Source, install, latest_version
from core.ytdlp.versions import (
    BUNDLED,
    KEEP_PREVIOUS,
    Pointer,
    UpdateRefused,
    bundled_version,
    describe,
    installed_versions,
    is_installed,
    read_pointer,
    same_version,
    update_lock,
    version_key,
    write_pointer,
    ytdlp_root,
)

log = logging.getLogger(__name__)

AUTO_STATE = "auto-update.json"


@dataclass(frozen=True)
class UpdateOutcome:
    version: str
    changed: bool
    message: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _current_version(pointer: Pointer, data_dir: Path) -> str | None:
    return bundled_version(data_dir) if pointer.current == BUNDLED else pointer.current


async def update(
    settings: Settings,
    *,
    version: str | None = None,
    source: Source | None = None,
    auto: bool = False,
    report: Callable[[str], None] = lambda _line: None,
) -> UpdateOutcome:
    """Install `version` (default: the newest `source` offers), prove it on the canary links, make it
    current. `auto`: the daily check, which only moves forward and skips versions rolled back from.
    Raises UpdateRefused with one sentence; the current version is then untouched."""
    data_dir = settings.data_dir
    source = source or Source(index_url=settings.ytdlp_index_url)
    with update_lock(data_dir):
        pointer = read_pointer(data_dir)
        current = _current_version(pointer, data_dir)
        label = describe(pointer.current, data_dir)
        target = version or await latest_version(source)
        if same_version(target, current):
            return UpdateOutcome(target, False, f"yt-dlp {label} is current already.")
        older = current is not None and version_key(target) < version_key(current)
        if older and version is None and not auto:
            raise UpdateRefused(
                f"The newest yt-dlp {source.describe()} offers is {target}, older than the current {label}; "
                f"`--version {target}` installs it anyway."
            )
        if auto:
            if older:
                return UpdateOutcome(
                    target, False, f"yt-dlp {label} is newer than {target}, the newest offered."
                )
            if any(same_version(target, v) for v in pointer.rolled_back):
                return UpdateOutcome(
                    target,
                    False,
                    f"yt-dlp {target} was rolled back from, so it is not installed again by itself.",
                )
        folder = await install(data_dir, target, source, report)
        installed = folder.name
        if not settings.canary_urls:
            report("No canary links are set (MEDIABOT_CANARY_URLS): only checking that it loads.")
        try:
            passed = await run_canary(settings, folder, installed, report)
        except CanaryFailed as exc:
            message = f"yt-dlp {installed} failed its canary ({exc.clause}), so yt-dlp {label} stays current."
            _record(data_dir, installed, ok=False, message=message)
            raise UpdateRefused(message) from None
        pointer = read_pointer(data_dir)
        pointer.history = [v for v in pointer.history if v != installed] + [pointer.current]
        pointer.rolled_back = [v for v in pointer.rolled_back if not same_version(v, installed)]
        pointer.current = installed
        proof = f"{passed} canary link{'s' if passed != 1 else ''} passed" if passed else "it loaded"
        message = f"yt-dlp {installed} is current now ({proof}; it was {label}); workers restart to load it."
        pointer.last_update = {"version": installed, "ok": True, "message": message, "at": _now()}
        try:
            write_pointer(data_dir, pointer)
        except OSError as exc:
            raise UpdateRefused(
                f"yt-dlp {installed} passed its canary but could not be made current "
                f"({exc.strerror or exc}), so yt-dlp {label} stays current."
            ) from None
        await asyncio.to_thread(_prune, data_dir, pointer)
        return UpdateOutcome(installed, True, message)


def _record(data_dir: Path, version: str, *, ok: bool, message: str) -> None:
    """The last update's outcome, for `status`; best effort (the disk may be what failed)."""
    pointer = read_pointer(data_dir)
    pointer.last_update = {"version": version, "ok": ok, "message": message, "at": _now()}
    try:
        write_pointer(data_dir, pointer)
    except OSError as exc:
        log.warning("could not record the update's outcome: %s", exc)


def _prune(data_dir: Path, pointer: Pointer) -> None:
    """Folders no longer reachable by rollback; the last KEEP_PREVIOUS stay (a worker may still run one)."""
    keep = {pointer.current, *pointer.history[-KEEP_PREVIOUS:]}
    for found in installed_versions(data_dir):
        if found.version not in keep:
            log.info("removing yt-dlp %s (%s)", found.version, found.path)
            shutil.rmtree(found.path, ignore_errors=True)


def rollback(settings: Settings) -> str:
    """Back to the version that was current before; raises UpdateRefused when there is none."""
    data_dir = settings.data_dir
    with update_lock(data_dir):
        pointer = read_pointer(data_dir)
        if pointer.current == BUNDLED and not pointer.history:
            raise UpdateRefused(
                f"There is nothing to roll back to: yt-dlp {describe(BUNDLED, data_dir)} is current "
                "and no earlier version was."
            )
        if not pointer.history:
            pointer.history = [BUNDLED]
        previous = pointer.history[-1]
        if previous != BUNDLED and not is_installed(ytdlp_root(data_dir) / previous):
            raise UpdateRefused(
                f"yt-dlp {previous}, the previous version, is no longer installed in {ytdlp_root(data_dir)}; "
                f"install it with `mediabot ytdlp update --version {previous}`."
            )
        left = pointer.current
        pointer.history.pop()
        if left != BUNDLED and left not in pointer.rolled_back:
            pointer.rolled_back.append(left)
        pointer.current = previous
        message = (
            f"yt-dlp {describe(previous, data_dir)} is current again (rolled back from "
            f"{describe(left, data_dir)}); workers restart to load it."
        )
        pointer.last_update = {"version": previous, "ok": True, "message": message, "at": _now()}
        write_pointer(data_dir, pointer)
        return message


def status(settings: Settings) -> list[str]:
    """What `mediabot ytdlp status` prints: current, rollback target, installed versions, the last
    update, the canary links and the daily check."""
    data_dir = settings.data_dir
    root = ytdlp_root(data_dir)
    pointer = read_pointer(data_dir)
    installed = installed_versions(data_dir)
    by_version = {i.version: i for i in installed}
    lines = []
    if pointer.current == BUNDLED:
        lines.append(
            f"yt-dlp {bundled_version(data_dir) or 'unknown'} is current: the bundled one, installed with "
            f"mediabot{'' if installed else f' (no update installed in {root})'}."
        )
    else:
        found = by_version.get(pointer.current)
        if found is None:
            lines.append(
                f"yt-dlp {pointer.current} should be current, but {root / pointer.current} is not a complete "
                f"install: processes use the bundled yt-dlp {bundled_version(data_dir) or 'unknown'}."
            )
        else:
            ejs = f"; yt-dlp-ejs {found.ejs}" if found.ejs else ""
            lines.append(
                f"yt-dlp {found.version} is current (installed {found.installed_at} in {found.path}{ejs})."
            )
    if pointer.history:
        lines.append(f"Rollback goes to yt-dlp {describe(pointer.history[-1], data_dir)}.")
    if installed:
        lines.append("Installed: " + ", ".join(i.version for i in reversed(installed)) + f" (in {root}).")
    if pointer.rolled_back:
        lines.append(
            "Rolled back from (not installed again by the daily check): "
            + ", ".join(pointer.rolled_back)
            + "."
        )
    if pointer.last_update:
        last = pointer.last_update
        lines.append(f"Last update ({last.get('at')}): {last.get('message')}")
    count = len(settings.canary_urls)
    lines.append(
        f"Canary links: {count} (MEDIABOT_CANARY_URLS)."
        if count
        else "Canary links: none; set MEDIABOT_CANARY_URLS so that an update is proven on real links."
    )
    if settings.ytdlp_auto_update == "daily":
        auto = read_auto_state(data_dir)
        seen = (
            f"; last check {auto['checked_at']}: {auto.get('outcome')}"
            if auto.get("checked_at")
            else "; not checked yet"
        )
        lines.append(f"Daily check: on{seen}")
    else:
        lines.append("Daily check: off (MEDIABOT_YTDLP_AUTO_UPDATE=daily turns it on).")
    return lines


def read_auto_state(data_dir: Path) -> dict[str, str]:
    try:
        raw = json.loads((ytdlp_root(data_dir) / AUTO_STATE).read_text())
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


__all__ = ["Source", "UpdateOutcome", "UpdateRefused", "read_auto_state", "rollback", "status", "update"]
