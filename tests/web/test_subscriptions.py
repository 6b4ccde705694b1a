"""Subscriptions through the API: follow a channel; a new entry becomes a job of the key, called back to
`callback_url` and shown on the key's WebSocket; listed, read and stopped; other keys see nothing."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.services import wait_until
from tests.web.conftest import web_api, web_settings
from tests.web.test_integrations import SECRET, receiver

pytestmark = pytest.mark.timeout(120)


async def test_a_subscription_delivers_new_entries_as_jobs(tmp_path: Path, media_site: Any) -> None:
    settings = web_settings(
        tmp_path,
        subscription_interval_s=0.3,
        webhook_secret=SECRET,
        webhook_backoff_s=0.3,
        webhook_poll_s=0.1,
    )
    feed = media_site.channel("api", 2)
    async with receiver() as hook, web_api(settings) as api:
        status, body, resp = await api.call(
            "POST", "/api/v1/subscriptions", json={"url": feed, "callback_url": hook.url}
        )
        assert status == 201, body
        assert resp.headers["Location"] == f"/api/v1/subscriptions/{body['id']}"
        assert body["paused"] is False and body["kind"] == "video" and body["delivered"] == 0
        sub_id = body["id"]
        status, again, _ = await api.call("POST", "/api/v1/subscriptions", json={"url": feed})
        assert status == 200 and again["id"] == sub_id  # the same link, kind and quality: the same one
        status, bad, _ = await api.call("POST", "/api/v1/subscriptions", json={"url": feed, "backfill": 99})
        assert status == 400 and "backfill" in bad["error"]["message"]

        async def checked() -> bool:
            _, one, _ = await api.call("GET", f"/api/v1/subscriptions/{sub_id}")
            return one["checks"] >= 1

        await wait_until(checked, timeout=30)
        _, jobs, _ = await api.call("GET", "/api/v1/jobs")
        assert jobs["items"] == []  # nothing of the back catalogue

        async with api.http.ws_connect(api.ws_url("/api/v1/events"), headers=api.auth()) as ws:
            media_site.channel("api", 3)
            async with asyncio.timeout(60):
                async for message in ws:
                    event = json.loads(message.data)
                    if event["job"]["status"] == "done":
                        job = event["job"]
                        break
        assert job["url"].startswith(media_site.url("/clip/api-3.mp4"))

        await wait_until(lambda: len(hook.calls) >= 1, timeout=30)
        sent = json.loads(hook.calls[0].body)
        assert sent["status"] == "done" and sent["url"].startswith(media_site.url("/clip/api-3.mp4"))
        assert media_site.downloads("/clip/api-3.mp4") == 1

        async with api.http.get(api.base + "/metrics") as resp:
            metrics = await resp.text()
        assert 'mediabot_subscriptions{state="active"} 1.0' in metrics
        assert "mediabot_subscription_new_items_total 1.0" in metrics
        assert "mediabot_subscription_checks_total" in metrics

        other = await api.new_key("someone-else")
        status, theirs, _ = await api.call("GET", "/api/v1/subscriptions", key=other)
        assert status == 200 and theirs["items"] == []
        status, _, _ = await api.call("DELETE", f"/api/v1/subscriptions/{sub_id}", key=other)
        assert status == 404

        _, listed, _ = await api.call("GET", "/api/v1/subscriptions")
        assert [s["id"] for s in listed["items"]][0] == sub_id
        status, gone, _ = await api.call("DELETE", f"/api/v1/subscriptions/{sub_id}")
        assert status == 200 and gone["id"] == sub_id
        status, _, _ = await api.call("GET", f"/api/v1/subscriptions/{sub_id}")
        assert status == 404
