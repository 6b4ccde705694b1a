"""Thumbnails in embeds, the format picker and subtitles in the Discord bot, end to end: the real discord.py
client against the fake Discord (which checks select menus and embeds against Discord's limits), the real
job service, in-process worker and web app (which serves the signed links), and the local media site."""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from PIL import Image

from bots.discord import picker
from bots.discord.runner import running
from core.errors import InvalidRequest
from core.jobs.formats import FormatChoice, MediaFormats
from core.jobs.views import JobView, RequestView
from core.words import human_duration, human_size
from tests.bots.test_discord import Bot, bot_settings
from tests.bots.test_discord_planner import BOT_OPTIONS, assert_nothing_leaked, ended, root
from tests.fakes.discord import Call, FakeDiscord, Interaction, over_limits
from tests.support.media import ffprobe
from tests.support.media_site import MediaSite
from tests.support.servers import free_port
from tests.support.services import running_services
from web.server import serving

pytestmark = pytest.mark.timeout(90)

MIB = 1024 * 1024
MAX_THUMB_SIDE = 320
MAX_THUMB_BYTES = 200_000
EPHEMERAL = 1 << 6


@contextlib.asynccontextmanager
async def discord_bot(fake: FakeDiscord, tmp_path: Path, **overrides: Any) -> AsyncIterator[Bot]:
    """The bot over running services, with the web app listening on its public URL (links fetch)."""
    port = free_port()
    settings = bot_settings(
        fake, tmp_path, host="127.0.0.1", port=port, public_url=f"http://127.0.0.1:{port}", **overrides
    )
    identified = len(fake.identifies)
    async with (
        running_services(settings) as services,
        serving(services),
        running(services, **BOT_OPTIONS),
    ):
        await fake.wait_for(lambda: len(fake.identifies) > identified, timeout=15)
        yield Bot(fake, services)


def fresh(site: MediaSite, path: str) -> str:
    """A media site page under a query no other test uses (a new job, not a cached one)."""
    return site.url(f"{path}?t={uuid.uuid4().hex[:8]}")


async def fetch(url: str) -> tuple[int, str | None, bytes]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return response.status, response.content_type, await response.read()


def embed_of(call: Call) -> dict[str, Any]:
    [embed] = call.json["embeds"]
    return embed


def fields(embed: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed.get("fields") or []}


async def assert_thumbnail(embed: dict[str, Any]) -> tuple[int, int]:
    """The embed's thumbnail URL fetches a JPEG within Discord-friendly sizes (<= 320 px a side, 200 KB)."""
    status, content_type, body = await fetch(embed["thumbnail"]["url"])
    assert status == 200 and content_type == "image/jpeg", (status, content_type)
    assert len(body) <= MAX_THUMB_BYTES
    with Image.open(io.BytesIO(body)) as image:
        assert image.format == "JPEG"
        width, height = image.size
    assert 0 < width <= MAX_THUMB_SIDE and 0 < height <= MAX_THUMB_SIDE, (width, height)
    return width, height


async def person(env: Bot, it: Interaction) -> tuple[RequestView, JobView]:
    request, _ = await root(env, it.user)
    return request, await env.services.jobs.get_job(request.job_id)


# -- embeds and thumbnails -----------------------------------------------------------------------------------


async def test_a_delivered_file_carries_an_embed_with_a_jpeg_thumbnail(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: MediaSite
) -> None:
    async with discord_bot(fake_discord, tmp_path) as env:
        # /formats.html: the site's poster is a 1280x720 PNG; the embed points at a small JPEG made of it.
        it = await fake_discord.slash(
            "download", {"url": fresh(media_site, "/formats.html")}, attachment_size_limit=50 * MIB
        )
        final = await ended(fake_discord, it, timeout=60)
        [video] = final.files
        _, job = await person(env, it)
        assert job.thumbnail and video.size == job.filesize
        embed = embed_of(final)
        assert embed["title"] == "Format Test"
        assert fields(embed) == {
            "Duration": human_duration(job.duration or 0),
            "Size": human_size(video.size),
        }
        assert await assert_thumbnail(embed) == (320, 180), "the 16:9 poster, scaled to 320 px wide"
        assert fake_discord.original(it)["embeds"] == final.json["embeds"], "the fake kept the embed"

        # A song: its uploader is in the embed, its cover art the thumbnail.
        song = await fake_discord.slash("download", {"url": fresh(media_site, "/song.html"), "kind": "audio"})
        final = await ended(fake_discord, song)
        assert final.files[0].filename.endswith(".m4a")
        embed = embed_of(final)
        assert embed["title"] == "Song Title" and fields(embed)["Uploader"] == "Some Artist"
        await assert_thumbnail(embed)

        # No thumbnail anywhere (a bare audio file): the embed goes without one, and the file still arrives.
        bare = await fake_discord.slash("download", {"url": fresh(media_site, "/audio.m4a"), "kind": "audio"})
        final = await ended(fake_discord, bare)
        _, job = await person(env, bare)
        assert not job.thumbnail and len(final.files) == 1
        embed = embed_of(final)
        assert "thumbnail" not in embed and fields(embed)["Size"] == human_size(final.files[0].size)
    assert_nothing_leaked(fake_discord, tmp_path, it, song, bare)


