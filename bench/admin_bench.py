"""The operator's controls (issue 24 item 4): what the ban check adds to every submission and chat update,
and how long /stats and /queue take over a busy week, on SQLite and PostgreSQL.

    .venv/bin/python bench/admin_bench.py --requests 50000     # about a minute; needs PostgreSQL

A fresh database per dialect is filled with `--requests` requests spread over 7 days (one job each; 2% failed,
20% cache hits, 40 sites, 2,000 people) and `--active` jobs queued or running, plus 100 bans. Figures: the ban
lookup (`AdminService.banned`, once per chat update and per submission; p50 and p95 of 500), `stats()` (both
periods) and `queue()` (median of 5 each).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from core.config import load_settings  # noqa: E402
from core.db import migrate  # noqa: E402
from core.db.models import Ban, Job, Request, utcnow  # noqa: E402
from mediabot.cli import services_for  # noqa: E402

PG = os.environ.get("MEDIABOT_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")


def rows(requests: int, active: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rnd = random.Random(24)
    now = utcnow()
    jobs, asks = [], []
    for n in range(requests + active):
        job_id, created = uuid.uuid4().hex, now - timedelta(seconds=rnd.uniform(60, 6.9 * 86400))
        site = f"site{rnd.randrange(40)}.example"
        running = n >= requests
        failed = not running and rnd.random() < 0.02
        status = ("running" if n % 3 == 0 else "queued") if running else ("failed" if failed else "done")
        jobs.append(
            dict(
                id=job_id, url=f"https://{site}/v/{n}", cache_key=f"https://{site}/v/{n}", kind="video",
                quality="best", status=status, seq=1, created_at=created, updated_at=created,
                finished_at=None if running else created + timedelta(seconds=5),
                started_at=created if status == "running" else None,
                filesize=None if running or failed else rnd.randrange(1_000_000, 50_000_000),
                error_code="download_failed" if failed else None, attempts=0, retained=False,
                cancel_requested=False, playable=False,
                cached_from=uuid.uuid4().hex if not running and not failed and rnd.random() < 0.2 else None,
            )
        )  # fmt: skip
        asks.append(
            dict(
                id=uuid.uuid4().hex, job_id=job_id, source=rnd.choice(("telegram", "discord", "api")),
                user_id=str(rnd.randrange(2000)), url=f"https://{site}/v/{n}", kind="video", quality="best",
                target={}, status="active" if running else "done",
                outcome="cached" if jobs[-1]["cached_from"] else "queued", created_at=created,
            )
        )  # fmt: skip
    return jobs, asks


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


async def measure(url: str, work: Path, requests: int, active: int) -> dict[str, Any]:
    await migrate.upgrade(url)
    settings = load_settings(data_dir=work, database_url=url, log_level="WARNING")
    async with services_for(settings, worker=False) as services:
        jobs, asks = rows(requests, active)
        async with services.sessions() as session, session.begin():
            for start in range(0, len(jobs), 5000):
                await session.execute(insert(Job), jobs[start : start + 5000])
                await session.execute(insert(Request), asks[start : start + 5000])
            await session.execute(
                insert(Ban),
                [dict(source="telegram", user_id=str(10_000 + n), reason=None, banned_by="bench",
                      created_at=utcnow()) for n in range(100)],
            )  # fmt: skip
        admin = services.admin
        lookups = []
        for n in range(500):
            started = time.perf_counter()
            await admin.banned("telegram", str(10_000 + n % 200))  # half of them banned
            lookups.append(time.perf_counter() - started)
        stats_t, queue_t = [], []
        for _ in range(5):
            started = time.perf_counter()
            today, week = await admin.stats()
            stats_t.append(time.perf_counter() - started)
            started = time.perf_counter()
            view = await admin.queue()
            queue_t.append(time.perf_counter() - started)
        assert week.requests == requests + active, week.requests
        assert sum(s.running + s.queued for s in view.sites) == active
        return {
            "ban lookup p50 ms": ms(statistics.median(lookups)),
            "ban lookup p95 ms": ms(statistics.quantiles(lookups, n=20)[18]),
            "stats ms (median of 5)": ms(statistics.median(stats_t)),
            "queue ms (median of 5)": ms(statistics.median(queue_t)),
            "week requests": week.requests,
        }


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--active", type=int, default=500)
    args = parser.parse_args()
    import asyncpg

    name = f"mb_admin_bench_{os.getpid()}"
    admin_url = PG.replace("+asyncpg", "")
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            results = {
                "sqlite": await measure(
                    f"sqlite+aiosqlite:///{work / 'sqlite' / 'mediabot.db'}",
                    work / "sqlite",
                    args.requests,
                    args.active,
                ),
                "postgres": await measure(
                    f"{PG.rsplit('/', 1)[0]}/{name}", work / "pg", args.requests, args.active
                ),
            }
    finally:
        conn = await asyncpg.connect(admin_url)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.close()
    print(
        f"{args.requests} requests over 7 days, {args.active} active jobs, 100 bans; load {os.getloadavg()[0]:.1f}"
    )
    for dialect, figures in results.items():
        print(f"  {dialect}: " + ", ".join(f"{k} {v}" for k, v in figures.items()))


if __name__ == "__main__":
    asyncio.run(main())
