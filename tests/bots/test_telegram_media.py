"""Thumbnails, tagged audio, the format picker and subtitles in the Telegram bot, end to end: the real
python-telegram-bot client against the fake Bot API server (which keeps every multipart file it receives,
the thumbnail part too), the real job service and in-process worker, and the local media site."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from bots.telegram import texts
from bots.telegram.runner import running
from core.errors import UnsupportedUrl
from core.words import human_size
from tests.bots.test_telegram import clip, media_call, reply_text, telegram_bot
from tests.bots.test_telegram_planner import delivered, text_reply, texts_to, uploads_for, video_size
from tests.fakes.telegram import ALICE, BOB, Call, FakeTelegram, jpeg_size
from tests.support.media import CHAPTERS, ffprobe, ffprobe_chapters
from tests.support.media_site import MediaSite
from tests.support.s3 import MotoS3
from tests.support.services import make_settings, running_services, wait_until

pytestmark = pytest.mark.timeout(90)

MAX_THUMB_SIDE = 320
MAX_THUMB_BYTES = 200_000


def fresh(site: MediaSite, path: str) -> str:
    """A media site page under a query no other test uses (a new job, not a cached one)."""
    return site.url(f"{path}?t={uuid.uuid4().hex[:8]}")


def assert_telegram_thumbnail(call: Call) -> tuple[int, int]:
    """The upload carried a thumbnail Telegram accepts: a JPEG, at most 320 px a side and 200 KB."""
    assert "thumbnail" in call.files, f"{call.method} without a thumbnail part: {sorted(call.params)}"
    thumb = call.files["thumbnail"]
    width, height = jpeg_size(thumb)  # raises when the bytes are not a JPEG
    assert 0 < width <= MAX_THUMB_SIDE and 0 < height <= MAX_THUMB_SIDE, (width, height)
    assert thumb.stat().st_size <= MAX_THUMB_BYTES
    kind = "video" if call.method == "sendVideo" else "audio"
    assert call.result[kind]["thumbnail"]["width"] == width, "the fake server took it as Telegram would"
    return width, height


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (b["text"], b["callback_data"]) for row in message["reply_markup"]["inline_keyboard"] for b in row
    ]


async def keyboard_reply(tg: FakeTelegram, asked: dict[str, Any], timeout: float = 30) -> dict[str, Any]:
    """The bot's format picker under a message."""
    return await tg.wait_for(
        lambda: next(
            (
                m
                for m in tg.replies_to(asked)
                if "fmt:" in str(m.get("reply_markup")) and not m.get("_deleted")
            ),
            None,
        ),
        timeout,
    )


async def callback_answer(tg: FakeTelegram, query_id: str) -> Call:
    return await tg.wait_call("answerCallbackQuery", lambda c: c["callback_query_id"] == query_id)


def replies_after(tg: FakeTelegram, asked: dict[str, Any], method: str) -> list[Call]:
    return [c for c in uploads_for(tg, asked) if c.method == method]


# -- thumbnails ----------------------------------------------------------------------------------------------


