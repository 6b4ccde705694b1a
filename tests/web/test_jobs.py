"""The REST and WebSocket API end to end: a real server on 127.0.0.1, real services, the local media site."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.storage.keys import make_key
from tests.support.servers import free_port
from tests.web.conftest import Api
from web.server import serving


async def follow(api: Api, job_id: str, *, key: str | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """Every message of a job's WebSocket until the server closes it, and the close code."""
    events = []
    async with api.http.ws_connect(api.ws_url(f"/api/v1/jobs/{job_id}/events"), headers=api.auth(key)) as ws:
        async with asyncio.timeout(60):
            async for message in ws:
                assert message.type == aiohttp.WSMsgType.TEXT
                events.append(json.loads(message.data))
        return events, ws.close_code


async def fetch(api: Api, url: str) -> tuple[int, bytes, aiohttp.ClientResponse]:
    async with api.http.get(url) as resp:
        return resp.status, await resp.read(), resp


async def test_submit_follow_fetch_then_cache_hit(api: Api, media_site: Any) -> None:
    url = media_site.url("/video.mp4")
    source = media_site.files.video_mp4.read_bytes()

    status, job = await api.submit(url)
    assert status == 202, job
    assert job["outcome"] == "queued" and job["cached"] is False and job["file_url"] is None
    assert job["status"] in ("queued", "running")

    events, code = await follow(api, job["id"])
    assert code == 1000
    assert all(e["type"] == "job" and e["job"]["id"] == job["id"] for e in events)
    final = events[-1]["job"]
    assert final["status"] == "done", final
    assert [e["job"]["status"] for e in events].count("done") == 1
    assert final["progress"]["percent"] == 100.0 and final["filesize"] == len(source)
    assert final["file_url"].startswith(api.base + "/files/")

    status, body, resp = await fetch(api, final["file_url"])
    assert status == 200 and body == source
    assert resp.headers["Content-Type"] == "video/mp4"
    assert resp.headers["Content-Disposition"].startswith("attachment;")

    # /file answers with a fresh link.
    status, _, resp = await api.call("GET", f"/api/v1/jobs/{job['id']}/file", allow_redirects=False)
    assert status == 302 and resp.headers["Location"].startswith(api.base + "/files/")
    assert (await fetch(api, resp.headers["Location"]))[1] == source

    # The same link again: answered from the stored file, nothing fetched from the media site.
    hits, downloads = media_site.hits("/video.mp4"), media_site.downloads("/video.mp4")
    status, again = await api.submit(url)
    assert status == 200, again
    assert again["cached"] is True and again["outcome"] == "cached" and again["status"] == "done"
    assert again["id"] != job["id"]
    assert (await fetch(api, again["file_url"]))[1] == source
    assert (media_site.hits("/video.mp4"), media_site.downloads("/video.mp4")) == (hits, downloads)

    # A cached job's WebSocket gives its final state and closes.
    events, code = await follow(api, again["id"])
    assert code == 1000 and [e["job"]["status"] for e in events] == ["done"]


