"""The distributed form, for fault drills: a private Redis and PostgreSQL, real `mediabot web` and
`mediabot worker` processes, and an HTTP client for the API, all on 127.0.0.1.

Used by the tests in this package (small counts) and by bench/drills.py (the issue's counts). Everything a
drill starts it stops; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select

from core.apikeys import ApiKeyService
from core.config import Settings
from core.db import migrate
from core.db.models import Job, Worker
from core.db.session import create_engine, session_factory
from tests.support.servers import PrivatePostgres, PrivateRedis, free_port
from tests.support.services import ROOT, make_settings, settings_env, wait_until

TERMINAL = ("done", "failed", "cancelled")

# Short leases and a quick reconciler, so recoveries take seconds; limits out of the way of the counts.
DRILL_SETTINGS: dict[str, Any] = dict(
    lease_s=3,
    reconcile_interval_s=0.5,
    stale_queued_s=2,
    shutdown_grace_s=5,
    worker_concurrency=2,
    secret_key="drill-secret-key",
    api_rate_per_minute=100_000,
    api_calls_per_minute=100_000,
    api_max_concurrent=100_000,
)


class MediabotProcess:
    """`python -m mediabot COMMAND` in a session of its own, output to a log file."""

    def __init__(self, command: str, env: dict[str, str], log_path: Path) -> None:
        self.command = command
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.exited_at: float | None = None

    def start(self) -> MediabotProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mediabot", self.command],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=str(ROOT),
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        """To the process itself (as `docker stop` does), not its group."""
        if self.alive:
            os.kill(self.pid, sig)

    async def wait(self, timeout: float) -> int:
        """Its exit code, once it exits (negative: killed by that signal)."""
        assert self.proc is not None
        proc = self.proc
        await wait_until(lambda: proc.poll() is not None, timeout=timeout, interval=0.05)
        if self.exited_at is None:
            self.exited_at = time.monotonic()
        return proc.returncode

    def stop(self) -> None:
        if self.alive:
            assert self.proc is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        with contextlib.suppress(Exception):
            self._log.close()

    def output(self, tail: int = 4000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-tail:]


class Web(MediabotProcess):
    """A `mediabot web` process on its own port."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int) -> None:
        super().__init__("web", env, log_path)
        self.port = port
        self.base = f"http://127.0.0.1:{port}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"


