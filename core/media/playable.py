"""Video every phone plays: H.264 with AAC sound in MP4.

Telegram on iPhones does not play VP9 or AV1 in chat (Telegram-iOS issue 811), and neither does Discord's
iOS app; H.264 (8-bit 4:2:0) + AAC in MP4 plays on every phone and desktop. A job that asks for a playable
video (chats by default, the API when asked) gets one in two steps:

1. Choosing: among the formats within the quality cap, the best one the site *states* is H.264, unless it
   is less than half the height of the best picture within the cap; then, or when there is no H.264 at all,
   the best picture, to be converted. A site that states no codecs keeps yt-dlp's usual pick.
2. Checking: the downloaded file is probed; whatever does not play everywhere (VP9, AV1, 10-bit H.264,
   Opus or Vorbis sound, a WebM or MKV container) is converted with FFmpeg: a stream that already plays is
   copied, the rest re-encoded (libx264 veryfast CRF 23, AAC 128 kbit/s), chapters, tags and subtitles
   kept, `+faststart` so it streams.

Every function here blocks: the downloader calls them on its download thread.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from core.errors import Cancelled, DownloadFailed, TooLarge
from core.i18n import N_
from core.words import human_size

log = logging.getLogger(__name__)

# H.264 at least this share of the best height within the cap is taken as it is; lower, the better picture
# is converted instead (1080p H.264 beside 2160p VP9: take the 1080p; 144p beside 1080p: convert).
MIN_HEIGHT_RATIO = 0.5
CONVERT_TIMEOUT_S = 3600
PROGRESS_INTERVAL_S = 2.0
_H264 = ("avc1", "avc3", "h264")
_AAC = ("mp4a", "aac")
PLAYABLE_VIDEO = {"h264"}
PLAYABLE_PIX_FMTS = {"yuv420p", "yuvj420p"}
PLAYABLE_AUDIO = {"aac"}
PLAYABLE_SUFFIX = ".mp4"


def _codec(value: Any) -> str:
    return str(value or "").lower()


def is_h264(fmt: dict[str, Any]) -> bool:
    return _codec(fmt.get("vcodec")).startswith(_H264)


def _has_video(fmt: dict[str, Any]) -> bool:
    # Storyboards and sound-only formats say vcodec "none"; plain files say nothing and may well be video.
    return fmt.get("vcodec") != "none" and fmt.get("ext") not in ("mhtml",)


def choose_playable_format(info: dict[str, Any], quality: str) -> dict[str, Any] | None:
    """The picture to download for a playable video: an H.264 one when the rule allows, else the best picture
    (to be converted after the download). None when the site states no codec: yt-dlp's usual pick, which
    prefers mp4, is then checked after the download like anything else. See the module's rule."""
    cap = None if quality in ("best", "", None) else int(quality)
    video = [f for f in info.get("formats") or [] if f.get("format_id") and _has_video(f)]
    within = [f for f in video if cap is None or (f.get("height") or 0) <= cap]
    # Nothing within the cap: yt-dlp's selector then falls back to the best of all, and so do we.
    pool = within or video
    if not any(f.get("vcodec") for f in pool):
        return None

    def rank(f: dict[str, Any]) -> tuple[Any, ...]:
        sound = _codec(f.get("acodec"))
        return (
            f.get("height") or 0,
            sound.startswith(_AAC),  # sound that plays, in the same file
            f.get("ext") == "mp4",
            f.get("tbr") or 0,
        )

    best = max(pool, key=rank)
    h264 = [f for f in pool if is_h264(f)]
    if not h264:
        return best
    pick = max(h264, key=rank)
    best_height = best.get("height") or 0
    if best_height and (pick.get("height") or 0) < best_height * MIN_HEIGHT_RATIO:
        log.debug(
            "H.264 at %sp is under half of %sp: converting that instead", pick.get("height"), best_height
        )
        return best
    return pick


def h264_only(info: dict[str, Any]) -> dict[str, Any]:
    """`info` with only the pictures the site states are H.264 (and the sound-only formats), for choosing a
    smaller copy of a playable video by its stated size: a conversion's size can't be known beforehand."""
    formats = [f for f in info.get("formats") or [] if is_h264(f) or f.get("vcodec") == "none"]
    return {**info, "formats": formats}


