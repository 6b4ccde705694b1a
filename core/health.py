"""Health of each component a process depends on, each check bounded in time so a dead dependency makes
the answer fail fast instead of hanging."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, text

from core.db.models import Worker, utcnow
from core.errors import MediabotError
from core.media import extraction
from core.media.ffmpeg import ffmpeg_version, find_ffmpeg
from core.pacing.report import pacing_report, report_dict

if TYPE_CHECKING:
    from core.bootstrap import Services

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 3.0
_ffmpeg_cache: dict[str, dict[str, Any]] = {}


class CheckFailed(Exception):
    """A check that ran but found its component unhealthy, with details to report."""

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


async def check(services: Services, timeout_s: float = CHECK_TIMEOUT_S) -> dict[str, Any]:
    """`{"status": "ok"|"fail", "components": {name: {"status", "latency_ms", ...}}}`."""
    checks: dict[str, tuple[Callable[[Services], Awaitable[dict[str, Any]]], float]] = {
        "database": (_database, timeout_s),
        "queue": (_queue, timeout_s),
        "events": (_events, timeout_s),
        # A real write, read and delete: give it more room than a ping.
        "storage": (_storage, timeout_s * 2),
        "workers": (_workers, timeout_s),
        "ffmpeg": (_ffmpeg, timeout_s * 2),
        # yt-dlp and what real sites need around it (core.media.extraction); the JavaScript runtime's check is
        # cached, so a poll does not start Deno each time.
        "extraction": (_extraction, timeout_s * 2),
        # Per-site slots and identities (issue 23): resting identities and set-aside cookies files are
        # reported, not failures (jobs wait for them).
        "pacing": (_pacing, timeout_s),
    }
    results = await asyncio.gather(*(_run(name, fn, services, limit) for name, (fn, limit) in checks.items()))
    components = dict(zip(checks, results, strict=True))
    healthy = all(c["status"] == "ok" for c in components.values())
    return {"status": "ok" if healthy else "fail", "components": components}


async def _run(
    name: str, fn: Callable[[Services], Awaitable[dict[str, Any]]], services: Services, timeout_s: float
) -> dict[str, Any]:
    started = time.perf_counter()
    result: dict[str, Any]
    try:
        details = await asyncio.wait_for(fn(services), timeout=timeout_s)
        result = {"status": "ok", **details}
    except TimeoutError:
        result = {"status": "fail", "error": f"no answer within {timeout_s:g} s"}
    except CheckFailed as exc:
        result = {"status": "fail", "error": exc.reason, **exc.details}
    except MediabotError as exc:
        result = {"status": "fail", "error": exc.message}
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency is a failed check, never a crash
        result = {"status": "fail", "error": _describe(exc)}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    if result["status"] != "ok":
        log.warning("health: %s failing: %s", name, result.get("error"))
    return result


def _describe(exc: BaseException) -> str:
    """A short reason without addresses, URLs or credentials."""
    if isinstance(exc, ConnectionRefusedError) or "refused" in str(exc).lower():
        return f"connection refused ({type(exc).__name__})"
    return type(exc).__name__


async def _database(services: Services) -> dict[str, Any]:
    async with services.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return {"backend": services.engine.dialect.name}


async def _queue(services: Services) -> dict[str, Any]:
    await services.queue.ping()
    return {"backend": services.queue.name}


async def _events(services: Services) -> dict[str, Any]:
    await services.bus.ping()
    return {"backend": services.bus.name}


async def _storage(services: Services) -> dict[str, Any]:
    await services.storage.probe()
    return {"backend": services.storage.name}


async def _workers(services: Services) -> dict[str, Any]:
    limit = 3 * services.settings.lease_s
    now = utcnow()
    async with services.sessions() as session:
        newest = await session.scalar(select(func.max(Worker.heartbeat_at)))
        alive = await session.scalar(
            select(func.count())
            .select_from(Worker)
            .where(Worker.heartbeat_at >= now - timedelta(seconds=limit))
        )
    if newest is None:
        raise CheckFailed("no worker has ever reported", alive=0)
    if newest.tzinfo is None:  # in case an aggregate comes back without the column's type
        newest = newest.replace(tzinfo=UTC)
    age = max(0.0, (now - newest).total_seconds())
    details = {"alive": int(alive or 0), "last_heartbeat_age_s": round(age, 1)}
    if age > limit:
        raise CheckFailed(f"no worker heartbeat for {age:.0f} s", **details)
    return details


async def _ffmpeg(services: Services) -> dict[str, Any]:
    setting = services.settings.ffmpeg
    found = _ffmpeg_cache.get(setting)
    if found is None:

        def look() -> dict[str, Any]:
            path = find_ffmpeg(setting)
            return {"found": bool(path), "version": ffmpeg_version(path) if path else None}

        found = await asyncio.to_thread(look)
        _ffmpeg_cache[setting] = found
    if not found["found"]:
        raise CheckFailed("ffmpeg not found", found=False)
    return dict(found)


async def _extraction(services: Services) -> dict[str, Any]:
    parts = await extraction.check_stack(services.settings, timeout_s=CHECK_TIMEOUT_S)
    details = {"parts": {p.key: p.public() for p in parts}}
    failing = [p for p in parts if p.status == "fail"]
    if failing:
        raise CheckFailed("; ".join(f"{p.label}: {p.detail}" for p in failing), **details)
    return details


async def _pacing(services: Services) -> dict[str, Any]:
    if services.pacing is None:
        return {"limits": None}
    return report_dict(await pacing_report(services.pacing))
