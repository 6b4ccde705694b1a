"""Fixtures for the real services: PostgreSQL, Redis, fresh databases, and mediabot's own services.

A test that needs PostgreSQL or Redis fails when it is absent in CI (CI=true) and is skipped with a reason
on a laptop.

Several pytest-xdist workers (and other test runs) share one PostgreSQL and one Redis: each process gets a
template database and a Redis database number of its own. A test that asks for `database_url` runs on
SQLite only, unless it is marked `both_databases` (where the dialect matters: coalescing, claims and
leases, cursors, retention, idempotency, migrations, search); `MEDIABOT_TEST_BOTH_DATABASES=1` runs every
such test on both.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from core.bootstrap import Services
from core.config import Settings, load_settings
from core.db import migrate

PG_URL = os.environ.get("MEDIABOT_TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("MEDIABOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROOT = Path(__file__).resolve().parents[2]
# pytest-xdist's name for this worker ("gw0", "gw1"...), "main" without xdist.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
DIALECTS = ("sqlite", "postgres")
EVERY_TEST_ON_BOTH = os.environ.get("MEDIABOT_TEST_BOTH_DATABASES", "").lower() in ("1", "true", "yes")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url.replace("+asyncpg", ""))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def require(url: str, default_port: int, what: str) -> None:
    if _reachable(url, default_port):
        return
    message = f"{what} is not reachable at {url}"
    if IN_CI:
        pytest.fail(message + " (CI=true: services must be running)")
    pytest.skip(message)


# Database numbers handed to test processes; 0 holds the claims, 14 and 15 are the benchmarks'.
_REDIS_DBS = range(1, 14)
_CLAIM_TTL_S = 3 * 3600  # a claim left by a killed run frees itself
_claimed_redis_db: int | None = None


def _claim_redis_db() -> int:
    """A Redis database number no other live test process uses, claimed in database 0 until this one ends.

    xdist workers and other test runs on the machine run at once; the pid modulo a few numbers collided."""
    global _claimed_redis_db
    if _claimed_redis_db is not None:
        return _claimed_redis_db
    from redis import Redis

    owner = f"{socket.gethostname()}:{os.getpid()}:{WORKER}"
    with Redis.from_url(REDIS_URL) as client:
        for number in _REDIS_DBS:
            if client.set(f"mediabot-test:redis-db:{number}", owner, nx=True, ex=_CLAIM_TTL_S):
                _claimed_redis_db = number
                atexit.register(_release_redis_db, f"mediabot-test:redis-db:{number}", owner)
                return number
    raise RuntimeError(
        f"every test Redis database ({_REDIS_DBS.start}..{_REDIS_DBS.stop - 1}) is claimed by another test "
        "process; the claims are the mediabot-test:redis-db:* keys in database 0"
    )


def _release_redis_db(key: str, owner: str) -> None:
    from redis import Redis

    with contextlib.suppress(Exception), Redis.from_url(REDIS_URL) as client:
        if client.get(key) == owner.encode():
            client.delete(key)


def redis_test_url(db_number: int | None = None) -> str:
    """A Redis database of this test process's own, so xdist workers and two runs on one machine don't collide."""
    if db_number is None:
        db_number = _claim_redis_db()
    parts = urlsplit(REDIS_URL)
    return f"{parts.scheme}://{parts.netloc}/{db_number}"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    require(PG_URL, 5432, "PostgreSQL")
    return PG_URL


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> Iterator[str]:
    """A migrated template database; each test clones it (much faster than migrating per test).

    Synchronous (its own loop in a thread) so that async fixtures can ask for it with getfixturevalue."""
    import asyncpg

    name = f"mb_tmpl_{WORKER}_{os.getpid()}"  # one per xdist worker and per run
    dsn = pg_admin_url.replace("+asyncpg", "")

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    def run(coro: Any) -> None:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, coro).result(timeout=120)

    run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    run(admin(f'CREATE DATABASE "{name}"'))
    run(migrate.upgrade(_with_db(pg_admin_url, name)))
    yield name
    run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _with_db(url: str, name: str) -> str:
    base = url.rsplit("/", 1)[0]
    return f"{base}/{name}"


@contextlib.asynccontextmanager
async def fresh_pg_database(admin_url: str, template: str) -> AsyncIterator[str]:
    import asyncpg

    name = f"mb_t_{uuid.uuid4().hex[:10]}"
    dsn = admin_url.replace("+asyncpg", "")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    finally:
        await conn.close()
    try:
        yield _with_db(admin_url, name)
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


_sqlite_template: Path | None = None


async def migrated_sqlite(path: Path) -> str:
    """The URL of a migrated SQLite database at path: a copy of one migrated once per process (a copy takes
    well under a millisecond, migrating ~0.1-0.3 s)."""
    global _sqlite_template
    if _sqlite_template is None:
        root = Path(tempfile.mkdtemp(prefix="mediabot-sqlite-template-"))
        atexit.register(shutil.rmtree, root, True)
        await migrate.upgrade(f"sqlite+aiosqlite:///{root / 'template.db'}")
        _sqlite_template = root / "template.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_databases: run on PostgreSQL too, where the SQL dialect matters (see database_url)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`database_url` is SQLite for every test, and PostgreSQL too for those marked `both_databases`."""
    if "database_url" not in metafunc.fixturenames:
        return
    both = EVERY_TEST_ON_BOTH or metafunc.definition.get_closest_marker("both_databases") is not None
    metafunc.parametrize("database_url", DIALECTS if both else DIALECTS[:1], indirect=True)