def playable_spec(fmt: dict[str, Any]) -> str:
    """A chosen H.264 format as a yt-dlp selector: picture without sound gets AAC sound merged in."""
    fid = str(fmt["format_id"])
    if fmt.get("acodec") == "none":
        return f"{fid}+ba[acodec^=mp4a]/{fid}+ba[ext=m4a]/{fid}+ba/{fid}"
    return fid


# -- checking ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Streams:
    """What a file holds, as far as playing it on a phone goes."""

    video: str | None  # codec name (h264, vp9, av1...), None without a picture
    pix_fmt: str | None
    audio: str | None  # codec name (aac, opus...), None without sound
    width: int | None = None
    height: int | None = None
    duration: float | None = None

    @property
    def video_plays(self) -> bool:
        return self.video in PLAYABLE_VIDEO and (self.pix_fmt or "yuv420p") in PLAYABLE_PIX_FMTS

    @property
    def audio_plays(self) -> bool:
        return self.audio is None or self.audio in PLAYABLE_AUDIO


def plays_everywhere(path: Path, streams: Streams) -> bool:
    return path.suffix.lower() == PLAYABLE_SUFFIX and streams.video_plays and streams.audio_plays


# H.264 profiles that play everywhere: Baseline, Main, Extended and High are 8-bit 4:2:0 (High 10, 4:2:2 and
# 4:4:4 are not). Sound in an `mp4a` entry is AAC unless its object type says MP3.
_MP4_H264 = {b"avc1", b"avc3"}
_PLAYABLE_PROFILES = {66, 77, 88, 100}
_MP4_MP3_OBJECTS = {0x69, 0x6B}
# Bytes of fields before the boxes inside a visual and an audio sample entry (ISO/IEC 14496-12).
_VISUAL_ENTRY = 78
_AUDIO_ENTRY = 28


