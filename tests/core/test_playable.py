"""Video every phone plays: the format rule on its own, the conversion with cancel and size limit, and whole
jobs through the job service on the embedded stack (SQLite and PostgreSQL) against the local media site's codec
page (H.264, VP9 and AV1 of one clip at several heights, over DASH)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.bootstrap import Services
from core.errors import Cancelled, TooLarge
from core.jobs.choices import SubmitRequest
from core.jobs.views import JobView
from core.media.ffmpeg import find_ffmpeg
from core.media.playable import choose_playable_format, make_playable, playable_spec, probe_streams
from tests.support.media import CHAPTERS, ffprobe, ffprobe_chapters
from tests.support.media_site import MediaSite

pytestmark = pytest.mark.timeout(120)


def fmt(fid: str, vcodec: str | None, height: int | None, **more: Any) -> dict[str, Any]:
    """A format as yt-dlp describes one (vcodec None: the site does not say)."""
    return {"format_id": fid, "vcodec": vcodec, "height": height, "acodec": "none", "ext": "mp4", **more}


SOUND = [
    fmt("sound-opus", "none", None, acodec="opus", ext="webm"),
    fmt("sound-aac", "none", None, acodec="mp4a.40.2", ext="m4a"),
]


def picked(formats: list[dict[str, Any]], quality: str) -> str | None:
    found = choose_playable_format({"formats": [*formats, *SOUND]}, quality)
    return None if found is None else found["format_id"]


# -- the rule ----------------------------------------------------------------------------------------------


def test_h264_at_the_cap_is_taken_over_better_codecs_of_the_same_height() -> None:
    formats = [
        fmt("av1-720", "av01.0.05M.08", 720),
        fmt("vp9-720", "vp09.00.31.08", 720, ext="webm"),
        fmt("h264-720", "avc1.64001F", 720),
        fmt("h264-1080", "avc1.640028", 1080),
    ]
    assert picked(formats, "720") == "h264-720"
    assert picked(formats, "best") == "h264-1080"


def test_h264_of_a_lower_height_when_it_keeps_at_least_half_the_picture() -> None:
    # YouTube's shape: H.264 up to 1080p, VP9 and AV1 above.
    formats = [
        fmt("vp9-2160", "vp9", 2160),
        fmt("av1-1440", "av01", 1440),
        fmt("h264-1080", "avc1.640028", 1080),
    ]
    assert picked(formats, "best") == "h264-1080"
    assert picked(formats, "1440") == "h264-1080"
    # Under half of the best picture within the cap: the better picture is converted instead.
    formats = [fmt("vp9-1080", "vp9", 1080), fmt("h264-360", "avc1.4d401e", 360)]
    assert picked(formats, "1080") == "vp9-1080"
    # The VP9 is above these caps: the H.264 is all there is within them.
    assert picked(formats, "720") == picked(formats, "480") == "h264-360"
    # Exactly half is still taken.
    assert picked([fmt("vp9-720", "vp9", 720), fmt("h264-360", "avc1", 360)], "best") == "h264-360"


def test_without_h264_the_best_picture_is_taken_to_convert() -> None:
    vp9 = [fmt("vp9-360", "vp09.00.10.08", 360, tbr=300), fmt("vp9-240", "vp9", 240)]
    assert picked(vp9, "360") == "vp9-360"
    assert picked(vp9, "240") == "vp9-240"
    # The better of two codecs at one height by bitrate; not the mp4 one (yt-dlp's usual pick prefers mp4).
    assert picked([*vp9, fmt("av1-360", "av01.0.04M.08", 360, tbr=200)], "best") == "vp9-360"


def test_unstated_codecs_keep_the_usual_pick() -> None:
    # A plain file or a player's source list states no codec: the file is checked after the download.
    assert picked([fmt("360p", None, 360), fmt("240p", None, 240)], "best") is None


def test_nothing_within_the_cap_falls_back_to_all_formats_like_the_selector() -> None:
    formats = [fmt("vp9-720", "vp9", 720), fmt("h264-480", "avc1", 480)]
    assert picked(formats, "240") == "h264-480"


def test_sound_in_the_same_file_that_plays_wins_a_tie() -> None:
    formats = [
        fmt("h264-opus", "avc1", 360, acodec="opus", ext="mkv"),
        fmt("h264-only", "avc1", 360),
        fmt("h264-aac", "avc1", 360, acodec="mp4a.40.2"),
    ]
    assert picked(formats, "best") == "h264-aac"
    assert playable_spec(fmt("h264-aac", "avc1", 360, acodec="mp4a.40.2")) == "h264-aac"
    # A picture without sound gets AAC sound first.
    assert playable_spec(fmt("h264-only", "avc1", 360)).startswith("h264-only+ba[acodec^=mp4a]/")


# -- converting --------------------------------------------------------------------------------------------


@pytest.fixture
async def vp9_copy(media_site: MediaSite, tmp_path: Path) -> Path:
    media = await media_site.codec_media()
    dest = tmp_path / "vp9-360.webm"
    shutil.copyfile(media.video("vp9", 360), dest)
    return dest


def test_conversion_makes_h264_in_mp4_and_keeps_the_chapters(vp9_copy: Path) -> None:
    ffmpeg = find_ffmpeg()
    assert ffmpeg is not None
    shares: list[float] = []
    out = make_playable(vp9_copy, ffmpeg, cancel=threading.Event(), on_progress=shares.append)
    assert out.suffix == ".mp4" and not vp9_copy.exists()
    video = next(s for s in ffprobe(out)["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["pix_fmt"], video["height"]) == ("h264", "yuv420p", 360)
    assert [c["tags"]["title"] for c in ffprobe_chapters(out)] == [name for name, _, _ in CHAPTERS]
    assert shares and shares[0] == 0.0
    # A file that already plays is left as it is.
    assert make_playable(out, ffmpeg, cancel=threading.Event()) == out


MP4_VARIANTS = {
    # name: (video encoder arguments, sound encoder arguments or None, plays as it is)
    "baseline-aac": (
        ["-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p"],
        ["-c:a", "aac"],
        True,
    ),
    "high-silent": (["-c:v", "libx264", "-pix_fmt", "yuv420p"], None, True),
    "high10-aac": (["-c:v", "libx264", "-pix_fmt", "yuv420p10le"], ["-c:a", "aac"], False),
    "h264-422": (["-c:v", "libx264", "-pix_fmt", "yuv422p"], ["-c:a", "aac"], False),
    "h264-mp3": (["-c:v", "libx264", "-pix_fmt", "yuv420p"], ["-c:a", "libmp3lame"], False),
    "h264-opus": (["-c:v", "libx264", "-pix_fmt", "yuv420p"], ["-c:a", "libopus"], False),
    "vp9-aac": (["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"], ["-c:a", "aac"], False),
}


@pytest.mark.parametrize("name", sorted(MP4_VARIANTS))
def test_an_mp4_is_converted_only_when_a_phone_would_refuse_it(name: str, tmp_path: Path) -> None:
    """10-bit or 4:2:2 H.264, MP3 or Opus sound in an MP4 don't play on iPhones either; what plays is kept."""
    ffmpeg = find_ffmpeg()
    assert ffmpeg is not None
    video, sound, plays = MP4_VARIANTS[name]
    src = tmp_path / f"{name}.mp4"
    inputs = ["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=1"]
    if sound is not None:
        inputs += ["-f", "lavfi", "-i", "sine=duration=1"]
    subprocess.run(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-y", *inputs, *video, *(sound or []), str(src)],
        check=True,
    )
    before = {s["codec_type"]: s for s in ffprobe(src)["streams"]}
    out = make_playable(src, ffmpeg, cancel=threading.Event())
    assert (out == src) is plays
    after = {s["codec_type"]: s for s in ffprobe(out)["streams"]}
    assert (after["video"]["codec_name"], after["video"]["pix_fmt"]) == ("h264", "yuv420p")
    assert after.get("audio", {}).get("codec_name") == ("aac" if sound is not None else None)
    if before["video"]["pix_fmt"] == "yuv420p" and before["video"]["codec_name"] == "h264":
        # Only the sound was redone: the picture is the same stream, bit for bit.
        assert after["video"]["bit_rate"] == before["video"]["bit_rate"]


