"""Memory while moving a large file: a real `mediabot worker` process downloads a file of several hundred MB
and stores it on local disk (a rename) or in S3 (a multipart upload streamed from the file), while the bench
samples its RSS every 20 ms.

On 127.0.0.1 only: the file is the test clip looped by ffmpeg (stream copy, a valid MP4), served from disk by
aiohttp (sendfile); S3 is moto's server in this process; the worker uses Redis + PostgreSQL. Bounded: one job
per storage, a timeout on each, and everything stops itself.

    .venv/bin/python bench/memory_bench.py [--loops 20]     # 20 loops of the 30.7 MB clip = ~614 MB
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from core.config import load_settings  # noqa: E402
from core.db import migrate  # noqa: E402
from core.jobs.choices import SubmitRequest  # noqa: E402
from tests.support.media import generate_media  # noqa: E402
from tests.support.services import settings_env  # noqa: E402

PG = os.environ.get("MEDIABOT_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("MEDIABOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0] + "/14"
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
    "NO_PROXY": "127.0.0.1,localhost",
}


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


async def serve_file(path: Path) -> tuple[web.AppRunner, str]:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Content-Type": "video/mp4"})

    app = web.Application()
    app.router.add_get("/large/{name}.mp4", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def one_job(settings: Any, url: str) -> dict[str, float]:
    from mediabot.cli import services_for

    env = {**settings_env(settings), **AWS}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mediabot", "worker", env=env, cwd=str(ROOT),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    samples: list[int] = []
    try:
        async with services_for(settings, worker=False) as services:
            # A small job first, so the baseline is a warm worker (extractors imported, pools open).
            warm = await services.jobs.submit(
                SubmitRequest(text=f"{url}/large/warm.mp4", source="cli", user_id="b")
            )
            await services.jobs.wait(warm.job.id, timeout=300)
            await asyncio.sleep(0.5)
            baseline = status_kb(proc.pid, "VmRSS")
            sub = await services.jobs.submit(
                SubmitRequest(text=f"{url}/large/{uuid.uuid4().hex}.mp4", source="cli", user_id="b")
            )
            started = time.perf_counter()

            async def sample() -> None:
                while True:
                    samples.append(status_kb(proc.pid, "VmRSS"))
                    await asyncio.sleep(0.02)

            sampler = asyncio.create_task(sample())
            try:
                final = await services.jobs.wait(sub.job.id, timeout=600)
            finally:
                sampler.cancel()
            elapsed = time.perf_counter() - started
            assert final.status == "done", final.error
            return {
                "size_mb": (final.filesize or 0) / 1e6,
                "seconds": elapsed,
                "baseline_mb": baseline / 1024,
                "peak_mb": max(samples) / 1024,
                "peak_over_baseline_mb": (max(samples) - baseline) / 1024,
            }
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 60)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loops", type=int, default=20, help="copies of the 30.7 MB clip in the file")
    args = parser.parse_args()
    import asyncpg
    from moto.server import ThreadedMotoServer
    from redis.asyncio import Redis

    os.environ.update(AWS)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    work = Path(tempfile.mkdtemp(prefix="mediabot-memory-bench-"))
    files = generate_media()
    large = work / "large.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-stream_loop", str(args.loops - 1), "-i", str(files.big_mp4),
         "-c", "copy", "-movflags", "+faststart", str(large)],
        check=True, timeout=300,
    )  # fmt: skip
    runner, base = await serve_file(large)
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import boto3

    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    redis = Redis.from_url(REDIS)
    name = f"mb_mem_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(PG.replace("+asyncpg", ""))
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = PG.rsplit("/", 1)[0] + f"/{name}"
    await migrate.upgrade(url)
    results: dict[str, dict[str, float]] = {}
    try:
        for storage, extra in (
            ("local disk", {}),
            ("S3 (moto)", {"s3_bucket": bucket, "s3_endpoint_url": endpoint}),
        ):
            await redis.flushdb()
            settings = load_settings(
                data_dir=work / storage.split()[0], database_url=url, redis_url=REDIS, allowed_extractors=["generic"],
                allow_private_urls=True, log_level="WARNING", max_filesize_mb=5000, **extra,
            )  # fmt: skip
            results[storage] = await one_job(settings, base)
    finally:
        await redis.flushdb()
        await redis.aclose()
        conn = await asyncpg.connect(PG.replace("+asyncpg", ""))
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()
        moto.stop()
        await runner.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f"== worker memory while moving one large file ({args.loops} loops of the 30.7 MB clip) ==")
    for storage, r in results.items():
        print(
            f"  {storage:<11} {r['size_mb']:7.1f} MB in {r['seconds']:5.1f} s   RSS baseline {r['baseline_mb']:6.1f} MB,"
            f" peak {r['peak_mb']:6.1f} MB (+{r['peak_over_baseline_mb']:.1f} MB)"
        )


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(), timeout=1200))