async def test_video_upload_carries_a_jpeg_thumbnail_and_its_details(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    """/formats.html: the site's poster is a 1280x720 PNG; Telegram gets a JPEG of at most 320 px. A plain
    file (/clip/*.mp4) has no poster: a frame of the video is the thumbnail."""
    tg = telegram_server
    async with telegram_bot(tmp_path, tg) as bot:
        poster = tg.send(fresh(media_site, "/formats.html"))
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", poster), timeout=40)
        width, height = assert_telegram_thumbnail(video)
        assert max(width, height) == MAX_THUMB_SIDE and round(width / height, 2) == round(16 / 9, 2)
        stream = next(s for s in ffprobe(video.files["video"])["streams"] if s["codec_type"] == "video")
        assert (video["width"], video["height"]) == (stream["width"], stream["height"])
        assert video["duration"] == 3 and video["supports_streaming"] is True

        frame = tg.send(clip(media_site))
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", frame), timeout=40)
        assert_telegram_thumbnail(video)
        stream = next(s for s in ffprobe(video.files["video"])["streams"] if s["codec_type"] == "video")
        assert (video["width"], video["height"], video["duration"]) == (stream["width"], stream["height"], 3)
        await wait_until(lambda: delivered(bot.services))
        assert texts_to(tg, frame) == [] and texts_to(tg, poster) == []


async def test_parts_of_a_split_and_a_smaller_copy_carry_the_thumbnail(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    limit = video_size(media_site) // 2
    async with telegram_bot(tmp_path, tg, telegram_upload_limit_mb=limit / 1e6, telegram_split=True) as bot:
        asked = tg.send(clip(media_site))
        await text_reply(tg, asked, "Full quality:", timeout=45)
        parts = uploads_for(tg, asked)
        assert len(parts) >= 2
        for part in parts:
            assert part.method == "sendVideo" and part.files["video"].stat().st_size <= limit
            assert_telegram_thumbnail(part)
        await wait_until(lambda: delivered(bot.services))

    # /qualities.html with a 1 MB limit: the 240p format is fetched as the copy that fits.
    async with telegram_bot(tmp_path / "fit", tg, telegram_upload_limit_mb=1) as bot:
        asked = tg.send(media_site.url("/qualities.html"))
        copy = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=45)
        assert copy["height"] == 240 and copy.files["video"].stat().st_size <= 1_000_000
        assert_telegram_thumbnail(copy)
        await wait_until(lambda: delivered(bot.services))


# -- tagged audio --------------------------------------------------------------------------------------------


async def test_audio_is_tagged_with_title_artist_date_and_cover(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg) as bot:
        asked = tg.send(f"/audio {fresh(media_site, '/song.html')}")
        audio = await tg.wait_for(lambda: media_call(tg, "sendAudio", asked), timeout=40)
        assert (audio["title"], audio["performer"], audio["duration"]) == ("Song Title", "Some Artist", 3)
        assert audio.result["audio"]["title"] == "Song Title"
        assert_telegram_thumbnail(audio)

        # The file itself carries the tags and the cover, for players outside Telegram.
        probe = ffprobe(audio.files["audio"])
        tags = {k.lower(): v for k, v in probe["format"].get("tags", {}).items()}
        assert tags.get("title") == "Song Title" and tags.get("artist") == "Some Artist", tags
        assert tags.get("date", "").startswith("2026"), tags
        cover = [s for s in probe["streams"] if s["codec_type"] == "video"]
        assert cover and cover[0].get("disposition", {}).get("attached_pic") == 1, probe["streams"]
        assert any(s["codec_type"] == "audio" for s in probe["streams"])

        # A bare file with no thumbnail anywhere: no thumbnail part, and nothing said about it.
        bare = tg.send(f"/audio {fresh(media_site, '/audio.m4a')}")
        plain = await tg.wait_for(lambda: media_call(tg, "sendAudio", bare), timeout=40)
        assert "thumbnail" not in plain.files and "thumbnail" not in plain.params
        assert "thumbnail" not in plain.result["audio"]
        await wait_until(lambda: delivered(bot.services))
        assert texts_to(tg, bare) == [], "a missing thumbnail is nothing to tell the person about"


# -- the format picker ---------------------------------------------------------------------------------------


async def test_settings_turn_on_the_picker_and_a_press_downloads_that_format(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    url = fresh(media_site, "/formats.html")
    settings = make_settings(
        tmp_path, telegram_token=tg.token, telegram_api_url=tg.api_url, shutdown_grace_s=0
    )
    async with running_services(settings) as services:
        async with running(services):
            menu_ask = tg.send("/settings")
            menu = await tg.wait_for(
                lambda: next((m for m in tg.replies_to(menu_ask) if m.get("reply_markup")), None)
            )
            assert ("Formats: ask each time", "set:ask:1") in buttons(menu)
            assert ("✓ Formats: use my default", "set:ask:0") in buttons(menu)
            tg.press(menu, "set:ask:1")
            await tg.wait_for(
                lambda: "choice of their formats" in tg.messages[(ALICE.id, menu["message_id"])]["text"]
            )
            assert (await services.prefs.get("telegram", str(ALICE.id))).ask_format is True
            assert not (await services.prefs.get("telegram", str(BOB.id))).ask_format

            asked = tg.send(url)
            picker = await keyboard_reply(tg, asked)
        # The bot restarts between the question and the answer: the keyboard still works (no state in memory).

        offered = await services.jobs.formats(url)
        labels = [f.label for f in offered.formats]
        big, small = (
            human_size(f.stat().st_size) for f in (media_site.files.big_mp4, media_site.files.video_mp4)
        )
        assert labels == [f"360p · H.264 + AAC · {big}", f"240p · H.264 + AAC · {small}"], (
            labels
        )  # sizes as the site states
        shown = buttons(picker)
        assert [text for text, _ in shown] == [*labels, "Audio only", "Best"]
        assert all(len(data.encode()) <= 64 for _, data in shown)
        assert picker["text"].startswith("Format Test")
        data_240 = next(data for text, data in shown if text.startswith("240p"))

        async with running(services):
            # Someone else can't choose for Alice.
            query = tg.press(picker, data_240, user=BOB)
            assert (await callback_answer(tg, query)).get("text") == texts.CHOICE_NOT_YOURS

            big = media_site.downloads("/big.mp4")
            tg.press(picker, data_240)
            video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=40)
            assert video["height"] == 240
            assert video.files["video"].stat().st_size == video_size(media_site), "the 240p file, not 360p"
            # The keyboard message became the progress message, and went away once the video was there.
            await tg.wait_for(lambda: tg.messages[(ALICE.id, picker["message_id"])].get("_deleted"))
            progress_edits = tg.messages[(ALICE.id, picker["message_id"])].get("_edits", [])
            assert progress_edits and "Queued" in progress_edits[0]
            await wait_until(lambda: delivered(services))
            assert media_site.downloads("/big.mp4") == big, "the 360p file was never fetched"

            # "Audio only" on the same link: an audio upload; "Best": the 360p video (another file_id).
            again = tg.send(url)
            picker2 = await keyboard_reply(tg, again)
            tg.press(picker2, next(data for text, data in buttons(picker2) if text == "Audio only"))
            audio = await tg.wait_for(lambda: media_call(tg, "sendAudio", again), timeout=40)
            streams = ffprobe(audio.files["audio"])["streams"]
            # sound, and the poster as cover art: no moving picture
            assert [s["codec_type"] for s in streams if not s.get("disposition", {}).get("attached_pic")] == [
                "audio"
            ]

            third = tg.send(url)
            picker3 = await keyboard_reply(tg, third)
            tg.press(picker3, next(data for text, data in buttons(picker3) if text == "Best"))
            best = await tg.wait_for(lambda: media_call(tg, "sendVideo", third), timeout=60)
            assert best.files, "a new upload, not Telegram's copy of the 240p file"
            assert best["height"] == 360
            await wait_until(lambda: delivered(services))

            # The 240p choice again: answered from Telegram's copy of the 240p upload (format in the cache key).
            fourth = tg.send(url, user=ALICE)
            picker4 = await keyboard_reply(tg, fourth)
            tg.press(picker4, data_240)
            resent = await tg.wait_for(lambda: media_call(tg, "sendVideo", fourth), timeout=30)
            assert resent.files == {} and resent["video"] == video.result["video"]["file_id"]
            await tg.wait_for(lambda: tg.messages[(ALICE.id, picker4["message_id"])].get("_deleted"))


async def test_picker_bad_choices_and_links_without_a_choice(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg) as bot:
        await bot.services.prefs.set("telegram", str(ALICE.id), ask_format=True)
        asked = tg.send(fresh(media_site, "/formats.html"))
        picker = await keyboard_reply(tg, asked)

        # A choice that was never offered (an old keyboard, a forged press): one sentence each.
        for data in ("fmt:7:v:240p", "fmt:x", "fmt:0:q:240p"):
            query = tg.press(picker, data)
            assert (await callback_answer(tg, query)).get("text") == texts.CHOICE_STALE
        # A format the link does not have: the download fails with the sentence naming the real ones.
        tg.press(picker, "fmt:0:v:1080p")
        await tg.wait_for(
            lambda: "no format" in str(tg.messages[(ALICE.id, picker["message_id"])].get("text")), timeout=40
        )
        sentence = tg.messages[(ALICE.id, picker["message_id"])]["text"]
        assert sentence == 'This link has no format "1080p". Its formats are: 240p, 360p.'
        assert "reply_markup" not in tg.messages[(ALICE.id, picker["message_id"])]
        assert media_call(tg, "sendVideo", asked) is None

        # A keyboard whose link message is gone (deleted, or sent before that message existed): one sentence.
        lost = dict(picker)
        lost.pop("reply_to_message")
        query = tg.press(lost, "fmt:0:v:240p")
        assert (await callback_answer(tg, query)).get("text") == texts.CHOICE_STALE

        # A playlist has no formats of its own: it is downloaded as the default (its items, one by one).
        playlist = tg.send(media_site.url(f"/feed.xml?n=2&t={uuid.uuid4().hex[:6]}"))
        await tg.wait_for(lambda: len(replies_after(tg, playlist, "sendVideo")) == 2, timeout=60)
        assert not [m for m in tg.replies_to(playlist) if "fmt:" in str(m.get("reply_markup"))]

        # A link whose probe fails: the probe's sentence, no keyboard, nothing queued.
        broken = tg.send(media_site.url("/nomedia.html"))
        assert await reply_text(tg, broken, timeout=30) == UnsupportedUrl.no_media_message
        assert [m["text"] for m in tg.replies_to(broken)] == [UnsupportedUrl.no_media_message]
        requests, _ = await bot.services.jobs.list_requests("telegram", str(ALICE.id), limit=100)
        assert not [r for r, _ in requests if "nomedia" in r.url]

        # /video and /audio say what they want: no question.
        direct = tg.send(f"/video {clip(media_site)}")
        await tg.wait_for(lambda: media_call(tg, "sendVideo", direct), timeout=40)
        assert not [m for m in tg.replies_to(direct) if "fmt:" in str(m.get("reply_markup"))]


# -- subtitles -----------------------------------------------------------------------------------------------


async def documents_to(tg: FakeTelegram, asked: dict[str, Any], n: int, timeout: float = 40) -> list[Call]:
    return await tg.wait_for(
        lambda: (docs := replies_after(tg, asked, "sendDocument")) and len(docs) >= n and docs, timeout
    )


async def test_subs_default_languages_embed_and_send_srt_and_name_the_missing_ones(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    url = fresh(media_site, "/formats.html")
    async with telegram_bot(tmp_path, tg) as bot:
        prefs = bot.services.prefs
        assert await reply_text(tg, tg.send("/subs")) == texts.subs_status(())
        assert await reply_text(tg, tg.send("/subs en,fr")) == "Future links come with subtitles in en, fr."
        assert (await prefs.get("telegram", str(ALICE.id))).subtitles == ("en", "fr")
        assert (
            await reply_text(tg, tg.send("/subs e!n"))
            == '"e!n" is not a language code (like en, de or pt-BR).'
        )
        assert (await prefs.get("telegram", str(ALICE.id))).subtitles == ("en", "fr"), (
            "a typo changes nothing"
        )

        asked = tg.send(url)
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=60)
        streams = ffprobe(video.files["video"])["streams"]
        embedded = [s for s in streams if s["codec_type"] == "subtitle"]
        assert [s["codec_name"] for s in embedded] == ["mov_text"]
        assert embedded[0].get("tags", {}).get("language") in ("en", "eng")
        assert_telegram_thumbnail(video)

        [srt] = await documents_to(tg, asked, 1)
        assert srt.files["document"].name.endswith(".en.srt")
        assert "Hello there" in srt.files["document"].read_text()
        missing = await text_reply(tg, asked, "no subtitles")
        assert missing == "This video has no subtitles in fr."
        # In that order: the video, its .srt, then the sentence.
        sentence = next(m for m in tg.replies_to(asked) if m.get("text") == missing)
        assert video.result["message_id"] < srt.result["message_id"] < sentence["message_id"]
        await wait_until(lambda: delivered(bot.services))

        # The same link with the same languages: Telegram's copy of that video, and the .srt again.
        again = tg.send(url, user=ALICE)
        resent = await tg.wait_for(lambda: media_call(tg, "sendVideo", again), timeout=30)
        assert resent.files == {} and resent["video"] == video.result["video"]["file_id"]
        await documents_to(tg, again, 1)
        await text_reply(tg, again, "no subtitles in fr")

        # Off: the same link is another variant (no subtitles): never the subtitled video's file_id.
        assert await reply_text(tg, tg.send("/subs off")) == "Subtitles are off for future links."
        assert (await prefs.get("telegram", str(ALICE.id))).subtitles == ()
        plain = tg.send(url)
        bare = await tg.wait_for(lambda: media_call(tg, "sendVideo", plain), timeout=40)
        assert bare.files and bare.get("video") != video.result["video"]["file_id"]
        assert not [s for s in ffprobe(bare.files["video"])["streams"] if s["codec_type"] == "subtitle"]
        await wait_until(lambda: delivered(bot.services))
        assert replies_after(tg, plain, "sendDocument") == [] and texts_to(tg, plain) == []


async def test_subs_for_one_link_and_a_language_the_media_lacks(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    tg = telegram_server
    async with telegram_bot(tmp_path, tg) as bot:
        asked = tg.send(f"/subs de {fresh(media_site, '/formats.html')}")
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=60)
        assert [s for s in ffprobe(video.files["video"])["streams"] if s["codec_type"] == "subtitle"]
        [srt] = await documents_to(tg, asked, 1)
        assert srt.files["document"].name.endswith(".de.srt")
        assert "Hello there" not in srt.files["document"].read_text(), "the German file, not the English one"
        assert (await bot.services.prefs.get("telegram", str(ALICE.id))).subtitles == (), "only that link"

        # A file with no subtitles at all: the video arrives, and one sentence says so.
        bare = tg.send(f"/subs de {clip(media_site)}")
        await tg.wait_for(lambda: media_call(tg, "sendVideo", bare), timeout=40)
        assert await text_reply(tg, bare, "subtitles") == "This video has no subtitles in de."
        await wait_until(lambda: delivered(bot.services))
        assert replies_after(tg, bare, "sendDocument") == []

        assert await reply_text(tg, tg.send(f"/subs {clip(media_site)}")) == texts.SUBS_USAGE


async def test_thumbnail_and_subtitles_from_s3_storage_go_through_a_temporary_folder(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite, moto_s3: MotoS3
) -> None:
    """Files not on local disk are fetched for the upload (video, thumbnail, .srt) and removed after it."""
    tg = telegram_server
    bucket = moto_s3.new_bucket()
    async with telegram_bot(
        tmp_path, tg, storage="s3", s3_bucket=bucket, s3_endpoint_url=moto_s3.endpoint_url
    ) as bot:
        asked = tg.send(f"/subs en {fresh(media_site, '/formats.html')}")
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=60)
        assert_telegram_thumbnail(video)
        [srt] = await documents_to(tg, asked, 1)
        assert "Hello there" in srt.files["document"].read_text()
        await wait_until(lambda: delivered(bot.services))
        assert any(key.endswith(".jpg") for key in moto_s3.keys(bucket)), moto_s3.keys(bucket)
        workdir = bot.services.settings.tmp_dir / "telegram"
        assert not workdir.exists() or list(workdir.iterdir()) == [], "temporary copies removed"


