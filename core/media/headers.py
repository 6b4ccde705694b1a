"""What a media file is (size, picture height, codecs, length) when the page doesn't say, read from a few of
its bytes instead of the whole file: the first 64 KiB, plus, for an MP4 whose index (`moov`) comes after the
media, that index. Pages that merely link a file (direct links, og:video, <video> tags) state nothing else.

The bytes are fetched by the caller's `open_url`, i.e. through yt-dlp with the job's address guard, cookies
and headers; they are written into a sparse file of the real size at their real offsets, so the MP4 reader
and ffprobe see them where they belong. A stream (an HLS media playlist) is judged by its first segment.
"""

from __future__ import annotations

import dataclasses
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from core.media.probe import Probe, probe_media

# Not more than a player reads to start: 64 KiB is also what the test site still counts as a probe.
HEAD_BYTES = 64 * 1024
INDEX_LIMIT = 8 * 1024 * 1024  # an MP4 index larger than this (hours of video) is not fetched
PLAYLIST_LIMIT = 512 * 1024
FFPROBE_TIMEOUT_S = 5.0

# (url, headers) -> an open response with .status, .headers.get(name), .read(n) and .close()
OpenUrl = Callable[[str, dict[str, str]], Any]


@dataclass(frozen=True)
class Facts:
    size: int | None = None
    size_estimated: bool = False
    probe: Probe | None = None


def file_facts(open_url: OpenUrl, url: str, headers: dict[str, str], work: Path, ffmpeg: str | None) -> Facts:
    """Size (Content-Length / Content-Range) and, from the file's head (and MP4 index), what it holds."""
    head, total = _fetch(open_url, url, headers, 0, HEAD_BYTES - 1)
    if not head:
        return Facts(size=total)
    path = work / "head.bin"
    with path.open("wb") as fh:
        fh.write(head)
        if head[4:8] == b"ftyp" and total:
            path = path.rename(work / "head.mp4")
            _add_mp4_index(fh, open_url, url, headers, head, total)
        if total and total > len(head):
            fh.truncate(total)  # sparse: offsets (and sizes ffprobe estimates from) stay the file's own
    probe = probe_media(path, ffmpeg, timeout=FFPROBE_TIMEOUT_S)
    return Facts(size=total, probe=probe if probe.has_video or probe.has_audio else None)


def stream_facts(
    open_url: OpenUrl, url: str, headers: dict[str, str], work: Path, ffmpeg: str | None
) -> Facts:
    """An HLS media playlist: what its first segment holds, and a size estimated from that segment's."""
    text, _ = _fetch(open_url, url, headers, 0, PLAYLIST_LIMIT - 1)
    lines = [line.strip() for line in text.decode("utf-8", "replace").splitlines() if line.strip()]
    if "#EXTM3U" not in lines[:1] or any(
        line.startswith(("#EXT-X-STREAM-INF", "#EXT-X-KEY")) for line in lines
    ):
        return Facts()  # a master playlist (yt-dlp reads those itself) or an encrypted stream
    durations = [float(m.group(1)) for line in lines if (m := re.match(r"#EXTINF:([\d.]+)", line))]
    segments = [line for line in lines if not line.startswith("#")]
    init = next((m.group(1) for line in lines if (m := re.match(r'#EXT-X-MAP:.*URI="([^"]+)"', line))), None)
    if not segments or not durations:
        return Facts()
    first = file_facts(open_url, urljoin(url, init or segments[0]), headers, work, ffmpeg)
    if init is not None:
        _, segment_size = _fetch(open_url, urljoin(url, segments[0]), headers, 0, 0)
    else:
        segment_size = first.size
    size = None
    if segment_size and durations[0] > 0:
        size = int(segment_size / durations[0] * sum(durations))
    # The first segment's picture and sound; the length is the whole playlist's.
    probe = dataclasses.replace(first.probe, duration=sum(durations)) if first.probe else None
    return Facts(size=size, size_estimated=True, probe=probe)


def _fetch(
    open_url: OpenUrl, url: str, headers: dict[str, str], start: int, end: int
) -> tuple[bytes, int | None]:
    """Bytes start..end (inclusive) of a file, and its whole size when the server says."""
    response = open_url(url, {**headers, "Range": f"bytes={start}-{end}"})
    try:
        if response.status == 206:
            match = re.search(r"/(\d+)\s*$", response.headers.get("Content-Range") or "")
            return response.read(end - start + 1), int(match.group(1)) if match else None
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        # The server ignored the range and sends the whole file: take what was asked for from its start.
        return (response.read(end + 1)[start:] if start < HEAD_BYTES else b""), total
    finally:
        response.close()


def _add_mp4_index(
    fh: Any, open_url: OpenUrl, url: str, headers: dict[str, str], head: bytes, total: int
) -> None:
    """Write the `moov` box at its place when the head does not hold it whole (media first, index last)."""
    pos, header = 0, head
    for _ in range(8):  # a few top-level boxes: ftyp, free, mdat, moov...
        if pos + 8 > total:
            return
        if pos + 16 > len(head):
            header, _ = _fetch(open_url, url, headers, pos, pos + 15)
            offset = 0
        else:
            header, offset = head, pos
        if len(header) < offset + 8:
            return
        size, kind = struct.unpack(">I4s", header[offset : offset + 8])
        if size == 1 and len(header) >= offset + 16:
            size = struct.unpack(">Q", header[offset + 8 : offset + 16])[0]
        elif size == 0:
            size = total - pos
        if size < 8:
            return
        if kind == b"moov":
            end = min(pos + size, total)
            if end <= len(head) or end - pos > INDEX_LIMIT:
                return
            start = max(pos, len(head))
            data, _ = _fetch(open_url, url, headers, start, end - 1)
            fh.seek(start)
            fh.write(data)
            return
        pos += size
