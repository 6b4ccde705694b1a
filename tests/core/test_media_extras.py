"""What a person receives beyond the media itself, through the job service on the embedded stack (SQLite and
PostgreSQL) against the local media site: thumbnails, tagged audio with cover art, the formats a link offers,
a chosen format, subtitles, and removing a download from history."""

from __future__ import annotations

import asyncio
import struct
import subprocess
import uuid
from pathlib import Path

import pytest

from core.bootstrap import Services
from core.errors import InvalidRequest, NotFound, PrivateAddress, UnsupportedUrl
from core.jobs.choices import SubmitRequest
from core.jobs.views import THUMBNAIL, JobView, subtitle_asset
from tests.support.media import FFMPEG, FILE_TAGS, ffprobe
from tests.support.media_site import SUBTITLES


def ask(url: str, kind: str = "video", user: str = "alice", **choices: object) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id=user, kind=kind, **choices)  # type: ignore[arg-type]


def jpeg_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a JPEG's start-of-frame marker; fails on anything that is not a JPEG."""
    assert data[:2] == b"\xff\xd8", "not a JPEG"
    pos = 2
    while pos < len(data):
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        pos += 2 + length
    raise AssertionError("no SOF marker")


async def done(services: Services, request: SubmitRequest) -> JobView:
    submission = await services.jobs.submit(request)
    final = await services.jobs.wait(submission.job.id, timeout=90)
    assert final.status == "done", final.error
    return final


async def thumbnail_bytes(services: Services, view: JobView, tmp_path: Path) -> bytes:
    dest = tmp_path / f"thumb-{view.id}.jpg"
    await services.jobs.fetch_file(view.id, dest, asset=THUMBNAIL)
    return dest.read_bytes()


async def test_a_video_gets_the_sites_thumbnail_within_chat_limits(
    embedded: Services, media_site, tmp_path: Path
) -> None:
    final = await done(embedded, ask(media_site.url("/formats.html"), format_id="240p"))
    assert final.thumbnail
    data = await thumbnail_bytes(embedded, final, tmp_path)
    width, height = jpeg_size(data)
    # The site's poster is 1280x720: scaled to 320 px wide keeping its shape, not a 320x240 video frame.
    assert (width, height) == (320, 180)
    assert len(data) <= 200_000
    link = await embedded.jobs.asset_link(final, THUMBNAIL)
    assert link is not None and "thumbnail.jpg" in link


async def test_a_video_without_a_site_thumbnail_gets_a_frame(
    embedded: Services, media_site, tmp_path: Path
) -> None:
    final = await done(embedded, ask(media_site.url(f"/clip/{uuid.uuid4().hex[:10]}.mp4")))
    assert final.thumbnail
    assert jpeg_size(await thumbnail_bytes(embedded, final, tmp_path)) == (320, 240)


async def test_audio_without_any_picture_has_no_thumbnail_and_does_not_fail(
    embedded: Services, media_site
) -> None:
    final = await done(embedded, ask(media_site.url("/audio.m4a"), kind="audio"))
    assert not final.thumbnail
    assert await embedded.jobs.asset_link(final, THUMBNAIL) is None
    with pytest.raises(NotFound):
        await embedded.jobs.link(final.id, asset=THUMBNAIL)


async def test_audio_is_tagged_with_title_artist_date_and_cover(
    embedded: Services, media_site, tmp_path: Path
) -> None:
    final = await done(embedded, ask(media_site.url("/song.html"), kind="audio"))
    assert (final.title, final.uploader, final.upload_date) == ("Song Title", "Some Artist", "20261102")
    path = await embedded.jobs.local_path(final.id)
    assert path is not None and path.suffix == ".m4a"
    probe = ffprobe(path)
    tags = {k.lower(): v for k, v in probe["format"].get("tags", {}).items()}
    assert tags.get("title") == "Song Title"
    assert tags.get("artist") == "Some Artist"
    assert str(tags.get("date", "")).startswith("2026")
    cover = [s for s in probe["streams"] if s.get("disposition", {}).get("attached_pic") == 1]
    assert cover, "the cover art is embedded"
    assert final.thumbnail and jpeg_size(await thumbnail_bytes(embedded, final, tmp_path))[0] <= 320


