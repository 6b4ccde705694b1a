"""What a download finds and makes: the media's facts (MediaInfo), a playlist's entries, the files."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UnsupportedUrl
from core.media.formats import media_title

log = logging.getLogger(__name__)

# yt-dlp's extractors for pages that no site extractor knows (the generic one and those it hands a page's
# <video> tags or quoted HTML to), by extractor key and name.
GENERIC_EXTRACTORS = frozenset({"generic", "html5mediaembed", "html5", "quotedhtml", "generic:quoted-html"})


@dataclass(frozen=True)
class MediaInfo:
    title: str | None
    duration: float | None
    extractor: str | None
    media_id: str | None
    ext: str | None
    width: int | None
    height: int | None
    uploader: str | None
    filesize: int | None
    webpage_url: str | None
    upload_date: str | None = None

    @property
    def media_key(self) -> str | None:
        """`extractor:id` when it names the media; the generic extractors' ids are file names, not media (two
        sites' `watch.html` pages would otherwise share one file)."""
        if not self.extractor or not self.media_id or self.extractor.lower() in GENERIC_EXTRACTORS:
            return None
        return f"{self.extractor.lower()}:{self.media_id}"


@dataclass(frozen=True)
class PlaylistFound:
    """A playlist link, read no further than its first `max_playlist_items` entries."""

    title: str | None
    entries: list[dict[str, Any]]  # [{url, title}]
    total: int | None


@dataclass(frozen=True)
class Downloaded:
    path: Path
    info: MediaInfo
    filename: str
    thumbnail: Path | None = None  # a JPEG within chat limits (core.media.thumbnails)
    subtitles: dict[str, Path] = field(default_factory=dict)  # lang -> .srt
    subtitles_missing: list[str] = field(default_factory=list)


def info_from(info: dict[str, Any]) -> MediaInfo:
    size = info.get("filesize") or info.get("filesize_approx")
    if not size and info.get("requested_formats"):
        parts = [f.get("filesize") or f.get("filesize_approx") for f in info["requested_formats"]]
        size = sum(parts) if all(parts) else None
    duration = info.get("duration")
    return MediaInfo(
        title=media_title(info),
        duration=float(duration) if duration else None,
        extractor=info.get("extractor_key") or info.get("extractor"),
        media_id=str(info["id"]) if info.get("id") is not None else None,
        ext=info.get("ext"),
        width=info.get("width"),
        height=info.get("height"),
        uploader=info.get("uploader") or info.get("artist") or info.get("channel"),
        filesize=int(size) if size else None,
        webpage_url=info.get("webpage_url"),
        upload_date=info.get("upload_date") or info.get("release_date"),
    )


def playlist_found(raw: dict[str, Any], entries: list[dict[str, Any]], limit: int) -> PlaylistFound:
    items = []
    for entry in entries[:limit]:
        if entry.get("_type") in ("url", "url_transparent"):
            url = entry.get("url")
        elif entry.get("webpage_url") and entry["webpage_url"] != raw.get("webpage_url"):
            url = entry["webpage_url"]
        else:
            # Several videos on one page: the entry has no page of its own, so take its media file.
            formats = entry.get("formats") or []
            url = entry.get("url") or (formats[-1].get("url") if formats else None)
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            items.append({"url": url, "title": entry.get("title")})
    if not items:
        raise UnsupportedUrl(UnsupportedUrl.no_media_message)
    total = raw.get("playlist_count")
    return PlaylistFound(title=raw.get("title"), entries=items, total=int(total) if total else None)


_FILENAME_BAD = re.compile(r"[^\w\s.()\-\[\]]+", re.UNICODE)


def user_filename(title: str | None, ext: str | None) -> str:
    base = _FILENAME_BAD.sub("_", (title or "media")).strip(" ._") or "media"
    return f"{base[:120]}.{ext or 'bin'}"


def with_format(info: MediaInfo, fmt: dict[str, Any]) -> MediaInfo:
    """The extracted info as it will be with the chosen format (size, picture) instead of yt-dlp's default."""
    size = fmt.get("filesize") or fmt.get("filesize_approx")
    return dataclasses.replace(
        info,
        filesize=int(size) if size else None,
        ext=fmt.get("ext") or info.ext,
        width=fmt.get("width"),
        height=fmt.get("height"),
    )


_PICTURE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def written_thumbnail(result: dict[str, Any], workdir: Path) -> Path | None:
    """The site's thumbnail as yt-dlp wrote it (it may have converted it to jpg), if it wrote one."""
    for thumb in reversed(result.get("thumbnails") or []):
        path = thumb.get("filepath")
        if path and Path(path).is_file():
            return Path(path)
    found = [p for p in workdir.glob("media.*") if p.suffix.lower() in _PICTURE_SUFFIXES]
    return found[0] if found else None


def written_subtitles(result: dict[str, Any], langs: Sequence[str]) -> dict[str, Path]:
    written: dict[str, Path] = {}
    for lang, sub in (result.get("requested_subtitles") or {}).items():
        path = sub.get("filepath")
        if lang in langs and path and Path(path).is_file():
            written[lang] = Path(path)
    return written
