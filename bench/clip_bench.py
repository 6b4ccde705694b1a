"""Clip benchmark: what a 10 s clip of a 60 s 720p file costs when the file is stored (core.cuts), and what the
same clip costs from a site (yt-dlp over 127.0.0.1: the whole file then the cut, or download_ranges with
keyframes forced at the cuts), plus the other cuts core.cuts makes.

The 60 s file (1280x720 at 30 fps, H.264 veryfast with a keyframe every 2 s, AAC) and its sound as m4a are made
by FFmpeg once and kept in /tmp/mediabot-bench-clip. Each figure is the median of --runs runs (default 7), in
milliseconds, one run at a time.

    .venv/bin/python bench/clip_bench.py [--runs 7] [--no-site] [--no-api]

Figures of 2026-11-30 (2-core VM shared with other test runs, load average ~10, so slow and noisy), median of 7:

    clip 10 s of 60 s 720p, stored file (re-encode)                   4940 ms
    clip 10 s of 60 s m4a, stored file (stream copy)                   308 ms
    animation 10 s of 60 s 720p (720 px wide, no sound)               3048 ms
    split 60 s 720p into 6 chapters (stream copy)                      205 ms
    remove 2 sponsor segments from 60 s 720p (incl. 1 file copy)       736 ms
    from the site: yt-dlp whole file, then cut                        7514 ms
    from the site: yt-dlp download_ranges + force_keyframes          15313 ms

Through the API (issue 26 phase 2: POST /api/v1/jobs with `section` until GET says done, embedded services,
one worker slot, a fresh link per run), 2026-12-14, load average ~8, median of 5:

    API: clip of a stored download (POST to done)                     3586 ms  (3297-5256)
    API: clip from the site (whole download, then cut)                4373 ms  (3750-5826)

2026-12-07 (load 6-11, so slower throughout; compare rows of one run), median of 3, new rows:

    split 60 s 720p into 6 chapter items (a cut each)                 2417 ms  (1447 at load 5, median of 5)
    API: clip of media over the limit (its range only)               20160 ms  (API stored-file clip: 13277)

The cut itself (re-encoding 10 s of 720p) is most of both; from a stored file the site sees no request at
all, and the difference grows with the file's size and the site's speed (127.0.0.1 here: ~0.8 s for 60 s).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aiohttp import web  # noqa: E402

from core.cuts.chapters import Chapter, split_by_chapters  # noqa: E402
from core.cuts.cut import cut_clip, to_animation  # noqa: E402
from core.cuts.sections import parse_section  # noqa: E402
from core.cuts.sponsorblock import Segment, SponsorChoice  # noqa: E402
from core.media.sponsor_removal import apply_segments  # noqa: E402

CACHE = Path("/tmp/mediabot-bench-clip")
SECONDS = 60
SECTION = "0:23.4-0:33.4"  # 10 s, starting between keyframes


def ffmpeg_path() -> str:
    found = shutil.which("ffmpeg")
    if found is None or shutil.which("ffprobe") is None:
        sys.exit("ffmpeg and ffprobe are needed (scripts/system-deps)")
    return found


def make_media(ffmpeg: str) -> tuple[Path, Path]:
    CACHE.mkdir(parents=True, exist_ok=True)
    video, audio = CACHE / "720p-60s.mp4", CACHE / "60s.m4a"
    if not video.exists():
        tmp = video.with_suffix(".tmp.mp4")
        subprocess.run(
            [ffmpeg, "-v", "error", "-nostdin", "-y",
             "-f", "lavfi", "-i", f"testsrc2=size=1280x720:rate=30:duration={SECONDS}",
             "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={SECONDS}",
             "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", "60", "-keyint_min", "60",
             "-c:a", "aac", "-b:a", "128k", "-shortest", "-movflags", "+faststart", str(tmp)],
            check=True, timeout=600,
        )  # fmt: skip
        tmp.rename(video)
    if not audio.exists():
        tmp = audio.with_suffix(".tmp.m4a")
        subprocess.run(
            [ffmpeg, "-v", "error", "-nostdin", "-y", "-i", str(video), "-vn", "-c:a", "copy", str(tmp)],
            check=True, timeout=120,
        )  # fmt: skip
        tmp.rename(audio)
    return video, audio


def median_ms(runs: int, once: Callable[[Path], object]) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="clip-bench-") as tmp:
            started = time.perf_counter()
            once(Path(tmp))
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), times


async def serve(root: Path) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_static("/", root)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def ytdlp(url: str, folder: Path, ffmpeg: str, *, ranges: bool) -> Path:
    import yt_dlp
    from yt_dlp.utils import download_range_func

    section = parse_section(SECTION)
    opts: dict[str, object] = {
        "quiet": True, "no_warnings": True, "noprogress": True, "ffmpeg_location": ffmpeg,
        "outtmpl": str(folder / "%(id)s.%(ext)s"), "cachedir": False,
    }  # fmt: skip
    if ranges:
        opts["download_ranges"] = download_range_func(None, [(section.start, section.end)])
        opts["force_keyframes_at_cuts"] = True
    with yt_dlp.YoutubeDL(opts) as ydl:
        info = ydl.extract_info(url, download=True)
        return Path(info["requested_downloads"][0]["filepath"])


async def api_figures(video: Path, runs: int) -> list[tuple[str, float, list[float]]]:
    """The same clip through the API (POST /api/v1/jobs with `section`, then GET until done), on the embedded
    services with their in-process worker: from a stored download of the media, and from the site (the
    whole file downloaded, then cut). Each run uses a link of its own, so nothing comes from the cache."""
    import aiohttp

    from tests.support.servers import free_port
    from tests.support.services import make_settings, running_services
    from web.server import serving

    section = {"start": SECTION.split("-")[0], "end": SECTION.split("-")[1]}
    stored: list[float] = []
    fresh: list[float] = []
    over: list[float] = []
    with tempfile.TemporaryDirectory(prefix="clip-bench-api-") as tmp:
        settings = make_settings(
            Path(tmp),
            port=free_port(),
            worker_concurrency=1,
            log_level="WARNING",
            api_calls_per_minute=100_000,
            api_rate_per_minute=1000,
        )
        files, base = await serve(CACHE)
        try:
            async with (
                running_services(settings) as services,
                serving(services),
                aiohttp.ClientSession() as http,
            ):
                _, key = await services.keys.create("clip-bench")
                api = f"http://127.0.0.1:{settings.port}/api/v1/jobs"
                auth = {"Authorization": f"Bearer {key}"}

                async def done(body: dict[str, object]) -> dict[str, object]:
                    assert "status" in body, body
                    while body["status"] not in ("done", "failed", "cancelled"):
                        await asyncio.sleep(0.02)
                        async with http.get(f"{api}/{body['id']}", headers=auth) as resp:
                            body = await resp.json()
                    assert body["status"] == "done", body
                    return body

                async def clip(url: str) -> float:
                    started = time.perf_counter()
                    async with http.post(api, json={"url": url, "section": section}, headers=auth) as resp:
                        await done(await resp.json())
                    return (time.perf_counter() - started) * 1000

                for run in range(runs):
                    url = f"{base}/{video.name}?stored={run}-{time.time_ns()}"
                    async with http.post(api, json={"url": url}, headers=auth) as resp:
                        await done(await resp.json())
                    stored.append(await clip(url))
                    fresh.append(await clip(f"{base}/{video.name}?fresh={run}-{time.time_ns()}"))
            # Media over the duration limit (30 s here; its page states 60 s, as video sites do): never
            # stored whole, so only the clip's range is downloaded (download_ranges, re-encoded at the cuts).
            page = CACHE / "over-limit.html"
            page.write_text(
                '<html><head><title>Over the limit</title><script type="application/ld+json">'
                f'{{"@context": "https://schema.org", "@type": "VideoObject", "name": "Over the limit", '
                f'"duration": "PT{SECONDS}S", "contentUrl": "{base}/{video.name}"}}</script></head>'
                "<body><h1>Over the limit</h1></body></html>"
            )
            limited = settings.model_copy(update={"max_duration_s": SECONDS // 2, "port": free_port()})
            async with (
                running_services(limited) as services,
                serving(services),
                aiohttp.ClientSession() as http,
            ):
                _, key = await services.keys.create("clip-bench-limited")
                api = f"http://127.0.0.1:{limited.port}/api/v1/jobs"
                auth = {"Authorization": f"Bearer {key}"}
                for run in range(runs):
                    over.append(await clip(f"{base}/{page.name}?over={run}-{time.time_ns()}"))
        finally:
            await files.cleanup()
    return [
        ("API: clip of a stored download (POST to done)", statistics.median(stored), stored),
        ("API: clip from the site (whole download, then cut)", statistics.median(fresh), fresh),
        ("API: clip of media over the limit (its range only)", statistics.median(over), over),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-site", action="store_true", help="skip the yt-dlp figures")
    parser.add_argument("--no-api", action="store_true", help="skip the figures through the API")
    args = parser.parse_args()
    ffmpeg = ffmpeg_path()
    video, audio = make_media(ffmpeg)
    section = parse_section(SECTION)
    never = threading.Event()
    figures: list[tuple[str, float, list[float]]] = []

    def measure(name: str, once: Callable[[Path], object]) -> None:
        once_more = median_ms(args.runs, once)
        figures.append((name, *once_more))
        print(f"{name:<62} {once_more[0]:9.1f} ms", flush=True)

    measure(
        "clip 10 s of 60 s 720p, stored file (re-encode)",
        lambda d: cut_clip(video, section, d, ffmpeg=ffmpeg, cancel=never),
    )
    measure(
        "clip 10 s of 60 s m4a, stored file (stream copy)",
        lambda d: cut_clip(audio, section, d, ffmpeg=ffmpeg, cancel=never),
    )
    measure(
        "animation 10 s of 60 s 720p (720 px wide, no sound)",
        lambda d: to_animation(video, section, d, ffmpeg=ffmpeg, cancel=never),
    )
    chapters = [Chapter(f"Part {i}", i * 10.0, (i + 1) * 10.0) for i in range(6)]
    measure(
        "split 60 s 720p into 6 chapters (stream copy)",
        lambda d: split_by_chapters(video, chapters, d, ffmpeg=ffmpeg, cancel=never),
    )

    def chapter_items(d: Path) -> None:
        # A split's items (issue 26 item 2): each chapter cut on its own from the stored file, as each item's
        # job does, one after the other here (workers run them side by side).
        for i, chapter in enumerate(chapters):
            split_by_chapters(video, [chapter], d / str(i), ffmpeg=ffmpeg, cancel=never, merge=False)

    measure("split 60 s 720p into 6 chapter items (a cut each)", chapter_items)

    def remove(d: Path) -> None:
        copy = d / video.name
        shutil.copyfile(video, copy)
        segments = [Segment(10.0, 17.5, "sponsor", "a", 60.0), Segment(40.0, 44.0, "selfpromo", "b", 60.0)]
        apply_segments(copy, segments, SponsorChoice("remove"), ffmpeg=ffmpeg, cancel=never)

    measure("remove 2 sponsor segments from 60 s 720p (incl. 1 file copy)", remove)

    if not args.no_site:

        async def site_figures() -> None:
            runner, base = await serve(CACHE)
            try:
                url = f"{base}/{video.name}"

                def whole_then_cut(d: Path) -> None:
                    path = ytdlp(url, d, ffmpeg, ranges=False)
                    cut_clip(path, section, d / "clip", ffmpeg=ffmpeg, cancel=never)

                for name, once in (
                    ("from the site: yt-dlp whole file, then cut", whole_then_cut),
                    (
                        "from the site: yt-dlp download_ranges + force_keyframes",
                        lambda d: ytdlp(url, d, ffmpeg, ranges=True),
                    ),
                ):
                    result = await asyncio.to_thread(median_ms, args.runs, once)
                    figures.append((name, *result))
                    print(f"{name:<62} {result[0]:9.1f} ms", flush=True)
            finally:
                await runner.cleanup()

        asyncio.run(site_figures())

    if not args.no_api:
        for name, median, times in asyncio.run(api_figures(video, args.runs)):
            figures.append((name, median, times))
            print(f"{name:<62} {median:9.1f} ms", flush=True)

    print(f"\nmedian of {args.runs} runs; all runs (ms):")
    for name, _, times in figures:
        print(f"  {name}: {', '.join(f'{t:.0f}' for t in times)}")


if __name__ == "__main__":
    main()