def tag_sets(path: Path) -> tuple[str, list[dict[str, str]]]:
    """The sound's codec, and every set of tags a player may read: the file's, and the sound stream's (where
    Ogg keeps them)."""
    probe = ffprobe(path)
    [sound] = [s for s in probe["streams"] if s["codec_type"] == "audio"]
    sets = [probe["format"].get("tags", {}), sound.get("tags", {})]
    return sound["codec_name"], [{k.lower(): v for k, v in tags.items()} for tags in sets]


def sound_md5(path: Path) -> str:
    """A hash of the sound's packets as stored: equal only when the sound was copied, not re-encoded."""
    out = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-map", "0:a", "-c", "copy", "-f", "md5", "-"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    return out.strip()


@pytest.mark.parametrize("audio_format", ["mp3", "m4a", "opus"])
async def test_every_audio_type_carries_the_sites_tags_not_the_files_own(
    embedded: Services, media_site, audio_format: str
) -> None:
    """The source file says "File Own Title" by "File Own Artist"; the page says "Song Title" by "Some
    Artist": whichever type comes out, a player reads the page's words (an Opus file used to keep the
    file's own, on its stream)."""
    url = media_site.url(f"/tagged-song.html?src=m4a&t={uuid.uuid4().hex[:8]}")
    final = await done(embedded, ask(url, kind="audio", audio_format=audio_format))
    path = await embedded.jobs.local_path(final.id)
    assert path is not None and path.suffix == f".{audio_format}"
    codec, sets = tag_sets(path)
    assert codec == {"mp3": "mp3", "m4a": "aac", "opus": "opus"}[audio_format]
    named = [tags for tags in sets if "title" in tags or "artist" in tags]
    assert named, "the file is tagged"
    for tags in named:
        assert (tags.get("title"), tags.get("artist")) == ("Song Title", "Some Artist"), tags
    # What the page does not say is the file's own, as in every type.
    assert any(tags.get("album") == FILE_TAGS["album"] for tags in sets)


async def test_audio_that_already_is_mp3_or_opus_keeps_its_sound(embedded: Services, media_site) -> None:
    """No type asked for: MP3 and Opus sound is kept as it is (retagged, not re-encoded), while a sound of
    another kind (Vorbis) becomes the operator's type."""
    for src, ext, codec in (("mp3", "mp3", "mp3"), ("opus", "opus", "opus")):
        url = media_site.url(f"/tagged-song.html?src={src}&t={uuid.uuid4().hex[:8]}")
        final = await done(embedded, ask(url, kind="audio"))
        assert final.ext == ext and final.audio_format is None
        path = await embedded.jobs.local_path(final.id)
        assert path is not None and path.suffix == f".{ext}"
        source = media_site.files.tagged[src]
        assert sound_md5(path) == sound_md5(source), f"the {src} sound was re-encoded"
        found, sets = tag_sets(path)
        assert found == codec
        assert all(tags.get("title") in (None, "Song Title") for tags in sets)
        if src == "mp3":
            probe = ffprobe(path)
            assert int(probe["streams"][0]["bit_rate"]) == 160_000
    url = media_site.url(f"/tagged-song.html?src=ogg&t={uuid.uuid4().hex[:8]}")
    vorbis = await done(embedded, ask(url, kind="audio"))
    assert vorbis.ext == embedded.settings.audio_format == "m4a"
    path = await embedded.jobs.local_path(vorbis.id)
    assert path is not None and tag_sets(path)[0] == "aac"
    # A type asked for by name is always that type: the mp3 source becomes Opus when Opus is asked for.
    url = media_site.url(f"/tagged-song.html?src=mp3&t={uuid.uuid4().hex[:8]}")
    opus = await done(embedded, ask(url, kind="audio", audio_format="opus"))
    path = await embedded.jobs.local_path(opus.id)
    assert path is not None and opus.ext == "opus" and tag_sets(path)[0] == "opus"


