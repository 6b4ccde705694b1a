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

# MP4 sample entries by the codec names ffprobe uses.
_MP4_CODECS = {
    b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc", b"vp09": "vp9", b"vp08": "vp8",
    b"av01": "av1", b"mp4v": "mpeg4", b"mp4a": "aac", b".mp3": "mp3", b"Opus": "opus", b"fLaC": "flac",
    b"ac-3": "ac3", b"ec-3": "eac3", b"alac": "alac",
}  # fmt: skip
EXTERNAL_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Probe:
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    has_video: bool = False
    has_audio: bool = False
    vcodec: str | None = None  # as ffprobe names codecs: h264, vp9, av1, aac, opus, mp3...
    acodec: str | None = None


def probe_media(path: Path, ffmpeg: str | None, *, timeout: float = EXTERNAL_TIMEOUT_S) -> Probe:
    if path.suffix.lower() in MP4_SUFFIXES:
        try:
            with path.open("rb") as fh:
                found = _probe_mp4(fh, path.stat().st_size)
            if found is not None:
                return found
        except (OSError, struct.error, ValueError):
            pass
    return _probe_external(path, ffmpeg, timeout=timeout)


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
    vcodec = acodec = None
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
            handler, tkhd_size, codec = _track(fh, start, end)
            if handler == b"vide" and tkhd_size and tkhd_size[0] and not has_video:
                has_video = True
                width, height = tkhd_size
                vcodec = codec
            elif handler == b"soun" and not has_audio:
                has_audio = True
                acodec = codec
    return Probe(
        duration=duration, width=width, height=height, has_video=has_video, has_audio=has_audio,
        vcodec=vcodec, acodec=acodec,
    )  # fmt: skip


def _track(fh: BinaryIO, start: int, end: int) -> tuple[bytes | None, tuple[int, int] | None, str | None]:
    handler = None
    size = None
    codec = None
    for kind, s, e in _boxes(fh, start, end):
        if kind == b"tkhd":
            # Width and height are the box's last 8 bytes, 16.16 fixed point.
            fh.seek(e - 8)
            w, h = struct.unpack(">II", fh.read(8))
            size = (w >> 16, h >> 16)
        elif kind == b"mdia":
            for k2, s2, e2 in _boxes(fh, s, e):
                if k2 == b"hdlr":
                    fh.seek(s2 + 8)
                    handler = fh.read(4)
                elif k2 == b"minf":
                    codec = _sample_codec(fh, s2, e2)
    return handler, size, codec


def _sample_codec(fh: BinaryIO, start: int, end: int) -> str | None:
    """The codec of a track's first sample entry (minf > stbl > stsd), as ffprobe names it."""
    for kind, s, e in _boxes(fh, start, end):
        if kind != b"stbl":
            continue
        for k2, s2, e2 in _boxes(fh, s, e):
            if k2 == b"stsd" and s2 + 16 <= e2:
                # version + flags (4) and entry count (4), then the first entry's size and type.
                fh.seek(s2 + 12)
                entry = fh.read(4)
                name = _MP4_CODECS.get(entry)
                return name if name is not None else entry.decode("latin-1").strip() or None
    return None


def _probe_external(path: Path, ffmpeg: str | None, *, timeout: float = EXTERNAL_TIMEOUT_S) -> Probe:
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
                timeout=timeout,
            ).stdout
            data = json.loads(out or "{}")
        except (OSError, subprocess.SubprocessError, ValueError):
            return Probe()
        streams = data.get("streams", [])
        video = next((s for s in streams if s.get("codec_type") == "video" and s.get("width")), None)
        audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
        duration = data.get("format", {}).get("duration")
        return Probe(
            duration=float(duration) if duration else None,
            width=int(video["width"]) if video else None,
            height=int(video["height"]) if video else None,
            has_video=video is not None,
            has_audio=audio is not None,
            vcodec=video.get("codec_name") if video else None,
            acodec=audio.get("codec_name") if audio else None,
        )
    if not ffmpeg:
        return Probe()
    try:
        err = subprocess.run(
            [ffmpeg, "-hide_banner", "-i", str(path)], capture_output=True, text=True, timeout=timeout
        ).stderr
    except (OSError, subprocess.SubprocessError):
        return Probe()
    dur = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", err)
    size = re.search(r"Stream .*Video: (\w+).*?(\d{2,5})x(\d{2,5})", err)
    sound = re.search(r"Stream .*Audio: (\w+)", err)
    return Probe(
        duration=int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else None,
        width=int(size.group(2)) if size else None,
        height=int(size.group(3)) if size else None,
        has_video=size is not None,
        has_audio=sound is not None,
        vcodec=size.group(1) if size else None,
        acodec=sound.group(1) if sound else None,
    )
