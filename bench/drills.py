"""Fault drills with the issue's counts: Redis restarted empty (100 jobs submitted during the outage), SIGTERM
on a worker and on the web app, PostgreSQL crashed while jobs run, two web processes and three workers
(200 jobs), disk full or broken storage while saving.

Each drill starts its own redis-server and PostgreSQL (initdb into a temp dir, on spare loopback ports) and
its own `mediabot web` / `mediabot worker` processes, breaks something, checks what people would see and
prints its figures; the same drills run in tests/faults with smaller counts. Needs redis-server and the
PostgreSQL server binaries; the disk-full drills need root (they mount a tiny tmpfs).

    .venv/bin/python bench/drills.py                       # all drills, about 3 minutes
    .venv/bin/python bench/drills.py redis_restart --jobs 100
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults import drills  # noqa: E402
from tests.faults.cluster import gated_media  # noqa: E402
from tests.support.media import generate_media  # noqa: E402
from tests.support.media_site import MediaSite  # noqa: E402

DRILLS = [
    "redis_restart",
    "worker_sigterm",
    "web_sigterm",
    "web_sigterm_during_startup",
    "postgres_restart",
    "two_webs_three_workers",
    "storage_failure",
]
DEFAULT_JOBS = {"redis_restart": 100, "postgres_restart": 50, "two_webs_three_workers": 200}
TIME_LIMIT_S = 600


async def run(names: list[str], jobs: int | None) -> int:
    files = generate_media()
    site = MediaSite(files)
    await site.start()
    failed = 0
    try:
        async with gated_media(files.big_mp4.read_bytes()) as gated:
            for name in names:
                for label, call in _calls(name, site, gated, jobs):
                    work = Path(tempfile.mkdtemp(prefix=f"mediabot-drill-{name}-"))
                    started = time.monotonic()
                    try:
                        figures = await asyncio.wait_for(call(work), TIME_LIMIT_S)
                    except drills.CannotMount as exc:
                        print(f"\n### {label}: skipped (cannot mount a tmpfs: {exc})")
                        continue
                    except Exception as exc:  # noqa: BLE001 - report and go on with the next drill
                        failed += 1
                        print(f"\n### {label}: FAILED after {time.monotonic() - started:.0f} s\n{exc}")
                        continue
                    finally:
                        shutil.rmtree(work, ignore_errors=True)
                    print(f"\n### {label} ({time.monotonic() - started:.0f} s)\n")
                    print("| figure | value |\n|---|---|")
                    for key, value in figures.items():
                        print(f"| {key} | {value} |")
    finally:
        await site.stop()
    return 1 if failed else 0


def _calls(name: str, site: MediaSite, gated: Any, jobs: int | None) -> list[tuple[str, Any]]:
    count = jobs or DEFAULT_JOBS.get(name, 0)
    if name == "redis_restart":
        return [(f"{name} ({count} jobs)", lambda w: drills.redis_restart(w, site, jobs=count))]
    if name == "worker_sigterm":
        return [(name, lambda w: drills.worker_sigterm(w, site, gated))]
    if name == "web_sigterm":
        return [(name, drills.web_sigterm)]
    if name == "web_sigterm_during_startup":
        return [(name, drills.web_sigterm_during_startup)]
    if name == "postgres_restart":
        return [(f"{name} ({count} jobs)", lambda w: drills.postgres_restart(w, site, gated, jobs=count))]
    if name == "two_webs_three_workers":
        return [(f"{name} ({count} jobs)", lambda w: drills.two_webs_three_workers(w, site, jobs=count))]
    if name == "storage_failure":
        return [
            (f"{name} ({mode})", lambda w, m=mode: drills.storage_failure(w, site, m))
            for mode in drills.STORAGE_MODES
        ]
    raise ValueError(name)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("drills", nargs="*", help=f"which drills (default: all): {', '.join(DRILLS)}")
    parser.add_argument("--jobs", type=int, help="job count for the drills that take one")
    args = parser.parse_args()
    # The drills that run mediabot in this process would log what they provoke; the figures say it.
    logging.basicConfig(level=logging.CRITICAL)
    unknown = [name for name in args.drills if name not in DRILLS]
    if unknown:
        parser.error(f"unknown drill {unknown[0]!r}; choose from {', '.join(DRILLS)}")
    return asyncio.run(run(args.drills or DRILLS, args.jobs))


if __name__ == "__main__":
    raise SystemExit(main())
