"""What a link offers before a byte of media is fetched: its real formats with sizes, subtitle languages and
thumbnail, for the format pickers of every front end. Probes are cached briefly per normalised URL and
concurrent asks for one URL share one probe."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from core.errors import human_size
from core.schemas import FormatChoice, MediaFormats, Playlist

CACHE_TTL_S = 300.0
CACHE_SIZE = 512
# Formats a person can't use: storyboards (image strips) and manifests without any stream named.
SKIP_EXTS = {"mhtml", "jpg", "png", "webp"}


def media_title(info: dict[str, Any]) -> str | None:
    """The media's title. yt-dlp numbers every <video> or <audio> of a page ("Clip (1)", "Clip (2)"), also
    when there is only one, and then gives the entry an archive id without the "-1": that lone number is
    dropped, while the entries of a page with several keep theirs."""
    title = info.get("title")
    media_id = str(info.get("id") or "")
    if (
        isinstance(title, str)
        and title.endswith(" (1)")
        and media_id.endswith("-1")
        and f"generic {media_id[:-2]}" in (info.get("_old_archive_ids") or ())
    ):
        return title[:-4]
    return title


# Codec families as people know them, from the names yt-dlp (RFC 6381: "avc1.64001F") and ffprobe ("h264") use.
_FAMILIES = {
    "avc1": "H.264", "avc3": "H.264", "h264": "H.264", "hvc1": "H.265", "hev1": "H.265", "hevc": "H.265",
    "h265": "H.265", "vp09": "VP9", "vp9": "VP9", "vp08": "VP8", "vp8": "VP8", "av01": "AV1", "av1": "AV1",
    "mp4v": "MPEG-4", "mpeg4": "MPEG-4", "theora": "Theora", "mp4a": "AAC", "aac": "AAC", "opus": "Opus",
    "mp3": "MP3", "vorbis": "Vorbis", "flac": "FLAC", "ac-3": "AC-3", "ac3": "AC-3", "ec-3": "E-AC-3",
    "eac3": "E-AC-3", "alac": "ALAC",
}  # fmt: skip
# Buttons and menu entries: Telegram shows about this much of a button; Discord cuts labels at 100.
MAX_LABEL = 64


def codec_family(codec: str | None) -> str | None:
    """ "H.264", "VP9", "AAC", "Opus"... for a codec name; None when unknown."""
    if not codec or codec == "none":
        return None
    name, _, profile = codec.strip().lower().partition(".")
    if name == "mp4a" and profile.startswith(("6b", "69", "107", "105")):
        return "MP3"  # MP3 in MP4 (object type 0x6B / 0x69)
    return _FAMILIES.get(name, name)


def _codec(value: Any) -> str | None:
    return None if value in (None, "none") else str(value)


def _choice(fmt: dict[str, Any], duration: float | None) -> FormatChoice | None:
    if not fmt.get("format_id") or fmt.get("ext") in SKIP_EXTS:
        return None
    vcodec, acodec = fmt.get("vcodec"), fmt.get("acodec")
    if vcodec == "none" and acodec == "none":
        return None
    # Formats that don't name their codecs (plain files, players' source lists) carry both.
    is_video = vcodec != "none" and (vcodec is not None or fmt.get("height") or acodec is None)
    has_audio = acodec != "none" if is_video else True
    height = fmt.get("height")
    size = fmt.get("filesize") or fmt.get("filesize_approx")
    estimated = not fmt.get("filesize") and bool(size)
    tbr = fmt.get("tbr")
    if not size and tbr and duration:
        size, estimated = tbr * 1000 / 8 * duration, True
    ext = fmt.get("ext")
    fps = fmt.get("fps")
    sound = codec_family(acodec)
    if is_video:
        name = f"{height}p" if height else "video"
        if fps and fps > 30:
            name += f"{round(fps)}"
        picture = codec_family(vcodec)
        codecs = " + ".join(c for c in (picture, sound if has_audio else None) if c) or None
    else:
        name = "audio only"
        abr = fmt.get("abr")
        codecs = f"{sound} {round(abr)}k" if sound and abr else sound
    pieces = [name, codecs] if codecs else [f"{name} {ext}" if ext else name]
    if is_video and not has_audio:
        pieces.append("video only")
    if size:
        pieces.append(f"{'~' if estimated else ''}{human_size(int(size))}")
    label = " · ".join(pieces)
    return FormatChoice(
        format_id=str(fmt["format_id"]),
        ext=ext,
        kind="video" if is_video else "audio",
        has_audio=has_audio,
        height=height,
        width=fmt.get("width"),
        fps=fps,
        vcodec=_codec(vcodec),
        acodec=_codec(acodec),
        codecs=codecs,
        tbr=tbr,
        filesize=int(size) if size else None,
        filesize_estimated=estimated,
        label=label if len(label) <= MAX_LABEL else label[: MAX_LABEL - 1] + "…",
    )


def media_formats(url: str, raw: dict[str, Any]) -> MediaFormats:
    """yt-dlp's (sanitised) info dict as the choices a person is offered."""
    if raw.get("_type") in ("playlist", "multi_video"):
        entries = [e for e in raw.get("entries") or [] if e]
        total = raw.get("playlist_count")
        return MediaFormats(
            url=url,
            title=raw.get("title"),
            uploader=raw.get("uploader") or raw.get("channel"),
            thumbnail=raw.get("thumbnail"),
            playlist=Playlist(count=len(entries), total=int(total) if total else None),
        )
    duration = raw.get("duration")
    formats = raw.get("formats") or [raw]
    choices = [c for c in (_choice(f, duration) for f in formats) if c is not None]
    video = sorted(
        (c for c in choices if c.kind == "video"),
        key=lambda c: (c.height or 0, c.has_audio, c.ext == "mp4", c.tbr or 0, c.filesize or 0),
        reverse=True,
    )
    audio = sorted(
        (c for c in choices if c.kind == "audio"), key=lambda c: (c.tbr or 0, c.filesize or 0), reverse=True
    )
    return MediaFormats(
        url=url,
        title=media_title(raw),
        duration=float(duration) if duration else None,
        uploader=raw.get("uploader") or raw.get("artist") or raw.get("channel"),
        thumbnail=raw.get("thumbnail"),
        formats=video + audio,
        subtitles=sorted(raw.get("subtitles") or {}),
    )


class FormatCache:
    """Probe results for a few minutes, per process, so a picker that asks again (a button pressed, a page
    reloaded) costs nothing and one link pasted by many people is probed once. Failures are not kept."""

    def __init__(self, ttl_s: float = CACHE_TTL_S, size: int = CACHE_SIZE) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._entries: OrderedDict[str, tuple[float, MediaFormats]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[MediaFormats]] = {}

    async def get(self, key: str, probe: Callable[[], Awaitable[MediaFormats]]) -> MediaFormats:
        hit = self._entries.get(key)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            self._entries.move_to_end(key)
            return hit[1].model_copy(update={"cached": True})
        running = self._inflight.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[MediaFormats] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            found = await probe()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody else waited
            raise
        else:
            future.set_result(found)
            self._entries[key] = (time.monotonic(), found)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)
            return found
        finally:
            del self._inflight[key]
