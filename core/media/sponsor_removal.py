"""SponsorBlock segments applied to a file by yt-dlp's own ModifyChapters post-processor, which removes them (or
arranges them as chapters beside the file's own); the resulting chapters are then written into the file.

The same two post-processors run inside a download when the segments go into `info["sponsorblock_chapters"]`
(core.cuts.sponsorblock.sponsor_chapters) and core.cuts.sponsorblock.modify_chapters_options is in the
post-processor list; here they run on a file already stored, so a request for the same media without
sponsors needs no second download. This is the one module of core.cuts that imports yt-dlp.

Blocking: run it on a worker thread. Removal is a stream copy through FFmpeg's concat demuxer (cuts on
keyframes, seconds even for long files); `cancel` is checked before and after, as yt-dlp's FFmpeg call can't
be interrupted from outside.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yt_dlp.postprocessor import ModifyChaptersPP
from yt_dlp.utils import PostProcessingError

from core.cuts.chapters import read_chapters
from core.cuts.ffmpeg import ffprobe_beside, probe, run_ffmpeg
from core.cuts.sponsorblock import Segment, SponsorChoice, modify_chapters_options, sponsor_chapters
from core.errors import Cancelled, DownloadFailed
from core.i18n import N_
from core.media.ydl import new_ydl

log = logging.getLogger(__name__)

CHAPTERS_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Applied:
    path: Path  # the same path, its content replaced
    duration_before: float | None
    duration_after: float | None
    chapters: list[dict[str, Any]]  # as written into the file (start_time, end_time, title)

    @property
    def removed_s(self) -> float:
        if self.duration_before is None or self.duration_after is None:
            return 0.0
        return max(0.0, self.duration_before - self.duration_after)


class _YtDlpLog:
    """yt-dlp's messages into our log, at debug except its warnings and errors."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        log.warning("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        log.warning("yt-dlp: %s", msg)


def apply_segments(
    path: Path,
    segments: Sequence[Segment],
    choice: SponsorChoice,
    *,
    ffmpeg: str,
    cancel: threading.Event,
    title: str = "",
    exact: bool = False,
) -> Applied:
    """Remove (or mark as chapters) `segments` of the chosen categories in `path`, in place, keeping the
    file's own chapters (shifted past what was removed). `exact`: see modify_chapters_options. Raises
    Cancelled, DownloadFailed."""
    if cancel.is_set():
        raise Cancelled()
    ffprobe = ffprobe_beside(ffmpeg)
    if ffprobe is None:
        # ModifyChaptersPP measures the file with ffprobe; imageio-ffmpeg ships FFmpeg alone.
        raise DownloadFailed(N_("Sponsor segments can't be removed on this server (ffprobe is missing)."))
    streams = probe(path, ffmpeg=ffmpeg, ffprobe=ffprobe)
    wanted = [s for s in segments if s.category in choice.categories]
    own = [
        {"start_time": c.start, "end_time": c.end, "title": c.title}
        for c in read_chapters(path, ffprobe=ffprobe)
    ]
    info: dict[str, Any] = {
        "filepath": str(path),
        "ext": path.suffix.lstrip(".").lower(),
        "title": title or path.stem,
        "duration": streams.duration,
        "chapters": own,
        "sponsorblock_chapters": sponsor_chapters(wanted, streams.duration),
        "vcodec": streams.video or "none",
        "acodec": streams.audio or "none",
        # The file is ours and whole: a duration mismatch means the segments are off, not that it was cut.
        "__real_download": True,
    }
    options = {k: v for k, v in modify_chapters_options(choice, exact=exact).items() if k != "key"}
    params = {"quiet": True, "no_warnings": False, "logger": _YtDlpLog(), "ffmpeg_location": ffmpeg}
    try:
        with new_ydl(params) as ydl:
            leftovers, info = ModifyChaptersPP(ydl, **options).run(info)
            for leftover in leftovers:
                Path(leftover).unlink(missing_ok=True)
    except PostProcessingError as exc:
        log.warning("sponsor segments of %s: %s", path.name, exc.msg)
        raise DownloadFailed(N_("The sponsor segments could not be removed from this file.")) from None
    chapters = info.get("chapters") or []
    if not own and choice.mode == "remove":
        # A file without chapters stays without: yt-dlp's one chapter spanning the whole is noise.
        chapters = []
    if chapters or own:
        _write_chapters(path, chapters, ffmpeg=ffmpeg, cancel=cancel)
    if cancel.is_set():
        raise Cancelled()
    after = probe(path, ffmpeg=ffmpeg, ffprobe=ffprobe).duration
    return Applied(
        path=path,
        duration_before=streams.duration,
        duration_after=after,
        chapters=[{k: c[k] for k in ("start_time", "end_time", "title") if k in c} for c in chapters],
    )


def _write_chapters(
    path: Path, chapters: list[dict[str, Any]], *, ffmpeg: str, cancel: threading.Event
) -> None:
    """Replace the chapters inside `path` (stream copy). yt-dlp's FFmpegMetadataPP would do this too, but it
    lets FFmpeg keep a file's own chapters over the new ones, which is what a stored file has."""
    meta = path.with_name(f"{path.stem}.chapters.txt")
    lines = [";FFMETADATA1"]
    for c in chapters:
        title = re.sub(r"([\\=;#\n])", r"\\\1", str(c.get("title") or ""))
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={int(c['start_time'] * 1000)}",
                  f"END={int(c['end_time'] * 1000)}", f"title={title}"]  # fmt: skip
    meta.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = path.with_name(f"{path.stem}.chapters{path.suffix}")
    args = ["-i", str(path), "-f", "ffmetadata", "-i", str(meta), "-map", "0", "-map", "-0:d", "-c", "copy",
            "-map_metadata", "0", "-map_chapters", "1" if chapters else "-1"]  # fmt: skip
    if path.suffix.lower() in (".mp4", ".m4a", ".m4v", ".mov"):
        args += ["-movflags", "+faststart"]
    try:
        run_ffmpeg(
            ffmpeg, [*args, str(out)], out, cancel=cancel, timeout_s=CHAPTERS_TIMEOUT_S,
            failure="The sponsor segments could not be removed from this file.",
        )  # fmt: skip
        out.replace(path)
    finally:
        meta.unlink(missing_ok=True)