class Cluster:
    """Private Redis + PostgreSQL, web and worker processes, an API key and a client session."""

    def __init__(self, workdir: Path, **overrides: Any) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.redis = PrivateRedis(workdir)
        self.pg = PrivatePostgres()
        self.settings: Settings = make_settings(
            workdir,
            database_url=self.pg.url(),
            redis_url=self.redis.url,
            **{**DRILL_SETTINGS, **overrides},
        )
        self.webs: list[Web] = []
        self.workers: list[MediabotProcess] = []
        self.key = ""
        self.engine = create_engine(self.settings.database_url)
        self.sessions = session_factory(self.engine)
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def start(self) -> None:
        self.redis.start()
        await asyncio.to_thread(self.pg.start)
        await migrate.upgrade(self.settings.database_url)
        _, self.key = await ApiKeyService(self.sessions, self.settings).create("drill")

    async def close(self) -> None:
        # Stopped in parallel: each gets SIGTERM and its grace period at once.
        await asyncio.gather(*(asyncio.to_thread(p.stop) for p in [*self.webs, *self.workers]))
        await self.http.close()
        await self.engine.dispose()
        self.redis.stop()
        await asyncio.to_thread(self.pg.cleanup)

    # -- processes ---------------------------------------------------------------------------------------

    def env(self, **overrides: Any) -> dict[str, str]:
        env = settings_env(self.settings)
        env.update({f"MEDIABOT_{k.upper()}": str(v) for k, v in overrides.items()})
        return env

    def start_worker(self, **overrides: Any) -> MediabotProcess:
        log = self.workdir / f"worker-{len(self.workers)}.log"
        proc = MediabotProcess("worker", self.env(**overrides), log).start()
        self.workers.append(proc)
        return proc

    def start_web(self, **overrides: Any) -> Web:
        port = free_port()
        env = self.env(port=port, public_url=f"http://127.0.0.1:{port}", **overrides)
        web_proc = Web(env, self.workdir / f"web-{len(self.webs)}.log", port)
        web_proc.start()
        self.webs.append(web_proc)
        return web_proc

    async def ready(self, timeout: float = 60) -> None:
        """Every web process answers /health and every live worker has reported."""
        for web_proc in self.webs:
            await wait_until(lambda w=web_proc: self._answers(w), timeout=timeout, interval=0.1)
        alive = [w for w in self.workers if w.alive]
        if alive:
            pids = {w.pid for w in alive}
            await wait_until(lambda: self._workers_reported(pids), timeout=timeout, interval=0.1)

    async def _answers(self, web_proc: Web) -> bool:
        if not web_proc.alive:
            raise AssertionError(f"mediabot web exited:\n{web_proc.output()}")
        try:
            async with self.http.get(web_proc.base + "/health") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    async def _workers_reported(self, pids: set[int]) -> bool:
        for proc in self.workers:
            if proc.alive is False and proc.pid in pids:
                raise AssertionError(f"mediabot worker exited:\n{proc.output()}")
        async with self.sessions() as session:
            seen = set(await session.scalars(select(Worker.pid)))
        return pids <= seen

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.output(3000)}" for p in [*self.webs, *self.workers])

    # -- the API -----------------------------------------------------------------------------------------

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def call(self, web_proc: Web, method: str, path: str, **kw: Any) -> tuple[int, Any]:
        async with self.http.request(method, web_proc.base + path, headers=self.auth, **kw) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.text()
            return resp.status, body

    async def submit(self, web_proc: Web, url: str) -> tuple[int, Any]:
        return await self.call(web_proc, "POST", "/api/v1/jobs", json={"url": url})

    async def health(self, web_proc: Web) -> tuple[int, Any]:
        return await self.call(web_proc, "GET", "/health/detailed")

    # -- the database ------------------------------------------------------------------------------------

    async def jobs(self) -> list[Job]:
        async with self.sessions() as session:
            return list(await session.scalars(select(Job)))

    async def job(self, job_id: str) -> Job:
        async with self.sessions() as session:
            found = await session.get(Job, job_id)
        assert found is not None
        return found


@contextlib.asynccontextmanager
async def open_cluster(workdir: Path, **overrides: Any) -> AsyncIterator[Cluster]:
    cluster = Cluster(workdir, **overrides)
    try:
        await cluster.start()
        yield cluster
    finally:
        await cluster.close()


class GatedMedia:
    """An mp4 that trickles (16 KiB every 0.1 s) until its gate opens, then comes at full speed.

    A job on it stays `running`, with progress, for as long as a drill needs, and finishes at once when
    released. It keeps trickling rather than stalling, so yt-dlp's progress hook (where cancels and
    hand-backs are noticed) keeps being called.
    """

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.gates: dict[str, asyncio.Event] = {}
        self.completed: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/gated/{name}.mp4", self._serve)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        for gate in self.gates.values():
            gate.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, name: str) -> str:
        self.gates.setdefault(name, asyncio.Event())
        return f"http://127.0.0.1:{self.port}/gated/{name}.mp4"

    def release(self, name: str) -> None:
        self.gates[name].set()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        gate = self.gates.setdefault(name, asyncio.Event())
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        resp.content_length = len(self.body)
        await resp.prepare(request)
        sent = 0
        try:
            while sent < len(self.body):
                step = 256 * 1024 if gate.is_set() else 16 * 1024
                await resp.write(self.body[sent : sent + step])
                sent += step
                if not gate.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(gate.wait(), 0.1)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):
            return resp
        self.completed[name] = self.completed.get(name, 0) + 1
        return resp


@contextlib.asynccontextmanager
async def gated_media(body: bytes) -> AsyncIterator[GatedMedia]:
    site = GatedMedia(body)
    await site.start()
    try:
        yield site
    finally:
        await site.stop()
