"""Disk full, or storage broken, when a download is stored: a plain storage_error and nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import drills
from tests.support.media_site import MediaSite


@pytest.mark.parametrize("mode", drills.STORAGE_MODES)
async def test_storage_failure_fails_the_job_plainly_and_leaves_nothing(
    tmp_path: Path, media_site: MediaSite, mode: str
) -> None:
    try:
        figures = await drills.storage_failure(tmp_path, media_site, mode)
    except drills.CannotMount as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    assert figures["failed with storage_error"] == 1 and figures["files left behind"] == 0
