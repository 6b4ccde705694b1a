"""What every role of `mediabot` shares: the database made ready, the services (with a worker when this
process runs the downloads), and the stop signals."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import AsyncIterator

from core.bootstrap import Services, build_services
from core.config import Settings
from core.db import migrate
from core.db.session import is_unavailable
from worker.broker import make_brokers
from worker.queue import TaskiqQueue

log = logging.getLogger("mediabot")


class SchemaNotReady(Exception):
    """The database's schema is not the one this code needs; the message says what to run."""


def embedded(settings: Settings) -> bool:
    """The only process there can be: SQLite and no shared queue, as `mediabot run` and `download` use it."""
    return settings.is_sqlite and not settings.redis_url


async def prepare_database(settings: Settings) -> None:
    """Migrate when this is the only process (embedded); otherwise only check that someone did, since
    several processes migrating at once would race: the operator runs `mediabot db upgrade` once."""
    if embedded(settings):
        await migrate.upgrade_if_needed(settings.database_url)
        return
    try:
        problem = await migrate.schema_problem(settings.database_url)
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        # Down right now: start anyway, as with Redis; health checks say so, and the schema is read later.
        log.warning("could not check the database schema (%s); carrying on", type(exc).__name__)
        return
    if problem is not None:
        raise SchemaNotReady(problem)


async def load_worker() -> None:
    """Import the worker in a process that runs downloads, in a thread (SQLAlchemy's models, Taskiq); yt-dlp
    itself comes with the first job, or at start in a process that only downloads (WorkerRuntime.warm)."""
    await asyncio.to_thread(importlib.import_module, "worker.host")


@contextlib.asynccontextmanager
async def services_for(
    settings: Settings, *, worker: bool, hurry: asyncio.Event | None = None, warm: bool = True
) -> AsyncIterator[Services]:
    """Services with a queue; with `worker`, a worker runs in this process too. Setting `hurry` while the
    block exits hands running downloads back at once instead of giving them MEDIABOT_SHUTDOWN_GRACE_S.
    `warm=False`: the worker imports yt-dlp on its first job instead of at start."""
    broker, probes = make_brokers(settings)
    queue = TaskiqQueue(broker, probes, settings.redis_url)
    services = await build_services(settings, queue)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(queue.close)
        stack.push_async_callback(services.close)
        if worker:
            # Imported here: the worker (and, on its first job or when `warm`, yt-dlp) is for processes that
            # run downloads; a front-end process never loads it.
            from worker.host import hosted_worker

            await stack.enter_async_context(
                hosted_worker(broker, services, probes=probes, hurry=hurry, warm=warm)
            )
        else:
            for started in dict.fromkeys((broker, probes)):
                await started.startup()
                stack.push_async_callback(started.shutdown)
        yield services


_SIGNAL_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}


class Shutdown:
    """SIGINT and SIGTERM, handled from the moment `install` is called (so a signal during start-up stops
    the process cleanly once start-up is done instead of killing it on the spot). The first asks for a
    graceful stop and says in one line what the process still waits for; in a process that runs downloads,
    the second stops it at once, handing them back to the queue."""

    def __init__(self, settings: Settings, *, downloads: bool) -> None:
        self.downloads = downloads
        grace = f"{settings.shutdown_grace_s:g} s (MEDIABOT_SHUTDOWN_GRACE_S)"
        if downloads:
            self.notice = (
                f"shutting down; running downloads get up to {grace} to finish, then go back to the queue. "
                "Press Ctrl-C again to stop at once."
            )
        else:
            self.notice = f"shutting down; open requests get up to {grace} to finish."
        self.requested = asyncio.Event()
        self.hurried = asyncio.Event()

    def install(self) -> Shutdown:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self._received, sig)
        return self

    def _received(self, sig: signal.Signals) -> None:
        name = _SIGNAL_NAMES.get(sig, sig.name)
        if not self.requested.is_set():
            self.requested.set()
            log.info("%s: %s", name, self.notice)
        elif self.downloads and not self.hurried.is_set():
            self.hurried.set()
            log.warning("%s again: shutting down now; running downloads go back to the queue", name)

    async def wait(self) -> None:
        await self.requested.wait()