async def test_audio_in_the_format_asked_for_tagged_and_keyed_apart(embedded: Services, media_site) -> None:
    url = media_site.url(f"/song.html?{uuid.uuid4().hex[:8]}")
    mp3 = await done(embedded, ask(url, kind="audio", audio_format="mp3"))
    assert (mp3.audio_format, mp3.ext) == ("mp3", "mp3")
    path = await embedded.jobs.local_path(mp3.id)
    assert path is not None and path.suffix == ".mp3"
    probe = ffprobe(path)
    assert [s["codec_name"] for s in probe["streams"] if s["codec_type"] == "audio"] == ["mp3"]
    assert {k.lower(): v for k, v in probe["format"]["tags"].items()}.get("artist") == "Some Artist"
    # Another format is another job; so is no format (the source's sound, here AAC: an m4a), and the
    # operator's own format asked for by name (which converts what the default would keep).
    opus = await done(embedded, ask(url, kind="audio", audio_format="opus"))
    assert opus.id != mp3.id and opus.ext == "opus"
    default = await done(embedded, ask(url, kind="audio"))
    assert default.id not in (mp3.id, opus.id) and default.ext == "m4a" and default.audio_format is None
    again = await embedded.jobs.submit(ask(url, kind="audio", user="bob"))
    assert again.job.id == default.id and again.outcome == "cached"
    named = await embedded.jobs.submit(ask(url, kind="audio", audio_format=embedded.settings.audio_format))
    assert named.job.id not in (default.id, mp3.id, opus.id)
    # A video has no audio format: the choice is set aside, not refused.
    video = await embedded.jobs.submit(
        ask(media_site.url("/formats.html"), format_id="240p", audio_format="mp3")
    )
    assert video.job.audio_format is None
    with pytest.raises(InvalidRequest, match="m4a, mp3, opus"):
        await embedded.jobs.submit(ask(url, kind="audio", audio_format="flac"))
    # A retry asks for the same format again.
    found, _ = await embedded.jobs.list_requests("cli", "alice", search=url)
    first = next(request for request, job in found if job.id == mp3.id)
    retried = await embedded.jobs.retry(first.id, source="cli", user_id="alice")
    assert retried.job.id == mp3.id and retried.job.audio_format == "mp3"


async def test_formats_lists_the_real_choices_and_is_cached(embedded: Services, media_site) -> None:
    url = media_site.url("/formats.html")
    before = media_site.hits("/formats.html")
    big_before = media_site.downloads("/big.mp4")
    first = await embedded.jobs.formats(url)
    assert first.title == "Format Test" and not first.cached
    assert [f.format_id for f in first.formats] == ["360p", "240p"]
    sizes = {f.format_id: f.filesize for f in first.formats}
    assert sizes["240p"] == len(media_site._blobs["video"].data)
    assert all(f.kind == "video" and not f.filesize_estimated for f in first.formats)
    assert "240p" in first.formats[1].label and "KB" in first.formats[1].label
    assert first.subtitles == sorted(SUBTITLES)
    assert first.thumbnail == media_site.url("/thumb.png")
    second = await embedded.jobs.formats(url)
    assert second.cached and second.formats == first.formats
    assert media_site.hits("/formats.html") == before + 1
    assert media_site.downloads("/big.mp4") == big_before, "a probe fetches no media"


async def test_concurrent_format_probes_of_one_link_fetch_it_once(embedded: Services, media_site) -> None:
    url = media_site.url(f"/formats.html?one={uuid.uuid4().hex[:8]}")
    before = media_site.hits("/formats.html")
    results = await asyncio.gather(*(embedded.jobs.formats(url) for _ in range(5)))
    assert {tuple(f.format_id for f in r.formats) for r in results} == {("360p", "240p")}
    assert media_site.hits("/formats.html") == before + 1


async def test_formats_follow_the_download_rules(embedded: Services, media_site) -> None:
    with pytest.raises(UnsupportedUrl):
        await embedded.jobs.formats(media_site.url("/nomedia.html"))
    playlist = await embedded.jobs.formats(media_site.url("/feed.xml?n=3"))
    assert playlist.playlist is not None and playlist.playlist.count == 3 and playlist.formats == []


async def test_formats_refuse_private_addresses(tmp_path: Path, media_site) -> None:
    from tests.support.services import make_settings, running_services

    settings = make_settings(tmp_path, allow_private_urls=False, allowed_private_hosts=[])
    async with running_services(settings, worker=False) as services:
        with pytest.raises(PrivateAddress):
            await services.jobs.formats(media_site.url("/formats.html"))