@pytest.fixture
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, migrated database: on SQLite, and on PostgreSQL too for tests marked `both_databases`."""
    if request.param == "sqlite":
        yield await migrated_sqlite(tmp_path / "data" / "mediabot.db")
    else:
        admin = request.getfixturevalue("pg_admin_url")
        template = request.getfixturevalue("pg_template")
        async with fresh_pg_database(admin, template) as url:
            yield url


@pytest.fixture
async def pg_url(pg_admin_url: str, pg_template: str) -> AsyncIterator[str]:
    async with fresh_pg_database(pg_admin_url, pg_template) as url:
        yield url


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """A Redis database emptied for this test."""
    require(REDIS_URL, 6379, "Redis")
    from redis.asyncio import Redis

    url = redis_test_url()
    client = Redis.from_url(url)
    await client.flushdb()
    yield url
    await client.flushdb()
    await client.aclose()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings as an operator would write them for the test media site: generic extractor only, the
    loopback media site allowed."""
    base: dict[str, Any] = dict(
        data_dir=tmp_path / "data",
        allowed_extractors=["generic"],
        allow_private_urls=True,
        reconcile_interval_s=1,
        stale_queued_s=5,
        log_level="INFO",
    )
    base.update(overrides)
    return load_settings(**base)


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    return lambda **overrides: make_settings(tmp_path, **overrides)


@contextlib.asynccontextmanager
async def running_services(settings: Settings, *, worker: bool = True) -> AsyncIterator[Services]:
    """mediabot's services as `mediabot run` builds them (in-process worker unless `worker=False`)."""
    from mediabot.cli import services_for

    database = _sqlite_file(settings.database_url)
    if database is not None and not database.exists():
        await migrated_sqlite(database)
    else:
        await migrate.upgrade(settings.database_url)
    async with services_for(settings, worker=worker) as services:
        yield services


def _sqlite_file(url: str) -> Path | None:
    scheme, sep, path = url.partition(":///")
    return Path(path) if sep and scheme.startswith("sqlite") and path and path != ":memory:" else None


@pytest.fixture
async def embedded(tmp_path: Path, database_url: str) -> AsyncIterator[Services]:
    """The embedded default (in-process queue and bus, local storage) on SQLite (and PostgreSQL when the test
    is marked `both_databases`)."""
    settings = make_settings(tmp_path, database_url=database_url)
    async with running_services(settings) as services:
        yield services


class WorkerProcess:
    """A real `mediabot worker` subprocess."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mediabot", "worker"],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=str(ROOT),
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self, sig: int = 9) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float = 30) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.kill(15)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill(9)
                self.proc.wait(timeout=10)
        with contextlib.suppress(Exception):
            self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment a subprocess needs to build the same settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIABOT_")}
    for name, value in settings.model_dump().items():
        if value is None or value == "" or value == []:
            continue
        if isinstance(value, list):
            value = ",".join(value)
        env[f"MEDIABOT_{name.upper()}"] = str(value)
    return env


@pytest.fixture
def worker_processes(tmp_path: Path) -> Iterator[Callable[[Settings], WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(settings: Settings) -> WorkerProcess:
        proc = WorkerProcess(settings_env(settings), tmp_path / f"worker-{len(started)}.log")
        proc.start()
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


async def wait_until(predicate: Callable[[], Any], timeout: float = 20, interval: float = 0.1) -> Any:
    """Poll `predicate` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(interval)


async def run_mediabot(env: dict[str, str], *args: str, timeout: float = 90) -> tuple[int, str, str]:
    """`mediabot ARGS` as a person runs it: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediabot",
        *args,
        env=env,
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    return proc.returncode or 0, out.decode(), err.decode()
