"""Close to the wire: one large file through the API (POST -> done on the WebSocket) beside curl and the yt-dlp
command line on the same file, in the same run, interleaved; and the server's memory while it moves the file.

Everything runs on 127.0.0.1. A child process serves the files: the test media site's 30.7 MB `/big.mp4`
(from memory, as the tests see it) and larger valid MP4s made by looping it with ffmpeg (stream copy, served
from disk with sendfile), made in a temporary directory that is deleted at the end. mediabot is a real
`mediabot run` (the embedded default: SQLite, local disk, in-process queue) on a spare port. Each run fetches
a new URL (a query string), so nothing is answered from the cache; each stored file is deleted through the API
after its run. For every size the three contenders take turns, run by run; the figure is the median.

    .venv/bin/python bench/wire_bench.py [--runs 7] [--sizes 31,300,1000] [--tree PATH]

--tree runs another checkout's code with this virtualenv (PYTHONPATH), for a before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

HARD_LIMIT_S = 1800
BIG_MB = 30.7


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except FileNotFoundError:
        pass
    return 0


# --- the files, served by a child process ----------------------------------------------------------------


def serve(large_dir: str, ports: Any, stop: Any) -> None:
    """The media site (its `/big.mp4`) and `/large/<name>.mp4` from disk, until `stop` is set."""
    from aiohttp import web

    from tests.support.media import generate_media
    from tests.support.media_site import MediaSite

    async def run() -> None:
        site = MediaSite(generate_media())
        await site.start()

        async def large(request: web.Request) -> web.StreamResponse:
            name = request.match_info["name"]
            return web.FileResponse(Path(large_dir) / f"{name}.mp4", headers={"Content-Type": "video/mp4"})

        app = web.Application()
        app.router.add_get("/large/{name:[a-z0-9]+}.mp4", large)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        ports.put((site.base_url, f"http://127.0.0.1:{runner.addresses[0][1]}"))
        await asyncio.to_thread(stop.wait)
        await runner.cleanup()
        await site.stop()

    asyncio.run(run())


def make_large(big: Path, out: Path, megabytes: int) -> None:
    loops = max(1, round(megabytes / BIG_MB))
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-stream_loop", str(loops - 1), "-i", str(big),
         "-c", "copy", "-movflags", "+faststart", str(out)],
        check=True, timeout=600,
    )  # fmt: skip


# --- the contenders --------------------------------------------------------------------------------------


def timed(cmd: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    return time.perf_counter() - started


class Mediabot:
    """A `mediabot run` process and an API client for it."""

    def __init__(self, tree: Path, data: Path) -> None:
        self.tree = tree
        self.data = data
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.key = ""
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIABOT_")}
        self.env.update(
            PYTHONPATH=str(tree),
            MEDIABOT_DATA_DIR=str(data),
            MEDIABOT_PORT=str(self.port),
            MEDIABOT_LOG_LEVEL="WARNING",
            MEDIABOT_ALLOW_PRIVATE_URLS="true",
            MEDIABOT_ALLOWED_EXTRACTORS="generic",
            MEDIABOT_MAX_FILESIZE_MB="5000",
        )

    async def start(self) -> None:
        import aiohttp

        cmd = [sys.executable, "-m", "mediabot"]
        subprocess.run([*cmd, "db", "upgrade"], env=self.env, cwd=self.tree, check=True, capture_output=True)
        made = subprocess.run(
            [*cmd, "apikey", "create", "bench"], env=self.env, cwd=self.tree, check=True, capture_output=True,
            text=True,
        )  # fmt: skip
        self.key = made.stdout.strip().splitlines()[-1]
        self.proc = subprocess.Popen(
            [*cmd, "run"], env=self.env, cwd=self.tree, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.base}/health") as resp:
                        if resp.status == 200:
                            return
                if self.proc.poll() is not None:
                    raise RuntimeError(f"mediabot run exited with {self.proc.returncode}")
                await asyncio.sleep(0.05)
        raise RuntimeError("mediabot run did not become ready")

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    async def job(self, http: Any, url: str, sample_rss: bool = False) -> tuple[float, dict[str, Any], int]:
        """Seconds from POST to the WebSocket's `done`, the final job, and the peak RSS seen meanwhile (KiB)."""
        assert self.proc is not None
        headers = {"Authorization": f"Bearer {self.key}"}
        peak = [rss_kib(self.proc.pid)]

        async def sample() -> None:
            while True:
                peak[0] = max(peak[0], rss_kib(self.proc.pid))  # type: ignore[union-attr]
                await asyncio.sleep(0.01)

        sampler = asyncio.create_task(sample()) if sample_rss else None
        try:
            started = time.perf_counter()
            async with http.post(f"{self.base}/api/v1/jobs", json={"url": url}, headers=headers) as resp:
                body = await resp.json()
                assert resp.status in (200, 202), body
            ws_url = f"{self.base}/api/v1/jobs/{body['id']}/events?token={self.key}"
            final: dict[str, Any] = body
            async with http.ws_connect(ws_url) as ws:
                async for message in ws:
                    final = json.loads(message.data)["job"]
                    if final["status"] in ("done", "failed", "cancelled"):
                        break
            elapsed = time.perf_counter() - started
        finally:
            if sampler is not None:
                sampler.cancel()
        assert final["status"] == "done", final
        # The stored file goes, so a run of 1 GB files doesn't fill the disk.
        async with http.delete(f"{self.base}/api/v1/history/{body['id']}", headers=headers) as resp:
            assert resp.status in (200, 204), await resp.text()
        return elapsed, final, peak[0]


