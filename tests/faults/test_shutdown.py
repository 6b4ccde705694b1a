"""SIGTERM, as `docker stop` and systemd send it: workers hand over their work, the web app says goodbye."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults import drills
from tests.faults.cluster import GatedMedia
from tests.support.media_site import MediaSite

pytestmark = pytest.mark.usefixtures("drill_tools")


async def test_sigterm_on_a_worker_finishes_or_hands_back_its_jobs(
    tmp_path: Path, media_site: MediaSite, gated: GatedMedia
) -> None:
    """It takes no new job, finishes what can finish within MEDIABOT_SHUTDOWN_GRACE_S, hands the rest
    back (attempt not counted), exits 0; another worker finishes the rest."""
    figures = await drills.worker_sigterm(tmp_path, media_site, gated, grace_s=3)
    assert figures["exit code"] == 0 and figures["lost"] == 0


async def test_sigterm_on_the_web_app_closes_websockets_and_finishes_requests(tmp_path: Path) -> None:
    figures = await drills.web_sigterm(tmp_path)
    assert figures["closed with 1001"] == 2 and figures["in-flight request answered"] == 202


async def test_sigterm_during_start_up_exits_cleanly(tmp_path: Path) -> None:
    """Even before start-up is done (here it waits for an unreachable Redis) SIGTERM means a clean stop."""
    figures = await drills.web_sigterm_during_startup(tmp_path)
    assert figures["exit code"] == 0
