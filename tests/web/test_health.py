"""/health, /health/detailed through outages of Redis and PostgreSQL, and /metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from core.services import build_worker
from tests.support.servers import PrivateRedis, TcpProxy
from tests.support.services import wait_until
from tests.web.conftest import Api, web_api, web_settings
from web.app import create_app

COMPONENTS = {"database", "queue", "events", "storage", "workers", "ffmpeg"}


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

    # Without a worker heartbeat (no worker ever ran against this database) the app is not healthy.
    async with start_api(worker=False) as api:
        status, body, _ = await detailed(api)
        assert status == 503 and body["components"]["workers"]["status"] == "fail"
        assert body["components"]["database"]["status"] == "ok"


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