async def test_cancel_stops_only_when_nobody_else_waits(api: Api, media_site: Any) -> None:
    other = await api.new_key("other")
    url = media_site.url(
        "/slow.mp4?rate=400000"
    )  # ~75 s for the whole file: it is still running when cancelled

    status, mine = await api.submit(url)
    assert status == 202
    status, theirs = await api.submit(url, key=other)
    assert status == 202 and theirs["outcome"] == "coalesced" and theirs["id"] != mine["id"]

    # Follow mine until it shows progress, then cancel it: the shared download goes on for the other key.
    async with api.http.ws_connect(api.ws_url(f"/api/v1/jobs/{mine['id']}/events"), headers=api.auth()) as ws:
        async with asyncio.timeout(30):
            async for message in ws:
                view = json.loads(message.data)["job"]
                if view["status"] == "running" and (view["progress"]["downloaded_bytes"] or 0) > 0:
                    break
        status, body, _ = await api.call("DELETE", f"/api/v1/jobs/{mine['id']}")
        assert status == 200 and body["status"] == "cancelled" and body["error"]["code"] == "cancelled"
    assert (await api.job(mine["id"]))["status"] == "cancelled"
    await asyncio.sleep(0.5)
    assert (await api.job(theirs["id"], key=other))["status"] == "running"

    # Only the owner may cancel: the other key's id is not found for us, and ours not for them.
    assert (await api.call("DELETE", f"/api/v1/jobs/{theirs['id']}"))[0] == 404
    assert (await api.call("DELETE", f"/api/v1/jobs/{mine['id']}", key=other))[0] == 404

    # The last one waiting cancels: the download stops, and its WebSocket ends with "cancelled".
    watcher = asyncio.create_task(follow(api, theirs["id"], key=other))
    await asyncio.sleep(0.3)
    status, body, _ = await api.call("DELETE", f"/api/v1/jobs/{theirs['id']}", key=other)
    assert status == 200 and body["status"] == "cancelled"
    events, code = await watcher
    assert code == 1000 and events[-1]["job"]["status"] == "cancelled"
    _, job = await api.services.jobs.get_request(theirs["id"])
    final = await api.services.jobs.wait(job.id, timeout=15)
    assert final.status == "cancelled"

    # Cancelling again changes nothing.
    status, body, _ = await api.call("DELETE", f"/api/v1/jobs/{theirs['id']}", key=other)
    assert status == 200 and body["status"] == "cancelled"


async def test_key_stream_sees_only_its_own_jobs(start_api: Any, media_site: Any) -> None:
    async with start_api() as api:
        other = await api.new_key("other")
        url = api.ws_url(f"/api/v1/events?token={api.key}")
        async with api.http.ws_connect(url) as ws:
            _, first = await api.submit(media_site.url("/clip/1.mp4"))
            _, second = await api.submit(media_site.url("/audio.m4a"), kind="audio")
            _, foreign = await api.submit(media_site.url("/clip/2.mp4"), key=other)
            done: set[str] = set()
            seen: set[str] = set()
            async with asyncio.timeout(40):
                while done != {first["id"], second["id"]}:
                    message = json.loads((await ws.receive()).data)
                    seen.add(message["job"]["id"])
                    if message["job"]["status"] == "done":
                        assert message["job"]["file_url"]
                        done.add(message["job"]["id"])
            assert foreign["id"] not in seen
            assert (await api.wait_status(foreign["id"], "done", key=other))["status"] == "done"