def test_conversion_stops_on_cancel_and_at_the_size_limit(vp9_copy: Path) -> None:
    ffmpeg = find_ffmpeg()
    assert ffmpeg is not None
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        make_playable(vp9_copy, ffmpeg, cancel=cancel)
    assert [p.name for p in vp9_copy.parent.iterdir()] == [vp9_copy.name], "no partial copy is left"
    with pytest.raises(TooLarge) as caught:
        make_playable(vp9_copy, ffmpeg, cancel=threading.Event(), max_bytes=2_000)
    assert "limit" in caught.value.message
    assert [p.name for p in vp9_copy.parent.iterdir()] == [vp9_copy.name]


def test_streams_are_read_without_ffprobe_too(
    vp9_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With only an ffmpeg binary (imageio-ffmpeg's: no ffprobe beside it or on PATH) `ffmpeg -i` is read."""
    ffmpeg = find_ffmpeg()
    assert ffmpeg is not None
    with_probe = probe_streams(vp9_copy, ffmpeg)
    assert (with_probe.video, with_probe.pix_fmt, with_probe.height) == ("vp9", "yuv420p", 360)
    lonely = tmp_path / "bin" / "ffmpeg"
    lonely.parent.mkdir()
    lonely.symlink_to(ffmpeg)
    monkeypatch.setenv("PATH", str(lonely.parent))
    without = probe_streams(vp9_copy, str(lonely))
    assert (without.video, without.pix_fmt, without.width, without.height) == ("vp9", "yuv420p", 480, 360)
    assert without.duration and round(without.duration) == 2


# -- whole jobs --------------------------------------------------------------------------------------------


def ask(
    url: str, *, playable: bool, quality: str = "best", kind: str = "video", **more: Any
) -> SubmitRequest:
    return SubmitRequest(
        text=url,
        source="cli",
        user_id="alice",
        kind=kind,
        quality=quality,
        playable=playable,
        **more,  # type: ignore[arg-type]
    )


async def done(services: Services, request: SubmitRequest) -> JobView:
    submission = await services.jobs.submit(request)
    final = await services.jobs.wait(submission.job.id, timeout=90)
    assert final.status == "done", final.error
    return final


async def streams_of(services: Services, view: JobView) -> dict[str, dict[str, Any]]:
    path = await services.jobs.local_path(view.id)
    assert path is not None
    return {s["codec_type"]: s for s in ffprobe(path)["streams"] if s["codec_type"] in ("video", "audio")}


def codec_page(site: MediaSite, offer: str) -> str:
    return site.url(f"/codecs.html?offer={offer}&t={uuid.uuid4().hex[:8]}")


async def test_vp9_only_becomes_h264_when_asked_and_stays_vp9_otherwise(
    embedded: Services, media_site: MediaSite
) -> None:
    url = codec_page(media_site, "vp9")
    phone = await done(embedded, ask(url, playable=True, quality="360"))
    streams = await streams_of(embedded, phone)
    assert (streams["video"]["codec_name"], streams["video"]["pix_fmt"]) == ("h264", "yuv420p")
    assert streams["audio"]["codec_name"] == "aac"
    assert (phone.playable, phone.ext, phone.width, phone.height) == (True, "mp4", 480, 360)
    assert phone.filename is not None and phone.filename.endswith(".mp4")
    path = await embedded.jobs.local_path(phone.id)
    assert path is not None and [c["tags"]["title"] for c in ffprobe_chapters(path)] == ["Opening", "Ending"]

    # The original is another variant: another job, the site's VP9 as it is.
    original = await done(embedded, ask(url, playable=False, quality="360"))
    assert original.id != phone.id and not original.playable
    assert (await streams_of(embedded, original))["video"]["codec_name"] == "vp9"
    # The same asks again are answered from the stored files.
    again = await embedded.jobs.submit(ask(url, playable=True, quality="360"))
    assert (again.job.id, again.outcome) == (phone.id, "cached")
    # Sound has no picture to play: an audio job is one job whoever asks.
    sound = await done(embedded, ask(url, playable=True, kind="audio"))
    assert not sound.playable
    assert (await embedded.jobs.submit(ask(url, playable=False, kind="audio"))).job.id == sound.id


async def test_h264_at_a_lower_height_is_taken_without_converting(
    embedded: Services, media_site: MediaSite
) -> None:
    url = codec_page(media_site, "vp9,h264-240")
    vp9_before = media_site.downloads("/codecs/vp9-360.webm") + media_site.downloads("/codecs/vp9-240.webm")
    h264_before = media_site.downloads("/codecs/h264-240.mp4")
    final = await done(embedded, ask(url, playable=True, quality="360"))
    streams = await streams_of(embedded, final)
    assert (streams["video"]["codec_name"], streams["video"]["height"]) == ("h264", 240)
    assert streams["audio"]["codec_name"] == "aac", "the AAC sound is chosen to go with it"
    assert final.height == 240
    # The site's H.264 file was fetched; no VP9 picture was, so nothing was converted.
    assert media_site.downloads("/codecs/h264-240.mp4") == h264_before + 1
    assert (
        media_site.downloads("/codecs/vp9-360.webm") + media_site.downloads("/codecs/vp9-240.webm")
        == vp9_before
    )


async def test_av1_is_converted_and_a_chosen_format_too(embedded: Services, media_site: MediaSite) -> None:
    """A person's format is respected (its height, its picture), and converted when phones can't play it."""
    final = await done(embedded, ask(codec_page(media_site, "av1"), playable=True))
    streams = await streams_of(embedded, final)
    assert (streams["video"]["codec_name"], streams["video"]["height"]) == ("h264", 360)

    chosen = await done(embedded, ask(codec_page(media_site, "vp9,h264"), playable=True, format_id="vp9-240"))
    streams = await streams_of(embedded, chosen)
    assert (streams["video"]["codec_name"], streams["video"]["height"]) == ("h264", 240)
    assert chosen.format_id == "vp9-240"
