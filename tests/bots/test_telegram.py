"""The Telegram bot end to end: the real python-telegram-bot client against a fake Bot API server on 127.0.0.1,
the real job service and worker, and the local media site.

Most tests run the bot embedded (`mediabot run`'s shape: in-process queue, bus and worker, SQLite, local files);
the last one runs `mediabot telegram` and `mediabot worker` as processes on Redis and PostgreSQL and restarts
the bot in the middle of a download.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from telegram.error import RetryAfter

from bots.telegram import texts
from bots.telegram.calls import retry_seconds
from bots.telegram.runner import TelegramUnavailable, running
from core.bootstrap import Services
from core.errors import InvalidUrl, UnsupportedUrl
from tests.fakes.telegram import ALICE, BOB, CAROL, Call, FakeTelegram
from tests.support.media import ffprobe
from tests.support.media_site import MediaSite
from tests.support.services import ROOT, make_settings, running_services, settings_env, wait_until

pytestmark = pytest.mark.timeout(60)


@dataclass
class Running:
    services: Services
    tg: FakeTelegram


@contextlib.asynccontextmanager
async def telegram_bot(tmp_path: Path, tg: FakeTelegram, **overrides: Any) -> AsyncIterator[Running]:
    """The bot as `mediabot run` hosts it: embedded services with an in-process worker."""
    overrides.setdefault("shutdown_grace_s", 0)  # a download still running at the end is simply dropped
    settings = make_settings(tmp_path, telegram_token=tg.token, telegram_api_url=tg.api_url, **overrides)
    async with running_services(settings) as services, running(services):
        yield Running(services, tg)


def clip(site: MediaSite) -> str:
    """A small video (~250 KB) at a URL no other test uses."""
    return site.url(f"/clip/{uuid.uuid4().hex[:12]}.mp4")


def slow(site: MediaSite, rate: int) -> str:
    """The ~30 MB video at `rate` bytes/s, under a query no other test uses (so it is a new job)."""
    return site.url(f"/slow.mp4?rate={rate}&t={uuid.uuid4().hex[:8]}")


async def progress_message(tg: FakeTelegram, asked: dict[str, Any]) -> dict[str, Any]:
    """The bot's "Queued" reply to a message (the one with the Cancel button)."""
    return await tg.wait_for(
        lambda: next((m for m in tg.replies_to(asked) if "Cancel" in str(m.get("reply_markup"))), None)
    )


async def reply_text(tg: FakeTelegram, asked: dict[str, Any], timeout: float = 20) -> str:
    """The text of the bot's first plain reply to a message."""
    message = await tg.wait_for(lambda: next((m for m in tg.replies_to(asked) if "text" in m), None), timeout)
    return str(message["text"])


def media_call(tg: FakeTelegram, method: str, asked: dict[str, Any]) -> Call | None:
    return next(
        (c for c in tg.calls_to(method, ok=True) if (c.get("reply_parameters") or {}).get("message_id") == asked["message_id"]
         and c["chat_id"] == asked["chat"]["id"]),
        None,
    )  # fmt: skip


def edits_of(tg: FakeTelegram, message: dict[str, Any]) -> list[Call]:
    return [
        c for c in tg.calls_to("editMessageText", ok=True)
        if c["message_id"] == message["message_id"] and c["chat_id"] == message["chat"]["id"]
    ]  # fmt: skip


# -- the main path -------------------------------------------------------------------------------------------


