"""Fixtures of the cuts tests: the counter media (frames that say which they are, with chapters), FFmpeg, and a
fake SponsorBlock API."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.chaptered import ChapteredMedia, generate_chaptered
from tests.support.sponsorblock import FakeSponsorBlock


@pytest.fixture(scope="session")
def ffmpeg() -> str:
    found = shutil.which("ffmpeg")
    if found is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg and ffprobe are not installed (scripts/system-deps)")
    return found


@pytest.fixture(scope="session")
def chaptered(ffmpeg: str) -> ChapteredMedia:
    return generate_chaptered()


@pytest_asyncio.fixture
async def sponsorblock() -> AsyncIterator[FakeSponsorBlock]:
    async with FakeSponsorBlock() as api:
        yield api
