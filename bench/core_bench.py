"""Core benchmark: the service against plain yt-dlp and curl, cache hits, coalescing, worker memory.

Everything runs on 127.0.0.1: the test media site serves ffmpeg-made files; mediabot runs embedded
(SQLite, local disk, in-process queue) for the latency figures, and as a real `mediabot worker` process on
Redis + PostgreSQL for the memory figure. Bounded: every phase has a fixed count and a timeout.

    .venv/bin/python bench/core_bench.py [--jobs 1000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import load_settings  # noqa: E402
from core.db import migrate  # noqa: E402
from core.jobs.choices import SubmitRequest  # noqa: E402
from tests.support.media import generate_media  # noqa: E402
from tests.support.media_site import MediaSite  # noqa: E402
from tests.support.services import settings_env  # noqa: E402

PG = os.environ.get("MEDIABOT_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("MEDIABOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/15"


def ask(url: str, user: str = "bench", kind: str = "video") -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id=user, kind=kind)  # type: ignore[arg-type]


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    return time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def bench_embedded(site: MediaSite, work: Path, runs: int) -> dict[str, float]:
    from mediabot.cli import services_for

    settings = load_settings(
        data_dir=work / "embedded", allowed_extractors=["generic"], allow_private_urls=True
    )
    await migrate.upgrade(settings.database_url)
    out: dict[str, float] = {}
    async with services_for(settings, worker=True) as services:
        jobs = services.jobs
        # Warm-up: the first job pays for nothing the others don't (extractors are imported at start).
        warm = await jobs.submit(ask(site.url(f"/clip/warm-{uuid.uuid4().hex}.mp4")))
        await jobs.wait(warm.job.id, timeout=60)

        service_times = []
        paths = [f"/big.mp4?svc={i}-{uuid.uuid4().hex[:6]}" for i in range(runs)]
        for path in paths:
            site.reset_counts()
            started = time.perf_counter()
            sub = await jobs.submit(ask(site.url(path)))
            final = await jobs.wait(sub.job.id, timeout=120)
            service_times.append(time.perf_counter() - started)
            assert final.status == "done", final.error
            out["big_fetches_per_job"] = site.hits("/big.mp4")
            out["big_downloads_per_job"] = site.downloads("/big.mp4")
        out["service_s"] = statistics.median(service_times)

        # Cache hits: the same link again, 100 times, each a full submit through the job service.
        cached_url = site.url(paths[0])
        hit_times = []
        for _ in range(100):
            started = time.perf_counter()
            sub = await jobs.submit(ask(cached_url, user="other"))
            hit_times.append((time.perf_counter() - started) * 1000)
            assert sub.outcome in ("cached",), sub.outcome
        out["cache_p50_ms"] = pct(hit_times, 0.5)
        out["cache_p95_ms"] = pct(hit_times, 0.95)

        # Coalescing: 50 identical requests at once.
        clip = f"/clip/coalesce-{uuid.uuid4().hex}.mp4"
        subs = await asyncio.gather(*(jobs.submit(ask(site.url(clip), user=f"u{i}")) for i in range(50)))
        await asyncio.gather(*(jobs.wait(s.job.id, timeout=60) for s in subs))
        out["coalesce_requests"] = 50
        out["coalesce_jobs"] = len({s.job.id for s in subs})
        out["coalesce_downloads"] = site.downloads(clip)
    return out


def bench_baselines(site: MediaSite, work: Path, runs: int) -> dict[str, float]:
    ytdlp = str(Path(sys.executable).with_name("yt-dlp"))
    curl_times, cli_times = [], []
    site.reset_counts()
    for i in range(runs):
        target = work / f"curl-{i}.mp4"
        curl_times.append(timed(["curl", "-s", "-o", str(target), site.url(f"/big.mp4?curl={i}")]))
        target.unlink(missing_ok=True)
    for i in range(runs):
        target = work / f"cli-{i}.mp4"
        cli_times.append(
            timed(
                [
                    ytdlp,
                    "-q",
                    "--no-progress",
                    "--use-extractors",
                    "generic",
                    "-o",
                    str(target),
                    site.url(f"/big.mp4?cli={i}"),
                ]
            )
        )
        target.unlink(missing_ok=True)
    return {
        "curl_s": statistics.median(curl_times),
        "ytdlp_cli_s": statistics.median(cli_times),
        "cli_fetches_per_job": site.hits("/big.mp4") / runs - 1,  # minus curl's one fetch per run
    }


async def bench_memory(site: MediaSite, work: Path, jobs_count: int) -> dict[str, float]:
    """RSS of a real `mediabot worker` (Redis + PostgreSQL) before and after `jobs_count` small jobs."""
    import asyncpg
    from redis.asyncio import Redis

    from mediabot.cli import services_for
    from tests.support.services import fresh_pg_database

    tmpl = f"mb_bench_tmpl_{os.getpid()}"
    conn = await asyncpg.connect(PG.replace("+asyncpg", ""))
    await conn.execute(f'DROP DATABASE IF EXISTS "{tmpl}"')
    await conn.execute(f'CREATE DATABASE "{tmpl}"')
    await conn.close()
    base = PG.rsplit("/", 1)[0]
    await migrate.upgrade(f"{base}/{tmpl}")
    redis = Redis.from_url(REDIS)
    await redis.flushdb()
    out: dict[str, float] = {}
    try:
        async with fresh_pg_database(PG, tmpl) as url:
            settings = load_settings(
                data_dir=work / "memory",
                database_url=url,
                redis_url=REDIS,
                allowed_extractors=["generic"],
                allow_private_urls=True,
                log_level="WARNING",
            )
            env = settings_env(settings)
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mediabot",
                "worker",
                env=env,
                cwd=str(ROOT),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                async with services_for(settings, worker=False) as services:

                    async def run_batch(n: int, tag: str) -> None:
                        subs = [
                            await services.jobs.submit(ask(site.url(f"/clip/{tag}-{i}.mp4")))
                            for i in range(n)
                        ]
                        for s in subs:
                            final = await services.jobs.wait(s.job.id, timeout=120)
                            assert final.status == "done", final.error

                    await run_batch(50, f"warm{uuid.uuid4().hex[:6]}")
                    before = rss_kb(proc.pid)
                    started = time.perf_counter()
                    done = 0
                    while done < jobs_count:
                        n = min(100, jobs_count - done)
                        await run_batch(n, f"mem{done}-{uuid.uuid4().hex[:6]}")
                        done += n
                    elapsed = time.perf_counter() - started
                    after = rss_kb(proc.pid)
                    out.update(
                        rss_before_mb=before / 1024,
                        rss_after_mb=after / 1024,
                        rss_growth_mb=(after - before) / 1024,
                        jobs=jobs_count,
                        jobs_per_s=jobs_count / elapsed,
                    )
            finally:
                proc.terminate()
                await asyncio.wait_for(proc.wait(), 30)
    finally:
        await redis.flushdb()
        await redis.aclose()
        conn = await asyncpg.connect(PG.replace("+asyncpg", ""))
        await conn.execute(f'DROP DATABASE IF EXISTS "{tmpl}" WITH (FORCE)')
        await conn.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mediabot-bench-"))
    site = MediaSite(generate_media())
    await site.start()
    try:
        base = await asyncio.to_thread(bench_baselines, site, work, args.runs)
        emb = await bench_embedded(site, work, args.runs)
        mem = await bench_memory(site, work, args.jobs)
    finally:
        await site.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n== mediabot core bench (30 MB file on 127.0.0.1, medians of {args.runs} runs) ==")
    print(f"curl                    {base['curl_s'] * 1000:8.1f} ms")
    print(
        f"yt-dlp CLI              {base['ytdlp_cli_s'] * 1000:8.1f} ms  ({base['cli_fetches_per_job']:.0f} GETs per file)"
    )
    print(
        f"mediabot (submit->done) {emb['service_s'] * 1000:8.1f} ms  ({emb['big_fetches_per_job']:.0f} GETs, "
        f"{emb['big_downloads_per_job']:.0f} full download per job)"
    )
    print(
        f"  = {emb['service_s'] / base['curl_s']:.2f}x curl, {emb['service_s'] / base['ytdlp_cli_s']:.3f}x yt-dlp CLI"
    )
    print(
        f"cache hit submit        p50 {emb['cache_p50_ms']:.2f} ms, p95 {emb['cache_p95_ms']:.2f} ms (100 requests)"
    )
    print(
        f"coalescing              {emb['coalesce_requests']:.0f} identical requests -> {emb['coalesce_jobs']:.0f} job, "
        f"{emb['coalesce_downloads']:.0f} download"
    )
    print(
        f"worker RSS              {mem['rss_before_mb']:.1f} MB -> {mem['rss_after_mb']:.1f} MB after "
        f"{mem['jobs']:.0f} jobs (growth {mem['rss_growth_mb']:+.2f} MB; {mem['jobs_per_s']:.1f} jobs/s)"
    )


if __name__ == "__main__":
    asyncio.run(main())