async def test_a_link_delivery_carries_the_embed_too(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: MediaSite
) -> None:
    async with discord_bot(fake_discord, tmp_path, reencode_to_fit=False) as env:
        # /video.mp4 has no site thumbnail: the worker took a frame. Over the 100 KB limit: a link.
        it = await fake_discord.slash(
            "download", {"url": fresh(media_site, "/video.mp4")}, attachment_size_limit=100_000
        )
        final = await ended(fake_discord, it)
        assert not final.files and "Download it: " in final.json["content"]
        _, job = await person(env, it)
        embed = embed_of(final)
        assert fields(embed)["Size"] == human_size(job.filesize or 0)
        await assert_thumbnail(embed)
    assert_nothing_leaked(fake_discord, tmp_path, it)


# -- the format picker ---------------------------------------------------------------------------------------


async def menu_on(fake: FakeDiscord, it: Interaction) -> tuple[Call, dict[str, Any]]:
    """The edit that put the format menu on the command's reply, and the menu."""

    def find() -> tuple[Call, dict[str, Any]] | None:
        for call in fake.edits(it.token):
            menus = fake.selects(call.json or {})
            if menus:
                return call, menus[0]
        return None

    return await fake.wait_for(find, 30)


async def test_the_format_picker_offers_the_real_formats_and_downloads_the_chosen_one(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: MediaSite
) -> None:
    url = fresh(media_site, "/formats.html")
    async with discord_bot(fake_discord, tmp_path) as env:
        it = await fake_discord.slash("download", {"url": url, "choose_format": True})
        edit, menu = await menu_on(fake_discord, it)
        offered = await env.services.jobs.formats(url)
        assert [o["label"] for o in menu["options"]] == [f.label for f in offered.formats]
        big, small = (
            human_size(f.stat().st_size) for f in (media_site.files.big_mp4, media_site.files.video_mp4)
        )
        assert [o["label"] for o in menu["options"]] == [
            f"360p · H.264 + AAC · {big}",
            f"240p · H.264 + AAC · {small}",
        ]
        assert "Format Test" in edit.json["content"] and url in edit.json["content"]
        assert await env.requests(it.user) == [], "nothing is downloaded before a choice"
        assert any(c.get("type") == 3 for row in fake_discord.components_sent() for c in row["components"])

        # Someone else cannot choose for the person who asked.
        other = await fake_discord.choose(it.message_id or "", menu["custom_id"], ["v:240p"])
        [refusal] = await fake_discord.wait_for(lambda: fake_discord.callbacks(other))
        assert refusal.json["type"] == 4 and refusal.json["data"]["flags"] & EPHEMERAL
        assert refusal.json["data"]["content"] == "Only the person who asked can choose the format."

        chose = await fake_discord.choose(it.message_id or "", menu["custom_id"], ["v:240p"], user=it.user)
        [update] = await fake_discord.wait_for(lambda: fake_discord.callbacks(chose))
        assert update.json["type"] == 7 and update.json["data"]["components"] == []
        assert f"240p · H.264 + AAC · {small}" in update.json["data"]["content"]
        final = await ended(fake_discord, chose)
        [video] = final.files
        assert ffprobe(video.path)["streams"][0]["height"] == 240
        assert final.json["content"].startswith("**Format Test**")
        request, job = await person(env, chose)
        assert job.format_id == "240p" and job.status == "done"
        assert fake_discord.messages[it.message_id or ""]["attachments"][0]["size"] == video.size
        await env.delivered(request.id)
    assert_nothing_leaked(fake_discord, tmp_path, it, chose)