async def test_link_gets_progress_then_a_playable_video_then_a_file_id_resend(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    url = slow(media_site, rate=7_000_000)  # ~30 MB in ~4.5 s: progress to show
    async with telegram_bot(tmp_path, tg) as bot:
        assert [c["command"] for c in tg.commands] == [
            "start",
            "help",
            "video",
            "audio",
            "clip",
            "gif",
            "chapters",
            "settings",
            "language",
            "subs",
            "status",
            "cancel",
            "subscribe",
            "subscriptions",
            "unsubscribe",
        ]
        asked = tg.send(f"look at this {url}")
        progress = await progress_message(tg, asked)
        assert "Queued" in tg.calls_to("sendMessage")[0]["text"]
        button = progress["reply_markup"]["inline_keyboard"][0][0]
        assert button["text"] == "Cancel" and button["callback_data"].startswith("cancel:")

        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=30)

        # At least one edit showed the bar with percent, and edits of one message are ~2 s apart.
        edits = edits_of(tg, progress)
        bars = [c for c in edits if "%" in c["text"] and any(block in c["text"] for block in "█░")]
        assert bars, [c["text"] for c in edits]
        assert all(c.get("reply_markup") for c in bars), "the Cancel button stays while downloading"
        queued = tg.calls_to("sendMessage", ok=True)[0]
        with_button = [queued] + [c for c in edits if c.get("reply_markup")]
        gaps = [b.at - a.at for a, b in zip(with_button, with_button[1:], strict=False)]
        assert all(gap >= 1.8 for gap in gaps), gaps
        assert not [c for c in tg.calls_to("editMessageText") if c.status == 400], "identical edits were sent"

        # The upload: a real mp4 with its details, as a reply to the person's message.
        probe = ffprobe(video.files["video"])
        assert "mp4" in probe["format"]["format_name"]
        stream = next(s for s in probe["streams"] if s["codec_type"] == "video")
        assert (stream["width"], stream["height"]) == (640, 360)
        assert (video["width"], video["height"], video["duration"]) == (640, 360, 10)
        assert video["supports_streaming"] is True
        assert video.files["video"].stat().st_size == media_site.files.big_mp4.stat().st_size

        # Then the progress message goes away and the request counts as delivered.
        await tg.wait_for(lambda: tg.messages[(asked["chat"]["id"], progress["message_id"])].get("_deleted"))
        await wait_until(lambda: _nothing_undelivered(bot.services))

        # Anyone asking for the same link again gets Telegram's copy: no download, no upload, no "Queued".
        hits = media_site.hits("/slow.mp4")
        again = tg.send(url, user=BOB)
        resend = await tg.wait_for(lambda: media_call(tg, "sendVideo", again))
        assert resend.files == {} and resend["video"] == video.result["video"]["file_id"]
        assert media_site.hits("/slow.mp4") == hits
        assert [m for m in tg.replies_to(again) if "text" in m] == []


async def _nothing_undelivered(services: Services) -> bool:
    return not await services.jobs.undelivered("telegram")


async def test_audio_command_and_settings(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg) as bot:
        link = clip(media_site)
        asked = tg.send(f"/audio {link}")
        audio = await tg.wait_for(lambda: media_call(tg, "sendAudio", asked), timeout=30)
        probe = ffprobe(audio.files["audio"])
        assert [s["codec_type"] for s in probe["streams"]] == ["audio"]
        # title as the site gives it (the generic extractor: the file name), duration probed from the file
        assert audio["title"] == link.rsplit("/", 1)[1].removesuffix(".mp4") and audio["duration"] == 3
        assert not tg.calls_to("sendVideo", "sendDocument")

        # /settings: an inline keyboard; choices are stored per user and apply to plain links.
        menu_ask = tg.send("/settings")
        menu = await tg.wait_for(
            lambda: next((m for m in tg.replies_to(menu_ask) if m.get("reply_markup")), None)
        )
        assert "video, best quality" in menu["text"]
        buttons = [b["callback_data"] for row in menu["reply_markup"]["inline_keyboard"] for b in row]
        assert {"set:kind:video", "set:kind:audio", "set:quality:720"} <= set(buttons)
        tg.press(menu, "set:kind:audio")
        await tg.wait_for(lambda: "audio only" in tg.messages[(ALICE.id, menu["message_id"])]["text"])
        tg.press(menu, "set:quality:720", user=ALICE)
        await tg.wait_for(lambda: len(tg.calls_to("answerCallbackQuery")) == 2)
        prefs = await bot.services.prefs.get("telegram", str(ALICE.id))
        assert (prefs.kind, prefs.quality) == ("audio", "720")
        assert (await bot.services.prefs.get("telegram", str(BOB.id))).kind == "video"

        plain = tg.send(clip(media_site))
        await tg.wait_for(lambda: media_call(tg, "sendAudio", plain), timeout=30)
        # /video still means video whatever the default.
        explicit = tg.send(f"/video {clip(media_site)}")
        await tg.wait_for(lambda: media_call(tg, "sendVideo", explicit), timeout=30)


