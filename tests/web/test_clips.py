"""Clips, chapter splits and sponsor removal through the API, end to end: the counter media on the local media
site (every frame says which it is, three chapters), files read back with ffprobe and FFmpeg."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.chaptered import CHAPTERS, FPS, frame_number
from tests.support.media import FFMPEG
from tests.support.services import wait_until
from tests.support.sponsorblock import FakeSponsorBlock
from tests.web.conftest import Api


def ffprobe_duration(path: Path) -> float:
    ffprobe = str(Path(FFMPEG).with_name("ffprobe"))
    out = subprocess.run(
        [ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    return float(json.loads(out.stdout)["format"]["duration"])


async def save(api: Api, url: str, dest: Path) -> Path:
    async with api.http.get(url) as resp:
        assert resp.status == 200
        dest.write_bytes(await resp.read())
    return dest


async def test_clip_of_a_stored_file_needs_no_download(api: Api, media_site: Any, tmp_path: Path) -> None:
    url = media_site.url("/counter.mp4")
    status, full = await api.submit(url)
    assert status == 202, full
    full = await api.wait_status(full["id"], "done", "failed")
    assert full["status"] == "done" and full["chapters"] == len(CHAPTERS), full
    hits = media_site.hits("/counter.mp4")

    status, clip = await api.submit(url, section={"start": "0:05", "end": 9})
    assert status == 202, clip
    clip = await api.wait_status(clip["id"], "done", "failed")
    assert clip["status"] == "done", clip
    assert clip["variant"] == "clip:5.000-9.000" and clip["duration"] == pytest.approx(4.0)
    assert clip["filename"] == "counter (5s-9s).mp4", clip["filename"]
    assert media_site.hits("/counter.mp4") == hits  # cut from the stored file: the site saw nothing
    path = await save(api, clip["file_url"], tmp_path / "clip.mp4")
    assert abs(await asyncio.to_thread(ffprobe_duration, path) - 4.0) <= 0.1
    assert await asyncio.to_thread(frame_number, path, 0) == 5 * FPS

    # The same clip again is the same job, from the cache.
    status, again = await api.submit(url, section={"start": 5, "end": "0:09"})
    assert (
        status == 200
        and again["variant"] == clip["variant"]
        and again["file_url"]
        and again["outcome"] == "cached"
    ), again

    # A start past the media's end: one sentence, before anything is queued.
    status, body = await api.submit(url, section={"start": "1:00"})
    assert status == 422 and body["error"]["code"] == "invalid_section", body
    assert body["error"]["message"] == "The clip starts at 1:00, but the media is only 0:16 long."


async def test_clip_without_a_stored_file_downloads_once_shared_with_the_full_ask(
    api: Api, media_site: Any, tmp_path: Path
) -> None:
    url = media_site.url("/counter.mp4") + "?clip=fresh"
    before = media_site.downloads("/counter.mp4")
    (s1, clip), (s2, full) = await asyncio.gather(
        api.submit(url, section={"start": "0:02.4", "end": "0:03.9"}), api.submit(url)
    )
    assert (s1, s2) == (202, 202), (clip, full)
    clip = await api.wait_status(clip["id"], "done", "failed", timeout=60)
    full = await api.wait_status(full["id"], "done", "failed")
    assert clip["status"] == "done" and full["status"] == "done", (clip, full)
    assert media_site.downloads("/counter.mp4") - before == 1
    path = await save(api, clip["file_url"], tmp_path / "clip.mp4")
    assert abs(await asyncio.to_thread(ffprobe_duration, path) - 1.5) <= 0.1
    # 2.4 s is not on a keyframe (every 2 s): the first frame is still the one asked for.
    assert await asyncio.to_thread(frame_number, path, 0) == round(2.4 * FPS)


async def test_bad_sections_are_one_sentence_each(start_api: Any, media_site: Any) -> None:
    async with start_api(max_duration_s=5) as api:
        url = media_site.url("/counter.mp4")
        status, body = await api.submit(url, section={"start": "1:45", "end": "1:20"})
        assert status == 422 and body["error"] == {
            "code": "invalid_section",
            "message": "The clip must end after it starts: 1:20 is not after 1:45.",
        }
        status, body = await api.submit(url, section={"start": 0, "end": 10})
        assert status == 422 and body["error"] == {
            "code": "too_long",
            "message": "The clip is 10 s long; the limit is 5 s.",
        }
        status, body = await api.submit(url, section={"start": "1:75"})
        assert status == 422 and body["error"]["code"] == "invalid_section", body
        status, body = await api.submit(url, section={"from": 1})
        assert status == 400 and body["error"]["code"] == "invalid_request", body


async def test_clip_of_media_over_the_duration_limit_downloads_only_its_range(
    start_api: Any, media_site: Any, tmp_path: Path
) -> None:
    # The page states 16 s; the limit is 10 s: the whole media is refused before any download, the clip's
    # 4 s are within the limit, so only they are fetched (yt-dlp's download ranges).
    async with start_api(max_duration_s=10) as api:
        page = media_site.url("/counter.html")
        status, full = await api.submit(page)
        assert status == 202, full
        full = await api.wait_status(full["id"], "done", "failed", timeout=60)
        assert full["status"] == "failed" and full["error"]["code"] == "too_long", full
        status, clip = await api.submit(page, section={"start": "0:05.2", "end": "0:09.2"})
        assert status == 202, clip
        clip = await api.wait_status(clip["id"], "done", "failed", timeout=90)
        assert clip["status"] == "done", clip
        assert clip["duration"] == pytest.approx(4.0, abs=0.1), clip
        path = await save(api, clip["file_url"], tmp_path / "range.mp4")
        assert abs(await asyncio.to_thread(ffprobe_duration, path) - 4.0) <= 0.1
        # 5.2 s is not on a keyframe (every 2 s): the range's first frame is still the one asked for.
        assert await asyncio.to_thread(frame_number, path, 0) == round(5.2 * FPS)

        # Bad input keeps its sentences: longer than the limit, past the end, end before start.
        status, body = await api.submit(page, section={"start": 0, "end": 12})
        assert status == 422 and body["error"]["message"] == "The clip is 12 s long; the limit is 10 s.", body
        status, past = await api.submit(page, section={"start": "0:20", "end": "0:22"})
        assert status == 202, past
        past = await api.wait_status(past["id"], "done", "failed", timeout=60)
        assert past["error"] == {
            "code": "invalid_section",
            "message": "The clip starts at 0:20, but the media is only 0:16 long.",
        }, past
        status, body = await api.submit(page, section={"start": 9, "end": 5})
        assert status == 422 and body["error"]["code"] == "invalid_section", body


@pytest.mark.both_databases
async def test_split_by_chapters_is_a_group_of_chapter_items(
    api: Api, media_site: Any, tmp_path: Path
) -> None:
    url = media_site.url("/counter.mp4") + "?split=group"
    before = media_site.downloads("/counter.mp4")
    status, job = await api.submit(url, split_chapters=True)
    assert status == 202, job
    job = await api.wait_status(job["id"], "done", "failed", timeout=90)
    assert job["status"] == "done", job
    status, metrics, _ = await api.call("GET", "/metrics")
    assert 'mediabot_cuts_total{kind="split"} 1.0' in metrics.decode()
    # Listed like a playlist: one item per chapter, numbered and titled, each a file of its own.
    assert job["chapters"] == 3 and job["playlist"]["count"] == 3, job
    items = job["items"]
    assert [i["title"] for i in items] == ["1/3 · Opening", "2/3 · Middle part", "3/3 · Credits"]
    assert [i["variant"] for i in items] == [
        "chapter:1:0.000-4.000", "chapter:2:4.000-12.000", "chapter:3:12.000-16.000",
    ]  # fmt: skip
    assert all(i["status"] == "done" and i["file_url"] for i in items), items
    middle = await save(api, items[1]["file_url"], tmp_path / "middle.mp4")
    assert abs(await asyncio.to_thread(ffprobe_duration, middle) - 8.0) <= 0.1
    assert await asyncio.to_thread(frame_number, middle, 0) == 4 * FPS
    # All three cut from one download of the source.
    assert media_site.downloads("/counter.mp4") - before == 1

    # The same split again: the same items, from the cache.
    status, again = await api.submit(url, split_chapters=True)
    assert status == 200 and again["outcome"] == "cached", again
    again = await api.wait_status(again["id"], "done", "failed")
    assert [i["file_url"] is not None for i in again["items"]] == [True] * 3
    assert media_site.downloads("/counter.mp4") - before == 1


async def test_cancelling_a_split_cancels_every_chapter(start_api: Any, media_site: Any) -> None:
    # One download at a time: a gated download holds the worker while the split's chapters wait behind it.
    async with start_api(worker_concurrency=1) as api:
        url = media_site.url("/counter.mp4") + "?split=cancel"
        status, full = await api.submit(url)
        full = await api.wait_status(full["id"], "done", "failed", timeout=60)
        assert full["status"] == "done", full
        first, second = media_site.gated_url(), media_site.gated_url()
        status, hold = await api.submit(first)
        assert status == 202, hold
        await api.wait_status(hold["id"], "running")
        status, split = await api.submit(url, split_chapters=True)
        assert status == 202, split
        status, behind = await api.submit(second)
        assert status == 202, behind
        media_site.open_gate(first)  # the split runs, lists its chapters; they wait behind `second`

        async def listed() -> dict[str, Any] | None:
            body = await api.job(split["id"])
            return body if len(body.get("items") or []) == 3 else None

        listed_split = await wait_until(listed, timeout=60)
        assert all(i["status"] == "queued" for i in listed_split["items"]), listed_split["items"]
        status, body, _ = await api.call("DELETE", f"/api/v1/jobs/{split['id']}")
        assert status == 200 and body["status"] == "cancelled", body
        media_site.open_gate(second)
        await api.wait_status(behind["id"], "done", "failed", timeout=60)
        children = await api.services.jobs.children(split["id"])
        assert [(r.status, j.status) for r, j in children] == [("cancelled", "cancelled")] * 3
        assert all(j.stored is None for _, j in children)


async def test_sponsor_segments_removed_and_told(start_api: Any, media_site: Any, tmp_path: Path) -> None:
    async with FakeSponsorBlock() as sb:
        sb.add("Generic", "counter", [(6.0, 8.0, "sponsor"), (10.0, 11.0, "sponsor")], video_duration=16.0)
        async with start_api(sponsorblock_url=sb.url) as api:
            url = media_site.url("/counter.mp4")
            status, job = await api.submit(url, sponsorblock="remove")
            assert status == 202, job
            job = await api.wait_status(job["id"], "done", "failed", timeout=60)
            assert job["status"] == "done", job
            assert job["note"] == "2 sponsor segments removed, 3 s saved"
            path = await save(api, job["file_url"], tmp_path / "nosponsor.mp4")
            assert abs(await asyncio.to_thread(ffprobe_duration, path) - 13.0) <= 0.3
            assert [q.video_id for q in sb.queries] == ["counter"]
        await sb.stop()
        async with start_api(sponsorblock_url=sb.url) as api:
            # SponsorBlock away: the file as it is, and a note saying so.
            status, job = await api.submit(url, sponsorblock="remove")
            job = await api.wait_status(job["id"], "done", "failed", timeout=60)
            assert (
                job["status"] == "done"
                and job["note"] == "SponsorBlock did not answer, so no segments were removed."
            )


@pytest.mark.both_databases
async def test_cancelling_a_clip_cancels_its_full_download_unless_someone_else_waits(
    api: Api, media_site: Any
) -> None:
    jobs = api.services.jobs
    # Alone: the clip's full download (held at the gate) stops with the clip.
    url = media_site.gated_url()
    status, clip = await api.submit(url, section={"start": 1, "end": 2})
    assert status == 202, clip
    _, clip_job = await jobs.get_request(clip["id"])
    assert clip_job.source_job_id is not None
    full_id = clip_job.source_job_id
    await wait_until(lambda: _status(jobs, full_id, "running"), timeout=30)
    status, body, _ = await api.call("DELETE", f"/api/v1/jobs/{clip['id']}")
    assert status == 200 and body["status"] == "cancelled", body
    await wait_until(lambda: _status(jobs, full_id, "cancelled"), timeout=30)

    # Someone else asked for the whole media: it goes on when the clip is cancelled...
    url = media_site.gated_url()
    status, full = await api.submit(url)
    status, clip = await api.submit(url, section={"start": 1, "end": 2})
    assert status == 202 and clip["outcome"] == "queued", clip
    await api.wait_status(full["id"], "running")
    status, body, _ = await api.call("DELETE", f"/api/v1/jobs/{clip['id']}")
    assert status == 200 and body["status"] == "cancelled", body
    # ...and a clip waiting on it keeps it when the whole-media ask is cancelled.
    status, other = await api.submit(url, section={"start": 0, "end": 1})
    assert status == 202, other
    status, body, _ = await api.call("DELETE", f"/api/v1/jobs/{full['id']}")
    assert status == 200 and body["status"] == "cancelled", body
    _, full_job = await jobs.get_request(full["id"])
    assert full_job.status == "running", full_job
    media_site.open_gate(url)
    other = await api.wait_status(other["id"], "done", "failed", timeout=60)
    assert other["status"] == "done", other


async def _status(jobs: Any, job_id: str, wanted: str) -> bool:
    return (await jobs.get_job(job_id)).status == wanted