async def test_a_chosen_format_is_downloaded_and_keyed_apart(embedded: Services, media_site) -> None:
    url = media_site.url("/formats.html")
    big_before = media_site.downloads("/big.mp4")
    small = await done(embedded, ask(url, format_id="240p"))
    assert small.format_id == "240p" and small.height == 240
    path = await embedded.jobs.local_path(small.id)
    assert path is not None and path.stat().st_size == len(media_site._blobs["video"].data)
    assert media_site.downloads("/big.mp4") == big_before
    again = await embedded.jobs.submit(ask(url, format_id="240p", user="bob"))
    assert again.outcome == "cached" and again.job.id == small.id
    other = await embedded.jobs.submit(ask(url, format_id="360p"))
    assert other.job.id != small.id


async def test_an_unknown_format_fails_with_one_sentence(embedded: Services, media_site) -> None:
    submission = await embedded.jobs.submit(ask(media_site.url("/formats.html"), format_id="4320p"))
    final = await embedded.jobs.wait(submission.job.id, timeout=60)
    assert final.status == "failed" and final.error is not None
    assert final.error.code == "unknown_format"
    assert '"4320p"' in final.error.message and "240p" in final.error.message
    assert "\n" not in final.error.message and "Traceback" not in final.error.message
    with pytest.raises(InvalidRequest):
        await embedded.jobs.submit(ask(media_site.url("/formats.html"), format_id="bad id; rm -rf"))
    with pytest.raises(InvalidRequest):
        await embedded.jobs.submit(ask(media_site.url("/formats.html"), subtitles=("english!",)))


async def test_subtitles_are_embedded_and_kept_as_srt(embedded: Services, media_site, tmp_path: Path) -> None:
    final = await done(
        embedded, ask(media_site.url("/formats.html"), format_id="240p", subtitles=("en", "fr"))
    )
    assert final.subtitle_langs == ["en", "fr"]
    assert [s.lang for s in final.subtitles] == ["en"]
    assert final.subtitles_missing == ["fr"]
    srt = tmp_path / "en.srt"
    await embedded.jobs.fetch_file(final.id, srt, asset=subtitle_asset("en"))
    text = srt.read_text()
    assert "Hello there" in text and "-->" in text and "," in text.split("-->")[0]  # srt uses 00:00:00,000
    path = await embedded.jobs.local_path(final.id)
    assert path is not None
    codecs = [s.get("codec_name") for s in ffprobe(path)["streams"] if s["codec_type"] == "subtitle"]
    assert codecs == ["mov_text"]
    plain = await embedded.jobs.submit(ask(media_site.url("/formats.html"), format_id="240p"))
    assert plain.job.id != final.id, "a download with subtitles is not the same variant as one without"


@pytest.mark.both_databases
async def test_removing_a_download_deletes_its_files_unless_someone_else_uses_them(
    embedded: Services, media_site
) -> None:
    url = media_site.url(f"/clip/{uuid.uuid4().hex[:10]}.mp4")
    mine = await embedded.jobs.submit(ask(url))
    final = await embedded.jobs.wait(mine.job.id, timeout=60)
    theirs = await embedded.jobs.submit(ask(url, user="bob"))
    assert theirs.outcome == "cached"
    path = await embedded.jobs.local_path(final.id)
    assert path is not None and path.exists()
    with pytest.raises(NotFound):
        await embedded.jobs.remove(mine.request.id, source="cli", user_id="bob")
    await embedded.jobs.remove(mine.request.id, source="cli", user_id="alice")
    listed, _ = await embedded.jobs.list_requests("cli", "alice")
    assert mine.request.id not in {r.id for r, _ in listed}
    assert path.exists(), "bob still has it"
    await embedded.jobs.remove(theirs.request.id, source="cli", user_id="bob")
    assert not path.exists()
    with pytest.raises(NotFound):
        await embedded.jobs.link(final.id)
    again = await embedded.jobs.submit(ask(url))
    assert again.outcome == "queued", "a removed file is no cache hit"


