"""The lease that makes exactly one worker run the daily yt-dlp check, however many there are.

No table holds it: each database already has a lock that dies with its holder. On PostgreSQL a session
advisory lock (scoped to the database) held on one dedicated connection: a worker that dies or loses its
connection releases it at once, so there is never a stale lease to wait out and never two holders. SQLite
lives on one machine, so its lock is an OS file lock beside the database file, which the kernel releases
when the holder's process ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import zlib
from pathlib import Path
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

log = logging.getLogger(__name__)

# pg_advisory_lock takes a bigint; this one is ours (the CRC of a name nobody else uses).
LOCK_KEY = zlib.crc32(b"mediabot.ytdlp.auto-update")


class Lease(Protocol):
    async def acquire(self) -> bool:
        """Take the lease if free, or confirm we still hold it; False when another holds it."""
        ...

    async def release(self) -> None: ...


class PostgresLease:
    def __init__(self, url: str) -> None:
        # One connection of its own, never pooled: the lock lives exactly as long as it does.
        self._engine: AsyncEngine = create_async_engine(url, poolclass=NullPool)
        self._conn: AsyncConnection | None = None

    async def acquire(self) -> bool:
        if self._conn is not None:
            try:
                await self._conn.execute(text("SELECT 1"))
                return True
            except Exception as exc:  # noqa: BLE001 - the connection died, and the lock with it
                log.warning("yt-dlp update lease lost with its connection (%s)", type(exc).__name__)
                await self._drop()
        conn = await self._engine.connect()
        try:
            # Autocommit: a session lock needs no transaction, and an idle one open for a day would be cut.
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            held = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": LOCK_KEY}))
        except BaseException:
            await conn.close()
            raise
        if not held:
            await conn.close()
            return False
        self._conn = conn
        return True

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.invalidate()
            with contextlib.suppress(Exception):
                await conn.close()

    async def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": LOCK_KEY})
            await self._drop()
        await self._engine.dispose()


class FileLease:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    async def acquire(self) -> bool:
        import fcntl

        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def update_lease(database_url: str, data_dir: Path) -> Lease:
    """The lease for this database: an advisory lock on PostgreSQL, a file lock beside SQLite's file."""
    if database_url.startswith("postgresql"):
        return PostgresLease(database_url)
    path = database_url.split("///", 1)[-1].split("?", 1)[0]
    if path and path != ":memory:":
        return FileLease(Path(path).with_name(Path(path).name + ".ytdlp-update.lock"))
    return FileLease(data_dir / "ytdlp" / ".auto-update.lock")
