"""Start-up and idle weight of each role: `mediabot run`, `web`, `telegram` and `worker`, on 127.0.0.1 only.

For each role and mode it starts the real command and reports, as the median of --runs starts:
- ready: seconds from exec until the process serves (run, web: its port accepts a connection; telegram: the
  bot says it runs (polling the fake Bot API of tests/fakes); worker: it logs that it started);
- imports: the total of `-X importtime` (top-level cumulative) up to that moment, and the module count;
- idle rss: the process's resident memory (VmRSS) two seconds after it became ready;
- first job: a small clip from the test media site, from the ask to done (run, web: POST, then GET until
  done; telegram: the link sent in a chat until the bot uploads the file; worker: submitted through the job
  service until done), and the RSS after it, of the process and (+children) of the download processes it
  started for it (core.media.procpool);
- heavy: which of yt_dlp, boto3, alembic, redis the process had imported when it became ready.

Modes: "embedded" (the defaults: SQLite, no Redis, so the process also hosts the worker) and "distributed"
(PostgreSQL and Redis: a front end only, or the worker; needs --database-url, migrated first with
`mediabot db upgrade`). A front end in distributed mode has no worker, so its first job is not timed.

    .venv/bin/python bench/startup_bench.py [--tree PATH] [--runs 3] [--roles run,web,telegram,worker]
        [--database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test] [--redis redis://127.0.0.1:6379/14]

--tree runs another checkout's code with this virtualenv (PYTHONPATH), e.g. a copy of main for a before/after.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.telegram import FakeTelegram  # noqa: E402
from tests.support.media import generate_media  # noqa: E402
from tests.support.media_site import MediaSite  # noqa: E402

HEAVY = ("yt_dlp", "boto3", "alembic", "redis")
MEDIA_SENDS = ("sendVideo", "sendDocument", "sendAudio")
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(tree: Path, data: Path, port: int, mode: str, args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIABOT_")}
    env.update(
        PYTHONPATH=str(tree),
        MEDIABOT_DATA_DIR=str(data),
        MEDIABOT_PORT=str(port),
        MEDIABOT_LOG_LEVEL="INFO",
        MEDIABOT_ALLOW_PRIVATE_URLS="true",
        MEDIABOT_ALLOWED_EXTRACTORS="generic",
    )
    if mode == "distributed":
        env["MEDIABOT_DATABASE_URL"] = args.database_url
        env["MEDIABOT_REDIS_URL"] = args.redis
    return env


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _children_rss_kib(pid: int) -> int:
    """Resident memory of the process's children (run's download processes, core.media.procpool)."""
    total = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    total += _rss_kib(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return total


def _imports(stderr: str) -> tuple[float, int, set[str]]:
    total_us = 0
    modules: set[str] = set()
    for match in _IMPORT_LINE.finditer(stderr):
        modules.add(match.group(4))
        if not match.group(3).strip(" ") and len(match.group(3)) == 1:  # top level: one space of indent
            total_us += int(match.group(2))
    return total_us / 1e6, len(modules), {m for m in HEAVY if m in modules}


async def _ready(role: str, port: int, proc: subprocess.Popen[str], err: Path) -> None:
    while proc.poll() is None:
        if role in ("run", "web"):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
        elif role == "worker":
            if re.search(r"worker \S+ started", err.read_text()):
                return
        elif re.search(r"telegram bot @\S+ running", err.read_text()):
            return  # polling has started (the fake records a getUpdates only once its long poll ends)
        await asyncio.sleep(0.005)
    raise RuntimeError(f"mediabot {role} exited with {proc.returncode}: {err.read_text()[-2000:]}")


async def _first_job(
    role: str, port: int, key: str, api: FakeTelegram | None, env: dict[str, str], site: MediaSite
) -> float:
    """Seconds from asking for a small clip not seen before to the job done."""
    url = site.url(f"/clip/first-{uuid.uuid4().hex}.mp4")
    started = time.perf_counter()
    if role == "telegram":
        assert api is not None
        api.send(url)
        await api.wait_for(lambda: api.calls_to(*MEDIA_SENDS), timeout=120)
        return time.perf_counter() - started
    if role == "worker":
        from core.config import load_settings
        from core.jobs.choices import SubmitRequest
        from mediabot.hosting import services_for

        overrides = {
            k.removeprefix("MEDIABOT_").lower(): v for k, v in env.items() if k.startswith("MEDIABOT_")
        }
        settings = load_settings(**overrides)
        async with services_for(settings, worker=False) as services:
            started = time.perf_counter()
            sub = await services.jobs.submit(SubmitRequest(text=url, source="cli", user_id="bench"))
            final = await services.jobs.wait(sub.job.id, timeout=120)
            elapsed = time.perf_counter() - started
        assert final.status == "done", final.error
        return elapsed
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/v1/jobs", json={"url": url}, headers=auth) as resp:
            job = await resp.json()
        while job["status"] not in ("done", "failed", "cancelled"):
            await asyncio.sleep(0.01)
            async with http.get(f"{base}/api/v1/jobs/{job['id']}", headers=auth) as resp:
                job = await resp.json()
    assert job["status"] == "done", job
    return time.perf_counter() - started


async def one_start(
    tree: Path, role: str, mode: str, args: argparse.Namespace, site: MediaSite
) -> dict[str, Any]:
    api = None
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        port = free_port()
        env = _env(tree, Path(tmp), port, mode, args)
        if role == "telegram":
            api = FakeTelegram(Path(tmp) / "telegram")
            await api.start()
            env["MEDIABOT_TELEGRAM_TOKEN"] = api.token
            env["MEDIABOT_TELEGRAM_API_URL"] = api.api_url
        key = ""
        if mode == "embedded":
            # The first start of a new data directory migrates it; later starts (what we time) find it ready.
            made = subprocess.run(
                [sys.executable, "-m", "mediabot", "apikey", "create", "bench"], env=env, cwd=tree, check=True,
                capture_output=True, text=True,
            )  # fmt: skip
            key = made.stdout.strip().splitlines()[-1]
        errfile = Path(tmp) / "stderr"
        first = None
        rss_after = None
        children_after = None
        with errfile.open("w") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-X", "importtime", "-m", "mediabot", role],
                env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=err, text=True,
            )  # fmt: skip
            try:
                await asyncio.wait_for(_ready(role, port, proc, errfile), 60)
                ready = time.perf_counter() - started
                imports_s, modules, heavy = _imports(errfile.read_text())
                await asyncio.sleep(2)
                rss = _rss_kib(proc.pid)
                if mode == "embedded" or role == "worker":
                    first = await _first_job(role, port, key, api, env, site)
                    await asyncio.sleep(0.5)
                    rss_after = _rss_kib(proc.pid) / 1024
                    children_after = _children_rss_kib(proc.pid) / 1024
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                if api is not None:
                    await api.stop()
    return {
        "ready": ready, "imports": imports_s, "modules": modules, "rss": rss / 1024, "heavy": heavy,
        "first": first, "rss_after": rss_after, "children_after": children_after,
    }  # fmt: skip


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--roles", default="run,web,telegram,worker")
    args = parser.parse_args()
    tree = args.tree.resolve()
    modes = ["embedded"] + (["distributed"] if args.database_url else [])
    if args.database_url:
        env = _env(tree, Path(tempfile.gettempdir()), 0, "distributed", args)
        subprocess.run(
            [sys.executable, "-m", "mediabot", "db", "upgrade"],
            env=env,
            cwd=tree,
            check=True,
            capture_output=True,
        )
    site = MediaSite(generate_media())
    await site.start()
    print(f"tree {tree}, median of {args.runs} starts, load average {os.getloadavg()[0]:.2f}")
    print(
        f"{'role':<9} {'mode':<12} {'ready s':>8} {'imports s':>10} {'modules':>8} {'idle MiB':>9}"
        f" {'first job s':>12} {'after MiB':>10} {'+children':>10}  heavy at ready"
    )
    try:
        for role in args.roles.split(","):
            for mode in modes:
                if role == "run" and mode != "embedded" or role == "worker" and mode != "distributed":
                    continue
                runs = [await one_start(tree, role, mode, args, site) for _ in range(args.runs)]
                med = {
                    k: statistics.median(r[k] for r in runs) for k in ("ready", "imports", "modules", "rss")
                }
                firsts = [r["first"] for r in runs if r["first"] is not None]
                afters = [r["rss_after"] for r in runs if r["rss_after"] is not None]
                first = f"{statistics.median(firsts):>12.3f}" if firsts else f"{'-':>12}"
                after = f"{statistics.median(afters):>10.0f}" if afters else f"{'-':>10}"
                kids = [r["children_after"] for r in runs if r["children_after"] is not None]
                kid = f"{statistics.median(kids):>10.0f}" if kids else f"{'-':>10}"
                heavy = ",".join(sorted(set().union(*(r["heavy"] for r in runs)))) or "-"
                print(
                    f"{role:<9} {mode:<12} {med['ready']:>8.2f} {med['imports']:>10.2f} {med['modules']:>8.0f}"
                    f" {med['rss']:>9.1f} {first} {after} {kid}  {heavy}"
                )
    finally:
        await site.stop()


if __name__ == "__main__":
    asyncio.run(main())
