"""What keeping yt-dlp current costs, offline: an update (install from a local wheel + the canary), and a
worker's switch to the new version (time it took no jobs, none lost).

The releases are built from the installed yt-dlp (tests/ytdlp/wheels.py); the canary links and the jobs go to
the test media site on 127.0.0.1; the switch runs the drill of tests/ytdlp/test_worker_switch.py (a real
`mediabot worker` on its own Redis and PostgreSQL). Needs redis-server and the PostgreSQL server binaries.

    .venv/bin/python bench/ytdlp_update_bench.py              # 3 updates and 1 switch, about 2 minutes
    .venv/bin/python bench/ytdlp_update_bench.py --updates 5 --switches 2
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.ytdlp.canary import run_canary  # noqa: E402
from core.ytdlp.install import Source, install  # noqa: E402
from tests.faults.cluster import gated_media  # noqa: E402
from tests.support.media import generate_media  # noqa: E402
from tests.support.media_site import MediaSite  # noqa: E402
from tests.support.services import make_settings, run_mediabot, settings_env  # noqa: E402
from tests.ytdlp import wheels  # noqa: E402
from tests.ytdlp.drill import worker_switch  # noqa: E402

VERSION = "2099.1.1"


def _median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} s (min {min(values):.1f}, max {max(values):.1f})"


def _du(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


async def updates(site: MediaSite, release: Path, count: int) -> dict[str, str]:
    """`mediabot ytdlp update --find-links` end to end, and its two parts measured apart in this process."""
    whole, installs, canaries, sizes = [], [], [], []
    for _ in range(count):
        work = Path(tempfile.mkdtemp(prefix="mediabot-ytdlp-bench-"))
        try:
            settings = make_settings(work, canary_urls=[site.url(f"/clip/bench-{time.time_ns()}.mp4")])
            started = time.monotonic()
            code, _, err = await run_mediabot(
                settings_env(settings), "ytdlp", "update", "--find-links", str(release)
            )
            assert code == 0, err
            whole.append(time.monotonic() - started)
            sizes.append(_du(settings.data_dir / "ytdlp" / VERSION))

            # The same two steps again, apart, on a fresh data directory.
            apart = make_settings(work / "apart", canary_urls=settings.canary_urls)
            started = time.monotonic()
            folder = await install(apart.data_dir, VERSION, Source(find_links=release), lambda _line: None)
            installs.append(time.monotonic() - started)
            started = time.monotonic()
            await run_canary(apart, folder, VERSION, lambda _line: None)
            canaries.append(time.monotonic() - started)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return {
        "updates": str(count),
        "`mediabot ytdlp update --find-links DIR` (process start, install, canary of 1 link, switch)": _median(
            whole
        ),
        "install (pip --target, yt-dlp + yt-dlp-ejs, bytecode compiled)": _median(installs),
        "canary (child process: load yt-dlp + our downloader, probe + download 1 link of 250 KB)": _median(
            canaries
        ),
        "installed size": f"{statistics.median(sizes):.1f} MB per version",
    }


async def switches(site: MediaSite, release: Path, count: int) -> list[dict[str, str]]:
    rows = []
    files = generate_media()
    for _ in range(count):
        work = Path(tempfile.mkdtemp(prefix="mediabot-ytdlp-switch-"))
        try:
            async with gated_media(files.big_mp4.read_bytes()) as gated:
                result = await worker_switch(work, site, gated, release, VERSION, grace_s=3)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        finals = result["finals"].values()
        done = sum(1 for f in finals if f.status == "done")
        once = all(result["output"].count(f"job {j} done in") == 1 for j in result["jobs"])
        rows.append(
            {
                "jobs (2 before, 2 running at the switch, 2 queued, 2 during, 2 after)": str(
                    len(result["jobs"])
                ),
                "finished": f"{done}, each exactly once: {once}",
                "lost": str(len(result["jobs"]) - done),
                "update (CLI, while the worker ran)": f"{result['update_s']:.1f} s",
                "jobs paused: stopped taking jobs -> taking them again on the new version": (
                    f"{result['paused_s']:.1f} s (grace {result['grace_s']:g} s, used in full by the "
                    "handed-back job)"
                ),
                "of which re-execution: exec -> worker started": f"{result['reexec_s']:.1f} s",
            }
        )
    return rows


async def main(update_count: int, switch_count: int) -> int:
    logging.basicConfig(level=logging.WARNING)
    files = generate_media()
    site = MediaSite(files)
    await site.start()
    release = Path(tempfile.mkdtemp(prefix="mediabot-ytdlp-release-"))
    try:
        wheels.build_ytdlp(release, VERSION)
        wheels.build_ejs(release)
        print(f"yt-dlp {wheels.bundled_version()} installed; release {VERSION} built from it in {release}")
        if update_count:
            print("\n### update\n\n| figure | value |\n|---|---|")
            for key, value in (await updates(site, release, update_count)).items():
                print(f"| {key} | {value} |")
        for n, row in enumerate(await switches(site, release, switch_count), 1):
            print(f"\n### worker switch {n}\n\n| figure | value |\n|---|---|")
            for key, value in row.items():
                print(f"| {key} | {value} |")
    finally:
        await site.stop()
        shutil.rmtree(release, ignore_errors=True)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--switches", type=int, default=1)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.updates, args.switches)))
