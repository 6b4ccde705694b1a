"""Start-up of the front-end processes: `mediabot web` and `mediabot telegram`, on 127.0.0.1 only.

For each role and mode it starts the real command and reports, as the median of --runs starts:
- ready: seconds from exec until the process serves (web: its port accepts a connection; telegram: the bot's
  first getUpdates reaches a fake Bot API served by this script);
- imports: the total of `-X importtime` (top-level cumulative) up to that moment, and the module count;
- rss: the process's resident memory (VmRSS) one second after it became ready;
- heavy: which of yt_dlp, boto3, alembic the process had imported by then.

Modes: "embedded" (the defaults: SQLite, no Redis, so the process also hosts the worker) and "distributed"
(PostgreSQL and Redis: a front end only; needs --database-url, migrated first with `mediabot db upgrade`).

    .venv/bin/python bench/startup_bench.py [--tree PATH] [--runs 3]
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
from pathlib import Path
from typing import Any

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("yt_dlp", "boto3", "alembic")
TOKEN = "123456789:bench-token-bench-token-bench-token"
_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class FakeBotApi:
    """Just enough of the Bot API for a bot to start: getMe, the webhook and command calls, getUpdates."""

    def __init__(self) -> None:
        self.polled = asyncio.Event()
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        result: Any = True
        if method == "getMe":
            result = {"id": 1, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
        elif method == "getMyCommands":
            result = []
        elif method == "getUpdates":
            self.polled.set()
            await asyncio.sleep(0.5)
            result = []
        return web.json_response({"ok": True, "result": result})


def _env(tree: Path, data: Path, port: int, mode: str, args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIABOT_")}
    env.update(
        PYTHONPATH=str(tree),
        MEDIABOT_DATA_DIR=str(data),
        MEDIABOT_PORT=str(port),
        MEDIABOT_LOG_LEVEL="WARNING",
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


def _imports(stderr: str) -> tuple[float, int, set[str]]:
    total_us = 0
    modules: set[str] = set()
    for match in _IMPORT_LINE.finditer(stderr):
        modules.add(match.group(4))
        if not match.group(3).strip(" ") and len(match.group(3)) == 1:  # top level: one space of indent
            total_us += int(match.group(2))
    return total_us / 1e6, len(modules), {m for m in HEAVY if m in modules}


async def _ready(role: str, port: int, api: FakeBotApi | None, proc: subprocess.Popen[str]) -> None:
    while proc.poll() is None:
        if role == "web":
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return
        elif api is not None and api.polled.is_set():
            return
        await asyncio.sleep(0.005)
    raise RuntimeError(f"mediabot {role} exited with {proc.returncode}")


async def one_start(tree: Path, role: str, mode: str, args: argparse.Namespace) -> dict[str, Any]:
    api = None
    with tempfile.TemporaryDirectory(prefix="startup-bench-") as tmp:
        port = free_port()
        env = _env(tree, Path(tmp), port, mode, args)
        if role == "telegram":
            api = FakeBotApi()
            await api.start()
            env["MEDIABOT_TELEGRAM_TOKEN"] = TOKEN
            env["MEDIABOT_TELEGRAM_API_URL"] = f"http://127.0.0.1:{api.port}"
        if mode == "embedded":
            # The first start of a new data directory migrates it; later starts (what we time) find it ready.
            subprocess.run(
                [sys.executable, "-m", "mediabot", "db", "upgrade"], env=env, cwd=tree, check=True,
                capture_output=True,
            )  # fmt: skip
        errfile = Path(tmp) / "stderr"
        with errfile.open("w") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-X", "importtime", "-m", "mediabot", role],
                env=env, cwd=tree, stdout=subprocess.DEVNULL, stderr=err, text=True,
            )  # fmt: skip
            try:
                await asyncio.wait_for(_ready(role, port, api, proc), 60)
                ready = time.perf_counter() - started
                imports_s, modules, heavy = _imports(errfile.read_text())
                await asyncio.sleep(1)
                rss = _rss_kib(proc.pid)
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                if api is not None:
                    await api.stop()
    return {"ready": ready, "imports": imports_s, "modules": modules, "rss": rss / 1024, "heavy": heavy}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--roles", default="web,telegram")
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
    print(f"tree {tree}, median of {args.runs} starts")
    print(f"{'role':<9} {'mode':<12} {'ready s':>8} {'imports s':>10} {'modules':>8} {'rss MiB':>8}  heavy")
    for role in args.roles.split(","):
        for mode in modes:
            runs = [await one_start(tree, role, mode, args) for _ in range(args.runs)]
            med = {k: statistics.median(r[k] for r in runs) for k in ("ready", "imports", "modules", "rss")}
            heavy = ",".join(sorted(set().union(*(r["heavy"] for r in runs)))) or "-"
            print(
                f"{role:<9} {mode:<12} {med['ready']:>8.2f} {med['imports']:>10.2f} {med['modules']:>8.0f}"
                f" {med['rss']:>8.0f}  {heavy}"
            )


if __name__ == "__main__":
    asyncio.run(main())