YTDLP_ARGS = ["-q", "--no-progress", "--use-extractors", "generic"]


async def bench_size(
    bots: list[Mediabot], http: Any, url: str, runs: int, work: Path, ytdlp: str
) -> dict[str, Any]:
    """curl, the yt-dlp command line, then each tree's API, in turn, `runs` times."""
    curl: list[float] = []
    cli: list[float] = []
    api: list[list[float]] = [[] for _ in bots]
    peaks: list[list[int]] = [[] for _ in bots]
    idle = [rss_kib(bot.proc.pid) for bot in bots if bot.proc is not None]
    size = 0
    target = work / "out.mp4"
    for i in range(runs):
        curl.append(timed(["curl", "-s", "-o", str(target), f"{url}?curl={i}"]))
        target.unlink(missing_ok=True)
        cli.append(timed([ytdlp, *YTDLP_ARGS, "-o", str(target), f"{url}?cli={i}"]))
        target.unlink(missing_ok=True)
        for n, bot in enumerate(bots):
            elapsed, final, peak = await bot.job(http, f"{url}?api{n}={i}-{time.time_ns()}", sample_rss=True)
            api[n].append(elapsed)
            peaks[n].append(peak)
            size = final.get("filesize") or size
    return {
        "size_mb": size / 1e6,
        "curl": statistics.median(curl),
        "cli": statistics.median(cli),
        "trees": [
            {
                "api": statistics.median(times),
                "api_min": min(times),
                "api_max": max(times),
                "rss_before": idle[n] / 1024,
                "rss_peak": max(peaks[n]) / 1024,
            }
            for n, times in enumerate(api)
        ],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--sizes", default="31,300,1000", help="MB; 31 is the media site's /big.mp4")
    parser.add_argument("--tree", type=Path, action="append", help="a checkout to run (default: this one)")
    args = parser.parse_args()
    import aiohttp

    from tests.support.media import generate_media

    ytdlp = str(Path(sys.executable).with_name("yt-dlp"))
    sizes = [int(s) for s in args.sizes.split(",")]
    trees = [tree.resolve() for tree in args.tree or [ROOT]]
    work = Path(tempfile.mkdtemp(prefix="mediabot-wire-bench-"))
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    ports = ctx.Queue()
    server = None
    bots = [Mediabot(tree, work / f"data{n}") for n, tree in enumerate(trees)]
    try:
        big = generate_media().big_mp4
        large = work / "large"
        large.mkdir()
        for mb in sizes:
            if mb > 31:
                make_large(big, large / f"f{mb}.mp4", mb)
        server = ctx.Process(target=serve, args=(str(large), ports, stop), daemon=True)
        server.start()
        site, files = ports.get(timeout=120)
        for bot in bots:
            await bot.start()
        load = os.getloadavg()
        async with aiohttp.ClientSession() as http:
            # A first job, so the figures are a warm process's (the first job's latency is startup_bench's).
            for bot in bots:
                await bot.job(http, f"{site}/clip/warm-{time.time_ns()}.mp4")
            results = {}
            for mb in sizes:
                url = f"{site}/big.mp4" if mb <= 31 else f"{files}/large/f{mb}.mp4"
                results[mb] = await bench_size(bots, http, url, args.runs, work, ytdlp)
        load_after = os.getloadavg()
    finally:
        for bot in bots:
            bot.stop()
        stop.set()
        if server is not None:
            server.join(30)
        shutil.rmtree(work, ignore_errors=True)
    print(f"median of {args.runs} interleaved runs, load average {load[0]:.2f} -> {load_after[0]:.2f}")
    print(f"yt-dlp command line: yt-dlp {' '.join(YTDLP_ARGS)} -o FILE URL")
    for n, tree in enumerate(trees):
        print(f"  tree {n}: {tree}")
    print(
        f"{'size MB':>8} {'curl s':>8} {'yt-dlp s':>9} {'tree':>5} {'API s':>8} {'(min-max)':>15} {'x curl':>7}"
        f" {'x yt-dlp':>9} {'RSS before -> peak MiB':>23}"
    )
    for r in results.values():
        for n, t in enumerate(r["trees"]):
            print(
                f"{r['size_mb']:>8.1f} {r['curl']:>8.3f} {r['cli']:>9.3f} {n:>5} {t['api']:>8.3f}"
                f" {t['api_min']:>7.3f}-{t['api_max']:<7.3f} {t['api'] / r['curl']:>7.2f}"
                f" {t['api'] / r['cli']:>9.2f} {t['rss_before']:>12.1f} -> {t['rss_peak']:<7.1f}"
            )


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(), timeout=HARD_LIMIT_S))