@pytest.mark.both_databases
async def test_history_search_kind_filter_and_retry(embedded: Services, media_site) -> None:
    user = f"u-{uuid.uuid4().hex[:6]}"
    video = await done(embedded, ask(media_site.url("/formats.html"), user=user, format_id="240p"))
    audio = await done(embedded, ask(media_site.url("/song.html"), kind="audio", user=user))
    failed = await embedded.jobs.submit(ask(media_site.url("/missing.mp4"), user=user))
    assert (await embedded.jobs.wait(failed.job.id, timeout=60)).status == "failed"
    found, _ = await embedded.jobs.list_requests("cli", user, search="song")
    assert [j.id for _, j in found] == [audio.id]
    found, _ = await embedded.jobs.list_requests("cli", user, search="FORMAT")
    assert [j.id for _, j in found] == [video.id]
    found, _ = await embedded.jobs.list_requests("cli", user, kinds=["audio"])
    assert [j.id for _, j in found] == [audio.id]
    found, _ = await embedded.jobs.list_requests("cli", user, search="100%_")
    assert found == []
    retried = await embedded.jobs.retry(failed.request.id, source="cli", user_id=user)
    assert retried.request.id != failed.request.id and retried.request.url == failed.request.url
    with pytest.raises(NotFound):
        await embedded.jobs.retry(failed.request.id, source="cli", user_id="someone-else")


async def test_a_subtitle_track_the_site_cannot_deliver_does_not_lose_the_video(
    embedded: Services, media_site
) -> None:
    """The page lists fr, but its file is a 404: the video comes with en, and fr is named as missing."""
    url = media_site.url("/formats.html?broken=fr")
    final = await done(embedded, ask(url, format_id="240p", subtitles=("en", "fr")))
    assert media_site.hits("/subs/fr.vtt") >= 1  # the broken track was really tried
    assert [s.lang for s in final.subtitles] == ["en"]
    assert final.subtitles_missing == ["fr"]
    path = await embedded.jobs.local_path(final.id)
    assert path is not None
    assert [s.get("codec_name") for s in ffprobe(path)["streams"] if s["codec_type"] == "subtitle"] == [
        "mov_text"
    ]


async def test_a_copy_made_to_fit_keeps_its_own_thumbnail_and_subtitles(
    embedded: Services, media_site, tmp_path: Path
) -> None:
    url = media_site.url("/formats.html")
    submission = await embedded.jobs.submit(ask(url, format_id="360p", subtitles=("de",)))
    full = await embedded.jobs.wait(submission.job.id, timeout=90)
    assert full.status == "done" and full.filesize and full.filesize > 30_000_000, full.error
    fit = await embedded.jobs.fit(submission.request.id, 1_000_000)
    copy = await embedded.jobs.wait(fit.job.id, timeout=120)
    assert copy.status == "done" and copy.fit_method == "smaller_format", copy.error
    assert copy.format_id == "360p" and copy.subtitle_langs == ["de"]
    assert copy.thumbnail and [s.lang for s in copy.subtitles] == ["de"]
    original = await embedded.jobs.local_path(full.id, asset=THUMBNAIL)
    own = await embedded.jobs.local_path(copy.id, asset=THUMBNAIL)
    assert original is not None and own is not None and own != original
    assert own.read_bytes() == original.read_bytes()


async def test_retention_deletes_thumbnails_and_subtitles_too(tmp_path: Path, media_site) -> None:
    from tests.support.services import make_settings, running_services, wait_until

    settings = make_settings(tmp_path, retention_hours=0.0003, retention_interval_s=0.5)
    async with running_services(settings) as services:
        final = await done(
            services, ask(media_site.url("/formats.html"), format_id="240p", subtitles=("en",))
        )
        paths = [
            await services.jobs.local_path(final.id, asset=name) for name in (THUMBNAIL, subtitle_asset("en"))
        ]
        assert all(p is not None and p.exists() for p in paths)

        async def swept() -> bool:
            return not any(p is not None and p.exists() for p in paths)

        await wait_until(swept, timeout=15)


async def test_removing_a_running_download_cancels_it(embedded: Services, media_site) -> None:
    submission = await embedded.jobs.submit(
        ask(media_site.url(f"/slow.mp4?rate=300000&r={uuid.uuid4().hex[:6]}"))
    )
    await embedded.jobs.remove(submission.request.id, source="cli", user_id="alice")
    final = await embedded.jobs.wait(submission.job.id, timeout=30)
    assert final.status == "cancelled", final.error
    request, _ = await embedded.jobs.get_request(submission.request.id)
    assert request.hidden and request.status == "cancelled"
