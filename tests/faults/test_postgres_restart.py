"""PostgreSQL crashes and comes back while jobs run: everyone reconnects and every job finishes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import drills
from tests.faults.cluster import GatedMedia
from tests.support.media_site import MediaSite

pytestmark = pytest.mark.usefixtures("drill_tools")


async def test_jobs_finish_across_a_postgres_crash(
    tmp_path: Path, media_site: MediaSite, gated: GatedMedia
) -> None:
    figures = await drills.postgres_restart(tmp_path, media_site, gated, jobs=12, outage_s=3)
    assert figures["lost"] == 0 and figures["left running"] == 0