def _boxes(fh: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, end) of the MP4 boxes between start and end."""
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        size, kind = struct.unpack(">I4s", fh.read(8))
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", fh.read(8))[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            raise ValueError("corrupt box")
        yield kind, pos + header, min(pos + size, end)
        pos += size


def _child(fh: BinaryIO, start: int, end: int, *path: bytes) -> tuple[int, int] | None:
    """The payload (start, end) of the box at `path` below start..end."""
    for kind, s, e in _boxes(fh, start, end):
        if kind == path[0]:
            return (s, e) if len(path) == 1 else _child(fh, s, e, *path[1:])
    return None


def _track(fh: BinaryIO, start: int, end: int) -> tuple[bytes, bytes, int, int] | None:
    """(handler, first sample entry's type, its start, its end) of one trak."""
    hdlr = _child(fh, start, end, b"mdia", b"hdlr")
    stsd = _child(fh, start, end, b"mdia", b"minf", b"stbl", b"stsd")
    if hdlr is None or stsd is None:
        return None
    fh.seek(hdlr[0] + 8)  # version, flags, pre_defined
    handler = fh.read(4)
    entry = next(_boxes(fh, stsd[0] + 8, stsd[1]), None)  # version, flags and entry count first
    return (handler, entry[0], entry[1], entry[2]) if entry is not None else None


def _mp4_plays(path: Path) -> bool | None:
    """From the file's own boxes, in microseconds (no ffprobe): True when its first picture is 8-bit 4:2:0
    H.264 and its first sound AAC (or it has none), False when not, None when the boxes don't say."""
    with path.open("rb") as fh:
        moov = _child(fh, 0, path.stat().st_size, b"moov")
        if moov is None:
            return None
        tracks = [_track(fh, s, e) for kind, s, e in _boxes(fh, *moov) if kind == b"trak"]
        video = next((t for t in tracks if t is not None and t[0] == b"vide"), None)
        audio = next((t for t in tracks if t is not None and t[0] == b"soun"), None)
        if video is None or video[1] not in _MP4_H264:
            return None if video is None else False
        avcc = _child(fh, video[2] + _VISUAL_ENTRY, video[3], b"avcC")
        if avcc is None:
            return None
        fh.seek(avcc[0] + 1)  # configurationVersion, then AVCProfileIndication
        if fh.read(1)[0] not in _PLAYABLE_PROFILES:
            return False
        if audio is None:
            return True
        if audio[1] != b"mp4a":
            return False
        esds = _child(fh, audio[2] + _AUDIO_ENTRY, audio[3], b"esds")
        if esds is None:
            return None
        fh.seek(esds[0] + 4)  # version and flags
        data = fh.read(min(64, esds[1] - esds[0] - 4))
    # ES_Descriptor (tag 3) holds a DecoderConfigDescriptor (tag 4) whose first byte is the object type.
    at = data.find(b"\x04", 3)
    if at < 0:
        return None
    at += 1
    while at < len(data) and data[at] & 0x80:  # the descriptor's length: 1 to 4 bytes
        at += 1
    return data[at + 1] not in _MP4_MP3_OBJECTS if at + 1 < len(data) else None


def _ffprobe_for(ffmpeg: str) -> str | None:
    sibling = Path(ffmpeg).with_name("ffprobe")
    return str(sibling) if sibling.exists() else shutil.which("ffprobe")


def probe_streams(path: Path, ffmpeg: str) -> Streams:
    """The file's first picture and sound streams: ffprobe, or `ffmpeg -i` where there is no ffprobe."""
    ffprobe = _ffprobe_for(ffmpeg)
    if ffprobe:
        out = subprocess.run(
            [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
            capture_output=True, text=True, timeout=60, check=False,
        ).stdout  # fmt: skip
        data = json.loads(out or "{}")
        streams = data.get("streams") or []
        video = next(
            (s for s in streams if s.get("codec_type") == "video"
             and not (s.get("disposition") or {}).get("attached_pic")),
            None,
        )  # fmt: skip
        audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
        duration = (data.get("format") or {}).get("duration")
        return Streams(
            video=video.get("codec_name") if video else None,
            pix_fmt=video.get("pix_fmt") if video else None,
            audio=audio.get("codec_name") if audio else None,
            width=int(video["width"]) if video and video.get("width") else None,
            height=int(video["height"]) if video and video.get("height") else None,
            duration=float(duration) if duration else None,
        )
    err = subprocess.run(
        [ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=60, check=False
    ).stderr
    video_line = re.search(r"Stream #\S+.*?: Video: (\w+)[^\n]*", err)
    audio_line = re.search(r"Stream #\S+.*?: Audio: (\w+)", err)
    pix = re.search(r", (yuv\w+|nv\d+|gray\w*|rgb\w*|bgr\w*)", video_line.group(0)) if video_line else None
    size = re.search(r", (\d{2,5})x(\d{2,5})", video_line.group(0)) if video_line else None
    dur = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", err)
    return Streams(
        video=video_line.group(1) if video_line else None,
        pix_fmt=pix.group(1) if pix else None,
        audio=audio_line.group(1) if audio_line else None,
        width=int(size.group(1)) if size else None,
        height=int(size.group(2)) if size else None,
        duration=int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else None,
    )


# -- converting --------------------------------------------------------------------------------------------


def conversion_args(src: Path, dest: Path, streams: Streams) -> list[str]:
    """FFmpeg's arguments to turn `src` into an H.264/AAC MP4 at the same size, copying what already plays."""
    args = ["-i", str(src), "-map", "0:v:0", "-map", "0:a:0?", "-map", "0:s?",
            "-map_metadata", "0", "-map_chapters", "0"]  # fmt: skip
    if streams.video_plays:
        args += ["-c:v", "copy"]
    else:
        args += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]
        if (streams.width or 0) % 2 or (streams.height or 0) % 2:
            # 4:2:0 needs even sides.
            args += ["-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2"]
    args += ["-c:a", "copy"] if streams.audio_plays else ["-c:a", "aac", "-b:a", "128k"]
    # mp4 takes text subtitles as mov_text only.
    args += ["-c:s", "mov_text", "-movflags", "+faststart", "-f", "mp4", str(dest)]
    return args


def make_playable(
    path: Path,
    ffmpeg: str | None,
    *,
    cancel: threading.Event,
    max_bytes: int | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> Path:
    """`path` when it plays everywhere, else an H.264/AAC MP4 copy beside it (the original is removed).
    Raises Cancelled, TooLarge (the copy outgrew `max_bytes`) or DownloadFailed."""
    if path.suffix.lower() == PLAYABLE_SUFFIX:
        try:
            if _mp4_plays(path):
                return path
        except (OSError, struct.error, ValueError, IndexError):
            pass  # boxes we can't read: FFmpeg will say
    if ffmpeg is None:
        log.warning("no FFmpeg: %s is delivered as it is, playable or not", path.name)
        return path
    streams = probe_streams(path, ffmpeg)
    if streams.video is None:
        return path  # no picture: nothing a phone would refuse to show
    if plays_everywhere(path, streams):
        return path
    dest = path.with_name(f"{path.stem}.playable{PLAYABLE_SUFFIX}")
    log.info(
        "converting %s (%s/%s %s) to H.264/AAC MP4",
        path.name, streams.video, streams.audio, streams.pix_fmt,
    )  # fmt: skip
    started = time.monotonic()
    if on_progress is not None:
        on_progress(0.0)
    run_ffmpeg(
        ffmpeg, conversion_args(path, dest, streams), dest,
        duration=streams.duration, cancel=cancel, max_bytes=max_bytes, on_progress=on_progress,
    )  # fmt: skip
    path.unlink(missing_ok=True)
    log.info("converted %s in %.1fs (%d bytes)", path.name, time.monotonic() - started, dest.stat().st_size)
    return dest


def run_ffmpeg(
    ffmpeg: str,
    args: list[str],
    output: Path,
    *,
    duration: float | None,
    cancel: threading.Event,
    max_bytes: int | None = None,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Run FFmpeg writing `output`, reporting the share done, stopping at once on cancel and when the output
    grows past `max_bytes`."""
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-progress", "pipe:1",
           "-nostats", *args]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_time = [0.0]
    errors: list[str] = []

    def read_progress() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("out_time_us=") and line[12:].strip().isdigit():
                out_time[0] = int(line[12:]) / 1_000_000

    def read_errors() -> None:
        assert proc.stderr is not None
        errors.append(proc.stderr.read()[-500:])

    readers = [threading.Thread(target=fn, daemon=True) for fn in (read_progress, read_errors)]
    for reader in readers:
        reader.start()
    started = last_report = time.monotonic()
    try:
        while proc.poll() is None:
            if cancel.wait(0.2):
                raise Cancelled()
            now = time.monotonic()
            if now - started > CONVERT_TIMEOUT_S:
                raise DownloadFailed(N_("Converting the video for phones took too long."))
            if max_bytes is not None and output.exists() and output.stat().st_size > max_bytes:
                raise TooLarge(
                    N_("The video converted for phones grew over the limit of {size}.").format(
                        size=human_size(max_bytes)
                    )
                )
            if on_progress is not None and duration and now - last_report >= PROGRESS_INTERVAL_S:
                last_report = now
                on_progress(min(1.0, out_time[0] / duration))
    except BaseException:
        proc.kill()
        proc.wait()
        output.unlink(missing_ok=True)
        raise
    finally:
        for reader in readers:
            reader.join(timeout=5)
    if proc.returncode != 0:
        output.unlink(missing_ok=True)
        log.warning("ffmpeg failed (%s): %s", proc.returncode, "".join(errors).strip())
        raise DownloadFailed(N_("FFmpeg could not convert this video into one every phone plays."))
    if max_bytes is not None and output.stat().st_size > max_bytes:
        output.unlink(missing_ok=True)
        raise TooLarge(
            N_("The video converted for phones is over the limit of {size}.").format(
                size=human_size(max_bytes)
            )
        )


__all__ = [
    "MIN_HEIGHT_RATIO",
    "Streams",
    "choose_playable_format",
    "conversion_args",
    "h264_only",
    "is_h264",
    "make_playable",
    "playable_spec",
    "plays_everywhere",
    "probe_streams",
]
