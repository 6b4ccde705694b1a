"""Clips cut from a stored file, checked with ffprobe and by reading the frames: the counter media's frame n
shows n, so the clip's first frame says where it really starts. A cut that starts on the keyframe before the
asked time (stream copy) fails these: the counter's keyframes are 2 s apart."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from core.cuts.cut import cut_clip, to_animation
from core.cuts.sections import InvalidSection, SectionTooLong, parse_section
from core.errors import Cancelled
from tests.support.chaptered import COUNTER_SECONDS, FPS, ChapteredMedia, frame_number
from tests.support.media import ffprobe, ffprobe_chapters

pytestmark = pytest.mark.timeout(120)


def durations(path: Path) -> dict[str, float]:
    info = ffprobe(path)
    found = {"format": float(info["format"]["duration"])}
    for stream in info["streams"]:
        found[stream["codec_type"]] = float(stream["duration"])
    return found


@pytest.mark.parametrize("text", ["0:03.28-0:05.28", "0.04-1.5", "9.96-15", "7.4-9.4"])
def test_a_clip_starts_on_the_frame_asked_for_and_lasts_the_range(
    chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path, text: str
) -> None:
    section = parse_section(text)
    clip = cut_clip(chaptered.video, section, tmp_path, ffmpeg=ffmpeg, cancel=threading.Event())
    assert clip.method == "reencode" and clip.path.suffix == ".mp4"
    length = section.end - section.start  # type: ignore[operator]
    found = durations(clip.path)
    assert abs(found["video"] - length) <= 0.1, found
    assert abs(found["format"] - length) <= 0.1, found
    assert abs(found["audio"] - length) <= 0.1, found
    assert frame_number(clip.path, 0) == round(section.start * FPS)
    assert frame_number(clip.path, 1) == round(section.start * FPS) + 1


def test_an_open_clip_runs_to_the_end(chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path) -> None:
    clip = cut_clip(chaptered.video, parse_section("13.5"), tmp_path, ffmpeg=ffmpeg, cancel=threading.Event())
    assert clip.section.end == COUNTER_SECONDS
    assert abs(durations(clip.path)["video"] - 2.5) <= 0.1
    assert frame_number(clip.path, 0) == round(13.5 * FPS)


def test_a_sound_clip_is_copied_in_its_own_format(
    chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path
) -> None:
    clip = cut_clip(
        chaptered.audio, parse_section("3.3-7.7"), tmp_path, ffmpeg=ffmpeg, cancel=threading.Event()
    )
    assert clip.method == "copy" and clip.path.suffix == ".m4a"
    info = ffprobe(clip.path)
    assert [s["codec_name"] for s in info["streams"] if s["codec_type"] != "data"] == [
        "aac"
    ]  # data: chapters
    assert abs(float(info["format"]["duration"]) - 4.4) <= 0.1


def test_an_animation_has_no_sound_and_is_at_most_720_wide(ffmpeg: str, tmp_path: Path) -> None:
    wide = tmp_path / "wide.mp4"
    subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=4",
         "-f", "lavfi", "-i", "sine=duration=4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-shortest", str(wide)],
        check=True, timeout=60,
    )  # fmt: skip
    animation = to_animation(
        wide, parse_section("1-3"), tmp_path / "out", ffmpeg=ffmpeg, cancel=threading.Event()
    )
    info = ffprobe(animation.path)
    assert [s["codec_type"] for s in info["streams"]] == ["video"]
    video = info["streams"][0]
    assert video["codec_name"] == "h264" and video["width"] == 720 and video["height"] % 2 == 0
    assert abs(float(info["format"]["duration"]) - 2.0) <= 0.1


def test_an_animation_keeps_a_small_picture_as_it_is(
    chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path
) -> None:
    animation = to_animation(
        chaptered.video, parse_section("2.2-4"), tmp_path, ffmpeg=ffmpeg, cancel=threading.Event()
    )
    info = ffprobe(animation.path)
    assert [(s["codec_type"], s["width"]) for s in info["streams"]] == [("video", 320)]
    assert frame_number(animation.path, 0) == round(2.2 * FPS)


def test_impossible_clips_are_refused_before_ffmpeg_runs(
    chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidSection) as past:
        cut_clip(
            chaptered.video, parse_section("0:20-0:25"), tmp_path, ffmpeg=ffmpeg, cancel=threading.Event()
        )
    assert past.value.message == "The clip starts at 0:20, but the media is only 0:16 long."
    with pytest.raises(SectionTooLong):
        cut_clip(
            chaptered.video,
            parse_section("0-10"),
            tmp_path,
            ffmpeg=ffmpeg,
            cancel=threading.Event(),
            limit_s=5,
        )
    with pytest.raises(InvalidSection):
        to_animation(chaptered.audio, parse_section("0-2"), tmp_path, ffmpeg=ffmpeg, cancel=threading.Event())
    with pytest.raises(SectionTooLong):
        to_animation(
            chaptered.video,
            parse_section("0-10"),
            tmp_path,
            ffmpeg=ffmpeg,
            cancel=threading.Event(),
            limit_s=5,
        )
    assert list(tmp_path.iterdir()) == []


def test_a_cancelled_cut_stops_and_leaves_nothing(
    chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path
) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        cut_clip(chaptered.video, parse_section("1-9"), tmp_path, ffmpeg=ffmpeg, cancel=cancel)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("which", ["video", "audio"])
def test_a_clip_keeps_the_chapters_it_spans(
    chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path, which: str
) -> None:
    clip = cut_clip(
        getattr(chaptered, which),
        parse_section("3.28-5.28"),
        tmp_path,
        ffmpeg=ffmpeg,
        cancel=threading.Event(),
    )
    found = [
        (round(float(c["start_time"]), 2), round(float(c["end_time"]), 2), c["tags"]["title"])
        for c in ffprobe_chapters(clip.path)
    ]
    assert found == [(0.0, 0.72, "Opening"), (0.72, 2.0, "Middle part")]
