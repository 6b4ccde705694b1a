"""Duration and size of a finished file, which the generic extractor doesn't report for direct links.

MP4-family files (mp4, m4a, mov: nearly everything we produce) are read from their `moov` box in
microseconds; anything else goes to ffprobe, or to `ffmpeg -i` where there is no ffprobe. Starting
ffprobe costs 50-250 ms, a large share of a fast local download.
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

MP4_SUFFIXES = {".mp4", ".m4a", ".m4v", ".mov"}
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


@dataclass(frozen=True)
class Probe:
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    has_video: bool = False
    has_audio: bool = False


def probe_media(path: Path, ffmpeg: str | None) -> Probe:
    if path.suffix.lower() in MP4_SUFFIXES:
        try:
            with path.open("rb") as fh:
                found = _probe_mp4(fh, path.stat().st_size)
            if found is not None:
                return found
        except (OSError, struct.error, ValueError):
            pass
    return _probe_external(path, ffmpeg)


def _boxes(fh: BinaryIO, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, payload start, box end) of the boxes between start and end."""
    found = []
    pos = start
    while pos + 8 <= end:
        fh.seek(pos)
        size, kind = struct.unpack(">I4s", fh.read(8))
        header = 8
        if size == 1:
            size = struct.unpack(">Q", fh.read(8))[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header:
            raise ValueError("corrupt box")
        found.append((kind, pos + header, min(pos + size, end)))
        pos += size
    return found


def _probe_mp4(fh: BinaryIO, file_size: int) -> Probe | None:
    moov = next(((s, e) for k, s, e in _boxes(fh, 0, file_size) if k == b"moov"), None)
    if moov is None:
        return None
    duration: float | None = None
    width = height = None
    has_video = has_audio = False
    for kind, start, end in _boxes(fh, *moov):
        if kind == b"mvhd":
            fh.seek(start)
            version = fh.read(1)[0]
            if version == 1:
                fh.seek(start + 20)
                timescale, length = struct.unpack(">IQ", fh.read(12))
            else:
                fh.seek(start + 12)
                timescale, length = struct.unpack(">II", fh.read(8))
            duration = length / timescale if timescale else None
        elif kind == b"trak":
            handler, tkhd_size = _track(fh, start, end)
            if handler == b"vide" and tkhd_size and tkhd_size[0]:
                has_video = True
                width, height = tkhd_size
            elif handler == b"soun":
                has_audio = True
    return Probe(duration=duration, width=width, height=height, has_video=has_video, has_audio=has_audio)


def _track(fh: BinaryIO, start: int, end: int) -> tuple[bytes | None, tuple[int, int] | None]:
    handler = None
    size = None
    for kind, s, e in _boxes(fh, start, end):
        if kind == b"tkhd":
            # Width and height are the box's last 8 bytes, 16.16 fixed point.
            fh.seek(e - 8)
            w, h = struct.unpack(">II", fh.read(8))
            size = (w >> 16, h >> 16)
        elif kind == b"mdia":
            for k2, s2, _e2 in _boxes(fh, s, e):
                if k2 == b"hdlr":
                    fh.seek(s2 + 8)
                    handler = fh.read(4)
    return handler, size


def _probe_external(path: Path, ffmpeg: str | None) -> Probe:
    ffprobe = None
    if ffmpeg:
        sibling = Path(ffmpeg).with_name("ffprobe")
        ffprobe = str(sibling) if sibling.exists() else shutil.which("ffprobe")
    if ffprobe:
        try:
            out = subprocess.run(
                [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout
            data = json.loads(out or "{}")
        except (OSError, subprocess.SubprocessError, ValueError):
            return Probe()
        streams = data.get("streams", [])
        video = next((s for s in streams if s.get("codec_type") == "video" and s.get("width")), None)
        duration = data.get("format", {}).get("duration")
        return Probe(
            duration=float(duration) if duration else None,
            width=int(video["width"]) if video else None,
            height=int(video["height"]) if video else None,
            has_video=video is not None,
            has_audio=any(s.get("codec_type") == "audio" for s in streams),
        )
    if not ffmpeg:
        return Probe()
    try:
        err = subprocess.run(
            [ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=30
        ).stderr
    except (OSError, subprocess.SubprocessError):
        return Probe()
    dur = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", err)
    size = re.search(r"Stream .*Video: .*?(\d{2,5})x(\d{2,5})", err)
    return Probe(
        duration=int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else None,
        width=int(size.group(1)) if size else None,
        height=int(size.group(2)) if size else None,
        has_video=size is not None,
        has_audio="Audio:" in err,
    )
