"""/health, /health/detailed through outages of Redis and PostgreSQL, and /metrics."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.core.test_extraction import fake_runtime
from tests.fakes.pot_provider import FakePotProvider
from tests.support.servers import PrivateRedis, TcpProxy
from tests.support.services import wait_until
from tests.web.conftest import Api, web_api, web_settings
from web.app import create_app
from worker.build import build_worker

COMPONENTS = {"database", "queue", "events", "storage", "workers", "ffmpeg", "extraction", "pacing"}


async def detailed(api: Api) -> tuple[int, dict[str, Any], float]:
    started = time.monotonic()
    status, body, _ = await api.call("GET", "/health/detailed")
    return status, body, time.monotonic() - started


async def test_health_endpoints(start_api: Any) -> None:
    async with start_api() as api:
        status, body, _ = await api.call("GET", "/health")
        assert (status, body) == (200, {"status": "ok"})
        status, body, _ = await detailed(api)
        assert status == 200 and body["status"] == "ok", body
        assert set(body["components"]) == COMPONENTS
        for name, component in body["components"].items():
            assert component["status"] == "ok" and component["latency_ms"] >= 0, name
        assert body["components"]["queue"]["backend"] == "in-process"
        assert body["components"]["database"]["backend"] == "sqlite"
        assert body["components"]["storage"]["backend"] == "local"
        assert body["components"]["workers"]["alive"] == 1
        assert body["components"]["ffmpeg"]["found"] is True and body["components"]["ffmpeg"]["version"]
        parts = body["components"]["extraction"]["parts"]
        assert list(parts) == [
            "yt_dlp",
            "yt_dlp_ejs",
            "js_runtime",
            "impersonation",
            "pot_provider",
            "cookies",
        ]
        assert parts["js_runtime"]["status"] == "ok" and parts["js_runtime"]["version"].startswith("deno ")
        assert parts["yt_dlp"]["version"] and parts["impersonation"]["detail"].endswith(")")
        assert parts["pot_provider"] == {
            "status": "off",
            "detail": "not configured (MEDIABOT_POT_PROVIDER_URL)",
        }

    # Without a worker heartbeat (no worker ever ran against this database) the app is not healthy.
    async with start_api(worker=False) as api:
        status, body, _ = await detailed(api)
        assert status == 503 and body["components"]["workers"]["status"] == "fail"
        assert body["components"]["database"]["status"] == "ok"


async def test_detailed_health_names_a_broken_runtime_and_provider(
    tmp_path: Path, start_api: Any, pot_provider: FakePotProvider
) -> None:
    starts = tmp_path / "starts.log"
    runtime = fake_runtime(tmp_path / "deno", run_exit=1, log=starts)
    async with start_api(
        allowed_extractors=[], js_runtime=str(runtime), pot_provider_url=pot_provider.url
    ) as api:
        status, body, _ = await detailed(api)
        assert status == 503, body
        extraction = body["components"]["extraction"]
        assert extraction["status"] == "fail"
        assert extraction["error"] == "JavaScript runtime: a one-line script exited with code 1"
        assert extraction["parts"]["pot_provider"] == {
            "status": "ok",
            "version": pot_provider.version,
            "detail": "answers",
        }
        assert extraction["parts"]["js_runtime"]["advice"].startswith("Point MEDIABOT_JS_RUNTIME at")
        assert all(c["status"] == "ok" for name, c in body["components"].items() if name != "extraction"), (
            body
        )

        await pot_provider.stop()
        status, body, _ = await detailed(api)
        extraction = body["components"]["extraction"]
        assert extraction["error"] == (
            "JavaScript runtime: a one-line script exited with code 1; PO token provider: does not answer: "
            "nothing listens there (connection refused or host not found)"
        )
        # No path, URL or program output reaches a health reader.
        text = json.dumps(body)
        assert str(tmp_path) not in text and pot_provider.url not in text and "on purpose" not in text
        # The runtime's check was made once for the two polls: Deno is not started on every poll.
        assert starts.read_text().split().count("run") == 1


# Asserts a duration: in the serial group with the drills (tests/support/groups.py).
@pytest.mark.xdist_group("serial")
async def test_detailed_health_follows_a_redis_outage(tmp_path: Path, private_redis: PrivateRedis) -> None:
    # The worker's duties (heartbeat, leases, reconciler) run here, but not Taskiq's receiver: after Redis
    # comes back empty, taskiq's run_receiver_task retries XREADGROUP in a tight loop (NOGROUP) that
    # starves this test's event loop. That is the worker's business, not the web app's.
    async with web_api(web_settings(tmp_path, redis_url=private_redis.url), worker=False) as api:
        runtime = build_worker(api.services)
        await runtime.start()
        try:
            await _redis_outage(api, private_redis)
        finally:
            await runtime.stop(grace_s=0)


async def _redis_outage(api: Api, private_redis: PrivateRedis) -> None:
    status, body, _ = await detailed(api)
    assert status == 200, body
    assert body["components"]["queue"]["backend"] == "redis"

    private_redis.stop()
    status, body, took = await detailed(api)
    assert status == 503, body
    assert body["components"]["queue"]["status"] == "fail"
    assert body["components"]["events"]["status"] == "fail"
    assert body["components"]["database"]["status"] == "ok"
    assert took < 8

    private_redis.start()

    async def healthy() -> bool:
        return (await detailed(api))[0] == 200

    await wait_until(healthy, timeout=20, interval=0.3)


# Asserts a duration: in the serial group with the drills (tests/support/groups.py).
@pytest.mark.xdist_group("serial")
async def test_detailed_health_follows_a_database_outage(tmp_path: Path, pg_url: str) -> None:
    proxy = TcpProxy(5432)
    await proxy.start()
    through_proxy = pg_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    assert through_proxy != pg_url
    try:
        async with web_api(web_settings(tmp_path, database_url=through_proxy)) as api:
            status, body, _ = await detailed(api)
            assert status == 200, body
            assert body["components"]["database"]["backend"] == "postgresql"

            await proxy.stop()
            status, body, took = await detailed(api)
            assert status == 503, body
            assert body["components"]["database"]["status"] == "fail"
            assert body["components"]["queue"]["status"] == "ok"
            assert took < 8
            # The API says so in its own words instead of a traceback.
            status, body, _ = await api.call("GET", "/api/v1/jobs")
            assert (status, body["error"]["code"]) == (503, "unavailable"), body

            await proxy.start()

            async def healthy() -> bool:
                return (await detailed(api))[0] == 200

            await wait_until(healthy, timeout=20, interval=0.3)
    finally:
        await proxy.stop()


async def test_metrics(start_api: Any, media_site: Any) -> None:
    async with start_api() as api:
        url = media_site.url("/clip/7.mp4")
        _, job = await api.submit(url)
        done = await api.wait_status(job["id"], "done")
        status, cached = await api.submit(url)
        assert status == 200 and cached["cached"]

        status, text, resp = await api.call("GET", "/metrics")
        assert status == 200 and resp.headers["Content-Type"].startswith("text/plain")
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text.decode())
            for s in family.samples
        }
        assert samples[("mediabot_jobs", (("status", "done"),))] == 1
        assert samples[("mediabot_jobs", (("status", "failed"),))] == 0
        assert samples[("mediabot_requests_total", (("outcome", "queued"),))] == 1
        assert samples[("mediabot_requests_total", (("outcome", "cached"),))] == 1
        assert samples[("mediabot_downloaded_bytes_total", ())] == done["filesize"]
        assert samples[("mediabot_job_duration_seconds_count", ())] == 1
        assert samples[("mediabot_job_duration_seconds_bucket", (("le", "+Inf"),))] == 1
        assert samples[("mediabot_workers_alive", ())] == 1
        assert samples[("mediabot_queue_depth", ())] >= 0
        posts = (("method", "POST"), ("route", "/api/v1/jobs"), ("status", "202"))
        assert samples[("mediabot_http_requests_total", posts)] == 1
        assert (
            samples[
                (
                    "mediabot_http_request_duration_seconds_count",
                    (("method", "POST"), ("route", "/api/v1/jobs")),
                )
            ]
            == 2
        )

        # Each app has its own registry: building more in one process is fine.
        create_app(api.services)
        create_app(api.services)
