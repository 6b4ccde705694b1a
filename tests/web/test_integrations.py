"""Integrations end to end: completion webhooks, Idempotency-Key, WebSocket resume. Real servers on
127.0.0.1 (the app, the media site, a webhook receiver), real databases."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import update

from core.db.models import Request, utcnow
from core.webhooks.hooks import get_webhook
from tests.support.servers import free_port
from tests.support.services import wait_until
from tests.web.conftest import Api, web_api, web_settings

SECRET = "whsec-for-tests"
LINKS = {"file_url", "thumbnail_url"}


def verify(secret: str, headers: Any, body: bytes) -> bool:
    """What a receiver does (the README's recipe): HMAC-SHA256 of `timestamp.body`, and a recent timestamp."""
    timestamp = headers["X-Mediabot-Timestamp"]
    expected = (
        "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    )
    return (
        hmac.compare_digest(expected, headers["X-Mediabot-Signature"])
        and abs(time.time() - int(timestamp)) < 300
    )


@dataclass
class Call:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Receiver:
    """A webhook receiver: answers each delivery's first calls with `fail_first`, then 200."""

    url: str
    fail_first: list[int]
    calls: list[Call] = field(default_factory=list)

    def of(self, request_id: str) -> list[Call]:
        return [c for c in self.calls if c.headers.get("X-Mediabot-Delivery") == request_id]


@contextlib.asynccontextmanager
async def receiver(fail_first: list[int] | None = None) -> AsyncIterator[Receiver]:
    port = free_port()
    hook = Receiver(url=f"http://127.0.0.1:{port}/hook", fail_first=fail_first or [])

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        earlier = len(hook.of(request.headers.get("X-Mediabot-Delivery", "")))
        status = hook.fail_first[earlier] if earlier < len(hook.fail_first) else 200
        await asyncio.sleep(0.1)  # a receiver that takes a moment: two senders would overlap
        hook.calls.append(Call(dict(request.headers), body, status))
        return web.Response(status=status, text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield hook
    finally:
        await runner.cleanup()


@pytest.mark.both_databases
async def test_webhook_signed_retried_recorded_sent_once(
    tmp_path: Path, database_url: str, media_site: Any
) -> None:
    """Two web processes over one database; the receiver answers 500 once, then 200: each request gets
    exactly two signed calls (no process sends a try another one claimed), and the database records it."""
    fast = dict(database_url=database_url, webhook_secret=SECRET, webhook_backoff_s=0.3, webhook_poll_s=0.1)
    source = media_site.files.video_mp4.read_bytes()
    async with (
        receiver(fail_first=[500]) as hook,
        web_api(web_settings(tmp_path, **fast)) as api,
        web_api(web_settings(tmp_path, **fast), worker=False),
    ):
        tag = uuid.uuid4().int % 10**8
        jobs = []
        for n in range(2):
            status, job = await api.submit(media_site.url(f"/clip/{tag + n}.mp4"), callback_url=hook.url)
            assert status == 202, job
            jobs.append(job)

        async def delivered() -> bool:
            states = [await get_webhook(api.services.sessions, job["id"]) for job in jobs]
            return all(s is not None and s.status == "delivered" for s in states)

        await wait_until(delivered, timeout=30, interval=0.1)
        await asyncio.sleep(0.5)  # room for a wrongly doubled try to arrive
        for job in jobs:
            calls = hook.of(job["id"])
            assert [c.status for c in calls] == [500, 200], calls
            assert [c.headers["X-Mediabot-Attempt"] for c in calls] == ["1", "2"]
            for call in calls:
                assert call.headers["Content-Type"] == "application/json"
                assert verify(SECRET, call.headers, call.body)
                assert not verify("another secret", call.headers, call.body)
            payload = json.loads(calls[-1].body)
            current = await api.job(job["id"])
            assert payload["status"] == "done" and payload["file_url"]
            # The same job, but for its links, which are signed afresh with every read.
            assert {k: v for k, v in payload.items() if k not in LINKS} == {
                k: v for k, v in current.items() if k not in LINKS
            }
            assert payload["thumbnail_url"] and current["thumbnail_url"]
            async with api.http.get(payload["file_url"]) as resp:
                assert resp.status == 200 and await resp.read() == source

            state = await get_webhook(api.services.sessions, job["id"])
            assert state is not None and state.url == hook.url
            assert (state.attempts, state.last_status_code, state.last_error) == (2, 200, None)
            assert state.delivered_at is not None and state.last_attempt_at is not None

        # A job without a callback has no webhook.
        status, plain = await api.submit(media_site.url(f"/clip/{tag}.mp4"))
        assert status == 200 and await get_webhook(api.services.sessions, plain["id"]) is None


async def test_a_retry_is_called_back_like_the_first_ask(start_api: Any, media_site: Any) -> None:
    async with receiver() as hook, start_api(webhook_secret=SECRET, webhook_poll_s=0.1) as api:
        status, failed = await api.submit(media_site.url("/missing.mp4"), callback_url=hook.url)
        assert status == 202, failed
        await api.wait_status(failed["id"], "failed")
        status, retried, _ = await api.call("POST", f"/api/v1/jobs/{failed['id']}/retry")
        assert status == 202 and retried["id"] != failed["id"], retried
        await api.wait_status(retried["id"], "failed")

        async def called_back() -> bool:
            return bool(hook.of(failed["id"])) and bool(hook.of(retried["id"]))

        await wait_until(called_back, timeout=30, interval=0.1)
        payload = json.loads(hook.of(retried["id"])[-1].body)
        assert (payload["id"], payload["status"]) == (retried["id"], "failed")
        assert payload["error"]["code"] == "download_failed"


async def test_callback_url_is_checked_like_links(start_api: Any, media_site: Any) -> None:
    allowed = free_port()
    async with start_api(
        worker=False,
        allow_private_urls=False,
        allowed_private_hosts=[f"127.0.0.1:{media_site.port}", f"127.0.0.1:{allowed}"],
    ) as api:
        url = media_site.url("/video.mp4")
        status, body = await api.submit(url, callback_url="http://127.0.0.1:9/hook")
        assert status == 422 and body["error"]["code"] == "private_address", body
        assert "callback_url" in body["error"]["message"]
        for bad in ("ftp://127.0.0.1/hook", "no address", "http:///hook", "http://127.0.0.1:99999/"):
            status, body = await api.submit(url, callback_url=bad)
            assert status == 422 and body["error"]["code"] == "invalid_url", (bad, body)
        assert (await api.call("GET", "/api/v1/jobs"))[1]["items"] == []
        # A host the operator allowed may be called back, like a link to it may be downloaded.
        status, body = await api.submit(url, callback_url=f"http://127.0.0.1:{allowed}/hook")
        assert status == 202, body


async def post_job(
    api: Api, body: dict[str, Any], idempotency_key: str, key: str | None = None
) -> tuple[int, Any, Any]:
    status, got, resp = await api.call(
        "POST", "/api/v1/jobs", key=key, headers={"Idempotency-Key": idempotency_key}, json=body
    )
    return status, got, resp.headers


@pytest.mark.both_databases
async def test_idempotency_key(api: Api, media_site: Any) -> None:
    url = media_site.url(f"/clip/{uuid.uuid4().int % 10**8}.mp4")
    path = url.split(str(media_site.port), 1)[1]
    downloads = media_site.downloads(path)

    status, first, headers = await post_job(api, {"url": url}, "order-1")
    assert status == 202 and "Idempotent-Replayed" not in headers
    # Repeats, some at the same moment as a new key's first use: the database picks one request per key.
    results = await asyncio.gather(
        *(post_job(api, {"url": url, "kind": "video"}, "order-1") for _ in range(3)),
        *(post_job(api, {"url": url}, "order-2") for _ in range(4)),
    )
    assert {(s, b["id"], h["Idempotent-Replayed"]) for s, b, h in results[:3]} == {(202, first["id"], "true")}
    racers = results[3:]
    assert len({b["id"] for _, b, _ in racers}) == 1
    assert sorted(h.get("Idempotent-Replayed", "-") for _, _, h in racers) == ["-", "true", "true", "true"]
    second = racers[0][1]
    listed = (await api.call("GET", "/api/v1/jobs"))[1]["items"]
    assert {j["id"] for j in listed} == {first["id"], second["id"]}

    assert (await api.wait_status(first["id"], "done"))["file_url"]
    assert media_site.downloads(path) == downloads + 1
    # Later, the same key answers with the job as it is now, and the status code of the first call.
    status, again, headers = await post_job(api, {"url": url}, "order-1")
    assert (status, again["id"], again["status"], headers["Idempotent-Replayed"]) == (
        202,
        first["id"],
        "done",
        "true",
    )
    assert media_site.downloads(path) == downloads + 1

    # The same key for something else is refused; another API key has keys of its own.
    for body in ({"url": url, "kind": "audio"}, {"url": url, "callback_url": "http://127.0.0.1:9/x"}):
        status, got, _ = await post_job(api, body, "order-1")
        assert status == 422 and got["error"]["code"] == "idempotency_conflict", got
    other = await api.new_key("other")
    status, theirs, headers = await post_job(api, {"url": url}, "order-1", key=other)
    assert status == 200 and theirs["id"] != first["id"] and "Idempotent-Replayed" not in headers

    # After 24 hours a key starts a new request.
    async with api.services.sessions() as session, session.begin():
        await session.execute(
            update(Request).where(Request.id == first["id"]).values(created_at=utcnow() - timedelta(hours=25))
        )
    status, fresh, headers = await post_job(api, {"url": url, "kind": "audio"}, "order-1")
    assert (
        status == 202
        and fresh["id"] not in (first["id"], second["id"])
        and "Idempotent-Replayed" not in headers
    )
    await api.wait_status(fresh["id"], "done")

    for bad in ("", "x" * 256, "has space"):
        status, got, _ = await post_job(api, {"url": url}, bad)
        assert status == 400 and got["error"]["code"] == "invalid_request", bad


async def messages(api: Api, path: str) -> tuple[list[dict[str, Any]], int | None]:
    """Every message of a job's WebSocket until the server closes it, and the close code."""
    got = []
    async with api.http.ws_connect(api.ws_url(path), headers=api.auth()) as ws:
        async with asyncio.timeout(30):
            async for message in ws:
                got.append(json.loads(message.data))
        return got, ws.close_code


async def test_websocket_resume(start_api: Any, media_site: Any) -> None:
    async with start_api() as api:
        url = media_site.gated_url()  # held until the first connection is dropped
        status, job = await api.submit(url)
        assert status == 202 and job["seq"] >= 1
        events = f"/api/v1/jobs/{job['id']}/events"

        # Follow until the download moves, then drop the connection.
        async with api.http.ws_connect(api.ws_url(events), headers=api.auth()) as ws:
            async with asyncio.timeout(30):
                async for message in ws:
                    seen = json.loads(message.data)["job"]
                    if seen["status"] == "running" and (seen["progress"]["downloaded_bytes"] or 0) > 0:
                        break
        media_site.open_gate(url)
        resumed, code = await messages(api, f"{events}?after={seen['seq']}")
        seqs = [m["job"]["seq"] for m in resumed]
        assert code == 1000 and seqs and seqs[0] > seen["seq"] and seqs == sorted(set(seqs)), seqs
        assert resumed[-1]["job"]["status"] == "done" and resumed[-1]["job"]["file_url"]

        # Nothing newer than the last state: closed at once. From the start: the final state only.
        assert await messages(api, f"{events}?after={seqs[-1]}") == ([], 1000)
        final, code = await messages(api, f"{events}?after=0")
        assert code == 1000 and [m["job"]["seq"] for m in final] == [seqs[-1]]
        for bad in ("-1", "abc", "1.5", "²"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await api.http.ws_connect(api.ws_url(f"{events}?after={bad}"), headers=api.auth())
            assert refused.value.status == 400

        # The key's stream: a plain connection shows running jobs only; with ?after=<a time seen> it
        # first brings the jobs that ended since.
        stream = api.ws_url("/api/v1/events")
        async with api.http.ws_connect(stream, headers=api.auth()) as ws:
            with pytest.raises(asyncio.TimeoutError):
                await ws.receive(timeout=0.5)
        async with api.http.ws_connect(
            stream, headers=api.auth(), params={"after": seen["updated_at"]}
        ) as ws:
            caught_up = json.loads((await ws.receive(timeout=5)).data)["job"]
            assert (caught_up["id"], caught_up["status"], caught_up["seq"]) == (job["id"], "done", seqs[-1])
        for bad in ("yesterday", "-5"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await api.http.ws_connect(stream, headers=api.auth(), params={"after": bad})
            assert refused.value.status == 400
