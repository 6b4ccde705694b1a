"""A clip cut from a stored file, frame-accurate at its start, and the soundless animation Telegram's /gif sends.

How (of the three ways to start a clip on the exact frame):

- (a) **re-encode the clip's picture**, chosen. FFmpeg seeks to the keyframe before the start, decodes from
  there and drops every frame before it, so the first frame is the one asked for, whatever the source's GOP.
  The picture becomes H.264 (libx264 veryfast, CRF 20, 4:2:0), which every phone plays, so a VP9 or AV1 source
  needs no second conversion; the sound is copied when MP4 holds it as it is (AAC, MP3), else made AAC.
  bench/clip_bench.py measures it: a 10 s clip of a 60 s 720p file took a median 4.9 s on the shared 2-core
  machine under a load of ~10 (encoding at about twice real time), against 7.5 s for fetching the same file from a site on
  127.0.0.1 and cutting it, and 15 s for yt-dlp's (c). Fine for the clips people ask for (seconds to a minute
  or two); a clip of many minutes costs minutes, which is where (b) would pay.
- (b) smart cut (re-encode up to the first keyframe, copy the rest) is faster for long clips, but joins two
  H.264 streams with different parameter sets in one MP4 track: players differ on that, and the encoder has
  to match the source's profile, level and colour exactly. Not worth it for clips of seconds to minutes.
- (c) yt-dlp's download_ranges with force_keyframes_at_cuts re-encodes the downloaded range too (and took
  twice as long as (a) plus a whole download in the bench), and only applies while downloading; a clip of a
  stored file (no download at all) needs (a) anyway.

Only the first picture and sound streams are kept (no subtitles). Sound-only files are cut by stream copy: every audio packet can start playback, so the cut is within one
packet (about 20 ms for AAC) of the start, in the file's own format, with its cover picture and tags.

Every function blocks: run it on a worker thread. Each takes the `cancel` event the job's control holds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from core.cuts.ffmpeg import Streams, probe, run_ffmpeg
from core.cuts.sections import InvalidSection, Section, SectionTooLong
from core.i18n import N_, _
from core.words import human_duration

log = logging.getLogger(__name__)

CUT_TIMEOUT_S = 3600.0
VIDEO_ENCODER = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]
# Sound MP4 holds as it is (and every phone plays); anything else becomes AAC.
MP4_AUDIO = {"aac", "mp3"}
# A Telegram animation: H.264 in MP4 with no sound track, at most this wide, at most this long (it loops in
# the chat and autoplays: a minute is already long for that).
ANIMATION_MAX_WIDTH = 720
ANIMATION_MAX_S = 60.0


@dataclass(frozen=True)
class Clip:
    path: Path
    section: Section  # closed: the end is known
    method: str  # "reencode" (picture re-encoded) | "copy" (sound only, stream copy) | "animation"
    elapsed_s: float


def cut_clip(
    source: Path,
    section: Section,
    dest_dir: Path,
    *,
    ffmpeg: str,
    cancel: threading.Event,
    ffprobe: str | None = None,
    limit_s: float | None = None,
    streams: Streams | None = None,
) -> Clip:
    """`section` of `source` as a new file in `dest_dir` (mp4 for video, the source's own type for sound).
    The section is checked against the file's duration and `limit_s` first (InvalidSection,
    SectionTooLong); `streams` skips the probe when the caller has it. Raises Cancelled, DownloadFailed."""
    streams = streams or probe(source, ffmpeg=ffmpeg, ffprobe=ffprobe)
    closed = section.check(streams.duration, limit_s)
    dest_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if streams.video is None:
        dest = dest_dir / f"clip{source.suffix.lower() or '.m4a'}"
        args = [*_seek(closed, source), "-map", "0:a:0", "-map", "0:v?", "-c", "copy", "-map_metadata", "0"]
        if dest.suffix in (".m4a", ".mp4"):
            args += ["-movflags", "+faststart"]
        method = "copy"
    else:
        dest = dest_dir / "clip.mp4"
        audio = ["-c:a", "copy"] if streams.audio in MP4_AUDIO else ["-c:a", "aac", "-b:a", "128k"]
        args = [
            *_seek(closed, source), "-map", "0:v:0", "-map", "0:a:0?", *VIDEO_ENCODER,
            # 4:2:0 needs even sides
            "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2", *audio,
            "-map_metadata", "0", "-movflags", "+faststart",
        ]  # fmt: skip
        method = "reencode"
    run_ffmpeg(
        ffmpeg, [*args, str(dest)], dest, cancel=cancel, timeout_s=CUT_TIMEOUT_S,
        failure="The clip could not be cut from this file.",
    )  # fmt: skip
    elapsed = time.monotonic() - started
    log.info("clip %s of %s: %s in %.2fs", closed.key(), source.name, method, elapsed)
    return Clip(path=dest, section=closed, method=method, elapsed_s=elapsed)


def to_animation(
    source: Path,
    section: Section,
    dest_dir: Path,
    *,
    ffmpeg: str,
    cancel: threading.Event,
    ffprobe: str | None = None,
    limit_s: float = ANIMATION_MAX_S,
    streams: Streams | None = None,
) -> Clip:
    """`section` of `source` as a Telegram animation: H.264 MP4 with no sound track, at most
    ANIMATION_MAX_WIDTH wide. Raises InvalidSection (also for a file with no picture), SectionTooLong
    (over `limit_s`), Cancelled, DownloadFailed."""
    streams = streams or probe(source, ffmpeg=ffmpeg, ffprobe=ffprobe)
    if streams.video is None:
        raise InvalidSection(N_("This media has no picture to make an animation of."))
    closed = section.check(streams.duration)
    length = closed.length
    if length is not None and length > limit_s:
        raise SectionTooLong(
            _("An animation can be at most {limit} long; this one would be {length}.").format(
                limit=human_duration(limit_s), length=human_duration(length)
            )
        )
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / "animation.mp4"
    started = time.monotonic()
    args = [
        *_seek(closed, source), "-map", "0:v:0", "-an", "-sn", "-dn", *VIDEO_ENCODER,
        # at most 720 px wide, the height following (even)
        "-vf", f"scale='min({ANIMATION_MAX_WIDTH},trunc(iw/2)*2)':-2",
        "-map_metadata", "-1", "-map_chapters", "-1", "-movflags", "+faststart",
    ]  # fmt: skip
    run_ffmpeg(
        ffmpeg, [*args, str(dest)], dest, cancel=cancel, timeout_s=CUT_TIMEOUT_S,
        failure="The animation could not be made from this file.",
    )  # fmt: skip
    return Clip(path=dest, section=closed, method="animation", elapsed_s=time.monotonic() - started)


def _seek(section: Section, source: Path) -> list[str]:
    """Input seeking (fast: from the keyframe before the start), then the clip's length."""
    args = ["-ss", f"{section.start:.3f}", "-i", str(source)]
    if section.length is not None:
        args += ["-t", f"{section.length:.3f}"]
    return args
