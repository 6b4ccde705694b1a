"""Playlists through the API end to end: a channel link becomes a playlist job with its items, followed over
REST and WebSockets, cancelled as a whole, answered from the cache, and called back once when all is over.
A real server on 127.0.0.1, real services, the local media site's RSS feed as the channel."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from core.webhooks.hooks import get_webhook
from tests.support.services import wait_until
from tests.web.conftest import Api, web_api, web_settings
from tests.web.test_integrations import SECRET, receiver, verify

pytestmark = pytest.mark.timeout(90)

CHANNEL = "/feed.xml?n=143"


async def messages(
    api: Api, path: str, *, until: Any = None, limit_s: float = 60
) -> tuple[list[dict[str, Any]], int | None]:
    """The jobs of a WebSocket's messages until the server closes it (or `until(job)` holds)."""
    jobs: list[dict[str, Any]] = []
    async with api.http.ws_connect(api.ws_url(path), headers=api.auth()) as ws:
        async with asyncio.timeout(limit_s):
            async for message in ws:
                assert message.type == aiohttp.WSMsgType.TEXT, message
                event = json.loads(message.data)
                assert event["type"] == "job"
                jobs.append(event["job"])
                if until is not None and until(event["job"]):
                    break
        return jobs, ws.close_code


def latest_items(pid: str, jobs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each item's newest state, from the playlist's messages (its items) and the item messages."""
    latest: dict[str, dict[str, Any]] = {}
    for job in jobs:
        for item in job["items"] or [] if job["id"] == pid else [job] if job["parent_id"] == pid else []:
            if item["id"] not in latest or item["seq"] >= latest[item["id"]]["seq"]:
                latest[item["id"]] = item
    return latest


def clip_downloads(media_site: Any) -> list[int]:
    return [media_site.downloads(f"/clip/{i}.mp4") for i in range(1, 5)]


async def test_a_channel_becomes_a_playlist_of_items_each_with_its_file(
    tmp_path: Path, database_url: str, media_site: Any
) -> None:
    settings = web_settings(tmp_path, database_url=database_url, max_playlist_items=3)
    source = media_site.files.video_mp4.read_bytes()
    async with web_api(settings) as api:
        before, feed_hits = clip_downloads(media_site), media_site.hits("/feed.xml")
        # Everything of the key, from before the submission: the playlist, then its items, then its end.
        everything = asyncio.create_task(
            messages(api, "/api/v1/events", until=lambda j: j["playlist"] and j["status"] == "done")
        )
        await asyncio.sleep(0.2)

        status, playlist = await api.submit(media_site.url(CHANNEL))
        assert status == 202, playlist
        assert (playlist["status"], playlist["outcome"], playlist["playlist"], playlist["items"]) == (
            "queued",
            "queued",
            None,
            None,
        )
        pid = playlist["id"]

        # Its WebSocket: the playlist once read (3 of 143, items queued), each item's progress, the end.
        events, code = await messages(api, f"/api/v1/jobs/{pid}/events")
        assert code == 1000
        read = next(i for i, j in enumerate(events) if j["id"] == pid and j["playlist"])
        assert events[read]["playlist"] == {"count": 3, "total": 143}
        item_ids = [item["id"] for item in events[read]["items"]]
        assert len(set(item_ids)) == 3 and pid not in item_ids
        assert all(item["parent_id"] == pid for item in events[read]["items"])
        about_items = events[read + 1 : -1]
        assert all(j["id"] in item_ids and j["parent_id"] == pid for j in about_items)
        assert {j["status"] for j in latest_items(pid, events[read:]).values()} == {"done"}
        final = events[-1]
        assert final["id"] == pid and final["status"] == "done" and final["progress"]["percent"] == 100.0
        assert final["seq"] >= events[read]["seq"]  # equal when every item had ended when it was read
        assert [item["status"] for item in final["items"]] == ["done"] * 3

        # REST: the same playlist, each item with a working link to its own file.
        got = await api.job(pid)
        assert (got["status"], got["playlist"], got["file_url"]) == ("done", {"count": 3, "total": 143}, None)
        assert [item["id"] for item in got["items"]] == item_ids
        for item in got["items"]:
            assert item["status"] == "done" and item["filesize"] == len(source) and item["items"] is None
            async with api.http.get(item["file_url"]) as resp:
                assert resp.status == 200 and await resp.read() == source
        assert clip_downloads(media_site) == [n + 1 for n in before[:3]] + [before[3]], "3 clips, once each"
        assert media_site.hits("/feed.xml") == feed_hits + 1

        # An item is a job of its own; the playlist has no file of its own.
        item = await api.job(item_ids[0])
        assert item["parent_id"] == pid and item["status"] == "done"
        status, body, _ = await api.call("GET", f"/api/v1/jobs/{pid}/file", allow_redirects=False)
        assert status == 409 and body["error"]["code"] == "not_ready"

        # The listing shows what was submitted: the playlist, its items inside it, not beside it.
        status, listed, _ = await api.call("GET", "/api/v1/jobs")
        assert status == 200 and [j["id"] for j in listed["items"]] == [pid]
        assert [i["id"] for i in listed["items"][0]["items"]] == item_ids
        for filters, ids in (("done", [pid]), ("queued,running", []), ("failed,cancelled", [])):
            status, page, _ = await api.call("GET", f"/api/v1/jobs?status={filters}")
            assert status == 200 and [j["id"] for j in page["items"]] == ids, filters

        # The key's stream saw the playlist first, then items naming it, then the playlist's end.
        seen, _ = await everything
        assert seen[0]["id"] == pid
        assert {j["id"] for j in seen[1:-1]} <= {pid, *item_ids}
        first_item = next(i for i, j in enumerate(seen) if j["parent_id"] == pid or j["items"])
        assert seen[first_item]["id"] == pid, "a playlist is announced before its items"
        assert {j["id"] for j in seen} <= {pid, *item_ids}
        streamed = latest_items(pid, seen)
        assert set(streamed) == set(item_ids) and {j["status"] for j in streamed.values()} == {"done"}
        assert seen[-1]["id"] == pid and seen[-1]["status"] == "done"

        # Resuming after the last state: nothing more, closed at once.
        events, code = await messages(api, f"/api/v1/jobs/{pid}/events?after={final['seq']}", limit_s=5)
        assert (events, code) == ([], 1000)

        # The same channel again: answered from the cache, with items of its own, nothing fetched.
        status, again = await api.submit(media_site.url(CHANNEL))
        assert status == 200, again
        assert (again["status"], again["cached"], again["outcome"]) == ("done", True, "cached")
        assert again["id"] != pid and again["playlist"] == {"count": 3, "total": 143}
        assert len(again["items"]) == 3 and not {i["id"] for i in again["items"]} & set(item_ids)
        for item in again["items"]:
            assert (item["status"], item["cached"], item["parent_id"]) == ("done", True, again["id"])
            async with api.http.get(item["file_url"]) as resp:
                assert await resp.read() == source
        assert clip_downloads(media_site) == [n + 1 for n in before[:3]] + [before[3]]
        assert media_site.hits("/feed.xml") == feed_hits + 1
        events, code = await messages(api, f"/api/v1/jobs/{again['id']}/events", limit_s=10)
        assert code == 1000 and [(j["id"], j["status"]) for j in events] == [(again["id"], "done")]

        # Pages hold what was submitted, whatever the items in between.
        status, page, _ = await api.call("GET", "/api/v1/jobs?limit=1")
        assert [j["id"] for j in page["items"]] == [again["id"]] and page["next_cursor"]
        status, page, _ = await api.call("GET", f"/api/v1/jobs?limit=1&cursor={page['next_cursor']}")
        assert [j["id"] for j in page["items"]] == [pid] and page["next_cursor"] is None


async def test_cancelling_a_playlist_cancels_its_remaining_items(tmp_path: Path, media_site: Any) -> None:
    settings = web_settings(tmp_path, max_playlist_items=3, worker_concurrency=2)
    async with web_api(settings) as api:
        # Every item a slow download of its own (~150 s each): still running when cancelled.
        status, playlist = await api.submit(media_site.url("/feed.xml?n=50&item=slow&rate=200000"))
        assert status == 202, playlist
        pid = playlist["id"]

        def item_moving(job: dict[str, Any]) -> bool:
            return job["parent_id"] == pid and (job["progress"]["downloaded_bytes"] or 0) > 0

        async with api.http.ws_connect(api.ws_url(f"/api/v1/jobs/{pid}/events"), headers=api.auth()) as ws:
            first_read = None
            async with asyncio.timeout(30):
                async for message in ws:
                    job = json.loads(message.data)["job"]
                    if job["id"] == pid and job["playlist"] and first_read is None:
                        first_read = job
                        assert job["status"] == "running" and len(job["items"]) == 3
                    if item_moving(job):
                        break
            assert first_read is not None

            # While items run, the playlist reads (and is listed) as running.
            assert (await api.job(pid))["status"] == "running"
            status, page, _ = await api.call("GET", "/api/v1/jobs?status=running")
            assert [j["id"] for j in page["items"]] == [pid]
            status, page, _ = await api.call("GET", "/api/v1/jobs?status=done")
            assert page["items"] == []

            # A second follower resuming after the first playlist message catches up in one message.
            resumed = asyncio.create_task(
                messages(api, f"/api/v1/jobs/{pid}/events?after={first_read['seq']}", limit_s=30)
            )
            await asyncio.sleep(0.3)

            status, body, _ = await api.call("DELETE", f"/api/v1/jobs/{pid}")
            assert status == 200 and body["status"] == "cancelled", body
            assert body["error"]["code"] == "cancelled"
            assert [item["status"] for item in body["items"]] == ["cancelled"] * 3

            rest = []
            async with asyncio.timeout(30):
                async for message in ws:
                    rest.append(json.loads(message.data)["job"])
            assert ws.close_code == 1000
            assert rest[-1]["id"] == pid and rest[-1]["status"] == "cancelled"

        events, code = await resumed
        assert code == 1000
        # Only newer states of the playlist (its seq sums its items' as stored; progress is stored now and
        # then), and its items' changes.
        assert all(j["seq"] > first_read["seq"] for j in events if j["id"] == pid)
        assert all(j["parent_id"] == pid for j in events if j["id"] != pid)
        assert events[-1]["id"] == pid and events[-1]["status"] == "cancelled"

        # The downloads themselves stopped: nobody else waits for them.
        for item in body["items"]:
            _, job = await api.services.jobs.get_request(item["id"])
            assert (await api.services.jobs.wait(job.id, timeout=15)).status == "cancelled"
        await wait_until(lambda: media_site.in_flight() == 0, timeout=15)


async def test_a_playlist_calls_back_once_all_its_items_have_ended(tmp_path: Path, media_site: Any) -> None:
    settings = web_settings(
        tmp_path, max_playlist_items=2, webhook_secret=SECRET, webhook_backoff_s=0.3, webhook_poll_s=0.1
    )
    async with receiver() as hook, web_api(settings) as api:
        status, playlist = await api.submit(media_site.url("/feed.xml?n=7"), callback_url=hook.url)
        assert status == 202, playlist

        async def delivered() -> bool:
            state = await get_webhook(api.services.sessions, playlist["id"])
            return state is not None and state.status == "delivered"

        await wait_until(delivered, timeout=30, interval=0.1)
        await asyncio.sleep(0.5)  # room for a wrong second call
        calls = hook.of(playlist["id"])
        assert len(calls) == 1 and verify(SECRET, calls[0].headers, calls[0].body)
        body = json.loads(calls[0].body)
        assert body["status"] == "done" and body["playlist"] == {"count": 2, "total": 7}
        assert [item["status"] for item in body["items"]] == ["done", "done"]
        assert all(item["file_url"] for item in body["items"])
        # Items are not called back on their own: the playlist's call carries them.
        assert len(hook.calls) == 1


async def test_a_file_in_parts_has_a_link_per_part(start_api: Any, media_site: Any) -> None:
    # The API has no size limit, so it never asks for parts; a chat front end does (here: the core, by hand).
    async with start_api() as api:
        status, job = await api.submit(media_site.url(f"/clip/{uuid.uuid4().hex}.mp4"))
        assert status == 202, job
        whole = await api.wait_status(job["id"], "done")
        assert whole["parts"] is None
        split = await api.services.jobs.fit(job["id"], whole["filesize"] // 2, split=True)
        assert (await api.services.jobs.wait(split.job.id, timeout=60)).status == "done"

        copy = await api.job(split.request.id)
        assert copy["status"] == "done" and copy["parent_id"] == job["id"] and len(copy["parts"]) >= 2
        for index, part in enumerate(copy["parts"], 1):
            assert part["index"] == index and part["size"] <= whole["filesize"] // 2
            async with api.http.get(part["file_url"]) as resp:
                assert resp.status == 200 and len(await resp.read()) == part["size"]
        # A copy made for a job is not listed beside it.
        status, listed, _ = await api.call("GET", "/api/v1/jobs")
        assert [j["id"] for j in listed["items"]] == [job["id"]]