async def test_cancel_button_status_and_cancel_all(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg) as bot:
        first, second = tg.send(slow(media_site, rate=300_000)), tg.send(slow(media_site, rate=300_000))
        p1, p2 = await progress_message(tg, first), await progress_message(tg, second)
        jobs = bot.services.jobs
        active = await jobs.active_requests("telegram", str(ALICE.id))
        assert len(active) == 2
        await wait_until(lambda: _all_running(bot.services), timeout=15)

        status = await reply_text(tg, tg.send("/status"))
        assert status.startswith("Your downloads:") and "1. slow" in status and "2. slow" in status

        # Cancel under the first: that download stops, the message says so, the button is gone.
        cancel = p1["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        request_id = cancel.partition(":")[2]
        tg.press(p1, cancel, user=BOB)  # not Bob's download
        tg.press(p1, cancel)
        await tg.wait_for(lambda: tg.messages[(ALICE.id, p1["message_id"])]["text"] == texts.CANCELLED)
        assert "reply_markup" not in tg.messages[(ALICE.id, p1["message_id"])]
        # Bob's press is handled concurrently (concurrent_updates) and may be answered after Alice's.
        await tg.wait_for(
            lambda: any("Only the person who asked" in c["text"] for c in tg.calls_to("answerCallbackQuery"))
        )
        answers = [c["text"] for c in tg.calls_to("answerCallbackQuery")]
        assert texts.CANCELLED in answers and any("Only the person who asked" in a for a in answers)
        _, job = await jobs.get_request(request_id)
        assert (await jobs.wait(job.id, timeout=10)).status == "cancelled"

        # /cancel: everything else of this user.
        assert await reply_text(tg, tg.send("/cancel")) == texts.cancelled_count(1)
        await tg.wait_for(lambda: tg.messages[(ALICE.id, p2["message_id"])]["text"] == texts.CANCELLED)
        assert await jobs.count_active("telegram", str(ALICE.id)) == 0
        assert await reply_text(tg, tg.send("/cancel")) == texts.NOTHING_TO_CANCEL
        assert not tg.calls_to("sendVideo", "sendDocument")


async def test_status_says_what_a_waiting_download_waits_for(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    """Per-site pacing (issue 23): /status reads the waiting place from the job's row, as the API does."""
    tg = telegram_server
    async with telegram_bot(tmp_path, tg, site_limits="127.0.0.1=1") as bot:
        first, second = tg.send(slow(media_site, rate=300_000)), tg.send(slow(media_site, rate=300_000))
        await progress_message(tg, first), await progress_message(tg, second)

        async def one_waits() -> bool:
            active = await bot.services.jobs.active_requests("telegram", str(ALICE.id))
            return sorted((job.status, job.ahead) for _, job in active) == [("queued", 0), ("running", None)]

        await wait_until(one_waits, timeout=30)
        status = await reply_text(tg, tg.send("/status"))
        assert "Waiting for 127.0.0.1: you are next" in status, status


async def _all_running(services: Services) -> bool:
    active = await services.jobs.active_requests("telegram", str(ALICE.id))
    return bool(active) and all(job.status == "running" and job.progress.percent for _, job in active)


# -- files Telegram will not take --------------------------------------------------------------------------


async def test_file_over_the_upload_limit_is_sent_as_a_link(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg, telegram_upload_limit_mb=0.1, link_ttl_s=3600) as bot:
        asked = tg.send(clip(media_site))
        progress = await progress_message(tg, asked)
        text = await tg.wait_for(
            lambda: next(
                (m["text"] for m in tg.replies_to(asked) if "download link" in m.get("text", "")), None
            ),
            timeout=30,
        )
        assert "over Telegram's 100 KB upload limit" in text and "It expires in 1 h (" in text
        link = text.rsplit("\n", 1)[-1]
        assert link.startswith(bot.services.settings.public_url + "/")
        assert not tg.calls_to("sendVideo", "sendDocument", "sendAudio")
        await tg.wait_for(lambda: tg.messages[(ALICE.id, progress["message_id"])].get("_deleted"))


async def test_upload_refused_with_413_falls_back_to_a_link(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    tg.upload_limit = 100_000  # the server's proxy refuses bodies over 100 KB; the bot thinks 2000 MB is fine
    async with telegram_bot(tmp_path, tg):
        asked = tg.send(clip(media_site))
        text = await tg.wait_for(
            lambda: next(
                (m["text"] for m in tg.replies_to(asked) if "download link" in m.get("text", "")), None
            ),
            timeout=30,
        )
        assert "Telegram refused the upload as too large" in text
        assert [c.status for c in tg.calls if c.method == "sendVideo"] == [413]

        # Any other failed upload: the file is stored, so the person still gets the link.
        tg.upload_limit = None
        tg.fail("sendVideo", 500, "Internal Server Error")
        failed = tg.send(clip(media_site))
        text = await tg.wait_for(
            lambda: next(
                (m["text"] for m in tg.replies_to(failed) if "download link" in m.get("text", "")), None
            ),
            timeout=30,
        )
        assert "The upload to Telegram failed" in text
        assert [c.status for c in tg.calls if c.method == "sendVideo"] == [413, 500]


async def test_a_rejected_token_stops_start_up_without_showing_the_token(
    tmp_path: Path, telegram_server: FakeTelegram
) -> None:
    settings = make_settings(
        tmp_path, telegram_token="12345678:" + "x" * 35, telegram_api_url=telegram_server.api_url
    )
    async with running_services(settings, worker=False) as services:
        with pytest.raises(TelegramUnavailable) as failure:
            async with running(services):
                pass
    assert "rejected MEDIABOT_TELEGRAM_TOKEN" in failure.value.message
    assert "x" * 35 not in failure.value.message and failure.value.__cause__ is None


# -- errors ------------------------------------------------------------------------------------------------


async def test_errors_are_one_sentence(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite, caplog: pytest.LogCaptureFixture
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg):
        # Refused by the worker: the progress message becomes the core's sentence, without a button.
        asked = tg.send(media_site.url("/nomedia.html"))
        progress = await progress_message(tg, asked)
        key = (ALICE.id, progress["message_id"])
        await tg.wait_for(lambda: "reply_markup" not in tg.messages[key], timeout=30)
        assert tg.messages[key]["text"] == UnsupportedUrl.no_media_message

        # Refused at once: no job, one sentence.
        assert await reply_text(tg, tg.send("hello there")) == InvalidUrl.default_message
        assert await reply_text(tg, tg.send("ftp://example.com/file.mp4")) == (
            "Only http:// and https:// links are supported, not ftp://."
        )

        # Something unexpected (the Bot API fails our reply): logged with the update id, then an apology.
        tg.fail("sendMessage", 500, "Internal Server Error")
        with caplog.at_level(logging.ERROR, logger="bots.telegram"):
            failing = tg.send("/help")
            assert await reply_text(tg, failing) == texts.APOLOGY
        errors = [
            r for r in caplog.records if r.name == "bots.telegram.handlers" and r.levelno == logging.ERROR
        ]
        assert [r.getMessage() for r in errors] == [
            f"telegram update {failing['_update_id']} failed: NetworkError"
        ]
        assert errors[0].exc_info is not None


async def test_flood_control_during_progress_and_upload(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg):
        asked = tg.send(slow(media_site, rate=8_000_000))
        progress = await progress_message(tg, asked)
        tg.flood("editMessageText", count=2, retry_after=1)
        tg.flood("sendVideo", count=1, retry_after=1)
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=30)

        edits = [
            c
            for c in tg.calls
            if c.method == "editMessageText" and c.get("message_id") == progress["message_id"]
        ]
        floods = [c for c in edits if c.status == 429]
        assert len(floods) == 2
        after = [c for c in edits if c.ok and c.at > floods[-1].at]
        assert after and after[0].at - floods[-1].at >= 0.95, "the retry_after was not respected"
        # The upload retried after its 429 with the whole file again (a Path is re-read, a handle would be empty).
        uploads = [c for c in tg.calls if c.method == "sendVideo"]
        assert [c.status for c in uploads] == [429, 200]
        assert uploads[1].at - uploads[0].at >= 0.95
        size = media_site.files.big_mp4.stat().st_size
        assert video.files["video"].stat().st_size == size
        ffprobe(video.files["video"])
        await tg.wait_for(lambda: tg.messages[(ALICE.id, progress["message_id"])].get("_deleted"))


@pytest.mark.parametrize("ptb_timedelta", ["false", "1"])
def test_retry_after_is_seconds_whichever_type_ptb_gives(
    monkeypatch: pytest.MonkeyPatch, ptb_timedelta: str
) -> None:
    """PTB gives RetryAfter.retry_after as an int, or as a timedelta with PTB_TIMEDELTA=1."""
    monkeypatch.setenv("PTB_TIMEDELTA", ptb_timedelta)
    assert retry_seconds(RetryAfter(7)) == 7.0


# -- who and where -----------------------------------------------------------------------------------------


async def test_allowlist_refuses_others_politely(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg, telegram_allowed_users=["@Alice", str(CAROL.id)]) as bot:
        refused = tg.send(clip(media_site), user=BOB)
        assert await reply_text(tg, refused) == texts.NOT_ALLOWED.format(user_id=BOB.id)
        assert await reply_text(tg, tg.send("/help", user=BOB)) == texts.NOT_ALLOWED.format(user_id=BOB.id)
        items, _ = await bot.services.jobs.list_requests("telegram", str(BOB.id))
        assert items == []

        assert (await reply_text(tg, tg.send("/start"))).startswith("I download videos")  # @alice by name
        assert (await reply_text(tg, tg.send("/help", user=CAROL))).startswith("I download videos")  # by id

        # In a group, Bob chatting is ignored (no refusal spam); addressing the bot gets the refusal.
        tg.send(f"nice one {clip(media_site)}", user=BOB, group=True)
        addressed = tg.send("/help", user=BOB, group=True)
        assert await reply_text(tg, addressed) == texts.NOT_ALLOWED.format(user_id=BOB.id)
        await asyncio.sleep(0.3)
        assert len(tg.bot_messages(-100500)) == 1


async def test_group_only_commands_mentions_and_replies(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    bot_name = tg.bot["username"]
    async with telegram_bot(tmp_path, tg) as bot:
        ignored = tg.send(f"check {clip(media_site)}", group=True)
        other_bot = tg.send("/help@some_other_bot", group=True)

        mentioned = tg.send(f"@{bot_name} {clip(media_site)}", group=True)
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", mentioned), timeout=30)
        assert video["chat_id"] == -100500

        # Replying to the bot's message with a link counts as talking to it.
        replying = tg.send(clip(media_site), group=True, reply_to=video.result["message_id"])
        await tg.wait_for(lambda: media_call(tg, "sendVideo", replying), timeout=30)
        # "thanks" in reply to the bot: no link, no error message in the group.
        thanks = tg.send("thanks!", group=True, reply_to=video.result["message_id"])

        command = tg.send(f"/video@{bot_name} {clip(media_site)}", group=True)
        await tg.wait_for(lambda: media_call(tg, "sendVideo", command), timeout=30)
        # /audio as a reply to someone else's link (the link was ignored when it was posted).
        shared = tg.send(f"listen {clip(media_site)}", user=BOB, group=True)
        audio = tg.send(f"/audio@{bot_name}", group=True, reply_to=shared)
        await tg.wait_for(lambda: media_call(tg, "sendAudio", audio), timeout=30)
        assert tg.replies_to(shared) == []
        assert (await reply_text(tg, tg.send(f"/help@{bot_name}", group=True))).startswith(
            "I download videos"
        )

        await asyncio.sleep(0.3)
        for message in (ignored, other_bot, thanks):
            assert tg.replies_to(message) == [], message["text"]
        items, _ = await bot.services.jobs.list_requests("telegram", str(ALICE.id))
        assert len(items) == 4


async def test_per_user_limits(tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg, user_max_concurrent=1, user_requests_per_hour=2):
        # Two links in one message: the first starts, the second would exceed one running download.
        both = tg.send(f"{slow(media_site, rate=300_000)} and {clip(media_site)}")
        await progress_message(tg, both)
        refusal = await tg.wait_for(
            lambda: next(
                (m["text"] for m in tg.replies_to(both) if "already have" in m.get("text", "")), None
            )
        )
        assert refusal == texts.too_many_running(1)
        assert await reply_text(tg, tg.send("/cancel")) == texts.cancelled_count(1)

        second = tg.send(clip(media_site))
        await tg.wait_for(lambda: media_call(tg, "sendVideo", second), timeout=30)
        third = tg.send(clip(media_site))  # the third request this hour
        assert (await reply_text(tg, third)).startswith("You have reached the limit of 2 downloads per hour.")
        assert not [m for m in tg.replies_to(third) if m.get("reply_markup")]
        others = tg.send(clip(media_site), user=BOB)  # limits are per user
        await tg.wait_for(lambda: media_call(tg, "sendVideo", others), timeout=30)


# -- secrets -----------------------------------------------------------------------------------------------


async def test_token_never_reaches_the_logs(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite, caplog: pytest.LogCaptureFixture
) -> None:
    tg = telegram_server
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "telegram", "bots", "core"):
        caplog.set_level(logging.DEBUG, logger=name)
    async with telegram_bot(tmp_path, tg, log_level="DEBUG"):
        asked = tg.send(clip(media_site))
        await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=30)
    secret_part = tg.token.split(":", 1)[1]
    lines = [r.getMessage() + "\n" + (r.exc_text or "") for r in caplog.records]
    assert not [line for line in lines if secret_part in line or tg.token in line]
    # The lines that would have carried it are there, redacted.
    requests = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any("/bot[REDACTED]/sendVideo" in line for line in requests), requests[:3]
    assert any(r.name.startswith("telegram") and r.levelno == logging.DEBUG for r in caplog.records)


# -- webhook mode ------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_webhook_mode(tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite) -> None:
    tg = telegram_server
    port = free_port()
    hook = f"http://127.0.0.1:{port}/telegram/updates"
    async with telegram_bot(tmp_path, tg, telegram_webhook_url=hook, telegram_webhook_port=port):
        assert tg.webhook is not None and tg.webhook["url"] == hook
        secret = tg.webhook["secret_token"]
        assert len(secret) >= 32 and secret not in tg.token and tg.token.split(":")[1] not in secret

        asked = tg.send(clip(media_site))  # POSTed to the bot by the fake server, as Telegram does
        await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=30)
        assert tg.calls_to("getUpdates") == [] and set(tg.webhook_posts) == {200}

        forged = {"update_id": 10_000, "message": {**asked, "message_id": 999, "text": "/help"}}
        forged["message"].pop("_update_id", None)
        assert await tg.post_to_webhook(forged, secret="not-the-secret") == 403
        await asyncio.sleep(0.3)
        assert not [
            m for m in tg.bot_messages(ALICE.id) if m.get("reply_to_message", {}).get("message_id") == 999
        ]


