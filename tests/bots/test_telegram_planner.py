"""The Telegram bot and the delivery planner, end to end: the real python-telegram-bot client against the fake
Bot API server, the real job service and in-process worker, and the local media site.

Files on each side of the upload limit: sent as they are; a smaller format the site offers; an FFmpeg
re-encode; parts; a link; a 413 from the server moving the plan on; the fitted copy reused. Playlists: cut
at MEDIABOT_MAX_PLAYLIST_ITEMS, cancelled half way, and resumed after a bot restart without duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bots.telegram import texts
from bots.telegram.runner import running
from core.bootstrap import Services
from core.db.models import Job
from core.jobs.views import JobView, RequestView
from core.words import human_size
from tests.bots.test_telegram import clip, edits_of, media_call, progress_message, slow, telegram_bot
from tests.fakes.telegram import ALICE, BOB, Call, FakeTelegram
from tests.support.media import ffprobe
from tests.support.media_site import MediaSite
from tests.support.services import make_settings, running_services, wait_until

pytestmark = pytest.mark.timeout(60)

LINK = re.compile(r"https?://\S+")


def video_size(site: MediaSite) -> int:
    """The small clip (/video.mp4, /clip/*.mp4): ~254 KB, 3 s, a keyframe every second."""
    assert site.files is not None
    return site.files.video_mp4.stat().st_size


def uploads_for(tg: FakeTelegram, asked: dict[str, Any], *methods: str) -> list[Call]:
    """The bot's successful media replies to a message, oldest first."""
    methods = methods or ("sendVideo", "sendAudio", "sendDocument")
    return [
        c for c in tg.calls_to(*methods, ok=True)
        if (c.get("reply_parameters") or {}).get("message_id") == asked["message_id"]
        and c["chat_id"] == asked["chat"]["id"]
    ]  # fmt: skip


def texts_to(tg: FakeTelegram, asked: dict[str, Any]) -> list[str]:
    """The texts of the bot's replies to a message still in the chat (the progress message is deleted)."""
    return [m["text"] for m in tg.replies_to(asked) if "text" in m and not m.get("_deleted")]


async def text_reply(tg: FakeTelegram, asked: dict[str, Any], needle: str, timeout: float = 30) -> str:
    """The bot's first text reply to `asked` containing `needle`."""
    return str(
        await tg.wait_for(lambda: next((t for t in texts_to(tg, asked) if needle in t), None), timeout)
    )


async def fit_jobs(services: Services) -> list[Job]:
    """Every copy made to fit a limit (jobs with a variant), oldest first."""
    async with services.sessions() as session:
        return list(
            await session.scalars(select(Job).where(Job.variant.is_not(None)).order_by(Job.created_at))
        )


async def jobs_count(services: Services) -> int:
    async with services.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Job)) or 0)


async def request_of(services: Services, asked: dict[str, Any]) -> tuple[RequestView, JobView]:
    """The request a chat message made (the only top-level one with its reply_to)."""
    items, _ = await services.jobs.list_requests("telegram", str(asked["from"]["id"]), limit=100)
    found = [
        (r, j) for r, j in items if r.parent_id is None and r.target.get("reply_to") == asked["message_id"]
    ]
    assert len(found) == 1, found
    return found[0]


async def delivered(services: Services) -> bool:
    return not await services.jobs.undelivered("telegram")


def final_text(tg: FakeTelegram, progress: dict[str, Any]) -> str:
    return str(tg.messages[(progress["chat"]["id"], progress["message_id"])]["text"])


# -- one file, both sides of the limit ------------------------------------------------------------------------


async def test_a_file_under_the_limit_is_sent_as_it_is(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg, telegram_upload_limit_mb=1) as bot:
        asked = tg.send(clip(media_site))
        progress = await progress_message(tg, asked)
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=30)
        assert video.files["video"].stat().st_size == video_size(media_site)
        assert video.get("caption") is None
        await tg.wait_for(lambda: tg.messages[(ALICE.id, progress["message_id"])].get("_deleted"))
        await wait_until(lambda: delivered(bot.services))
        assert await fit_jobs(bot.services) == []
        assert texts_to(tg, asked) == [], "nothing to explain when the file went as it is"


async def test_smaller_format_is_chosen_before_downloading_and_reused(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    """/qualities.html offers 360p (~30.7 MB) and 240p (~254 KB) with their sizes: with a 1 MB limit the
    240p file is fetched for the copy (big.mp4 is not downloaded again), and the person gets the full
    quality as a link. Asking again reuses the copy: no new fit job, no download, no upload."""
    tg = telegram_server
    url = media_site.url("/qualities.html")
    big, small = media_site.downloads("/big.mp4"), media_site.downloads("/video.mp4")
    async with telegram_bot(tmp_path, tg, telegram_upload_limit_mb=1) as bot:
        asked = tg.send(url)
        await progress_message(tg, asked)
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=40)
        size = video.files["video"].stat().st_size
        assert size == video_size(media_site) and size <= 1_000_000
        stream = next(s for s in ffprobe(video.files["video"])["streams"] if s["codec_type"] == "video")
        assert stream["height"] == 240 and video["height"] == 240

        note = await text_reply(tg, asked, "Full quality:")
        assert note.startswith("Sent at 240p to fit Telegram's 1 MB limit. Full quality: http")
        assert note.endswith("(expires in 24 h)")
        request, original = await request_of(bot.services, asked)
        full = LINK.search(note)
        assert full is not None and original.id in full.group(0), "the link is to the full-quality file"
        assert original.height == 360 and original.filesize and original.filesize > 30_000_000
        await wait_until(lambda: delivered(bot.services))
        # One download of each file: the original, then the 240p one for the copy.
        assert media_site.downloads("/big.mp4") - big == 1
        assert media_site.downloads("/video.mp4") - small == 1
        [copy] = await fit_jobs(bot.services)
        assert (copy.fit_method, copy.variant, copy.source_job_id) == (
            "smaller_format",
            "fit:1000000",
            original.id,
        )

        # The same link again (another person): the stored original and its copy answer, Telegram's handle
        # for the copy is resent.
        jobs_before = await jobs_count(bot.services)
        again = tg.send(url, user=BOB)
        resent = await tg.wait_for(lambda: media_call(tg, "sendVideo", again), timeout=30)
        assert resent.files == {} and resent["video"] == video.result["video"]["file_id"]
        assert (await text_reply(tg, again, "Full quality:")).startswith("Sent at 240p")
        second, _ = await request_of(bot.services, again)
        assert second.outcome == "cached"
        [(child, child_job)] = await bot.services.jobs.children(second.id)
        assert child.outcome == "cached" and child_job.id == copy.id
        # One new job row? None: the request and its copy's request both joined existing jobs.
        assert await jobs_count(bot.services) == jobs_before
        assert len(await fit_jobs(bot.services)) == 1
        assert media_site.downloads("/big.mp4") - big == 1
        assert media_site.downloads("/video.mp4") - small == 1
        # The handle stored for the original's key is never the small copy's.
        assert len(tg.calls_to("sendVideo", ok=True)) == 2


async def test_reencode_to_fit(tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite) -> None:
    tg = telegram_server
    limit = video_size(media_site) // 2
    async with telegram_bot(tmp_path, tg, telegram_upload_limit_mb=limit / 1e6, reencode_to_fit=True) as bot:
        asked = tg.send(clip(media_site))
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=45)
        path = video.files["video"]
        assert path.stat().st_size <= limit
        probe = ffprobe(path)
        assert "mp4" in probe["format"]["format_name"]
        assert {s["codec_type"] for s in probe["streams"]} == {"video", "audio"}
        assert abs(float(probe["format"]["duration"]) - 3) < 0.5
        note = await text_reply(tg, asked, "Full quality:")
        assert note.startswith("Re-encoded") and f"to fit Telegram's {human_size(limit)} limit." in note
        [copy] = await fit_jobs(bot.services)
        assert copy.fit_method == "reencode"
        await wait_until(lambda: delivered(bot.services))


async def test_split_into_parts(tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite) -> None:
    tg = telegram_server
    limit = video_size(media_site) // 2
    async with telegram_bot(
        tmp_path, tg, telegram_upload_limit_mb=limit / 1e6, telegram_split=True, reencode_to_fit=False
    ) as bot:
        asked = tg.send(clip(media_site))
        note = await text_reply(tg, asked, "Full quality:", timeout=45)
        parts = uploads_for(tg, asked)
        n = len(parts)
        assert n >= 2 and note.startswith(f"Sent in {n} parts to fit Telegram's")
        for i, part in enumerate(parts, 1):
            assert part.method == "sendVideo"
            assert part["caption"].endswith(f"Part {i} of {n}")
            assert part.files["video"].stat().st_size <= limit
            probe = ffprobe(part.files["video"])
            assert any(s["codec_type"] == "video" for s in probe["streams"])
        total = sum(float(ffprobe(p.files["video"])["format"]["duration"]) for p in parts)
        assert abs(total - 3) < 0.5, "the parts together are the whole clip"
        # The note comes after the last part.
        note_message = next(m for m in tg.replies_to(asked) if m.get("text") == note)
        assert note_message["message_id"] > max(p.result["message_id"] for p in parts)
        [copy] = await fit_jobs(bot.services)
        assert copy.fit_method == "split"
        await wait_until(lambda: delivered(bot.services))


async def test_the_copy_being_made_shows_progress_and_can_be_cancelled(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    """Re-encoding the 30 MB clip to 5 MB takes seconds: the progress message says so, with the Cancel
    button, and Cancel stops the copy (and the bot says so instead of sending anything)."""
    tg = telegram_server
    async with telegram_bot(tmp_path, tg, telegram_upload_limit_mb=5, reencode_to_fit=True) as bot:
        asked = tg.send(slow(media_site, rate=100_000_000))
        progress = await progress_message(tg, asked)
        copying = await tg.wait_for(
            lambda: next(
                (c for c in edits_of(tg, progress) if "Making a copy that fits 5 MB" in c["text"]), None
            ),
            timeout=20,
        )
        assert copying.get("reply_markup"), "the Cancel button stays while the copy is made"
        tg.press(progress, copying["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
        answer = await tg.wait_call("answerCallbackQuery", timeout=10)
        assert answer["text"] == texts.CANCELLED
        await tg.wait_for(lambda: final_text(tg, progress) == texts.CANCELLED, timeout=15)
        assert "reply_markup" not in tg.messages[(ALICE.id, progress["message_id"])]
        [copy] = await fit_jobs(bot.services)
        assert (await bot.services.jobs.wait(copy.id, timeout=10)).status == "cancelled"
        await wait_until(lambda: delivered(bot.services))
        assert uploads_for(tg, asked) == [] and texts_to(tg, asked) == [texts.CANCELLED]


async def test_nothing_fits_so_a_link_with_the_reason(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg, telegram_upload_limit_mb=0.1, link_ttl_s=7200) as bot:
        asked = tg.send(clip(media_site))
        progress = await progress_message(tg, asked)
        text = await text_reply(tg, asked, "download link")
        assert "over Telegram's 100 KB upload limit, and no smaller copy fits" in text
        assert "It expires in 2 h (" in text
        request, original = await request_of(bot.services, asked)
        link = text.splitlines()[-1]
        assert link.startswith(bot.services.settings.public_url + "/files/") and f"/{original.id}/" in link
        assert uploads_for(tg, asked) == []
        [copy] = await fit_jobs(bot.services)
        assert copy.status == "failed" and copy.error_code == "wont_fit"
        await tg.wait_for(lambda: tg.messages[(ALICE.id, progress["message_id"])].get("_deleted"))
        await wait_until(lambda: delivered(bot.services))


async def test_a_413_on_the_upload_moves_on_to_a_copy_that_fits(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    """The bot believes 2000 MB (a self-hosted server) but a proxy refuses bodies over 1 MB: the 30.7 MB
    original is refused with a 413, and the 240p copy goes instead."""
    tg = telegram_server
    tg.upload_limit = 1_000_000
    async with telegram_bot(tmp_path, tg) as bot:
        assert bot.services.settings.telegram_upload_limit_bytes == 2_000_000_000
        asked = tg.send(media_site.url("/qualities.html"))
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=40)
        assert video["height"] == 240 and video.files["video"].stat().st_size == video_size(media_site)
        assert [c.status for c in tg.calls if c.method == "sendVideo"] == [413, 200]
        note = await text_reply(tg, asked, "Full quality:")
        # The limit aimed for after the refusal is a guess, so the note says what happened instead.
        big = human_size(media_site.files.big_mp4.stat().st_size)
        assert note.startswith(f"Sent at 240p: Telegram refused the {big} file. Full quality: http"), note
        [copy] = await fit_jobs(bot.services)
        assert copy.fit_method == "smaller_format"
        await wait_until(lambda: delivered(bot.services))


# -- playlists ------------------------------------------------------------------------------------------------


def playlist_message(tg: FakeTelegram, asked: dict[str, Any]) -> dict[str, Any] | None:
    """The bot's message answering `asked` that became the playlist's list."""
    return next((m for m in tg.replies_to(asked) if "Playlist:" in m.get("text", "")), None)


async def test_playlist_cut_at_the_limit(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    clips = [f"/clip/{i}.mp4" for i in range(1, 144)]
    before = {path: media_site.downloads(path) for path in clips}
    async with telegram_bot(tmp_path, tg, max_playlist_items=3) as bot:
        asked = tg.send(media_site.url("/feed.xml?n=143"))
        progress = await progress_message(tg, asked)
        await tg.wait_for(lambda: len(uploads_for(tg, asked, "sendVideo")) == 3, timeout=40)
        summary = "Playlist: 3 of 143 items · 3 sent"
        await tg.wait_for(lambda: summary in final_text(tg, progress), timeout=20)
        lines = final_text(tg, progress).splitlines()
        assert lines[0] == "Channel of 143" and lines[1] == summary
        assert lines[2:] == [f"{i}. Clip {i} · sent" for i in (1, 2, 3)]
        assert "reply_markup" not in tg.messages[(ALICE.id, progress["message_id"])]
        # While it ran, the message listed the items with their states (and the Cancel button).
        listing = [
            c for c in edits_of(tg, progress) if c["text"].startswith("Channel of 143\nPlaylist: 3 of 143")
        ]
        assert listing and "1. Clip 1 · " in listing[0]["text"]

        downloaded = {path: media_site.downloads(path) - before[path] for path in clips}
        assert sum(downloaded.values()) == 3 and all(downloaded[f"/clip/{i}.mp4"] == 1 for i in (1, 2, 3))

        await wait_until(lambda: delivered(bot.services))
        request, playlist = await request_of(bot.services, asked)
        assert playlist.playlist is not None and (playlist.playlist.count, playlist.playlist.total) == (
            3,
            143,
        )
        children = await bot.services.jobs.children(request.id)
        assert len(children) == 3 and all(r.delivered_at is not None for r, _ in children)
        assert (await bot.services.jobs.get_request(request.id))[0].delivered_at is not None

        # Someone else sends the same feed: the listed playlist and its stored items answer, each item by
        # Telegram's own copy; no download, and a playlist message of its own (there was no "Queued").
        again = tg.send(media_site.url("/feed.xml?n=143"), user=BOB)
        await tg.wait_for(lambda: len(uploads_for(tg, again, "sendVideo")) == 3, timeout=20)
        assert all(c.files == {} for c in uploads_for(tg, again))
        listing = await tg.wait_for(lambda: playlist_message(tg, again))
        await tg.wait_for(lambda: summary in final_text(tg, listing))
        assert sum(media_site.downloads(path) - before[path] for path in clips) == 3
        await wait_until(lambda: delivered(bot.services))


async def test_playlist_items_too_large_go_through_the_planner(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    """Each item over the limit is fitted on its own (here: parts), its note saying which item it is about."""
    tg = telegram_server
    limit = video_size(media_site) // 2
    async with telegram_bot(tmp_path, tg, telegram_upload_limit_mb=limit / 1e6, telegram_split=True) as bot:
        asked = tg.send(media_site.url("/feed.xml?n=2"))
        progress = await progress_message(tg, asked)
        await tg.wait_for(lambda: "· 2 sent" in final_text(tg, progress), timeout=40)
        lines = final_text(tg, progress).splitlines()
        assert lines[1] == "Playlist: 2 items · 2 sent"
        assert re.fullmatch(r"1\. Clip 1 · sent in \d parts", lines[2]) and lines[3].startswith(
            "2. Clip 2 · sent in"
        )
        notes = [t for t in texts_to(tg, asked) if "Full quality:" in t]
        assert sorted(note.split(":")[0] for note in notes) == ["Clip 1", "Clip 2"]
        assert all(": Sent in " in note for note in notes)
        parts = uploads_for(tg, asked)
        assert len(parts) >= 4 and all(p.files["video"].stat().st_size <= limit for p in parts)
        assert len(await fit_jobs(bot.services)) == 2
        await wait_until(lambda: delivered(bot.services))


async def test_cancel_stops_the_rest_of_a_playlist(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    """Three slow items, one download at a time: after the first is sent, Cancel stops the other two."""
    tg = telegram_server
    gate = uuid.uuid4().hex[:8]
    feed = media_site.url(f"/feed.xml?n=3&item=gated&gate={gate}")  # items held until their gate opens
    media_site.open_gate(f"{gate}-1")
    async with telegram_bot(tmp_path, tg, worker_concurrency=1) as bot:
        asked = tg.send(feed)
        progress = await progress_message(tg, asked)
        await tg.wait_for(lambda: len(uploads_for(tg, asked)) == 1, timeout=30)
        # The Queued message became the playlist's list; its Cancel button is the same.
        tg.press(progress, progress["reply_markup"]["inline_keyboard"][0][0]["callback_data"])
        answer = await tg.wait_call("answerCallbackQuery", timeout=10)
        assert answer["text"] == texts.cancelled_items(2)
        summary = "Playlist: 3 items · 1 sent · 2 cancelled"
        await tg.wait_for(lambda: summary in final_text(tg, progress), timeout=15)
        assert "reply_markup" not in tg.messages[(ALICE.id, progress["message_id"])]
        request, _ = await request_of(bot.services, asked)
        states = [(r.status, j.status) for r, j in await bot.services.jobs.children(request.id)]
        assert states == [("done", "done"), ("cancelled", "cancelled"), ("cancelled", "cancelled")]
        await wait_until(lambda: delivered(bot.services))
        await asyncio.sleep(0.5)
        assert len(uploads_for(tg, asked)) == 1


@contextlib.asynccontextmanager
async def bot_process(services: Services) -> AsyncIterator[None]:
    """The bot alone (the services, their worker and the database live on between two of these)."""
    async with running(services):
        yield


async def test_a_restart_mid_playlist_sends_only_what_was_not_sent(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    gate = uuid.uuid4().hex[:8]
    feed = media_site.url(f"/feed.xml?n=3&item=gated&gate={gate}")  # items held until their gate opens
    media_site.open_gate(f"{gate}-1")
    settings = make_settings(
        tmp_path, telegram_token=tg.token, telegram_api_url=tg.api_url, worker_concurrency=1,
        shutdown_grace_s=0,
    )  # fmt: skip
    async with running_services(settings) as services:
        async with bot_process(services):
            asked = tg.send(feed)
            await progress_message(tg, asked)
            await tg.wait_for(lambda: len(uploads_for(tg, asked)) == 1, timeout=30)
            request, _ = await request_of(services, asked)

            async def first_delivered() -> bool:
                children = await services.jobs.children(request.id)
                return children[0][0].delivered_at is not None and children[1][1].status == "running"

            await wait_until(first_delivered, timeout=10)
        stopped = len(tg.calls)
        # While the bot is away the worker goes on; the next bot finds the playlist undelivered.
        assert [r.id for r, _ in await services.jobs.undelivered("telegram")] == [request.id]
        async with bot_process(services):
            listing = await tg.wait_for(lambda: playlist_message(tg, asked), timeout=5)
            media_site.open_gate(f"{gate}-2")
            media_site.open_gate(f"{gate}-3")
            await tg.wait_for(lambda: "· 3 sent" in final_text(tg, listing), timeout=40)
            await wait_until(lambda: delivered(services))
    uploads = uploads_for(tg, asked)
    assert len(uploads) == 3, "an item was sent twice (or not at all)"
    assert len([c for c in uploads if tg.calls.index(c) >= stopped]) == 2
    assert final_text(tg, listing).splitlines()[1:] == [
        "Playlist: 3 items · 3 sent",
        "1. Clip 1 · sent",
        "2. Clip 2 · sent",
        "3. Clip 3 · sent",
    ]


async def test_after_a_restart_an_item_sent_as_a_link_is_still_listed_as_a_link(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    """How each item went out is stored with it: the first item's upload fails, so it goes out as a link;
    the bot restarts, and its playlist message still lists that item as a link (not as "sent")."""
    tg = telegram_server
    tg.fail("sendVideo", 500, "Internal Server Error")  # the first upload only
    feed = media_site.url(f"/feed.xml?n=3&item=slow&rate=5000000&t={uuid.uuid4().hex[:8]}")  # ~6 s each
    settings = make_settings(
        tmp_path, telegram_token=tg.token, telegram_api_url=tg.api_url, worker_concurrency=1,
        shutdown_grace_s=0,
    )  # fmt: skip
    async with running_services(settings) as services:
        async with bot_process(services):
            asked = tg.send(feed)
            await progress_message(tg, asked)
            assert "Clip 1" in await text_reply(tg, asked, "The upload to Telegram failed")
            request, _ = await request_of(services, asked)

            async def first_delivered() -> bool:
                return (await services.jobs.children(request.id))[0][0].delivered_at is not None

            await wait_until(first_delivered, timeout=10)
        async with bot_process(services):
            await wait_until(lambda: delivered(services), timeout=40)
        items = await services.jobs.children(request.id)
    listing = playlist_message(tg, asked)
    assert listing is not None
    assert final_text(tg, listing).splitlines()[1:] == [
        "Playlist: 3 items · 2 sent · 1 as link",
        "1. Clip 1 · sent as a link",
        "2. Clip 2 · sent",
        "3. Clip 3 · sent",
    ]
    assert [r.target.get("delivered_as") for r, _ in items] == ["link", "file", "file"]
    assert len(uploads_for(tg, asked)) == 2
