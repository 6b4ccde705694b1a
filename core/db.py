"""Engine, sessions and migrations: the only place that knows which database we are on."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, SessionTransaction, SessionTransactionOrigin

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Execution option marking the connections of ORM sessions on SQLite: they say themselves how to BEGIN.
ORM_BEGINS = "mediabot_orm_begins"


def create_engine(url: str, *, foreign_keys: bool = True) -> AsyncEngine:
    """An engine for `url`. `foreign_keys=False` is for migrations on SQLite: Alembic's batch mode rebuilds a
    table by dropping it, and with foreign keys on, dropping `jobs` would cascade-delete every request."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: values (key digests, links) stay out of logs and of errors' text (see core.logs).
        engine = create_async_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # WAL lets readers run beside the one writer; busy_timeout makes writers queue instead of failing.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cur.close()
            # The driver would only BEGIN at the first write, leaving a transaction's reads outside it: a
            # submit could read "running", the worker finish the job, and the submit then attach an active
            # request to a finished job. We begin ourselves instead (below).
            dbapi_conn.isolation_level = None

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(conn):  # type: ignore[no-untyped-def]
            # ORM sessions begin in _session_begin below; anything else (migrations, health checks) takes the
            # write lock up front.
            if not conn.get_execution_options().get(ORM_BEGINS):
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_recycle=1800, hide_parameters=True
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    if engine.dialect.name == "sqlite":
        engine = engine.execution_options(**{ORM_BEGINS: True})
    return async_sessionmaker(engine, expire_on_commit=False)


@event.listens_for(Session, "after_begin")
def _session_begin(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
    """SQLite: a unit of work (`session.begin()`) takes the write lock up front (IMMEDIATE), so its reads and
    writes are serialisable, the counterpart of PostgreSQL's SELECT ... FOR UPDATE, and never fail to
    upgrade. A plain read (autobegin) runs without BEGIN: each statement sees a committed state and never
    waits for writers (WAL), and it saves the driver round trips a BEGIN costs on every API poll."""
    if connection.dialect.name != "sqlite" or not connection.get_execution_options().get(ORM_BEGINS):
        return
    if transaction.origin is SessionTransactionOrigin.BEGIN:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# Alembic is imported only where it migrates: a front end that merely checks the schema does without it.
def alembic_config(url: str) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = url
    return cfg


def _upgrade_sync(url: str, revision: str) -> None:
    from alembic import command

    command.upgrade(alembic_config(url), revision)


def _downgrade_sync(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(alembic_config(url), revision)


async def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations; Alembic runs its own loop, so it gets a thread of its own."""
    await asyncio.to_thread(_upgrade_sync, url, revision)
    log.info("database schema is at %s", revision)


async def downgrade(url: str, revision: str) -> None:
    await asyncio.to_thread(_downgrade_sync, url, revision)


_REVISION = re.compile(r"^revision\s*=\s*[\"']([^\"']+)[\"']", re.M)
_DOWN_REVISION = re.compile(r"^down_revision\s*=\s*(.+)$", re.M)


def known_revisions() -> tuple[set[str], str]:
    """Every migration's id, and the newest one (the id no other migration names as its `down_revision`),
    read from the migration files themselves: checking a schema needs no Alembic."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found = _REVISION.search(source)
        if found is None:
            continue
        revisions.add(found.group(1))
        down = _DOWN_REVISION.search(source)
        if down is not None:
            parents.update(re.findall(r"[\"']([^\"']+)[\"']", down.group(1)))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations have {len(heads)} heads: {sorted(heads)}")
    return revisions, heads.pop()


async def schema_revision(url: str) -> str | None:
    """The revision the database's schema is at; None when it has none (a fresh database)."""
    engine = create_engine(url)
    try:
        # ORM_BEGINS: a plain read, without the write lock other SQLite connections take up front.
        async with engine.execution_options(**{ORM_BEGINS: True}).connect() as conn:
            if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
                return None
            return await conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        await engine.dispose()


async def schema_problem(url: str) -> str | None:
    """One sentence saying why this database can't be used as it is (no schema yet, or an older one), or
    None when its schema is the one this code was written for."""
    revisions, head = known_revisions()
    current = await schema_revision(url)
    if current == head:
        return None
    if current is None:
        return "The database has no tables yet: run `mediabot db upgrade` first."
    if current not in revisions:
        return (
            f"The database schema is at revision {current}, newer than this mediabot knows (its newest is "
            f"{head}): run the mediabot release that migrated it."
        )
    return (
        f"The database schema is at revision {current}, this mediabot needs {head}: "
        "run `mediabot db upgrade` first."
    )


def is_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database (or the network to it) is down, rather than a bug: callers
    answer "try again later" instead of reporting an internal error."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, OSError, TimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