async def test_authentication(start_api: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="web.access")
    async with start_api(worker=False) as api:
        jobs = api.base + "/api/v1/jobs"
        async with api.http.get(jobs) as resp:
            assert resp.status == 401
            assert (await resp.json())["error"]["code"] == "unauthorized"
        for headers in (
            {"Authorization": "Bearer mb_" + "x" * 43},
            {"Authorization": "Basic abc"},
            {"X-API-Key": ""},
        ):
            async with api.http.get(jobs, headers=headers) as resp:
                assert resp.status == 401, headers
        async with api.http.get(jobs, headers={"X-API-Key": api.key}) as resp:
            assert resp.status == 200
        # The query-string token is for WebSockets only.
        async with api.http.get(jobs, params={"token": api.key}) as resp:
            assert resp.status == 401

        status, job = await api.submit("https://example.com/a.mp4")
        assert status == 202
        other = await api.new_key("other")
        for method, path in (("GET", ""), ("DELETE", ""), ("GET", "/file")):
            assert (await api.call(method, f"/api/v1/jobs/{job['id']}{path}", key=other))[0] == 404
        listed = (await api.call("GET", "/api/v1/jobs", key=other))[1]
        assert listed == {"items": [], "next_cursor": None}

        events = api.ws_url(f"/api/v1/jobs/{job['id']}/events")
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await api.http.ws_connect(events)
        assert refused.value.status == 401
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await api.http.ws_connect(events, headers=api.auth(other))
        assert refused.value.status == 404
        async with api.http.ws_connect(events + f"?token={api.key}") as ws:
            first = json.loads((await ws.receive(timeout=10)).data)
            assert first["job"]["id"] == job["id"] and first["job"]["status"] == "queued"
        # The page's way: the key as a subprotocol beside "mediabot"; the server picks "mediabot" only, so
        # the key is neither in the URL nor echoed back.
        async with api.http.ws_connect(events, protocols=("mediabot", f"mediabot.key.{api.key}")) as ws:
            assert ws.protocol == "mediabot"
            first = json.loads((await ws.receive(timeout=10)).data)
            assert first["job"]["id"] == job["id"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await api.http.ws_connect(
                events, protocols=("mediabot", "mediabot.key.mb_notakeyatallbutlongenough")
            )
        assert refused.value.status == 401

        await api.services.keys.revoke("other")
        assert (await api.call("GET", "/api/v1/jobs", key=other))[0] == 401

    lines = [r.getMessage() for r in caplog.records if r.name == "web.access"]
    assert any("GET /api/v1/jobs 200" in line and "key=tester-" in line for line in lines)
    assert not any(api.key in line or other in line for line in lines)


async def test_validation_and_listing(start_api: Any) -> None:
    async with start_api(worker=False, max_body_bytes=1024) as api:
        post = api.base + "/api/v1/jobs"
        cases: list[tuple[Any, int, str]] = [
            (b"{not json", 400, "invalid_request"),
            (b'["https://example.com/v"]', 400, "invalid_request"),
            (b'{"url": "https://example.com/v", "extra": 1}', 400, "invalid_request"),
            (b'{"url": "https://example.com/v", "kind": "gif"}', 400, "invalid_request"),
            (b'{"kind": "video"}', 400, "invalid_request"),
            (json.dumps({"url": "https://example.com/" + "a" * 2000}).encode(), 413, "body_too_large"),
            (b'{"url": "ftp://example.com/v.mp4"}', 422, "invalid_url"),
            (b'{"url": "no link here"}', 422, "invalid_url"),
        ]
        for body, expected, code in cases:
            async with api.http.post(post, data=body, headers=api.auth()) as resp:
                got = await resp.json()
                assert (resp.status, got["error"]["code"]) == (expected, code), (body[:60], got)
                assert set(got) == {"error"} and got["error"]["message"]
        extra = (await api.call("POST", "/api/v1/jobs", data=cases[2][0]))[1]
        assert "extra" in extra["error"]["message"]

        ids = []
        for n in range(3):
            status, job = await api.submit(f"https://example.com/{n}.mp4")
            assert status == 202
            ids.append(job["id"])
        status, page, _ = await api.call("GET", "/api/v1/jobs?limit=2")
        assert status == 200 and [j["id"] for j in page["items"]] == ids[:0:-1] and page["next_cursor"]
        status, rest, _ = await api.call("GET", f"/api/v1/jobs?limit=2&cursor={page['next_cursor']}")
        assert [j["id"] for j in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
        assert len((await api.call("GET", "/api/v1/jobs?status=queued,running"))[1]["items"]) == 3
        assert (await api.call("GET", "/api/v1/jobs?status=done"))[1]["items"] == []
        for query in ("status=bogus", "limit=0", "limit=abc", "limit=101", "cursor=%00"):
            status, body, _ = await api.call("GET", f"/api/v1/jobs?{query}")
            assert status == 400 and body["error"]["code"] == "invalid_request", query

        status, body, _ = await api.call("GET", f"/api/v1/jobs/{ids[0]}/file")
        assert status == 409 and body["error"]["code"] == "not_ready"
        for path in ("/api/v1/jobs/nope", "/api/v1/jobs/" + "0" * 32, "/no/such/route"):
            status, body, _ = await api.call("GET", path)
            assert status == 404 and body["error"]["code"] == "not_found", path
        status, body, resp = await api.call("PUT", "/api/v1/jobs")
        assert (
            status == 405
            and body["error"]["code"] == "method_not_allowed"
            and "POST" in resp.headers["Allow"]
        )

    async with start_api(worker=False, allow_private_urls=False) as strict:
        status, body = await strict.submit("http://127.0.0.1:9/video.mp4")
        assert status == 422 and body["error"]["code"] == "private_address"


async def test_rate_limit_and_concurrency_cap(start_api: Any) -> None:
    async with start_api(worker=False, api_rate_per_minute=3, api_max_concurrent=100) as api:
        for n in range(3):
            assert (await api.submit(f"https://example.com/r{n}.mp4"))[0] == 202
        status, body, resp = await api.call(
            "POST", "/api/v1/jobs", json={"url": "https://example.com/r9.mp4"}
        )
        assert status == 429 and body["error"]["code"] == "rate_limited"
        assert 1 <= int(resp.headers["Retry-After"]) <= 60
        # Another key has its own budget.
        assert (await api.submit("https://example.com/o.mp4", key=await api.new_key("other")))[0] == 202

    async with start_api(worker=False, api_max_concurrent=2) as api:
        _, first = await api.submit("https://example.com/c1.mp4")
        assert (await api.submit("https://example.com/c2.mp4"))[0] == 202
        status, body, resp = await api.call(
            "POST", "/api/v1/jobs", json={"url": "https://example.com/c3.mp4"}
        )
        assert status == 429 and body["error"]["code"] == "too_many_jobs" and "Retry-After" in resp.headers
        await api.call("DELETE", f"/api/v1/jobs/{first['id']}")
        assert (await api.submit("https://example.com/c3.mp4"))[0] == 202


async def test_rate_limit_is_shared_by_processes_through_redis(
    start_api: Any, redis_url: str, tmp_path: Any
) -> None:
    shared = dict(
        worker=False,
        redis_url=redis_url,
        api_rate_per_minute=4,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}",
        # Two data dirs: the processes share the API-key secret through the setting instead.
        api_key_secret="shared-by-both-processes",
    )
    async with start_api(**shared) as one, start_api(**shared) as two:
        statuses = []
        for n in range(6):
            app = (one, two)[n % 2]
            statuses.append((await app.submit(f"https://example.com/s{n}.mp4", key=one.key))[0])
        assert statuses == [202, 202, 202, 202, 429, 429]


async def test_forwarded_headers_only_from_trusted_proxies(
    start_api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="web.access")
    headers = {"X-Forwarded-For": "198.51.100.7, 203.0.113.9"}
    async with start_api(worker=False) as api:
        await api.call("GET", "/health", headers=headers)
    async with start_api(worker=False, trusted_proxies=["127.0.0.0/8"]) as api:
        await api.call("GET", "/health", headers=headers)
    lines = [
        r.getMessage() for r in caplog.records if r.name == "web.access" and "GET /health " in r.getMessage()
    ]
    assert len(lines) == 2
    assert lines[0].endswith("ip=127.0.0.1") and lines[1].endswith("ip=203.0.113.9")


async def test_shutdown_lets_downloads_finish_and_closes_websockets(start_api: Any, tmp_path: Path) -> None:
    async with start_api(worker=False) as api:
        _, job = await api.submit("https://example.com/w.mp4")
        data = os.urandom(16 * 1024 * 1024)
        (tmp_path / "big.bin").write_bytes(data)
        key = make_key(uuid.uuid4().hex, "big.bin")
        await api.services.storage.save(tmp_path / "big.bin", key, filename="big.bin")
        link = await api.services.storage.link(key, filename="big.bin")

        # A second server over the same services, stopped while a client follows a job and downloads a file.
        port = free_port()
        services = dataclasses.replace(
            api.services, settings=api.services.settings.model_copy(update={"port": port})
        )
        server = serving(services)
        await server.__aenter__()
        ws = await api.http.ws_connect(
            f"ws://127.0.0.1:{port}/api/v1/jobs/{job['id']}/events", headers=api.auth()
        )
        assert json.loads((await ws.receive(timeout=5)).data)["job"]["status"] == "queued"
        download = await api.http.get(link.replace(api.base, f"http://127.0.0.1:{port}"))
        received = await download.content.readexactly(65536)

        stopping = asyncio.create_task(server.__aexit__(None, None, None))
        message = await ws.receive(timeout=15)
        assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1001
        await asyncio.sleep(0.3)
        assert not stopping.done()  # waiting for the download in flight
        received += await download.content.read()
        assert received == data
        await asyncio.wait_for(stopping, timeout=15)
        await ws.close()
        # Stopped: nothing listens there any more.
        with pytest.raises(aiohttp.ClientConnectionError):
            await api.http.get(f"http://127.0.0.1:{port}/health")
