"""Delivery planner and playlist benchmark: what a copy that fits costs, and how a playlist compares with
downloading its items one by one.

Embedded mediabot (SQLite, local disk, in-process queue) against the test media site on 127.0.0.1:
- smaller format: /qualities.html (360p 30.7 MB, 240p 254 KB) -> a copy under 1 MB, after the full download;
- re-encode: the 30.7 MB, 10 s clip -> a two-pass copy under 10 MB (what a Discord server without boosts takes);
- split: the 3 s clip -> parts under half its size (stream copy, no re-encode);
- playlist: a feed of 143 clips cut at 10 items, submit -> all items done, against 10 separate submissions.

    .venv/bin/python bench/fit_bench.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import load_settings  # noqa: E402
from core.db import migrate  # noqa: E402
from core.delivery.planner import finished_items  # noqa: E402
from core.jobs.choices import SubmitRequest  # noqa: E402
from mediabot.cli import services_for  # noqa: E402
from tests.support.media import generate_media  # noqa: E402
from tests.support.media_site import MediaSite  # noqa: E402

TEN_MIB = 10 * 1024 * 1024


def ask(url: str) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id="bench")


async def copy_time(services, url: str, limit: int, split: bool = False) -> tuple[float, str, int]:  # type: ignore[no-untyped-def]
    sub = await services.jobs.submit(ask(url))
    full = await services.jobs.wait(sub.job.id, timeout=120)
    assert full.status == "done", full.error
    started = time.perf_counter()
    fit = await services.jobs.fit(sub.request.id, limit, split=split)
    copy = await services.jobs.wait(fit.job.id, timeout=600)
    elapsed = time.perf_counter() - started
    assert copy.status == "done", copy.error
    return elapsed, copy.fit_method or "?", len(copy.parts or []) or 1


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mediabot-fit-bench-"))
    rows: list[tuple[str, float, str]] = []
    try:
        async with MediaSite(generate_media()) as site:
            for name, overrides, url, limit, split in (
                ("smaller format (30.7 MB -> 240p, 1 MB limit)", {}, "/qualities.html", 1_000_000, False),
                (
                    "re-encode (30.7 MB, 10 s -> 10 MiB)",
                    {"reencode_to_fit": True},
                    "/big.mp4",
                    TEN_MIB,
                    False,
                ),
                # Parts are cut at keyframes by stream copy; the 30.7 MB clip has a single keyframe, so the
                # split row uses the 3 s clip (a keyframe a second) cut to half its size.
                ("split (254 KB, 3 s -> 127 KB parts)", {}, "/video.mp4", 127_000, True),
            ):
                times = []
                detail = ""
                for _ in range(args.runs):
                    data = work / uuid.uuid4().hex
                    settings = load_settings(
                        data_dir=data, allowed_extractors=["generic"], allow_private_urls=True, **overrides
                    )
                    await migrate.upgrade(settings.database_url)
                    async with services_for(settings, worker=True) as services:
                        elapsed, method, files = await copy_time(services, site.url(url), limit, split)
                    times.append(elapsed)
                    detail = f"{method}, {files} file(s)"
                    shutil.rmtree(data, ignore_errors=True)
                rows.append((name, statistics.median(times), detail))

            playlist, separate = [], []
            for _ in range(args.runs):
                data = work / uuid.uuid4().hex
                settings = load_settings(
                    data_dir=data, allowed_extractors=["generic"], allow_private_urls=True
                )
                await migrate.upgrade(settings.database_url)
                async with services_for(settings, worker=True) as services:
                    tag = uuid.uuid4().hex[:6]
                    started = time.perf_counter()
                    sub = await services.jobs.submit(ask(site.url(f"/feed.xml?n=143&run={tag}")))
                    await services.jobs.wait(sub.job.id, timeout=60)
                    items = [j async for _, j in finished_items(services.jobs, sub.request.id)]
                    playlist.append(time.perf_counter() - started)
                    assert len(items) == 10 and all(j.status == "done" for j in items)
                    started = time.perf_counter()
                    subs = [
                        await services.jobs.submit(ask(site.url(f"/clip/{tag}-{i}.mp4"))) for i in range(10)
                    ]
                    for s in subs:
                        await services.jobs.wait(s.job.id, timeout=60)
                    separate.append(time.perf_counter() - started)
                shutil.rmtree(data, ignore_errors=True)
            rows.append(("playlist of 143 cut at 10, all items done", statistics.median(playlist), ""))
            rows.append(("10 separate links, all done", statistics.median(separate), ""))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"median of {args.runs} runs")
    for name, seconds, detail in rows:
        print(f"  {name:<46} {seconds * 1000:8.1f} ms  {detail}")


if __name__ == "__main__":
    asyncio.run(main())
