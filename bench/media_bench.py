"""Media extras benchmark: how long a link's formats take to probe (cold and cached), and what thumbnails,
tags and cover art add to a job (ms and % of a 30 MB job).

Everything runs on 127.0.0.1 against the test media site, embedded (SQLite, local disk, in-process queue),
with the worker warm. Each figure is the median of `--runs` jobs on distinct URLs (no cache hits), once with
MEDIABOT_THUMBNAILS / MEDIABOT_TAG_AUDIO on (the default) and once off. Bounded: fixed counts, timeouts.

    .venv/bin/python bench/media_bench.py [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
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
from core.jobs.choices import SubmitRequest  # noqa: E402
from tests.support.media import generate_media  # noqa: E402
from tests.support.media_site import MediaSite  # noqa: E402


def ask(url: str, kind: str = "video", **choices: object) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id="bench", kind=kind, **choices)  # type: ignore[arg-type]


def unique(path: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}b={uuid.uuid4().hex[:8]}"


async def job_times(services, site: MediaSite, path: str, runs: int, **kw: object) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        sub = await services.jobs.submit(ask(site.url(unique(path)), **kw))
        final = await services.jobs.wait(sub.job.id, timeout=120)
        times.append(time.perf_counter() - started)
        assert final.status == "done", final.error
    return statistics.median(times) * 1000


async def one_setting(site: MediaSite, work: Path, runs: int, extras: bool) -> dict[str, float]:
    from mediabot.cli import services_for

    settings = load_settings(
        data_dir=work / f"extras-{extras}",
        allowed_extractors=["generic"],
        allow_private_urls=True,
        thumbnails=extras,
        tag_audio=extras,
    )
    await migrate.upgrade(settings.database_url)
    out: dict[str, float] = {}
    async with services_for(settings, worker=True) as services:
        warm = await services.jobs.submit(ask(site.url(unique("/clip/warm.mp4"))))
        await services.jobs.wait(warm.job.id, timeout=60)
        # A 30 MB direct file: no picture from the site, so the thumbnail is a frame taken by ffmpeg.
        out["big_frame_ms"] = await job_times(services, site, "/big.mp4", runs)
        # The same 30 MB file from a page with a 1280x720 poster: the poster is fetched and scaled.
        out["big_poster_ms"] = await job_times(services, site, "/formats.html", runs, format_id="360p")
        # Audio with tags and cover art (JSON-LD page, 3 s m4a).
        out["audio_ms"] = await job_times(services, site, "/song.html", runs, kind="audio")
        if extras:
            probe_cold, probe_cached = [], []
            for _ in range(runs):
                url = site.url(unique("/formats.html"))
                started = time.perf_counter()
                first = await services.jobs.formats(url)
                probe_cold.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                again = await services.jobs.formats(url)
                probe_cached.append((time.perf_counter() - started) * 1000)
                assert not first.cached and again.cached
            out["probe_cold_ms"] = statistics.median(probe_cold)
            out["probe_cached_ms"] = statistics.median(probe_cached)
    return out


async def first_probe(site: MediaSite, work: Path) -> float:
    """The first probe in a fresh front-end process (a web or bot process runs no worker): it pays for
    building yt-dlp and importing its extractors."""
    from mediabot.cli import services_for

    settings = load_settings(data_dir=work / "front", allowed_extractors=["generic"], allow_private_urls=True)
    await migrate.upgrade(settings.database_url)
    async with services_for(settings, worker=False) as services:
        started = time.perf_counter()
        await services.jobs.formats(site.url(unique("/formats.html")))
        return (time.perf_counter() - started) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    files = generate_media()
    with tempfile.TemporaryDirectory(prefix="media-bench-") as tmp:
        work = Path(tmp)
        async with MediaSite(files) as site:
            first = await first_probe(site, work)
            off = await one_setting(site, work, args.runs, extras=False)
            on = await one_setting(site, work, args.runs, extras=True)
    print(f"probe (formats), first in a fresh front-end process: {first:.1f} ms")
    print(f"probe (formats) cold: {on['probe_cold_ms']:.1f} ms, cached: {on['probe_cached_ms']:.3f} ms")
    for key, what in (
        ("big_frame_ms", "30 MB video, thumbnail from a frame"),
        ("big_poster_ms", "30 MB video, thumbnail from the site's poster"),
        ("audio_ms", "3 s audio, tags + cover art + thumbnail"),
    ):
        extra = on[key] - off[key]
        print(
            f"{what}: {off[key]:.1f} ms -> {on[key]:.1f} ms (+{extra:.1f} ms, {100 * extra / off[key]:+.1f}%)"
        )


if __name__ == "__main__":
    asyncio.run(main())
