"""Copies that fit a size limit, made by the worker: a smaller format chosen before downloading, a two-pass
re-encode, parts; and the planner's order and fallbacks. On SQLite and PostgreSQL, against the media site."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.bootstrap import Services
from core.delivery.planner import DeliveryPlanner, Destination, Refused, fit_note
from core.jobs.choices import SubmitRequest
from core.jobs.views import JobView, variant_limit
from core.media.fitting import choose_fitting_format
from tests.support.media import ffprobe
from tests.support.services import make_settings, running_services, wait_until

MIB = 1024 * 1024


def ask(url: str, kind: str = "video", quality: str = "best") -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id="fitter", kind=kind, quality=quality)  # type: ignore[arg-type]


def unique_clip() -> str:
    return f"/clip/{uuid.uuid4().hex[:12]}.mp4"


# -- choosing a format from what the site states ------------------------------------------------------------


def fmt(
    fid: str, size: int | None, height: int | None = None, v: str = "avc1", a: str = "mp4a", **kw: Any
) -> dict[str, Any]:
    return {
        "format_id": fid,
        "filesize": size,
        "height": height,
        "vcodec": v,
        "acodec": a,
        "ext": "mp4",
        **kw,
    }


def test_the_best_combined_format_that_fits_is_chosen() -> None:
    info = {"formats": [fmt("240", 2 * MIB, 240), fmt("480", 8 * MIB, 480), fmt("720", 30 * MIB, 720)]}
    assert choose_fitting_format(info, "video", "best", 10 * MIB) == ("480", 480)
    assert choose_fitting_format(info, "video", "best", 3 * MIB) == ("240", 240)
    assert choose_fitting_format(info, "video", "best", 1 * MIB) is None


def test_quality_cap_is_kept_and_unknown_sizes_are_never_guessed() -> None:
    info = {"formats": [fmt("240", 2 * MIB, 240), fmt("480", None, 480), fmt("720", 5 * MIB, 720)]}
    assert choose_fitting_format(info, "video", "best", 10 * MIB) == ("720", 720)
    assert choose_fitting_format(info, "video", "480", 10 * MIB) == ("240", 240)
    assert choose_fitting_format({"formats": [fmt("x", None, 720)]}, "video", "best", 10 * MIB) is None


def test_video_only_formats_are_paired_with_audio_that_fits_beside_them() -> None:
    info = {
        "formats": [
            fmt("a-big", 3 * MIB, v="none", abr=160, ext="m4a"),
            fmt("a-small", 1 * MIB, v="none", abr=64, ext="m4a"),
            fmt("v360", 4 * MIB, 360, a="none"),
            fmt("v720", 8 * MIB, 720, a="none"),
        ]
    }
    assert choose_fitting_format(info, "video", "best", 10 * MIB) == ("v720+a-small", 720)
    assert choose_fitting_format(info, "video", "best", 8 * MIB) == ("v360+a-big", 360)
    assert choose_fitting_format(info, "audio", "best", 2 * MIB) == ("a-small", None)


def test_variant_names_and_lowered_limits() -> None:
    assert variant_limit("fit:1000") == (1000, False)
    assert variant_limit("fit:1000:split") == (1000, True)
    with pytest.raises(ValueError):
        variant_limit("nope")
    discord = Destination("Discord", 25 * MIB, tiers=(10 * MIB, 50 * MIB, 100 * MIB, 500 * MIB))
    assert discord.lowered(20 * MIB).limit == 10 * MIB  # refused under the stated limit: the next tier down
    assert discord.lowered(8 * MIB).limit == 6 * MIB  # under every tier: three quarters of what was refused
    assert Destination("Telegram", 50_000_000).lowered(40_000_000).limit == 30_000_000


# -- end to end on the embedded stack ----------------------------------------------------------------------


async def done(services: Services, url: str, **kw: Any) -> tuple[str, JobView]:
    sub = await services.jobs.submit(ask(url, **kw))
    final = await services.jobs.wait(sub.job.id, timeout=60)
    assert final.status == "done", final.error
    return sub.request.id, final


async def fitted(services: Services, request_id: str, limit: int, split: bool = False) -> JobView:
    sub = await services.jobs.fit(request_id, limit, split=split)
    return await services.jobs.wait(sub.job.id, timeout=120)


async def test_a_smaller_format_is_chosen_before_downloading_and_cached(
    embedded: Services, media_site
) -> None:
    request_id, full = await done(embedded, media_site.url("/qualities.html"))
    assert full.height == 360 and full.filesize and full.filesize > 30_000_000
    media_site.reset_counts()
    copy = await fitted(embedded, request_id, 1_000_000)
    assert copy.status == "done", copy.error
    assert copy.fit_method == "smaller_format" and copy.height == 240
    assert copy.filesize and copy.filesize <= 1_000_000
    assert copy.variant == "fit:1000000" and copy.source_job_id == full.id
    assert media_site.downloads("/big.mp4") == 0, "the big format is not fetched again to make the copy"
    assert media_site.downloads("/video.mp4") == 1
    path = await embedded.jobs.local_path(copy.id)
    assert path is not None and ffprobe(path)["streams"]
    # The next person asking for the same media at the same limit gets the same copy at once.
    other_request, again = await done(embedded, media_site.url("/qualities.html"))
    sub = await embedded.jobs.fit(other_request, 1_000_000)
    assert sub.outcome == "cached" and sub.job.id == copy.id
    assert media_site.downloads("/video.mp4") == 1


async def test_nothing_fits_without_reencode_or_split(embedded: Services, media_site) -> None:
    request_id, full = await done(embedded, media_site.url(unique_clip()))
    copy = await fitted(embedded, request_id, (full.filesize or 0) // 2)
    assert copy.status == "failed" and copy.error and copy.error.code == "wont_fit"
    assert "\n" not in copy.error.message and "/" not in copy.error.message.replace("/s", "")
    request, _ = await embedded.jobs.get_request(request_id)
    assert request.status == "done", "a failed copy leaves the original request as it was"


async def test_two_pass_reencode_fits_the_limit(tmp_path: Path, database_url: str, media_site) -> None:
    settings = make_settings(tmp_path, database_url=database_url, reencode_to_fit=True)
    async with running_services(settings) as services:
        request_id, full = await done(services, media_site.url(unique_clip()))
        limit = (full.filesize or 0) // 2
        copy = await fitted(services, request_id, limit)
        assert copy.status == "done", copy.error
        assert copy.fit_method == "reencode" and copy.filesize and copy.filesize <= limit
        path = await services.jobs.local_path(copy.id)
        assert path is not None
        probe = ffprobe(path)
        assert {s["codec_type"] for s in probe["streams"]} == {"video", "audio"}
        assert abs(float(probe["format"]["duration"]) - (full.duration or 0)) < 0.5
        # Audio re-encodes too (to AAC at the bitrate the limit allows).
        audio_request, audio = await done(services, media_site.url("/audio.m4a"), kind="audio")
        small = await fitted(services, audio_request, (audio.filesize or 0) // 2)
        assert small.status == "done", small.error
        assert small.filesize and small.filesize <= (audio.filesize or 0) // 2


async def test_split_into_parts_that_each_fit(tmp_path: Path, database_url: str, media_site) -> None:
    settings = make_settings(tmp_path, database_url=database_url)
    async with running_services(settings) as services:
        request_id, full = await done(services, media_site.url(unique_clip()))
        limit = (full.filesize or 0) // 2
        copy = await fitted(services, request_id, limit, split=True)
        assert copy.status == "done", copy.error
        assert copy.fit_method == "split" and copy.parts and len(copy.parts) >= 2
        total = 0.0
        for part in copy.parts:
            assert part.size <= limit
            assert f"part {part.index} of {len(copy.parts)}" in part.filename
            path = await services.jobs.local_path(copy.id, part=part.index)
            assert path is not None and path.stat().st_size == part.size
            total += float(ffprobe(path)["format"]["duration"])
            assert (await services.jobs.link(copy.id, part=part.index)).startswith("http")
        assert abs(total - (full.duration or 0)) < 0.5, "the parts together are the whole media"
        assert Destination("Telegram", limit, split=True).fits(copy)
        assert fit_note(copy, Destination("Telegram", limit)).startswith(f"Sent in {len(copy.parts)} parts")


# Asserts a duration: in the serial group with the drills (tests/support/groups.py).
@pytest.mark.xdist_group("serial")
async def test_cancel_stops_a_reencode_at_once(tmp_path: Path, media_site) -> None:
    settings = make_settings(tmp_path, reencode_to_fit=True, fit_smaller_format=False)
    async with running_services(settings) as services:
        request_id, full = await done(services, media_site.url("/big.mp4"))
        sub = await services.jobs.fit(request_id, 3_000_000)
        async for view in services.jobs.watch(sub.job.id):
            if view.status == "running" and view.progress.downloaded_bytes:
                break  # ffmpeg is encoding
        started = time.monotonic()
        await services.jobs.cancel(request_id)  # the parent: its copy goes with it
        final = await services.jobs.wait(sub.job.id, timeout=15)
        assert final.status == "cancelled"
        assert time.monotonic() - started < 5
        child, _ = await services.jobs.get_request(sub.request.id)
        assert child.status == "cancelled"
        await asyncio.sleep(0.5)
        assert not any((settings.tmp_dir).rglob("*.mp4")), "the partial encode is removed"


async def test_planner_falls_back_from_a_refused_upload_to_a_copy_then_a_link(
    embedded: Services, media_site
) -> None:
    request_id, full = await done(embedded, media_site.url("/qualities.html"))
    request, _ = await embedded.jobs.get_request(request_id)
    sent: list[tuple[str, str | None]] = []
    shown: list[JobView] = []
    links: list[str] = []

    async def upload(view: JobView, note: str | None) -> None:
        if view.id == full.id:
            raise Refused(view.filesize or 0)  # the platform said 413 although the stated limit allowed it
        sent.append((view.id, note))

    async def show(view: JobView) -> None:
        shown.append(view)

    async def link(view: JobView, note: str) -> None:
        links.append(note)

    planner = DeliveryPlanner(embedded.jobs)
    dest = Destination("Discord", 100 * MIB, tiers=(10 * MIB, 50 * MIB, 100 * MIB))
    planned = await planner.deliver(request, full, dest, upload=upload, show=show, link=link)
    assert planned.outcome == "fitted" and planned.sent is not None
    assert planned.sent.height == 240 and sent == [(planned.sent.id, planned.note)]
    assert planned.note == "Sent at 240p to fit Discord's 10 MB limit."
    assert not links

    async def refuse_all(view: JobView, note: str | None) -> None:
        raise Refused(view.filesize or 0)

    planned = await planner.deliver(request, full, dest, upload=refuse_all, show=show, link=link)
    assert planned.outcome == "link" and links and "no smaller copy fits" in links[-1]


async def test_retention_removes_every_part_and_playlists_are_listed_afresh(
    tmp_path: Path, media_site
) -> None:
    # Files expire after about a second; the worker's periodic task sweeps every half second.
    settings = make_settings(tmp_path, retention_hours=0.0003, retention_interval_s=0.5, max_playlist_items=2)
    async with running_services(settings) as services:
        request_id, full = await done(services, media_site.url(unique_clip()))
        copy = await fitted(services, request_id, (full.filesize or 0) // 2, split=True)
        assert copy.status == "done" and copy.parts, copy.error
        paths = [await services.jobs.local_path(copy.id, part=p.index) for p in copy.parts]
        assert all(p is not None and p.exists() for p in paths)
        tag = uuid.uuid4().hex[:6]
        first = await services.jobs.submit(ask(media_site.url(f"/feed.xml?n=5&t={tag}")))
        await services.jobs.wait(first.job.id, timeout=30)
        await asyncio.sleep(1.5)

        async def swept() -> bool:
            return not any(p is not None and p.exists() for p in paths)

        await wait_until(swept, timeout=15)

        # The listing expired after the parts did, so the sweep that lets it be read again may come a round
        # later under load: ask until it does (each earlier ask is answered from the cached listing).
        async def listed_again() -> Any:
            again = await services.jobs.submit(ask(media_site.url(f"/feed.xml?n=5&t={tag}")))
            return again if again.outcome == "queued" else None

        again = await wait_until(listed_again, timeout=15, interval=0.5)
        assert again.job.id != first.job.id, "an expired listing is read again"


def test_a_guessed_limit_is_not_named_in_the_note() -> None:
    telegram = Destination("Telegram", 2_000_000_000, tiers=(50_000_000,))
    assert telegram.lowered(80_000_000).refused is None  # 50 MB is a limit Telegram really has
    guessed = telegram.lowered(30_700_000)
    assert guessed.limit == 23_025_000 and guessed.refused == 30_700_000
    copy = JobView.model_validate(
        {"id": "c", "seq": 1, "url": "u", "kind": "video", "quality": "best", "status": "done", "progress": {},
         "height": 240, "fit_method": "smaller_format", "created_at": "2026-11-29T00:00:00Z",
         "updated_at": "2026-11-29T00:00:00Z"}
    )  # fmt: skip
    assert fit_note(copy, guessed) == "Sent at 240p: Telegram refused the 30.7 MB file."
    assert fit_note(copy, telegram.lowered(80_000_000)) == "Sent at 240p to fit Telegram's 50 MB limit."


async def test_a_copy_is_made_from_a_file_kept_in_s3(tmp_path: Path, media_site, moto_s3) -> None:
    import aiohttp
    import yarl

    settings = make_settings(tmp_path, s3_bucket=moto_s3.new_bucket(), s3_endpoint_url=moto_s3.endpoint_url)
    async with running_services(settings) as services:
        assert services.storage.name == "s3"
        request_id, full = await done(services, media_site.url(unique_clip()))
        limit = (full.filesize or 0) // 2
        copy = await fitted(services, request_id, limit, split=True)
        assert copy.status == "done" and copy.parts and len(copy.parts) >= 2, copy.error
        async with aiohttp.ClientSession() as http:
            for part in copy.parts:
                link = await services.jobs.link(copy.id, part=part.index)
                assert link.startswith(moto_s3.endpoint_url)
                async with http.get(yarl.URL(link, encoded=True)) as resp:
                    assert resp.status == 200 and len(await resp.read()) == part.size <= limit
        assert not any(settings.tmp_dir.rglob("*.mp4")), "the fetched original and the parts are cleaned up"
