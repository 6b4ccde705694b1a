"""The job service end to end on the embedded stack (in-process queue and bus, local storage), on SQLite
and on PostgreSQL, against the local media site."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from core.bootstrap import Services
from core.errors import InvalidUrl, NotFound, PrivateAddress, UnsupportedUrl
from core.jobs.choices import SubmitRequest
from core.jobs.views import JobView
from tests.support.media import ffprobe
from tests.support.services import make_settings, running_services, wait_until


def ask(url: str, kind: str = "video", quality: str = "best", user: str = "alice") -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id=user, kind=kind, quality=quality)  # type: ignore[arg-type]


def unique_clip() -> str:
    return f"/clip/{uuid.uuid4().hex[:12]}.mp4"


async def stored_path(services: Services, job: JobView) -> Path:
    path = await services.jobs.local_path(job.id)
    assert path is not None and path.exists()
    return path


async def test_video_download_end_to_end(embedded: Services, media_site, media_files) -> None:
    clip = unique_clip()
    submission = await embedded.jobs.submit(ask(media_site.url(clip)))
    assert submission.outcome == "queued"
    seqs = []
    async for view in embedded.jobs.watch(submission.job.id):
        seqs.append(view.seq)
        final = view
    assert final.status == "done", final.error
    assert seqs == sorted(set(seqs)), "events arrive in increasing seq order, without duplicates"
    path = await stored_path(embedded, final)
    assert path.read_bytes() == media_files.video_mp4.read_bytes()
    probe = ffprobe(path)
    assert {s["codec_type"] for s in probe["streams"]} == {"video", "audio"}
    assert final.width == 320 and final.height == 240 and final.duration and final.duration > 2
    assert final.filename and final.filename.endswith(".mp4")
    request, job = await embedded.jobs.get_request(submission.request.id)
    assert request.status == "done" and job.status == "done"
    assert media_site.downloads(clip) == 1


async def test_audio_extraction(embedded: Services, media_site) -> None:
    clip = unique_clip()
    submission = await embedded.jobs.submit(ask(media_site.url(clip), kind="audio"))
    final = await embedded.jobs.wait(submission.job.id, timeout=60)
    assert final.status == "done", final.error
    path = await stored_path(embedded, final)
    assert path.suffix == ".m4a"
    streams = ffprobe(path)["streams"]
    assert [s["codec_type"] for s in streams] == ["audio"]


@pytest.mark.parametrize("page", ["/page.html", "/hls/index.m3u8"])
async def test_pages_and_playlists(tmp_path: Path, media_site, page: str) -> None:
    settings = make_settings(tmp_path)
    async with running_services(settings) as services:
        submission = await services.jobs.submit(ask(media_site.url(page)))
        final = await services.jobs.wait(submission.job.id, timeout=60)
        assert final.status == "done", final.error
        probe = ffprobe(await stored_path(services, final))
        assert any(s["codec_type"] == "video" for s in probe["streams"])


@pytest.mark.both_databases
async def test_cache_hit_makes_no_new_download(embedded: Services, media_site) -> None:
    clip = unique_clip()
    first = await embedded.jobs.submit(ask(media_site.url(clip)))
    await embedded.jobs.wait(first.job.id, timeout=60)
    assert media_site.downloads(clip) == 1
    hits_before = media_site.hits(clip)
    # Same media, written differently: tracking parameters and a fragment do not make it new.
    started = time.perf_counter()
    again = await embedded.jobs.submit(ask(media_site.url(clip) + "?utm_source=x#t=3", user="bob"))
    elapsed = time.perf_counter() - started
    assert again.outcome == "cached"
    assert again.job.id == first.job.id and again.job.status == "done"
    assert again.request.status == "done"
    assert media_site.hits(clip) == hits_before
    assert elapsed < 5  # generous: the figure itself is measured in bench/
    other_variant = await embedded.jobs.submit(ask(media_site.url(clip), kind="audio"))
    assert other_variant.outcome == "queued"
    await embedded.jobs.wait(other_variant.job.id, timeout=60)


@pytest.mark.both_databases
async def test_fifty_identical_requests_make_one_download(embedded: Services, media_site) -> None:
    clip = unique_clip()
    url = media_site.url(clip)
    submissions = await asyncio.gather(*(embedded.jobs.submit(ask(url, user=f"user{i}")) for i in range(50)))
    job_ids = {s.job.id for s in submissions}
    assert len(job_ids) == 1
    assert sorted(s.outcome for s in submissions).count("queued") == 1
    finals = await asyncio.gather(*(embedded.jobs.wait(s.job.id, timeout=60) for s in submissions))
    assert {f.status for f in finals} == {"done"}
    assert media_site.downloads(clip) == 1
    for s in submissions[:5]:
        request, _ = await embedded.jobs.get_request(s.request.id)
        assert request.status == "done"


# Asserts a duration: in the serial group with the drills (tests/support/groups.py).
@pytest.mark.xdist_group("serial")
async def test_cancel_stops_the_download_quickly_and_cleans_up(embedded: Services, media_site) -> None:
    url = media_site.url(f"/slow.mp4?rate=300000&n={uuid.uuid4().hex}")
    submission = await embedded.jobs.submit(ask(url))
    async for view in embedded.jobs.watch(submission.job.id):
        if view.status == "running" and (view.progress.downloaded_bytes or 0) > 100_000:
            break
    started = time.monotonic()
    await embedded.jobs.cancel(submission.request.id)
    final = await embedded.jobs.wait(submission.job.id, timeout=10)
    assert final.status == "cancelled"
    assert time.monotonic() - started < 2.0
    assert final.error and final.error.code == "cancelled"
    tmp = embedded.settings.tmp_dir
    await wait_until(lambda: not any(p.is_file() for p in tmp.rglob("*")), timeout=5)
    assert not any(p.is_file() for p in embedded.settings.files_dir.rglob("*") if "_probe" not in str(p))


@pytest.mark.both_databases
async def test_cancel_by_one_requester_keeps_the_shared_download(embedded: Services, media_site) -> None:
    url = media_site.url(f"/slow.mp4?rate=2000000&n={uuid.uuid4().hex}")
    first = await embedded.jobs.submit(ask(url, user="a"))
    second = await embedded.jobs.submit(ask(url, user="b"))
    assert second.outcome == "coalesced" and second.job.id == first.job.id
    await embedded.jobs.cancel(first.request.id)
    request, job = await embedded.jobs.get_request(first.request.id)
    assert request.status == "cancelled"
    assert job.status in ("queued", "running")
    await embedded.jobs.cancel(second.request.id)
    final = await embedded.jobs.wait(first.job.id, timeout=10)
    assert final.status == "cancelled"
    # A new request after the cancel starts a fresh download instead of joining the cancelled one.
    third = await embedded.jobs.submit(ask(url, user="c"))
    assert third.outcome == "queued" and third.job.id != first.job.id
    await embedded.jobs.cancel(third.request.id)


async def test_oversize_is_refused_with_sizes_in_words(tmp_path: Path, media_site) -> None:
    settings = make_settings(tmp_path, max_filesize_mb=1)
    async with running_services(settings) as services:
        submission = await services.jobs.submit(ask(media_site.url(f"/big.mp4?n={uuid.uuid4().hex}")))
        final = await services.jobs.wait(submission.job.id, timeout=30)
        assert final.status == "failed"
        assert final.error and final.error.code == "too_large"
        assert "the limit is 1 MB" in final.error.message and "MB" in final.error.message
        assert not any(p.is_file() for p in settings.files_dir.rglob("*"))


async def test_too_long_media_is_refused(tmp_path: Path, media_site) -> None:
    settings = make_settings(tmp_path, max_duration_s=1)
    async with running_services(settings) as services:
        submission = await services.jobs.submit(ask(media_site.url("/hls/index.m3u8")))
        final = await services.jobs.wait(submission.job.id, timeout=30)
        assert final.status == "failed" and final.error and final.error.code == "too_long"
        assert "the limit is 1 s" in final.error.message


async def test_private_addresses_refused_at_submit_and_after_redirects(tmp_path: Path, media_site) -> None:
    port = media_site.port
    # The operator allows its own media host (127.0.0.1:port, also reached as localhost:port) and nothing else
    # private; 0.0.0.0 reaches the same server on Linux, but is not an address the operator allowed.
    settings = make_settings(tmp_path, allow_private_urls=False, allowed_private_hosts=[f"127.0.0.1:{port}"])
    async with running_services(settings) as services:
        with pytest.raises(PrivateAddress):
            await services.jobs.submit(ask(f"http://0.0.0.0:{port}/video.mp4"))
        allowed = await services.jobs.submit(ask(media_site.url(unique_clip())))
        assert (await services.jobs.wait(allowed.job.id, timeout=30)).status == "done"
        # Allowed host, redirecting to a private one: refused when yt-dlp opens the connection.
        target = f"http://0.0.0.0:{port}/clip/{uuid.uuid4().hex}.mp4"
        redirect = media_site.url(f"/redirect?to={target}")
        submission = await services.jobs.submit(ask(redirect))
        final = await services.jobs.wait(submission.job.id, timeout=30)
        assert final.status == "failed"
        assert final.error and final.error.code == "private_address"
        assert media_site.hits(target.split(str(port), 1)[1]) == 0


async def test_unsupported_and_missing_pages(embedded: Services, media_site) -> None:
    unsupported = await embedded.jobs.submit(ask(media_site.url("/nomedia.html")))
    missing = await embedded.jobs.submit(ask(media_site.url("/missing.mp4")))
    final = await embedded.jobs.wait(unsupported.job.id, timeout=30)
    assert final.status == "failed" and final.error and final.error.code == "unsupported_url"
    # The site is fine; its page simply holds no media (a site refused by the operator says "not supported").
    assert final.error.message == "That page has no video or sound we can find."
    final = await embedded.jobs.wait(missing.job.id, timeout=30)
    assert final.status == "failed" and final.error and final.error.code == "download_failed"
    assert "404" in final.error.message and "/" not in final.error.message.replace("404 Not Found", "")
    # A failed job does not poison the cache: asking again tries again.
    retry = await embedded.jobs.submit(ask(media_site.url("/missing.mp4")))
    assert retry.outcome == "queued"
    await embedded.jobs.wait(retry.job.id, timeout=30)


async def test_malformed_and_unsupported_links_refused_before_queueing(tmp_path: Path, media_site) -> None:
    settings = make_settings(tmp_path, allowed_extractors=["youtube"])
    async with running_services(settings) as services:
        with pytest.raises(InvalidUrl):
            await services.jobs.submit(ask("not a link"))
        with pytest.raises(UnsupportedUrl):
            await services.jobs.submit(ask(media_site.url("/video.mp4")))
        assert await services.jobs.counts() == {}


async def test_retention_deletes_files_and_cache_entries(tmp_path: Path, media_site) -> None:
    # Files expire after about a second; the worker's periodic task sweeps every second.
    settings = make_settings(tmp_path, retention_hours=0.0003, retention_interval_s=0.5)
    async with running_services(settings) as services:
        clip = unique_clip()
        first = await services.jobs.submit(ask(media_site.url(clip)))
        done = await services.jobs.wait(first.job.id, timeout=30)
        path = await stored_path(services, done)
        await wait_until(lambda: not path.exists(), timeout=15)
        with pytest.raises(NotFound):
            await services.jobs.link(done.id)
        again = await services.jobs.submit(ask(media_site.url(clip)))
        assert again.outcome == "queued" and again.job.id != first.job.id
        await services.jobs.wait(again.job.id, timeout=30)
        assert media_site.downloads(clip) == 2


async def test_s3_storage_and_presigned_link(tmp_path: Path, media_site, media_files, moto_s3) -> None:
    import aiohttp
    import yarl

    settings = make_settings(
        tmp_path, s3_bucket=moto_s3.new_bucket(), s3_endpoint_url=moto_s3.endpoint_url, s3_prefix="media"
    )
    async with running_services(settings) as services:
        assert services.storage.name == "s3"
        submission = await services.jobs.submit(ask(media_site.url(unique_clip())))
        final = await services.jobs.wait(submission.job.id, timeout=60)
        assert final.status == "done", final.error
        link = await services.jobs.link(final.id)
        assert link.startswith(moto_s3.endpoint_url)
        async with aiohttp.ClientSession() as http, http.get(yarl.URL(link, encoded=True)) as resp:
            assert resp.status == 200
            body = await resp.read()
            assert "attachment" in resp.headers.get("Content-Disposition", "")
        assert body == media_files.video_mp4.read_bytes()
        assert not any(p.is_file() for p in settings.tmp_dir.rglob("*"))


async def test_embedded_restart_hands_running_jobs_back_and_resumes_them(tmp_path: Path, media_site) -> None:
    # The stale-queue sweep waits an hour here: only the start-up itself can resume the job.
    settings = make_settings(tmp_path, shutdown_grace_s=0, stale_queued_s=3600)
    url = media_site.gated_url()  # held until the first run has stopped
    async with running_services(settings) as services:
        submission = await services.jobs.submit(ask(url))
        async for view in services.jobs.watch(submission.job.id):
            if view.status == "running" and (view.progress.downloaded_bytes or 0) > 100_000:
                break
    # Stopped mid-download: the job went back to the queue, its attempt not counted.
    media_site.open_gate(url)
    async with running_services(settings) as services:
        final = await services.jobs.wait(submission.job.id, timeout=60)
        assert final.status == "done", final.error
        assert final.attempts == 1
        request, _ = await services.jobs.get_request(submission.request.id)
        assert request.status == "done"


# Asserts a duration: in the serial group with the drills (tests/support/groups.py).
@pytest.mark.xdist_group("serial")
async def test_cancel_reaches_a_stalled_download_at_once(tmp_path: Path, media_site) -> None:
    # The site sends 256 KB and then nothing: no progress hook runs, yet the cancel must not wait for
    # yt-dlp's 20 s socket timeout.
    async with running_services(make_settings(tmp_path)) as services:
        sub = await services.jobs.submit(ask(media_site.url(f"/stall.mp4?t={uuid.uuid4().hex[:8]}")))
        async for view in services.jobs.watch(sub.job.id):
            if view.status == "running" and view.progress.downloaded_bytes:
                break
        await asyncio.sleep(1.0)  # stalled in recv() by now
        started = time.monotonic()
        await services.jobs.cancel(sub.request.id)
        final = await services.jobs.wait(sub.job.id, timeout=30)
        assert final.status == "cancelled"
        assert time.monotonic() - started < 3, "the cancel shut the connection under yt-dlp"
