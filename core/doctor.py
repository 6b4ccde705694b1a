"""`mediabot doctor`: every part a deployment needs, checked once, each in a line (core.media.parts.Part).

The extraction stack comes from core.media.extraction; this adds ffmpeg, ffprobe and the services (database,
queue, storage), checked directly from the settings rather than through the running services, so that a
dead Redis or database is reported instead of stopping the check.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from core.bootstrap import build_site_pacing, build_storage
from core.config import Settings
from core.db import migrate
from core.db.session import create_engine
from core.errors import MediabotError
from core.media.extraction import check_stack
from core.media.ffmpeg import ffmpeg_version, find_ffmpeg
from core.media.parts import Part
from core.pacing.report import PacingReport, pacing_report, report_lines

CHECK_TIMEOUT_S = 8.0


async def diagnose(settings: Settings) -> list[Part]:
    """All the parts, in the order the doctor prints them."""
    stack = await check_stack(settings, fresh=True)
    tools = await asyncio.to_thread(check_ffmpeg, settings.ffmpeg)
    services = await asyncio.gather(check_database(settings), check_queue(settings), check_storage(settings))
    by_key = {p.key: p for p in stack}
    order = ["yt_dlp", "yt_dlp_ejs", "js_runtime", "impersonation"]
    return [
        *(by_key[k] for k in order),
        *tools,
        by_key["pot_provider"],
        *services,
        by_key["cookies"],
        pacing_part(await read_pacing(settings)),
    ]


async def read_pacing(settings: Settings) -> PacingReport | None:
    """Pacing as every worker shares it (Redis), or as configured (in-process: its figures live in the
    `mediabot run` process, /health/detailed shows them). None when Redis does not answer."""
    pacing = build_site_pacing(settings)
    redis = getattr(pacing.pacer, "redis", None)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            return await pacing_report(pacing)
    except Exception:  # noqa: BLE001 - the queue line says why Redis is away
        return None
    finally:
        if redis is not None:
            await redis.aclose()


def pacing_part(report: PacingReport | None) -> Part:
    if report is None:
        return Part("pacing", "pacing", "warn", detail="not readable: Redis does not answer")
    aside = [name for site in report.pool.sites for name in site.set_aside]
    resting = sum(1 for site in report.pool.sites for i in site.identities if i.resting_until)
    detail = f"limits {report.limits or 'none'}; {resting} identities resting"
    if aside:
        return Part(
            "pacing",
            "pacing",
            "warn",
            version=None,
            detail=f"{detail}; {len(aside)} cookies files set aside",
            advice="Replace the cookies files set aside (listed below) with fresh exports of their accounts.",
        )
    return Part("pacing", "pacing", "ok", detail=detail)


def pacing_detail(report: PacingReport | None) -> list[str]:
    return report_lines(report) if report is not None else []


def check_ffmpeg(setting: str) -> list[Part]:
    ffmpeg = find_ffmpeg(setting)
    if ffmpeg is None:
        missing = Part(
            "ffmpeg",
            "ffmpeg",
            "fail",
            detail="not found",
            advice="Install ffmpeg (apt-get install ffmpeg), or set MEDIABOT_FFMPEG to its path.",
        )
        return [missing, Part("ffprobe", "ffprobe", "warn", detail="not found (nor ffmpeg)")]
    version = ffmpeg_version(ffmpeg)
    if version is None:
        first = Part(
            "ffmpeg",
            "ffmpeg",
            "fail",
            detail="does not run",
            advice="Reinstall ffmpeg, or set MEDIABOT_FFMPEG to a working one.",
            local=ffmpeg,
        )
    else:
        first = Part("ffmpeg", "ffmpeg", "ok", version=version, local=ffmpeg)
    # core.media.probe's rule: ffprobe next to ffmpeg, else on the PATH; without it, `ffmpeg -i` does the probing.
    sibling = Path(ffmpeg).with_name("ffprobe")
    ffprobe = str(sibling) if sibling.exists() else shutil.which("ffprobe")
    if ffprobe is None:
        return [
            first,
            Part(
                "ffprobe",
                "ffprobe",
                "warn",
                detail="not found: files are probed with `ffmpeg -i`, which is slower",
                advice="Install ffprobe (it comes with Debian's ffmpeg package).",
            ),
        ]
    try:
        out = subprocess.run([ffprobe, "-version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    match = re.search(r"ffprobe version (\S+)", out)
    if match is None:
        return [
            first,
            Part(
                "ffprobe",
                "ffprobe",
                "warn",
                detail="does not run: files are probed with `ffmpeg -i`, which is slower",
                advice="Reinstall ffmpeg's ffprobe.",
                local=ffprobe,
            ),
        ]
    return [first, Part("ffprobe", "ffprobe", "ok", version=match.group(1), local=ffprobe)]


async def check_database(settings: Settings) -> Part:
    backend = "sqlite" if settings.is_sqlite else "postgresql"
    if settings.is_sqlite:
        path = Path(settings.database_url.split("///", 1)[-1])
        if not await asyncio.to_thread(path.exists):
            return Part(
                "database",
                "database",
                "warn",
                version=backend,
                detail="not created yet",
                advice="`mediabot run` creates it (or `mediabot db upgrade`).",
                local=str(path),
            )
    engine = create_engine(settings.database_url)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
            try:
                current = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            except SQLAlchemyError:
                current = None
    except TimeoutError:
        return _service_down("database", backend, f"no answer within {CHECK_TIMEOUT_S:g} s")
    except (OSError, SQLAlchemyError) as exc:
        return _service_down("database", backend, _reason(exc))
    finally:
        await engine.dispose()
    head = await asyncio.to_thread(_head_revision, settings.database_url)
    if current != head:
        return Part(
            "database",
            "database",
            "warn",
            version=backend,
            detail=f"answers; its schema is at {current or 'nothing'}, not {head}",
            advice="Run `mediabot db upgrade` (`mediabot run` does it itself).",
        )
    return Part("database", "database", "ok", version=backend, detail="answers; schema up to date")


def _head_revision(url: str) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(migrate.alembic_config(url)).get_current_head()


async def check_queue(settings: Settings) -> Part:
    if not settings.redis_url:
        return Part(
            "queue", "queue", "ok", version="in-process", detail="jobs run in the `mediabot run` process"
        )
    from redis.asyncio import Redis

    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=3, socket_timeout=5)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_S):
            await redis.ping()
    except TimeoutError:
        return _service_down("queue", "redis", f"no answer within {CHECK_TIMEOUT_S:g} s")
    except Exception as exc:  # noqa: BLE001 - any failure to reach Redis is the answer
        return _service_down("queue", "redis", _reason(exc))
    finally:
        await redis.aclose()
    return Part("queue", "queue", "ok", version="redis", detail="answers")


async def check_storage(settings: Settings) -> Part:
    backend = settings.storage or "local"
    try:
        storage = build_storage(settings)
        async with asyncio.timeout(CHECK_TIMEOUT_S * 2):
            await storage.probe()
    except TimeoutError:
        return _service_down("storage", backend, f"no answer within {CHECK_TIMEOUT_S * 2:g} s")
    except MediabotError as exc:
        return _service_down("storage", backend, exc.message.rstrip("."))
    except Exception as exc:  # noqa: BLE001 - a broken storage is the answer
        return _service_down("storage", backend, _reason(exc))
    return Part("storage", "storage", "ok", version=backend, detail="wrote, read and deleted a file")


_SERVICE_ADVICE = {
    "database": "Start the database or correct MEDIABOT_DATABASE_URL.",
    "queue": "Start Redis or correct MEDIABOT_REDIS_URL (unset, jobs run in the `mediabot run` process).",
    "storage": "Check the storage settings (MEDIABOT_DATA_DIR, or the S3 bucket, endpoint and credentials).",
}


def _service_down(key: str, backend: str, reason: str) -> Part:
    return Part(
        key, key, "fail", version=backend, detail=f"does not work: {reason}", advice=_SERVICE_ADVICE[key]
    )


def _reason(exc: BaseException) -> str:
    """A short reason, without the URL (which may carry a password)."""
    message = str(getattr(exc, "orig", None) or exc)
    if "refused" in message.lower() or isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(getattr(exc, "orig", None) or exc).__name__
