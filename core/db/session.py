"""The database engine and sessions (SQLAlchemy 2.0 async; SQLite or PostgreSQL), and what an outage looks like."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import Connection, event
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, SessionTransaction, SessionTransactionOrigin

log = logging.getLogger(__name__)

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


def is_unavailable(exc: BaseException) -> bool:
    """Whether an error means the database (or the network to it) is down, rather than a bug: callers
    answer "try again later" instead of reporting an internal error."""
    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, OSError, TimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