# -- as separate processes ----------------------------------------------------------------------------------


class BotProcess:
    """A real `mediabot telegram` subprocess (its own session, so it is stopped as a group)."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "mediabot", "telegram"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                cwd=str(ROOT), start_new_session=True,
            )  # fmt: skip

    async def stop(self) -> int | None:
        """SIGTERM, and wait without blocking the loop (the fake server in this process must keep answering)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, 20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                await asyncio.to_thread(self.proc.wait, 10)
        return self.proc.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.mark.timeout(90)
async def test_bot_and_worker_processes_on_redis_and_postgres_survive_a_bot_restart(
    tmp_path: Path,
    telegram_server: FakeTelegram,
    media_site: MediaSite,
    pg_url: str,
    redis_url: str,
    worker_processes: Any,
) -> None:
    tg = telegram_server
    settings = make_settings(
        tmp_path, database_url=pg_url, redis_url=redis_url, telegram_token=tg.token, telegram_api_url=tg.api_url,
        log_level="DEBUG",
    )  # fmt: skip
    env = settings_env(settings) | {
        "MEDIABOT_TELEGRAM_TOKEN": tg.token,
        "MEDIABOT_TELEGRAM_API_URL": tg.api_url,
    }
    worker = worker_processes(settings)
    first, second = BotProcess(env, tmp_path / "bot-1.log"), BotProcess(env, tmp_path / "bot-2.log")
    first.start()
    try:
        await tg.wait_call("setMyCommands", timeout=30)
        asked = tg.send(slow(media_site, rate=4_000_000))  # ~8 s
        progress = await progress_message(tg, asked)
        # Progress comes from the worker process through Redis.
        await tg.wait_for(lambda: any("%" in c["text"] for c in edits_of(tg, progress)), timeout=20)

        # The bot restarts mid-download; the new process picks the request up from the database.
        assert await first.stop() == 0, first.output()[-3000:]
        restarted = time.monotonic()
        second.start()
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=45)
        assert video.files["video"].stat().st_size == media_site.files.big_mp4.stat().st_size
        ffprobe(video.files["video"])
        assert [c for c in edits_of(tg, progress) if c.at > restarted], "the new process did not take over"
        await tg.wait_for(lambda: tg.messages[(ALICE.id, progress["message_id"])].get("_deleted"))
        assert len([m for m in tg.replies_to(asked) if "text" in m]) == 1, "the link was taken twice"
        assert len(tg.calls_to("sendVideo", ok=True)) == 1

        # A second process-level request for the same link: Telegram's copy, no download.
        hits = media_site.hits("/slow.mp4")
        again = tg.send(asked["text"], user=BOB)
        resend = await tg.wait_for(lambda: media_call(tg, "sendVideo", again), timeout=20)
        assert resend.files == {} and media_site.hits("/slow.mp4") == hits
    finally:
        await first.stop()
        await second.stop()
    logs = first.output() + second.output()
    assert "telegram bot @mediabot_test_bot running" in logs
    assert tg.token.split(":", 1)[1] not in logs and tg.token not in logs + worker.output()
    assert "/bot[REDACTED]/getUpdates" in logs  # httpx's request lines are there, redacted