# -- video every phone plays ---------------------------------------------------------------------------------


def codec_page(site: MediaSite, offer: str) -> str:
    """The media site's DASH page offering `offer` (vp9, av1, h264-240...), under a query no other test uses."""
    return site.url(f"/codecs.html?offer={offer}&t={uuid.uuid4().hex[:8]}")


def streams(call: Call) -> dict[str, dict[str, Any]]:
    """The picture and sound streams of the video a sendVideo uploaded."""
    probe = ffprobe(call.files["video"])
    return {s["codec_type"]: s for s in probe["streams"] if s["codec_type"] in ("video", "audio")}


def assert_shown_inline(call: Call) -> None:
    """sendVideo carried the four things Telegram needs to show a video at once: streaming, its picture's
    size and its length, each true to the file."""
    probe = ffprobe(call.files["video"])
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    assert call.get("supports_streaming") is True, call.params
    assert (call.get("width"), call.get("height")) == (video["width"], video["height"]), call.params
    assert call.get("duration") == round(float(probe["format"]["duration"])) > 0, call.params


async def test_a_vp9_only_video_arrives_as_h264_that_plays_inline_with_its_chapters(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    """Telegram on iPhones plays no VP9 in chat: the bot sends H.264/AAC MP4, converted when the site has no
    H.264, or the site's own H.264 when it has one of at least half the height."""
    tg = telegram_server
    async with telegram_bot(tmp_path, tg) as bot:
        asked = tg.send(codec_page(media_site, "vp9"))
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=60)
        found = streams(video)
        assert (found["video"]["codec_name"], found["video"]["pix_fmt"]) == ("h264", "yuv420p")
        assert (found["video"]["height"], found["audio"]["codec_name"]) == (360, "aac")
        assert video.files["video"].name.endswith(".mp4")
        assert_shown_inline(video)
        assert_telegram_thumbnail(video)
        chapters = ffprobe_chapters(video.files["video"])
        assert [c["tags"]["title"] for c in chapters] == [name for name, _, _ in CHAPTERS]

        vp9_downloads = media_site.downloads("/codecs/vp9-360.webm") + media_site.downloads(
            "/codecs/vp9-240.webm"
        )
        lower = tg.send(codec_page(media_site, "vp9,h264-240"))
        video = await tg.wait_for(lambda: media_call(tg, "sendVideo", lower), timeout=60)
        found = streams(video)
        assert (found["video"]["codec_name"], found["video"]["height"]) == ("h264", 240)
        assert_shown_inline(video)
        # The site's H.264 was taken: no VP9 fetched, nothing converted.
        assert (
            media_site.downloads("/codecs/vp9-360.webm") + media_site.downloads("/codecs/vp9-240.webm")
            == vp9_downloads
        )
        await wait_until(lambda: delivered(bot.services))

        # The same link again: answered from Telegram's copy of the playable file, nothing sent anew.
        uploads = len(tg.calls_to("sendVideo"))
        again = tg.send(asked["text"])
        resent = await tg.wait_for(lambda: media_call(tg, "sendVideo", again), timeout=30)
        assert resent.files == {} and resent["video"] == video_file_id(tg, asked)
        assert len(tg.calls_to("sendVideo")) == uploads + 1

    # MEDIABOT_CHAT_PLAYABLE=false: the chat gets the site's original, as the API does.
    async with telegram_bot(tmp_path / "off", tg, chat_playable=False) as bot:
        asked = tg.send(codec_page(media_site, "vp9"))
        call = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=60)
        assert streams(call)["video"]["codec_name"] == "vp9"
        await wait_until(lambda: delivered(bot.services))


