"""Chapters read from a file and the file split at them: one part per chapter, titled and numbered, each as
long as its chapter and starting on its first frame (the counter media's borders fall on keyframes)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from core.cuts.chapters import Chapter, chapters_note, read_chapters, split_by_chapters
from core.errors import Cancelled
from tests.support.chaptered import CHAPTERS, FPS, ChapteredMedia, frame_number
from tests.support.media import ffprobe

pytestmark = pytest.mark.timeout(120)


def test_chapters_are_read_with_their_titles_and_times(chaptered: ChapteredMedia, ffmpeg: str) -> None:
    for path in (chaptered.video, chaptered.audio):
        found = read_chapters(path, ffmpeg=ffmpeg)
        assert [(c.title, c.start, c.end) for c in found] == list(CHAPTERS)


def test_no_chapters_make_no_parts_and_a_part_carries_none_inside(
    chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path
) -> None:
    bare = split_by_chapters(chaptered.video, [], tmp_path, ffmpeg=ffmpeg, cancel=threading.Event())
    assert bare == []
    parts = split_by_chapters(
        chaptered.video, [Chapter("All", 0.0, 16.0)], tmp_path, ffmpeg=ffmpeg, cancel=threading.Event()
    )
    assert read_chapters(parts[0].path, ffmpeg=ffmpeg) == []


@pytest.mark.parametrize("which", ["video", "audio"])
def test_a_split_gives_one_numbered_titled_part_per_chapter(
    chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path, which: str
) -> None:
    source = getattr(chaptered, which)
    parts = split_by_chapters(
        source, read_chapters(source, ffmpeg=ffmpeg), tmp_path, ffmpeg=ffmpeg, cancel=threading.Event()
    )
    assert [(p.index, p.title) for p in parts] == [
        (i, name) for i, (name, _, _) in enumerate(CHAPTERS, start=1)
    ]
    assert [p.path.name for p in parts] == [
        f"0{i} {name}{source.suffix}" for i, (name, _, _) in enumerate(CHAPTERS, 1)
    ]
    assert sorted(tmp_path.iterdir()) == sorted(p.path for p in parts)  # no leftovers
    for part, (_, start, end) in zip(parts, CHAPTERS, strict=True):
        info = ffprobe(part.path)
        assert abs(float(info["format"]["duration"]) - (end - start)) <= 0.1, (part, info["format"])
        if which == "video":
            assert frame_number(part.path, 0) == round(start * FPS)


def test_short_chapters_join_the_one_before(chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path) -> None:
    chapters = [Chapter("A", 0.0, 4.0), Chapter("blink", 4.0, 4.5), Chapter("B", 4.5, 16.0)]
    parts = split_by_chapters(chaptered.video, chapters, tmp_path, ffmpeg=ffmpeg, cancel=threading.Event())
    assert [(p.title, p.start, p.end) for p in parts] == [("A", 0.0, 4.5), ("B", 4.5, 16.0)]


def test_what_comes_before_the_first_chapter_is_left_out(
    chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path
) -> None:
    chapters = [Chapter("Middle", 4.0, 12.0), Chapter("End", 12.0, 16.0)]
    parts = split_by_chapters(chaptered.video, chapters, tmp_path, ffmpeg=ffmpeg, cancel=threading.Event())
    assert [p.title for p in parts] == ["Middle", "End"]
    assert frame_number(parts[0].path, 0) == 4 * FPS
    assert abs(float(ffprobe(parts[0].path)["format"]["duration"]) - 8.0) <= 0.1


def test_a_cancelled_split_stops(chaptered: ChapteredMedia, ffmpeg: str, tmp_path: Path) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        split_by_chapters(
            chaptered.video,
            read_chapters(chaptered.video, ffmpeg=ffmpeg),
            tmp_path,
            ffmpeg=ffmpeg,
            cancel=cancel,
        )


@pytest.mark.parametrize(("count", "text"), [(0, None), (1, "1 chapter"), (3, "3 chapters")])
def test_the_delivery_says_how_many_chapters(count: int, text: str | None) -> None:
    assert chapters_note(count).text == text
    assert chapters_note(count).count == count
