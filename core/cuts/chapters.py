"""A file's chapters, and the file split into one file per chapter.

Splits are stream copies in one pass of FFmpeg's segment muxer, cut on keyframes: each border moves to the
first keyframe at or after the chapter's start (sound alone cuts within one packet), so a split costs no more
than copying the file, every frame is in exactly one part, and no part starts on a frame it can't decode.
The price is a border up to one GOP late in a video whose chapters don't start on keyframes; chapters are
watched or listened to whole, so that is the trade we take (a frame-exact border would re-encode each
part's start, as core.cuts.cut does).

Every function blocks: run it on a worker thread.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from core.cuts.ffmpeg import ffprobe_beside, probe_json, run_ffmpeg

log = logging.getLogger(__name__)

SPLIT_TIMEOUT_S = 600.0
# Parts shorter than this are not worth a message of their own: they join the part before.
MIN_PART_S = 1.0
_EPSILON = 0.001
_MP4_FAMILY = (".mp4", ".m4a", ".m4v", ".mov")
_UNSAFE = re.compile(r'[\x00-\x1f<>:"/\\|?*]+')


@dataclass(frozen=True)
class Chapter:
    title: str
    start: float
    end: float


@dataclass(frozen=True)
class ChapterPart:
    index: int  # 1-based, as the delivery numbers items
    title: str
    path: Path
    start: float
    end: float

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class ChaptersNote:
    """What a delivery says about chapters: `text` is None when there are none."""

    count: int

    @property
    def text(self) -> str | None:
        if self.count <= 0:
            return None
        return "1 chapter" if self.count == 1 else f"{self.count} chapters"


def chapters_note(count: int) -> ChaptersNote:
    """The delivery's words for `count` chapters kept in the file ("3 chapters")."""
    return ChaptersNote(count=count)


def read_chapters(path: Path, *, ffprobe: str | None = None, ffmpeg: str | None = None) -> list[Chapter]:
    """The chapters inside `path`, in order; untitled ones are "Chapter N". ffprobe is `ffprobe`, else the one
    beside `ffmpeg`, else PATH's. Raises DownloadFailed when the file can't be read."""
    found = ffprobe or (ffprobe_beside(ffmpeg) if ffmpeg else None) or ffprobe_beside("ffprobe")
    if found is None:
        log.warning("no ffprobe: the chapters of %s can't be read", path.name)
        return []
    data = probe_json(path, found, "-show_chapters")
    chapters = []
    for number, raw in enumerate(data.get("chapters") or [], start=1):
        try:
            start, end = float(raw["start_time"]), float(raw["end_time"])
        except (KeyError, TypeError, ValueError):
            continue
        title = str(((raw.get("tags") or {}).get("title")) or "").strip() or f"Chapter {number}"
        if end > start:
            chapters.append(Chapter(title=title, start=start, end=end))
    return sorted(chapters, key=lambda c: c.start)


def split_by_chapters(
    path: Path,
    chapters: list[Chapter],
    workdir: Path,
    *,
    ffmpeg: str,
    cancel: threading.Event,
    merge: bool = True,
) -> list[ChapterPart]:
    """One file per chapter in `workdir` ("01 Title.mp4", same type as `path`, the file's own tags), in one
        pass of FFmpeg's segment muxer; chapters shorter than MIN_PART_S join the one before, anything before the
        first chapter or after the last is left out (`merge` False: the chapters are taken as given, as a split's
    item cuts the one chapter it was listed with). Raises Cancelled, DownloadFailed; files already written stay
        for the caller's cleanup of `workdir`."""
    merged = merge_short(chapters) if merge else list(chapters)
    if not merged:
        return []
    workdir.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower() or ".mp4"
    lead = 1 if merged[0].start > _EPSILON else 0  # a part before the first chapter, dropped
    borders = [c.start for c in merged if c.start > _EPSILON] + [merged[-1].end]
    pattern = workdir / f"part%03d{suffix}"
    window: list[str] = []
    if len(merged) == 1 and not merge and merged[0].start > 1.0:
        # One chapter (a split's item): read only around it. Seeking lands on a keyframe at least a second
        # before its start, so the dropped part before it is never empty and the borders stay where the
        # whole-file pass puts them (timestamps kept as they are in the file).
        window = ["-ss", f"{merged[0].start - 1.0:.3f}", "-to", f"{merged[0].end + 1.0:.3f}", "-copyts"]
    args = [
        *window, "-i", str(path), "-map", "0", "-map", "-0:d", "-c", "copy", "-map_chapters", "-1",
        "-f", "segment", "-segment_times", ",".join(f"{t:.3f}" for t in borders),
        "-reset_timestamps", "1",
    ]  # fmt: skip
    if suffix in _MP4_FAMILY:
        args += ["-segment_format_options", "movflags=+faststart"]
    first = workdir / f"part{lead:03d}{suffix}"
    run_ffmpeg(
        ffmpeg, [*args, str(pattern)], first, cancel=cancel, timeout_s=SPLIT_TIMEOUT_S,
        failure="The file could not be split into its chapters.",
    )  # fmt: skip
    parts: list[ChapterPart] = []
    for index, chapter in enumerate(merged, start=1):
        written = workdir / f"part{index - 1 + lead:03d}{suffix}"
        if not written.exists():
            break  # the file ends before its chapters say
        dest = workdir / f"{index:02d} {_safe(chapter.title)}{suffix}"
        written.rename(dest)
        parts.append(
            ChapterPart(index=index, title=chapter.title, path=dest, start=chapter.start, end=chapter.end)
        )
    for extra in workdir.glob(f"part[0-9][0-9][0-9]{suffix}"):
        extra.unlink(missing_ok=True)
    log.info("split %s into %d chapter(s)", path.name, len(parts))
    return parts


def merge_short(chapters: list[Chapter]) -> list[Chapter]:
    merged: list[Chapter] = []
    for chapter in chapters:
        if merged and chapter.end - chapter.start < MIN_PART_S:
            last = merged[-1]
            merged[-1] = Chapter(title=last.title, start=last.start, end=max(last.end, chapter.end))
        else:
            merged.append(chapter)
    return merged


def _safe(title: str) -> str:
    """A title as a file name on every system: no separators or reserved characters, at most 80 chars."""
    cleaned = _UNSAFE.sub(" ", title).strip(" .")
    return re.sub(r"\s+", " ", cleaned)[:80].strip() or "chapter"
