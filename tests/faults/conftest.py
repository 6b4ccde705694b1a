"""Fixtures for the fault drills: they need redis-server and PostgreSQL's server binaries on this machine,
because each drill starts (and kills) instances of its own."""

from __future__ import annotations

import os
import pwd
import shutil
from collections.abc import AsyncIterator

import pytest

from tests.faults.cluster import GatedMedia, gated_media
from tests.support.media import MediaFiles
from tests.support.servers import postgres_bindir
from tests.support.services import IN_CI


def _missing() -> str | None:
    if not shutil.which("redis-server"):
        return "redis-server is not installed"
    if postgres_bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no `postgres` user to run PostgreSQL as"
    return None


@pytest.fixture
def drill_tools() -> None:
    """Skip (fail in CI) when this machine cannot run private Redis and PostgreSQL instances."""
    reason = _missing()
    if reason:
        if IN_CI:
            pytest.fail(reason + " (CI=true: the fault drills must run)")
        pytest.skip(reason)


@pytest.fixture
async def gated(media_files: MediaFiles) -> AsyncIterator[GatedMedia]:
    """A media server whose downloads trickle until the test releases them."""
    async with gated_media(media_files.big_mp4.read_bytes()) as site:
        yield site
