"""The yt-dlp options for one job, built by one pure function, and the YoutubeDL made from them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yt_dlp

from core.config import Settings
from core.media.audio import make_postprocessor
from core.media.extraction import add_ytdlp_options
from core.media.ydl import new_ydl

log = logging.getLogger(__name__)

# Seconds between yt-dlp's own progress lines (it goes to our debug log only).
PROGRESS_LINE_S = 5.0


class YdlLogger:
    """yt-dlp's messages go to our log at debug level; its errors are reported by the job, not here."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id

    def debug(self, msg: str) -> None:
        log.debug("[%s] %s", self.job_id, msg)

    def info(self, msg: str) -> None:
        log.debug("[%s] %s", self.job_id, msg)

    def warning(self, msg: str) -> None:
        log.info("[%s] yt-dlp: %s", self.job_id, msg)

    def error(self, msg: str) -> None:
        log.info("[%s] yt-dlp: %s", self.job_id, msg)


def format_selector(kind: str, quality: str) -> str:
    if kind == "audio":
        return "ba[ext=m4a]/ba/b"
    if quality in ("best", "", None):
        cap = ""
    else:
        cap = f"[height<=?{int(quality)}]"
    # Prefer mp4-compatible streams so chat apps can play the result inline; fall back to anything.
    return f"bv*{cap}[ext=mp4]+ba[ext=m4a]/b{cap}[ext=mp4]/bv*{cap}+ba/b{cap}/bv*+ba/b"


def allowed_extractors(settings: Settings) -> list[str]:
    """MEDIABOT_ALLOWED_EXTRACTORS for yt-dlp. `generic` means "any other page" to an operator, but yt-dlp reads
    plain <video> pages with a separate extractor (html5): allowing one allows both."""
    names = list(settings.allowed_extractors)
    if "generic" in (n.lower() for n in names) and "html5" not in (n.lower() for n in names):
        names.append("html5")
    return names


def build_options(
    settings: Settings,
    *,
    kind: str,
    quality: str,
    workdir: Path,
    ffmpeg: str | None,
    subtitles: Sequence[str] = (),
    audio_format: str | None = None,
) -> dict[str, Any]:
    """The yt-dlp options for one job: a pure function of the settings and the request."""
    opts: dict[str, Any] = {
        "format": format_selector(kind, quality),
        "outtmpl": {"default": str(workdir / "media.%(ext)s")},
        "noplaylist": True,
        # A playlist's entries are listed, not extracted, and only as far as we take them: mixes and
        # channels are paged lazily by yt-dlp, so an endless list is never walked.
        "extract_flat": "in_playlist",
        "playlistend": settings.max_playlist_items,
        "quiet": True,
        "no_warnings": False,
        "noprogress": True,
        # yt-dlp formats its progress line for every block it reads, printed or not (~0.1 ms each, a third
        # of a 30 MB local download); our own hook still sees every block, this only spaces out yt-dlp's line.
        "progress_delta": PROGRESS_LINE_S,
        "color": {"stdout": "never", "stderr": "never"},
        "socket_timeout": 20,
        "retries": 3,
        "fragment_retries": 3,
        "concurrent_fragment_downloads": 1,
        "hls_prefer_native": True,
        "overwrites": True,
        "continuedl": False,
        "nopart": False,
        "cachedir": False,
        "check_formats": False,
        "updatetime": False,
        # The site's thumbnail comes along (through the connection guard like the media): the chat
        # thumbnail is made from it, and audio files carry it as cover art.
        "writethumbnail": settings.thumbnails or (kind == "audio" and settings.tag_audio),
        # The urllib handler opens sockets through yt-dlp's create_connection, which our guard wraps;
        # the requests handler goes through urllib3 and would bypass it.
        "compat_opts": {"prefer-legacy-http-handler"},
    }
    if settings.allowed_extractors:
        opts["allowed_extractors"] = allowed_extractors(settings)
    if ffmpeg:
        opts["ffmpeg_location"] = ffmpeg
    add_ytdlp_options(
        opts, settings
    )  # the JavaScript runtime and the PO token provider (core.media.extraction)
    # In the order yt-dlp's own command line runs them (yt_dlp.get_postprocessors).
    postprocessors: list[dict[str, Any]] = []
    if subtitles:
        opts.update(writesubtitles=True, subtitleslangs=list(subtitles), subtitlesformat="srt/vtt/best")
        postprocessors.append({"key": "FFmpegSubtitlesConvertor", "format": "srt", "when": "before_dl"})
    if kind == "audio":
        # Without a type asked for, a sound that already is MP3, AAC or Opus keeps its own (no re-encode);
        # other sounds, and every sound when a type is asked for, become that type (core.media.audio).
        extract = {
            "key": "KeepOrConvertAudio",
            "fallback": audio_format or settings.audio_format,
            "keep": audio_format is None,
            "preferredquality": "0",
        }
        if settings.tag_audio:
            postprocessors += [
                extract,
                # Tags (title, artist from the uploader, date) and the cover, as music players show them;
                # EmbedThumbnail converts a webp cover itself, so no converter runs before it.
                {"key": "AudioTags", "add_metadata": True, "add_chapters": True},
                {"key": "EmbedThumbnail", "already_have_thumbnail": True},
            ]
        else:
            # The site's chapters go into the file, as with tags: players list them.
            postprocessors += [
                extract,
                {"key": "FFmpegMetadata", "add_metadata": False, "add_chapters": True},
            ]
    else:
        opts["merge_output_format"] = "mp4"
        if subtitles:
            # mp4 takes text subtitles as mov_text; the .srt files are kept to be offered as well.
            postprocessors.append({"key": "FFmpegEmbedSubtitle", "already_have_subtitle": True})
        # The site's chapters go into the file (a file without any is left as it is).
        postprocessors.append({"key": "FFmpegMetadata", "add_metadata": False, "add_chapters": True})
    if postprocessors:
        opts["postprocessors"] = postprocessors
    return opts


def open_ydl(opts: dict[str, Any]) -> yt_dlp.YoutubeDL:
    """A YoutubeDL for build_options' options: their post-processors, ours (core.media.audio) among yt-dlp's, are
    added in their order, as YoutubeDL adds its own."""
    params = dict(opts)
    definitions = params.pop("postprocessors", [])
    ydl = new_ydl(params)
    for definition in definitions:
        pp, when = make_postprocessor(ydl, definition)
        ydl.add_post_processor(pp, when=when)
    return ydl


_suitable: dict[tuple[str, ...], list[Any]] = {}


def supported_by(url: str, allowed: tuple[str, ...]) -> bool:
    """Whether an allowed extractor claims the link (only meaningful when the generic one is not allowed)."""
    from yt_dlp.extractor import gen_extractor_classes

    classes = _suitable.get(allowed)
    if classes is None:
        wanted = {name.lower() for name in allowed}
        classes = [
            ie
            for ie in gen_extractor_classes()
            if ie.ie_key().lower() in wanted or ie.IE_NAME.lower() in wanted
        ]
        _suitable[allowed] = classes
    return any(ie.suitable(url) for ie in classes)
