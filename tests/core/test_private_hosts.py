"""Private addresses: the person who sent the link gets a plain refusal; the operator's log says which
setting would allow the host."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from core.jobs.choices import SubmitRequest
from tests.support.media_site import MediaSite
from tests.support.servers import free_port
from tests.support.services import make_settings, running_services
from tests.web.conftest import web_api, web_settings


async def test_a_redirect_to_a_private_host_is_refused_with_advice_in_the_log_only(
    tmp_path: Path, media_site: MediaSite, caplog: pytest.LogCaptureFixture
) -> None:
    other = free_port()
    settings = make_settings(
        tmp_path, allow_private_urls=False, allowed_private_hosts=f"127.0.0.1:{media_site.port}"
    )
    caplog.set_level(logging.INFO)
    async with running_services(settings) as services:
        link = media_site.url(f"/redirect?to=http://localhost:{other}/v.mp4")
        submission = await services.jobs.submit(SubmitRequest(text=link, source="cli", user_id="op"))
        final = await services.jobs.wait(submission.job.id, timeout=60)
    assert final.status == "failed" and final.error is not None, final
    assert final.error.code == "private_address"
    assert "MEDIABOT_" not in final.error.message
    advice = f"MEDIABOT_ALLOWED_PRIVATE_HOSTS=localhost:{other}"
    lines = [r.getMessage() for r in caplog.records if advice in r.getMessage()]
    assert len(lines) == 1, lines


async def test_the_api_refuses_a_6to4_loopback_link_without_the_operators_advice(tmp_path: Path) -> None:
    settings = web_settings(tmp_path, allow_private_urls=False)
    async with web_api(settings, worker=False) as api:
        status, body = await api.submit("http://[2002:7f00:1::1]/video.mp4")
        plain, plain_body = await api.submit("http://127.0.0.1:9/video.mp4")
    assert (status, body["error"]["code"]) == (422, "private_address"), body
    assert (plain, plain_body["error"]["code"]) == (422, "private_address"), plain_body
    for answer in (body, plain_body):
        assert "MEDIABOT_" not in json.dumps(answer)