async def test_a_stale_menu_gets_one_sentence(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: MediaSite
) -> None:
    async with discord_bot(fake_discord, tmp_path) as env:
        it = await fake_discord.slash(
            "download", {"url": fresh(media_site, "/formats.html"), "choose_format": True}
        )
        _, menu = await menu_on(fake_discord, it)
        # The menu was made when the site still offered 1080p (its message as Discord keeps it).
        stored = fake_discord.selects(fake_discord.messages[it.message_id or ""])[0]
        stored["options"].insert(0, {"label": "1080p mp4 · 99 MB", "value": "v:1080p"})
        chose = await fake_discord.choose(it.message_id or "", menu["custom_id"], ["v:1080p"], user=it.user)
        final = await ended(fake_discord, chose)
        _, job = await person(env, chose)
        assert job.status == "failed" and job.error is not None and job.error.code == "unknown_format"
        # The failed job never got as far as the title: the link stands for it, then the one sentence.
        assert final.json["content"].splitlines() == [f"**{job.url}**", job.error.message]
        assert "240p" in job.error.message and "360p" in job.error.message
        assert not final.files and not final.json.get("embeds")
    assert_nothing_leaked(fake_discord, tmp_path, it, chose)


async def test_a_link_with_nothing_to_choose_is_downloaded_as_usual(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: MediaSite
) -> None:
    async with discord_bot(fake_discord, tmp_path, max_playlist_items=2) as env:
        # A direct file has one format; a playlist's items pick their own: no menu, the download starts.
        single = await fake_discord.slash(
            "download", {"url": fresh(media_site, "/video.mp4"), "choose_format": True}
        )
        final = await ended(fake_discord, single)
        assert len(final.files) == 1 and final.files[0].filename.endswith(".mp4")
        playlist = await fake_discord.slash(
            "download", {"url": media_site.url("/feed.xml?n=2&f=1"), "choose_format": True}
        )
        final = await ended(fake_discord, playlist)
        assert final.json["content"].endswith("Sent 2 of 2 items.")
        posted = fake_discord.followups(playlist.token)
        assert len(posted) == 2 and all(len(c.files) == 1 and c.json["embeds"] for c in posted)
        sent = [c for row in fake_discord.components_sent() for c in row["components"]]
        assert sent and not [c for c in sent if c["type"] == 3], "Cancel buttons, no menu"
        _, job = await person(env, playlist)
        assert job.playlist is not None and job.playlist.count == 2


async def test_a_menu_sent_before_a_restart_still_works(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: MediaSite
) -> None:
    settings = bot_settings(fake_discord, tmp_path)
    async with running_services(settings) as services:
        env = Bot(fake_discord, services)
        async with running(services, **BOT_OPTIONS):
            await fake_discord.wait_for(lambda: fake_discord.identifies)
            it = await fake_discord.slash(
                "download",
                {"url": fresh(media_site, "/formats.html"), "choose_format": True, "subtitles": "de"},
            )
            _, menu = await menu_on(fake_discord, it)
        async with running(services, **BOT_OPTIONS):
            await fake_discord.wait_for(lambda: len(fake_discord.identifies) == 2)
            chose = await fake_discord.choose(
                it.message_id or "", menu["custom_id"], ["v:240p"], user=it.user
            )
            final = await ended(fake_discord, chose)
            assert [f.filename for f in final.files] == ["Format Test.mp4", "Format Test.de.srt"]
            assert "General Kenobi" in final.files[1].path.read_text()
            _, job = await person(env, chose)
            assert job.format_id == "240p" and job.subtitle_langs == ["de"]
    assert_nothing_leaked(fake_discord, tmp_path, it, chose)


# -- subtitles -----------------------------------------------------------------------------------------------


async def test_subtitles_are_embedded_attached_and_missing_ones_said(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: MediaSite
) -> None:
    url = fresh(media_site, "/formats.html")
    async with discord_bot(fake_discord, tmp_path) as env:
        it = await fake_discord.slash(
            "download", {"url": url, "subtitles": "en, fr"}, attachment_size_limit=50 * MIB
        )
        final = await ended(fake_discord, it, timeout=60)
        names = [f.filename for f in final.files]
        assert names == ["Format Test.mp4", "Format Test.en.srt"], names
        video, srt = final.files
        streams = ffprobe(video.path)["streams"]
        assert {s["codec_type"] for s in streams} == {"video", "audio", "subtitle"}
        assert [s["codec_name"] for s in streams if s["codec_type"] == "subtitle"] == ["mov_text"]
        assert "Hello there" in srt.path.read_text()
        assert final.json["content"].splitlines()[-1] == "This video has no subtitles in fr."
        _, job = await person(env, it)
        assert job.subtitles_missing == ["fr"] and [s.lang for s in job.subtitles] == ["en"]

        # The same download where the video only just fits: the .srt goes as a link in the embed.
        tight = await fake_discord.slash(
            "download", {"url": url, "subtitles": "en,fr"}, attachment_size_limit=video.size + 10,
            user=fake_discord.make_user("bob"),
        )  # fmt: skip
        final = await ended(fake_discord, tight)
        assert [f.filename for f in final.files] == ["Format Test.mp4"]
        embed = embed_of(final)
        assert embed["description"].startswith("Subtitles: [en](")
        link = embed["description"].split("](", 1)[1].rstrip(")")
        status, _, body = await fetch(link)
        assert status == 200 and "Hello there" in body.decode()
        assert final.json["content"].splitlines()[-1] == "This video has no subtitles in fr."
    assert_nothing_leaked(fake_discord, tmp_path, it, tight)


