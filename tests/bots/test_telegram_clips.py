"""Clips, animations and chapter splits in Telegram, end to end: the real bot against the fake Bot API, the real
worker, the counter media on the local media site (frames that say which they are, three chapters)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bots.telegram import texts
from tests.bots.test_telegram import media_call, reply_text, telegram_bot
from tests.fakes.telegram import BOB, FakeTelegram
from tests.support.chaptered import FPS, frame_number
from tests.support.media import ffprobe
from tests.support.media_site import MediaSite
from tests.support.sponsorblock import FakeSponsorBlock

pytestmark = pytest.mark.timeout(90)


def duration(path: Path) -> float:
    return float(ffprobe(path)["format"]["duration"])


def audio_streams(path: Path) -> int:
    return sum(1 for s in ffprobe(path)["streams"] if s["codec_type"] == "audio")


async def test_clip_command_range_after_link_reply_and_gif(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    url = media_site.url("/counter.mp4") + "?tg=clips"
    async with telegram_bot(tmp_path, tg):
        asked = tg.send(f"/clip {url} 0:05-0:09")
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=60)
        path = video.files["video"]
        assert abs(await asyncio.to_thread(duration, path) - 4.0) <= 0.1
        assert await asyncio.to_thread(frame_number, path, 0) == 5 * FPS
        assert video["caption"] == "1 chapter"  # 0:05-0:09 lies within "Middle part"

        # The same range written after the link is the same clip: Telegram's copy is sent again.
        hits = media_site.hits("/counter.mp4")
        again = tg.send(f"{url} 0:05-0:09", user=BOB)
        resent = await tg.wait_for(lambda: media_call(tg, "sendVideo", again))
        assert resent.files == {} and resent["video"] == video.result["video"]["file_id"]

        # A reply with a range to the video the bot sent: that part of the same media, cut from the stored file.
        sent = tg.messages[(asked["chat"]["id"], video.result["message_id"])]
        replied = tg.send("0:01-0:02.5", reply_to=sent)
        part = await tg.wait_for(lambda: media_call(tg, "sendVideo", replied), timeout=60)
        assert abs(await asyncio.to_thread(duration, part.files["video"]) - 1.5) <= 0.1
        assert await asyncio.to_thread(frame_number, part.files["video"], 0) == 1 * FPS

        # /gif: an animation, without sound.
        gif = tg.send(f"/gif {url} 0:02-0:04")
        animation = await tg.wait_for(lambda: media_call(tg, "sendAnimation", gif), timeout=60)
        assert await asyncio.to_thread(audio_streams, animation.files["animation"]) == 0
        assert abs(await asyncio.to_thread(duration, animation.files["animation"]) - 2.0) <= 0.1
        assert media_site.hits("/counter.mp4") == hits  # all of it from the one stored download

        # Bad input: one sentence each.
        assert await reply_text(tg, tg.send(f"{url} 1:45-1:20")) == (
            "The clip must end after it starts: 1:20 is not after 1:45."
        )
        assert await reply_text(tg, tg.send(f"/clip {url}")) == texts.CLIP_USAGE
        assert await reply_text(tg, tg.send(f"/clip {url} 2:00-2:10")) == (
            "The clip starts at 2:00, but the media is only 0:16 long."
        )


async def test_chapters_command_sends_each_chapter(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    url = media_site.url("/counter.mp4") + "?tg=chapters"
    async with telegram_bot(tmp_path, tg):
        asked = tg.send(f"/chapters {url}")

        def parts() -> list[Any] | None:
            sent = [
                c for c in tg.calls_to("sendVideo", ok=True)
                if (c.get("reply_parameters") or {}).get("message_id") == asked["message_id"]
            ]  # fmt: skip
            return sent if len(sent) == 3 else None

        # Each chapter is an item of its own, delivered like a playlist's (as each is cut), titled by number.
        sent = sorted(await tg.wait_for(parts, timeout=60), key=lambda c: c["caption"])
        assert [c["caption"] for c in sent] == ["1/3 · Opening", "2/3 · Middle part", "3/3 · Credits"]
        lengths = [await asyncio.to_thread(duration, c.files["video"]) for c in sent]
        assert [round(x) for x in lengths] == [4, 8, 4]

        def listing() -> str | None:
            texts_ = [m.get("text") or "" for m in tg.replies_to(asked)]
            return next((t for t in texts_ if "3 sent" in t), None)

        text = await tg.wait_for(listing, timeout=30)
        assert "Split by chapters: 3 chapters · 3 sent" in text, text
        assert "2. 2/3 · Middle part · sent" in text, text


async def test_sponsor_default_in_settings_applies_to_plain_links(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with FakeSponsorBlock() as sb:
        sb.add("Generic", "counter", [(6.0, 8.0, "sponsor"), (10.0, 11.0, "sponsor")], video_duration=16.0)
        async with telegram_bot(tmp_path, tg, sponsorblock_url=sb.url) as bot:
            menu_ask = tg.send("/settings")
            menu = await tg.wait_for(
                lambda: next((m for m in tg.replies_to(menu_ask) if m.get("reply_markup")), None)
            )
            assert "Sponsor, self-promotion and intro segments: kept." in menu["text"]
            rows = menu["reply_markup"]["inline_keyboard"]
            assert [b["callback_data"] for b in rows[-2]] == ["set:sb:keep", "set:sb:remove", "set:sb:mark"]
            tg.press(menu, "set:sb:remove")
            await tg.wait_for(
                lambda: "segments: removed." in tg.messages[(menu["chat"]["id"], menu["message_id"])]["text"]
            )
            assert (
                await bot.services.prefs.get("telegram", str(menu["chat"]["id"]))
            ).sponsorblock == "remove"

            # A plain link: the sponsor segments go, and the caption says so.
            url = media_site.url("/counter.mp4") + "?tg=sponsors"
            plain = tg.send(url)
            video = await tg.wait_for(lambda: media_call(tg, "sendVideo", plain), timeout=60)
            assert video["caption"].endswith("2 sponsor segments removed, 3 s saved"), video["caption"]
            assert abs(await asyncio.to_thread(duration, video.files["video"]) - 13.0) <= 0.3
            # A clip is a cut already: the default does not apply (and does not refuse it).
            clipped = tg.send(f"{url} 0:01-0:02")
            part = await tg.wait_for(lambda: media_call(tg, "sendVideo", clipped), timeout=60)
            assert abs(await asyncio.to_thread(duration, part.files["video"]) - 1.0) <= 0.1
