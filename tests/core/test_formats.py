"""The format picker on ordinary pages (direct links, og:video, <video> tags, HLS), against the local media
site through the job service: every format is labelled by what a person can judge (height, codecs, size,
"audio only"), sizes and heights the page doesn't state are read from the files' first bytes, through the
same address rules as a download, and the result is cached with the probe."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from core.bootstrap import Services
from core.media.formats import MAX_LABEL, codec_family, media_formats
from core.words import human_size
from tests.support.media_site import MediaSite
from tests.support.services import make_settings, running_services


def fresh(media_site: MediaSite, path: str) -> str:
    return media_site.url(f"{path}{'&' if '?' in path else '?'}u={uuid.uuid4().hex[:8]}")


async def test_a_direct_link_is_labelled_by_height_codecs_and_its_real_size(
    embedded: Services, media_site: MediaSite
) -> None:
    url = fresh(media_site, "/clip/direct.mp4")
    downloads = media_site.downloads("/clip/direct.mp4")
    found = await embedded.jobs.formats(url)
    [fmt] = found.formats
    size = media_site.files.video_mp4.stat().st_size
    assert (fmt.kind, fmt.height, fmt.width, fmt.has_audio) == ("video", 240, 320, True)
    assert (fmt.vcodec, fmt.acodec, fmt.codecs) == ("h264", "aac", "H.264 + AAC")
    assert fmt.filesize == size and not fmt.filesize_estimated
    assert fmt.label == f"240p · H.264 + AAC · {human_size(size)}"
    assert found.duration == pytest.approx(3.0, abs=0.1)
    assert media_site.downloads("/clip/direct.mp4") == downloads, "no more than a probe's few bytes were read"
    again = await embedded.jobs.formats(url)
    assert again.cached and again.formats == found.formats


@pytest.mark.parametrize(
    ("path", "label", "estimated"),
    [
        ("/page.html", "240p · H.264 + AAC · {video}", False),  # og:video
        ("/hls/index.m3u8", "240p · H.264 + AAC · ~", True),  # a stream: estimated from its first segment
        ("/audio.m4a", "audio only · AAC · {audio}", False),
        ("/tagged.mp3", "audio only · MP3 · {mp3}", False),
        ("/tagged.opus", "audio only · Opus · {opus}", False),
    ],
)
async def test_ordinary_pages_never_offer_a_bare_id(
    embedded: Services, media_site: MediaSite, path: str, label: str, estimated: bool
) -> None:
    files = media_site.files
    sizes = {
        "video": human_size(files.video_mp4.stat().st_size),
        "audio": human_size(files.audio_m4a.stat().st_size),
        "mp3": human_size(files.tagged["mp3"].stat().st_size),
        "opus": human_size(files.tagged["opus"].stat().st_size),
    }
    [fmt] = (await embedded.jobs.formats(fresh(media_site, path))).formats
    assert fmt.label.startswith(label.format(**sizes)), fmt.label
    assert fmt.filesize and fmt.filesize_estimated is estimated
    if estimated:  # within a fifth of the real stream's size
        real = sum(p.stat().st_size for p in files.hls_dir.glob("*.ts"))
        assert abs(fmt.filesize - real) < real / 5


async def test_a_page_stating_heights_and_sizes_gets_codecs_and_keeps_its_sizes(
    embedded: Services, media_site: MediaSite
) -> None:
    found = await embedded.jobs.formats(fresh(media_site, "/formats.html"))
    assert [f.label for f in found.formats] == [
        f"360p · H.264 + AAC · {human_size(media_site.files.big_mp4.stat().st_size)}",
        f"240p · H.264 + AAC · {human_size(media_site.files.video_mp4.stat().st_size)}",
    ]


async def test_files_are_read_through_the_address_guard(tmp_path: Path, media_site: MediaSite) -> None:
    """The page's host is allowed; its video sits on another local server that is not: reading the video's
    first bytes is refused like a download would be, and the format is still offered."""
    other = await MediaSite(media_site.files).start()
    try:
        settings = make_settings(
            tmp_path, allow_private_urls=False, allowed_private_hosts=[f"127.0.0.1:{media_site.port}"]
        )
        async with running_services(settings, worker=False) as services:
            video = other.url("/video.mp4")
            found = await services.jobs.formats(fresh(media_site, f"/titled.html?video={quote(video)}"))
        [fmt] = found.formats
        assert fmt.filesize is None and fmt.height is None and fmt.label == "video mp4"
        assert other.hits("/video.mp4") == 0 and other.heads("/video.mp4") == 0
    finally:
        await other.stop()


async def test_a_file_that_cannot_be_read_is_listed_with_what_the_page_says(
    embedded: Services, media_site: MediaSite
) -> None:
    found = await embedded.jobs.formats(
        fresh(media_site, f"/titled.html?video={quote(media_site.url('/missing.mp4'))}")
    )
    [fmt] = found.formats
    assert fmt.label == "video mp4" and fmt.filesize is None


def fmt(**fields: Any) -> dict[str, Any]:
    return {"format_id": "x", "ext": "webm", "url": "https://example.com/x", **fields}


def test_labels_name_codec_families_and_fit_buttons() -> None:
    raw = {
        "title": "t",
        "duration": 100,
        "formats": [
            fmt(
                format_id="137", height=1080, fps=60, vcodec="avc1.640028", acodec="none", filesize=12_000_000
            ),
            fmt(format_id="248", height=1080, vcodec="vp09.00.40.08", acodec="none", tbr=2000),
            fmt(format_id="399", height=1080, vcodec="av01.0.08M.08", acodec="none"),
            fmt(format_id="251", vcodec="none", acodec="opus", abr=129.5, filesize_approx=1_600_000),
            fmt(format_id="140", vcodec="none", acodec="mp4a.40.2", abr=128),
            fmt(format_id="mp3", vcodec="none", acodec="mp4a.6B"),
            fmt(format_id="odd", height=2160, vcodec="dvh1.05.06" + "x" * 80, acodec="ec-3"),
        ],
    }
    labels = {f.format_id: f.label for f in media_formats("https://example.com/v", raw).formats}
    assert labels == {
        "odd": "2160p · dvh1 + E-AC-3",
        "137": "1080p60 · H.264 · video only · 12 MB",
        "248": "1080p · VP9 · video only · ~25 MB",
        "399": "1080p · AV1 · video only",
        "251": "audio only · Opus 130k · ~1.6 MB",
        "140": "audio only · AAC 128k",
        "mp3": "audio only · MP3",
    }
    long = media_formats("u", {"formats": [fmt(height=720, vcodec="avc1", acodec="x" * 100)]}).formats[0]
    assert len(long.label) == MAX_LABEL and long.label.endswith("…")
    assert len(long.label.encode()) <= 100
    assert codec_family("avc1.64001F") == "H.264" and codec_family("none") is None
