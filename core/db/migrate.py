"""Migrations (Alembic, imported only when migrating) and the schema check every process makes at start."""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect, text

from core.db.session import ORM_BEGINS, create_engine

if TYPE_CHECKING:
    from alembic.config import Config
log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


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


async def upgrade_if_needed(url: str) -> None:
    """Migrate to the newest revision unless the schema is there already: a process that finds it ready (the
    usual start) never loads Alembic."""
    _, head = known_revisions()
    if await schema_revision(url) != head:
        await upgrade(url)


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
