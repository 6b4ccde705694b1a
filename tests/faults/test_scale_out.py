"""Two web processes and three workers on one Redis and PostgreSQL.

The issue's figure (200 jobs) comes from bench/drills.py; the test runs the same drill with fewer jobs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import drills
from tests.support.media_site import MediaSite

pytestmark = pytest.mark.usefixtures("drill_tools")


async def test_jobs_across_two_webs_and_three_workers_finish_exactly_once(
    tmp_path: Path, media_site: MediaSite
) -> None:
    """Each job is downloaded once, and a WebSocket on either web process sees every event of every job,
    whichever process took the request."""
    figures = await drills.two_webs_three_workers(tmp_path, media_site, jobs=60)
    assert figures["downloaded exactly once"] == 60 and figures["lost"] == 0