def video_file_id(tg: FakeTelegram, asked: dict[str, Any]) -> str:
    call = media_call(tg, "sendVideo", asked)
    assert call is not None and call.result is not None
    return str(call.result["video"]["file_id"])


async def test_parts_of_a_split_carry_their_own_length_and_picture(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    """Each part is a video of its own: Telegram gets that part's length (not the whole's, not none) and size."""
    tg = telegram_server
    limit = video_size(media_site) // 2
    async with telegram_bot(tmp_path, tg, telegram_upload_limit_mb=limit / 1e6, telegram_split=True) as bot:
        asked = tg.send(clip(media_site))
        await text_reply(tg, asked, "Full quality:", timeout=45)
        parts = uploads_for(tg, asked)
        assert len(parts) >= 2
        for part in parts:
            assert part.method == "sendVideo"
            assert_shown_inline(part)
        await wait_until(lambda: delivered(bot.services))


async def test_a_copy_that_fits_is_a_playable_video_too(
    tmp_path: Path, telegram_server: FakeTelegram, media_site: MediaSite
) -> None:
    """VP9 at 360p beside H.264 at 144p only: the chat's video is the 360p converted, too big for a 100 kB
    limit; the copy that fits is the site's 144p H.264 (by its stated size), not another VP9 to convert."""
    tg = telegram_server
    async with telegram_bot(tmp_path, tg, telegram_upload_limit_mb=0.1) as bot:
        asked = tg.send(codec_page(media_site, "vp9,h264-144"))
        copy = await tg.wait_for(lambda: media_call(tg, "sendVideo", asked), timeout=60)
        found = streams(copy)
        assert (found["video"]["codec_name"], found["video"]["height"]) == ("h264", 144)
        assert copy.files["video"].stat().st_size <= 100_000
        assert_shown_inline(copy)
        assert "144p" in await text_reply(tg, asked, "to fit")
        await wait_until(lambda: delivered(bot.services))
