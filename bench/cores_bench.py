"""Both cores: N simultaneous small jobs through a real `mediabot run` at MEDIABOT_WORKER_CONCURRENCY 1 and 4.

Each configuration starts its own `mediabot run` (embedded defaults: SQLite, in-process queue, local disk)
on a new data directory, runs one warm-up job (not timed: the first job imports yt-dlp wherever downloads
run), then POSTs --jobs clips not seen before all at once (distinct names: no cache hit, no coalescing) and
waits until the database says every one is done. It reports the burst's wall time, jobs/s, and the CPU
seconds the burst cost the whole process tree (`run`, its download processes and their ffmpeg, from
/proc: utime + stime + reaped children's), so "uses one core" shows as CPU s ~ wall s, and what `run`'s own
threads used of it (the web app, the database, the events, and with threads the downloads too).

Configurations: the default (download processes: one per core up to the concurrency) and, for the figure
before, MEDIABOT_DOWNLOAD_PROCESSES=0 (downloads in threads of the one process). Taken in turns, run by run.

    .venv/bin/python bench/cores_bench.py [--jobs 50] [--runs 3] [--concurrency 1,4] [--modes processes,threads]
        [--path '/big.mp4?n={}']   # the 30.7 MB file instead of a small clip
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.media import generate_media  # noqa: E402
from tests.support.media_site import MediaSite  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def own_cpu_s(pid: int) -> float:
    """CPU seconds of the process itself (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def tree_cpu_s(root: int) -> float:
    """CPU seconds of `root` and every live descendant, plus what each has reaped of its own children."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        # utime, stime, cutime, cstime: fields 14-17 of stat, here 11-14 after the name.
        times[pid] = sum(int(v) for v in fields[11:15]) / TICK
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


def done_count(db: Path, urls: list[str]) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)) as conn:
        rows = conn.execute("SELECT url, status FROM jobs").fetchall()
    wanted = set(urls)
    ended = [status for url, status in rows if url in wanted]
    return sum(s == "done" for s in ended), sum(s in ("failed", "cancelled") for s in ended)


async def one_burst(mode: str, concurrency: int, jobs: int, path: str, site: MediaSite) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="cores-bench-") as tmp:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIABOT_")}
        env.update(
            PYTHONPATH=str(ROOT),
            MEDIABOT_DATA_DIR=tmp,
            MEDIABOT_PORT=str(port),
            MEDIABOT_ALLOW_PRIVATE_URLS="true",
            MEDIABOT_ALLOWED_EXTRACTORS="generic",
            MEDIABOT_WORKER_CONCURRENCY=str(concurrency),
            # One key asks for everything at once: its own limits are not what is measured.
            MEDIABOT_API_MAX_CONCURRENT="1000",
            MEDIABOT_API_RATE_PER_MINUTE="10000",
            MEDIABOT_API_CALLS_PER_MINUTE="100000",
            MEDIABOT_LOG_LEVEL="WARNING",
        )
        if mode == "threads":
            env["MEDIABOT_DOWNLOAD_PROCESSES"] = "0"
        made = subprocess.run(
            [sys.executable, "-m", "mediabot", "apikey", "create", "bench"],
            env=env, cwd=ROOT, check=True, capture_output=True, text=True,
        )  # fmt: skip
        key = made.stdout.strip().splitlines()[-1]
        proc = subprocess.Popen(
            [sys.executable, "-m", "mediabot", "run"], env=env, cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        db = Path(tmp) / "mediabot.db"
        base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
                for _ in range(600):
                    with contextlib.suppress(aiohttp.ClientError):
                        async with http.get(f"{base}/health") as resp:
                            if resp.status == 200:
                                break
                    await asyncio.sleep(0.1)

                async def submit(url: str) -> None:
                    body = {"url": url}
                    async with http.post(f"{base}/api/v1/jobs", json=body, headers=auth) as resp:
                        assert resp.status == 202, await resp.text()

                async def finish(names: list[str], timeout: float) -> None:
                    deadline = time.monotonic() + timeout
                    while True:
                        done, failed = await asyncio.to_thread(done_count, db, names)
                        if failed:
                            raise RuntimeError(f"{failed} jobs failed")
                        if done == len(names):
                            return
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"{done} of {len(names)} done")
                        await asyncio.sleep(0.05)

                warm = [site.url(f"/clip/warm-{uuid.uuid4().hex}.mp4")]
                await submit(warm[0])
                await finish(warm, 120)
                names = [site.url(path.format(uuid.uuid4().hex)) for _ in range(jobs)]
                cpu0, own0 = tree_cpu_s(proc.pid), own_cpu_s(proc.pid)
                started = time.perf_counter()
                await asyncio.gather(*(submit(n) for n in names))
                await finish(names, 600)
                wall = time.perf_counter() - started
                cpu, own = tree_cpu_s(proc.pid) - cpu0, own_cpu_s(proc.pid) - own0
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return {"wall": wall, "rate": jobs / wall, "cpu": cpu, "own": own}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", default="1,4")
    parser.add_argument("--modes", default="processes,threads")
    # A new name (or query) per job: no cache hit, no coalescing. /big.mp4?n={} is the 30.7 MB file.
    parser.add_argument("--path", default="/clip/burst-{}.mp4")
    args = parser.parse_args()
    configs = [(m, int(c)) for m in args.modes.split(",") for c in args.concurrency.split(",")]
    site = MediaSite(generate_media())
    await site.start()
    results: dict[tuple[str, int], list[dict[str, float]]] = {c: [] for c in configs}
    load0 = os.getloadavg()[0]
    try:
        for _ in range(args.runs):
            for config in configs:
                results[config].append(await one_burst(*config, args.jobs, args.path, site))
    finally:
        await site.stop()
    print(
        f"{args.jobs} simultaneous jobs of {args.path}, median of {args.runs}, {os.cpu_count()} cores, "
        f"load average {load0:.2f} -> {os.getloadavg()[0]:.2f}"
    )
    print(
        f"{'downloads in':<13} {'concurrency':>11} {'wall s':>8} {'jobs/s':>8} {'CPU s':>7} {'CPU/wall':>9}"
    )
    walls: dict[tuple[str, int], float] = {}
    for (mode, conc), runs in results.items():
        wall = statistics.median(r["wall"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        own = statistics.median(r["own"] for r in runs)
        walls[(mode, conc)] = wall
        print(
            f"{mode:<13} {conc:>11} {wall:>8.2f} {args.jobs / wall:>8.1f} {cpu:>7.2f} {cpu / wall:>9.2f}"
            f" {own:>9.2f} s"
        )
    concs = sorted({c for _, c in configs})
    for mode in dict.fromkeys(m for m, _ in configs):
        if len(concs) > 1:
            lo, hi = concs[0], concs[-1]
            print(
                f"{mode}: concurrency {hi} is {walls[(mode, lo)] / walls[(mode, hi)]:.2f}x faster than {lo}"
            )


if __name__ == "__main__":
    asyncio.run(main())