async def test_bad_subtitle_languages_get_one_sentence(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: MediaSite
) -> None:
    async with discord_bot(fake_discord, tmp_path) as env:
        it = await fake_discord.slash(
            "download", {"url": fresh(media_site, "/video.mp4"), "subtitles": "english!"}
        )
        [answer] = await fake_discord.wait_for(lambda: fake_discord.callbacks(it))
        assert answer.json["type"] == 4 and answer.json["data"]["flags"] & EPHEMERAL
        assert answer.json["data"]["content"] == '"english!" is not a language code (like en, de or pt-BR).'
        assert await env.requests(it.user) == []

        # Only languages the media lacks: the video arrives anyway, with the one sentence.
        none = await fake_discord.slash(
            "download", {"url": fresh(media_site, "/formats.html"), "subtitles": "ja"}
        )
        final = await ended(fake_discord, none, timeout=60)
        assert len(final.files) == 1 and final.files[0].filename.endswith(".mp4")
        assert final.json["content"].splitlines()[-1] == "This video has no subtitles in ja."
    assert_nothing_leaked(fake_discord, tmp_path, it, none)


def test_the_menu_keeps_to_discords_limits_whatever_the_site_offers() -> None:
    """30 formats, labels of 150 characters, an id too long for an option's value: 25 options, each within
    100 characters, and the fake Discord (which refuses what Discord refuses) takes the menu."""
    formats = [
        FormatChoice(format_id=f"f{i}", kind="video", has_audio=i % 2 == 0, height=1000 - i, label="x" * 150)
        for i in range(30)
    ]
    formats.insert(3, FormatChoice(format_id="y" * 120, kind="audio", has_audio=True, label="long id"))
    options = picker.options(MediaFormats(url="http://127.0.0.1/x", formats=formats))
    assert len(options) == 25 and [o.value for o in options][:3] == ["v:f0", "v:f1", "v:f2"]
    assert all(len(o.label) <= 100 and len(o.value) <= 100 for o in options)
    assert options[1].description == "The best audio is merged in"
    menu = picker.picker_view(("en", "pt-BR"), options).to_components()
    assert menu[0]["components"][0]["custom_id"] == "mediabot:fmt:en,pt-BR"
    assert over_limits({"components": menu}) is None
    menu[0]["components"][0]["options"].append({"label": "one too many", "value": "v:z"})
    assert over_limits({"components": menu}) == "a select menu has 26 options (1 to 25)"
    with pytest.raises(InvalidRequest):
        picker.custom_id(["en-" + "a" * 8] * 8)


# -- video every phone plays ---------------------------------------------------------------------------------


async def test_an_av1_only_video_arrives_as_h264(
    fake_discord: FakeDiscord, tmp_path: Path, media_site: MediaSite
) -> None:
    """Discord's iPhone app, like Telegram's, plays H.264 only: a chat's download of AV1 is converted."""
    async with discord_bot(fake_discord, tmp_path) as env:
        url = media_site.url(f"/codecs.html?offer=av1&t={uuid.uuid4().hex[:8]}")
        it = await fake_discord.slash("download", {"url": url}, attachment_size_limit=50 * MIB)
        final = await ended(fake_discord, it, timeout=60)
        [video] = final.files
        assert video.filename.endswith(".mp4")
        found = {s["codec_type"]: s for s in ffprobe(video.path)["streams"]}
        assert (found["video"]["codec_name"], found["video"]["pix_fmt"]) == ("h264", "yuv420p")
        assert found["audio"]["codec_name"] == "aac"
        _, job = await person(env, it)
        assert job.playable and job.height == 360
