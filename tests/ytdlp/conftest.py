"""Releases of yt-dlp built here from the installed one (tests/ytdlp/wheels.py), one folder each, and a
local package index serving them: update tests never reach the internet."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from tests.ytdlp import wheels
from tests.ytdlp.index import LocalIndex

GOOD = "2099.1.1"
BROKEN = "2099.2.2"
UNLOADABLE = "2099.3.3"
CORRUPT = "2099.4.4"
NEWER = "2099.5.5"
OLD = "2000.1.1"


@pytest.fixture(autouse=True)
def pip_without_this_machines_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """pip in these tests sees only the folders and index the test names: no config file, no PIP_*
    settings of the machine (extra indexes, find-links folders, constraints)."""
    for name in list(os.environ):
        if name.startswith("PIP_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)


@dataclass(frozen=True)
class Releases:
    good: Path  # GOOD, a working copy of the installed yt-dlp, with the yt-dlp-ejs it pins
    newer: Path  # NEWER, another working one
    broken: Path  # BROKEN: its generic extractor raises on every link
    unloadable: Path  # UNLOADABLE: `import yt_dlp` fails
    corrupt: Path  # CORRUPT: garbage bytes under a wheel's name
    old: Path  # OLD, older than the bundled yt-dlp


@pytest.fixture(scope="session")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Releases:
    root = tmp_path_factory.mktemp("releases")
    folders = {name: root / name for name in ("good", "newer", "broken", "unloadable", "corrupt", "old")}
    for folder in folders.values():
        folder.mkdir()
    wheels.build_ytdlp(folders["good"], GOOD)
    wheels.build_ytdlp(folders["newer"], NEWER)
    wheels.build_ytdlp(folders["broken"], BROKEN, wheels.generic_raises)
    wheels.build_ytdlp(folders["unloadable"], UNLOADABLE, wheels.import_fails)
    wheels.corrupt(folders["corrupt"], CORRUPT)
    wheels.build_ytdlp(folders["old"], OLD)
    for name in ("good", "newer", "broken", "unloadable"):
        wheels.build_ejs(folders[name])
    return Releases(**folders)


@pytest_asyncio.fixture(loop_scope="session")
async def good_index(releases: Releases) -> AsyncIterator[LocalIndex]:
    """A PEP 503 package index on 127.0.0.1 offering the good release."""
    index = LocalIndex(releases.good)
    await index.start()
    try:
        yield index
    finally:
        await index.stop()
