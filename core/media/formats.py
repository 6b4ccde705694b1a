"""yt-dlp's formats as choices people pick from (labels, sizes, codecs), and the format a person picked."""

from __future__ import annotations

import logging
from typing import Any

from core.errors import UnknownFormat
from core.jobs.formats import FormatChoice, MediaFormats, Playlist
from core.words import human_size

log = logging.getLogger(__name__)

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


def chosen_format(raw: dict[str, Any], format_id: str, kind: str) -> dict[str, Any]:
    """The format a person picked, from the formats the site offers; UnknownFormat when there is none."""
    formats = [f for f in raw.get("formats") or [] if f.get("format_id")]
    for fmt in formats:
        if str(fmt["format_id"]) == format_id:
            return fmt
    names = ", ".join(str(f["format_id"]) for f in formats[-12:])
    raise UnknownFormat(
        f'This link has no format "{format_id[:40]}". Its formats are: {names}.'
        if names
        else f'This link has no format "{format_id[:40]}".'
    )


def format_spec(fmt: dict[str, Any], kind: str) -> str:
    """A chosen format as a selector: video without sound gets the best audio merged in."""
    fid = str(fmt["format_id"])
    if kind == "video" and fmt.get("acodec") == "none" and fmt.get("vcodec") != "none":
        return f"{fid}+ba[ext=m4a]/{fid}+ba/{fid}"
    return fid
