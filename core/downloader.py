"""yt-dlp, embedded: options built by one pure function, blocking calls made from worker threads only.

A job runs in two phases on one `YoutubeDL` (so the page is fetched once): `extract` reads the media
information and checks the limits before a byte of media is fetched; `download` then fetches the chosen
format into the job's private directory. Cancel and the size limit are enforced by the progress hook,
which raises inside yt-dlp's thread.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import copy
import dataclasses
import errno
import functools
import logging
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import yt_dlp
from yt_dlp.networking import Request
from yt_dlp.utils import DownloadCancelled, DownloadError

from core import pot, thumbnails
from core.audio import make_postprocessor
from core.config import Settings
from core.cookies import check_cookies_dir, cookie_file_for, private_copy
from core.errors import (
    Cancelled,
    DownloadFailed,
    LoginRequired,
    MediabotError,
    PrivateAddress,
    StorageError,
    TooLarge,
    TooLong,
    UnknownFormat,
    UnsupportedUrl,
    WontFit,
    human_duration,
    human_size,
)
from core.extraction import add_ytdlp_options
from core.formats import SKIP_EXTS, media_title
from core.headers import Facts, file_facts, stream_facts
from core.playable import choose_playable_format, make_playable, playable_spec
from core.probe import probe_media
from core.storage import check_free_space, download_dirs
from core.thumbnails import frame_time, make_thumbnail
from core.urls import AddressPolicy, allow_hint, host_port

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.25


def find_ffmpeg(setting: str = "auto") -> str | None:
    """System ffmpeg, else the binary imageio-ffmpeg ships, so a machine with only Python can merge and
    extract audio."""
    if setting and setting != "auto":
        return setting if Path(setting).exists() or shutil.which(setting) else None
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except Exception:  # noqa: BLE001 - missing package or binary: report "no ffmpeg"
        return None


def ffmpeg_version(ffmpeg: str | None) -> str | None:
    if not ffmpeg:
        return None
    try:
        out = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"ffmpeg version (\S+)", out)
    return match.group(1) if match else None


# ---------------------------------------------------------------------------------------------------------
# Connection guard: every socket yt-dlp opens is checked against the job's address policy, after DNS, so a
# redirect to a private host or a DNS answer that changed since the submit-time check is refused too.

_guard = threading.local()
_guard_lock = threading.Lock()
_guard_installed = False


class ForbiddenAddress(OSError):
    pass


def _install_connection_guard() -> None:
    global _guard_installed
    with _guard_lock:
        if _guard_installed:
            return
        from yt_dlp.networking import _helper

        original = _helper.create_connection

        def guarded(address: Any, *args: Any, **kwargs: Any) -> Any:
            policy: AddressPolicy | None = getattr(_guard, "policy", None)
            control: Control | None = getattr(_guard, "control", None)
            if policy is None and control is None:
                return original(address, *args, **kwargs)
            host, port = address[0], address[1]
            make_socket = kwargs.pop("_create_socket_func", _helper._socket_connect)

            def checked(ip_addr: Any, *a: Any, **kw: Any) -> Any:
                if control is not None and control.cancel.is_set():
                    raise ConnectionAbortedError("download cancelled")
                ip = ip_addr[4][0]
                if (
                    policy is not None
                    and not policy.allow_private
                    and not policy.permits(str(host), port, ip)
                    and not _pot_provider_call(str(host), port)
                ):
                    _guard.blocked = (str(host), port, ip)
                    raise ForbiddenAddress(f"connection to a private address refused ({host})")
                sock = make_socket(ip_addr, *a, **kw)
                if control is not None:
                    control.track(sock)
                return sock

            return original(address, *args, _create_socket_func=checked, **kwargs)

        import importlib

        for name in ("_urllib", "_requests", "_websockets", "_curlcffi"):
            try:
                module = importlib.import_module(f"yt_dlp.networking.{name}")
            except Exception:  # noqa: BLE001 - optional handlers whose dependency is absent
                continue
            if getattr(module, "create_connection", None) is original:
                module.create_connection = guarded  # type: ignore[attr-defined]
        _mark_pot_provider_calls()
        _guard_impersonated_requests()
        _guard_installed = True


_REDIRECTS = (301, 302, 303, 307, 308)


def _guard_impersonated_requests() -> None:
    """curl_cffi (browser impersonation) connects in libcurl, past create_connection. For a job with an
    address policy, its session follows redirects here instead of in curl: each hop's addresses are checked
    first, and curl is pinned to them (CURLOPT_RESOLVE), so neither a redirect nor a DNS answer that changes
    in between reaches a private address."""
    try:
        from curl_cffi import CurlOpt
        from yt_dlp.networking._curlcffi import CurlCFFIRH
        from yt_dlp.networking.exceptions import TransportError
    except ImportError:  # curl_cffi absent: impersonation is unavailable, nothing to guard
        return
    original = CurlCFFIRH._create_instance

    def checked_hop(url: str, policy: AddressPolicy) -> list[str]:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise TransportError(f"could not resolve {host}", cause=exc) from exc
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for ip in addresses:
            if not policy.permits(host, port, ip):
                _guard.blocked = (host, port, ip)
                refused = ForbiddenAddress(f"connection to a private address refused ({host})")
                raise TransportError(str(refused), cause=refused)
        # curl's RESOLVE syntax: host:port:addr[,addr], IPv6 addresses in brackets.
        pinned = ",".join(f"[{ip}]" if ":" in ip else ip for ip in addresses)
        return [f"{host}:{port}:{pinned}"]

    def create_instance(self: Any, cookiejar: Any = None) -> Any:
        session = original(self, cookiejar=cookiejar)
        plain = session.request

        def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            policy: AddressPolicy | None = getattr(_guard, "policy", None)
            if policy is None or policy.allow_private:
                return plain(method, url, *args, **kwargs)
            hops = kwargs.pop("max_redirects", None) or 5
            kwargs["allow_redirects"] = False
            for _ in range(hops + 1):
                session.curl_options[CurlOpt.RESOLVE] = checked_hop(url, policy)
                try:
                    response = plain(method, url, *args, **kwargs)
                finally:
                    session.curl_options.pop(CurlOpt.RESOLVE, None)
                location = response.headers.get("location")
                if response.status_code not in _REDIRECTS or not location:
                    return response
                response.close()
                target = urljoin(url, location)
                if urlsplit(target).hostname != urlsplit(url).hostname and kwargs.get("headers"):
                    # As curl does on a change of host: credentials stay with the host they were meant for.
                    kwargs["headers"] = {
                        k: v
                        for k, v in dict(kwargs["headers"]).items()
                        if k.lower() not in ("authorization", "cookie")
                    }
                if response.status_code == 303 or (response.status_code in (301, 302) and method == "POST"):
                    method, kwargs["data"] = "GET", None
                url = target
            raise TransportError(f"more than {hops} redirects")

        session.request = request
        return session

    CurlCFFIRH._create_instance = create_instance  # type: ignore[method-assign]


def _pot_provider_call(host: str, port: int) -> bool:
    """A connection the PO token plugin opens to the configured provider server (often on a private
    network: a compose service): allowed for the plugin's own requests only, never for a link or redirect."""
    return bool(getattr(_guard, "in_pot_provider", False)) and (host.lower(), port) == getattr(
        _guard, "pot_provider", None
    )


def _mark_pot_provider_calls() -> None:
    """Marks the thread while a PO token provider makes its request (yt-dlp's PoTokenProvider helper)."""
    try:
        from yt_dlp.extractor.youtube.pot.provider import PoTokenProvider
    except ImportError:  # a yt-dlp without the PO token framework
        return
    original = PoTokenProvider._request_webpage

    @functools.wraps(original)
    def marked(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = getattr(_guard, "in_pot_provider", False)
        _guard.in_pot_provider = True
        try:
            return original(self, *args, **kwargs)
        finally:
            _guard.in_pot_provider = before

    PoTokenProvider._request_webpage = marked  # type: ignore[method-assign]


def _share_ssl_contexts() -> None:
    """Each YoutubeDL builds its own SSL context, loading the whole CA bundle (about 25 ms, a quarter of a
    30 MB local job); we make one YoutubeDL per job, so the contexts are built once per set of options and
    shared (an SSLContext is safe to use from several threads)."""
    from yt_dlp.networking import common

    with _guard_lock:
        if getattr(common.make_ssl_context, "cache_info", None) is not None:
            return
        common.make_ssl_context = functools.lru_cache(maxsize=16)(common.make_ssl_context)  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------------


@dataclass
class ProgressUpdate:
    status: str  # downloading | processing
    downloaded_bytes: int | None = None
    total_bytes: int | None = None
    speed: float | None = None
    eta: float | None = None


@dataclass
class Control:
    """Shared between the job's coroutine and yt-dlp's thread."""

    cancel: threading.Event = field(default_factory=threading.Event)
    on_progress: Callable[[ProgressUpdate], None] | None = None
    error: MediabotError | None = None
    max_bytes: int | None = None
    # The sockets yt-dlp opened for this job (the connection guard records them), so a stop reaches a
    # download that is stalled in recv() at once instead of after the socket timeout.
    _sockets: weakref.WeakSet[socket.socket] = field(default_factory=weakref.WeakSet)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)
        if self.cancel.is_set():
            self._shut(sock)

    def stop(self) -> None:
        """Cancel from any thread: the hooks see the flag, and open connections are shut under yt-dlp."""
        self.cancel.set()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


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
    thumbnail: Path | None = None  # a JPEG within chat limits (core.thumbnails)
    subtitles: dict[str, Path] = field(default_factory=dict)  # lang -> .srt
    subtitles_missing: list[str] = field(default_factory=list)


class _Abort(DownloadCancelled):
    msg = "aborted by mediabot"


class _Logger:
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
    add_ytdlp_options(opts, settings)  # the JavaScript runtime and the PO token provider (core.extraction)
    # In the order yt-dlp's own command line runs them (yt_dlp.get_postprocessors).
    postprocessors: list[dict[str, Any]] = []
    if subtitles:
        opts.update(writesubtitles=True, subtitleslangs=list(subtitles), subtitlesformat="srt/vtt/best")
        postprocessors.append({"key": "FFmpegSubtitlesConvertor", "format": "srt", "when": "before_dl"})
    if kind == "audio":
        # Without a type asked for, a sound that already is MP3, AAC or Opus keeps its own (no re-encode);
        # other sounds, and every sound when a type is asked for, become that type (core.audio).
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
    """A YoutubeDL for build_options' options: their post-processors, ours (core.audio) among yt-dlp's, are
    added in their order, as YoutubeDL adds its own."""
    params = dict(opts)
    definitions = params.pop("postprocessors", [])
    ydl = yt_dlp.YoutubeDL(params)
    for definition in definitions:
        pp, when = make_postprocessor(ydl, definition)
        ydl.add_post_processor(pp, when=when)
    return ydl


# Describing files a page doesn't describe: how many, how many at once, and how long it may take in all.
MAX_DESCRIBED = 6
FACTS_THREADS = 4
FACTS_TIMEOUT_S = 5.0
FACTS_DEADLINE_S = 8.0
_DESCRIBABLE = ("http", "https", "m3u8", "m3u8_native")


def _needs_facts(fmt: dict[str, Any], duration: float | None) -> bool:
    """Whether a format lacks a size, a height (video) or its codecs, and is a file or stream we can read."""
    if not fmt.get("url") or fmt.get("ext") in SKIP_EXTS or fmt.get("protocol") not in _DESCRIBABLE:
        return False
    sized = fmt.get("filesize") or fmt.get("filesize_approx") or (fmt.get("tbr") and duration)
    pictured = fmt.get("vcodec") == "none" or fmt.get("height")
    named = fmt.get("vcodec") is not None and fmt.get("acodec") is not None
    return not (sized and pictured and named)


def _apply_facts(fmt: dict[str, Any], facts: Facts, raw: dict[str, Any]) -> None:
    """What a file turned out to be, where the site said nothing (its own words are kept)."""
    if facts.size and not (fmt.get("filesize") or fmt.get("filesize_approx")):
        fmt["filesize_approx" if facts.size_estimated else "filesize"] = facts.size
    probe = facts.probe
    if probe is None:
        return
    if fmt.get("vcodec") is None:
        fmt["vcodec"] = probe.vcodec if probe.has_video else "none"
    if fmt.get("acodec") is None:
        fmt["acodec"] = probe.acodec if probe.has_audio else "none"
    if probe.has_video and not fmt.get("height"):
        fmt["height"], fmt["width"] = probe.height, fmt.get("width") or probe.width
    elif probe.has_video and not fmt.get("width") and fmt.get("height") == probe.height:
        fmt["width"] = probe.width
    if probe.duration and not raw.get("duration"):
        raw["duration"] = probe.duration


def _info_from(info: dict[str, Any]) -> MediaInfo:
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


def _playlist(raw: dict[str, Any], entries: list[dict[str, Any]], limit: int) -> PlaylistFound:
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


def translate_error(exc: BaseException, control: Control) -> MediabotError:
    """yt-dlp's exceptions in the words of the person who sent the link."""
    if control.error is not None:
        return control.error
    if control.cancel.is_set():
        # Stopped on purpose (cancel, hand-back, lost lease), also while the page was still being read:
        # whatever yt-dlp made of the aborted connection is not the site's failure.
        return Cancelled()
    blocked = getattr(_guard, "blocked", None)
    if blocked:
        host, port, ip = blocked
        hint = allow_hint(host, port)
        log.info("connection to %s refused: private address %s. %s", host_port(host, port), ip, hint)
        return PrivateAddress(
            "That link leads to a private network address, which is not allowed.", hint=hint
        )
    cause = (getattr(exc, "exc_info", None) or (None, None))[1]
    if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
        # Our disk filled up while writing the download: not the site's fault, so not download_failed.
        return StorageError.from_os_error(cause)
    text = str(exc)
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    if "No space left on device" in text or "Disk quota exceeded" in text:
        # The same, reported as text (FFmpeg merging or converting into a full disk).
        return StorageError.from_os_error(OSError(errno.ENOSPC, "No space left on device"))
    if "Unsupported URL" in text:
        # yt-dlp's generic extractor read the page and found no media in it: the site itself may be fine.
        return UnsupportedUrl(UnsupportedUrl.no_media_message)
    if "is not a valid URL" in text or "No suitable extractor" in text:
        return UnsupportedUrl()
    if _LOGIN_RE.search(text):
        return LoginRequired()
    match = re.search(r"HTTP Error (\d{3}): ([^\n(]+)", text)
    if match:
        code, reason = match.group(1), match.group(2).strip().rstrip(".")
        if code in ("401", "403"):
            return DownloadFailed(f"The site refused access ({code} {reason}). The media may be private.")
        if code == "404":
            return DownloadFailed("The link returned 404 Not Found. Check that the media still exists.")
        return DownloadFailed(f"The site answered {code} {reason}. Please try again later.")
    if "Requested format is not available" in text:
        return DownloadFailed("No format of this media matches the requested quality.")
    if re.search(r"timed out|Connection refused|Name or service not known|getaddrinfo", text, re.I):
        return DownloadFailed("The site could not be reached. Please try again later.")
    return DownloadFailed()


# What extractors say when they want an account or a bot check (YouTube, Instagram, X, TikTok, Vimeo...).
_LOGIN_RE = re.compile(
    r"sign in to confirm|confirm you.re not a bot|login required|log in to|requires? (?:a )?login|"
    r"--cookies|cookies-from-browser|account authentication|private video|video is private|members[- ]only|"
    r"age[- ]restricted|inappropriate for some users|rate-limit reached or login",
    re.IGNORECASE,
)


def _extract(ydl: yt_dlp.YoutubeDL, url: str, control: Control) -> dict[str, Any]:
    """The link's information, read without downloading; errors in the person's words."""
    try:
        raw = ydl.extract_info(url, download=False)
    except (DownloadError, DownloadCancelled) as exc:
        raise translate_error(exc, control) from None
    if raw is None:
        raise UnsupportedUrl(UnsupportedUrl.no_media_message)
    return raw


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


def _with_format(info: MediaInfo, fmt: dict[str, Any]) -> MediaInfo:
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


def _written_thumbnail(result: dict[str, Any], workdir: Path) -> Path | None:
    """The site's thumbnail as yt-dlp wrote it (it may have converted it to jpg), if it wrote one."""
    for thumb in reversed(result.get("thumbnails") or []):
        path = thumb.get("filepath")
        if path and Path(path).is_file():
            return Path(path)
    found = [p for p in workdir.glob("media.*") if p.suffix.lower() in _PICTURE_SUFFIXES]
    return found[0] if found else None


_SUBTITLE_FAILED_RE = re.compile(r"Unable to download video subtitles for '([^']+)'")


def _download(
    ydl: yt_dlp.YoutubeDL, raw: dict[str, Any], control: Control, missing: list[str]
) -> dict[str, Any]:
    """yt-dlp's download of an extracted page. A subtitle track the site lists but can't deliver (a 404, a
    broken file) is not a reason to lose the video: that language joins `missing` and the download runs
    again without it (subtitles are fetched before the media, so nothing large is fetched twice)."""
    while True:
        try:
            # process_ie_result annotates the dict it is given; a second try starts from a clean copy.
            return ydl.process_ie_result(copy.deepcopy(raw), download=True)
        except (DownloadError, DownloadCancelled) as exc:
            if control.cancel.is_set() and control.error is None:
                raise Cancelled() from None
            failed = _SUBTITLE_FAILED_RE.search(str(exc))
            langs = list(ydl.params.get("subtitleslangs") or [])
            if control.error is not None or failed is None or failed.group(1) not in langs:
                raise translate_error(exc, control) from None
            log.info("subtitles %s could not be fetched; going on without them", failed.group(1))
            langs.remove(failed.group(1))
            missing.append(failed.group(1))
            ydl.params["subtitleslangs"] = langs
            ydl.params["writesubtitles"] = bool(langs)


def _written_subtitles(result: dict[str, Any], langs: Sequence[str]) -> dict[str, Path]:
    written: dict[str, Path] = {}
    for lang, sub in (result.get("requested_subtitles") or {}).items():
        path = sub.get("filepath")
        if lang in langs and path and Path(path).is_file():
            written[lang] = Path(path)
    return written


class Downloader:
    """Owns yt-dlp for one process. Its methods block: call them through `asyncio.to_thread`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ffmpeg = find_ffmpeg(settings.ffmpeg)
        self.policy = AddressPolicy(settings.allow_private_urls, tuple(settings.allowed_private_hosts))
        _install_connection_guard()
        _share_ssl_contexts()
        sites = check_cookies_dir(settings.cookies_dir)
        if sites:
            log.info("cookies available for: %s", ", ".join(sites))

    def warm_up(self) -> None:
        """Import the extractors once per process, so the first job doesn't pay for it."""
        with yt_dlp.YoutubeDL(self._base_options()) as ydl:
            ydl.get_info_extractor("Generic")
        if self.settings.thumbnails:
            thumbnails.warm_up()

    def _base_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"quiet": True, "noprogress": True, "logger": _Logger("warmup")}
        if self.settings.allowed_extractors:
            opts["allowed_extractors"] = allowed_extractors(self.settings)
        return opts

    def run(
        self,
        job_id: str,
        url: str,
        kind: str,
        quality: str,
        workdir: Path,
        control: Control,
        on_info: Callable[[MediaInfo], bool],
        *,
        expand_playlist: bool = False,
        choose_format: Callable[[dict[str, Any]], str | None] | None = None,
        max_bytes: int | None = None,
        format_id: str | None = None,
        subtitles: Sequence[str] = (),
        audio_format: str | None = None,
        playable: bool = False,
    ) -> Downloaded | PlaylistFound | None:
        """Extract, check limits, ask `on_info` whether to go on (False: finished elsewhere), download.

        A playlist comes back as PlaylistFound when `expand_playlist`, else its first entry is downloaded.
        `choose_format(info)` picks the format spec after extraction (None: WontFit); `format_id` is the
        person's own choice (UnknownFormat when the site has no such format); `max_bytes` lowers the size
        limit. `subtitles`: languages to embed and keep as .srt; `audio_format`: an audio job's file format
        instead of the operator's; `playable`: a video every phone plays (core.playable: an H.264 format
        when the site has a good one, else the best picture converted). Returns None when `on_info` said stop.
        Raises MediabotError subclasses.
        """
        workdir.mkdir(parents=True, exist_ok=True)
        opts = self._options(job_id, url, workdir, kind, quality, subtitles, audio_format)
        opts["progress_hooks"] = [self._progress_hook(control)]
        opts["postprocessor_hooks"] = [self._postprocessor_hook(control)]
        control.max_bytes = min(
            self.settings.max_filesize_bytes, max_bytes or self.settings.max_filesize_bytes
        )
        with self._guarded(control), open_ydl(opts) as ydl:
            raw = _extract(ydl, url, control)
            if raw.get("_type") in ("playlist", "multi_video"):
                entries = [e for e in raw.get("entries") or [] if e]
                if not entries:
                    raise UnsupportedUrl(UnsupportedUrl.no_media_message)
                if expand_playlist:
                    return _playlist(raw, entries, self.settings.max_playlist_items)
                raw = entries[0]
                if raw.get("_type") in ("url", "url_transparent"):
                    try:
                        raw = ydl.process_ie_result(raw, download=False)
                    except (DownloadError, DownloadCancelled) as exc:
                        raise translate_error(exc, control) from None
            if choose_format is not None:
                spec = choose_format(raw)
                if spec is None:
                    raise WontFit()
                ydl.format_selector = ydl.build_format_selector(spec)
                info = _info_from(raw)
            elif format_id is not None:
                chosen = chosen_format(raw, format_id, kind)
                ydl.format_selector = ydl.build_format_selector(format_spec(chosen, kind))
                info = _with_format(_info_from(raw), chosen)
                self._check_limits(info)
            elif playable and kind == "video" and (pick := choose_playable_format(raw, quality)):
                ydl.format_selector = ydl.build_format_selector(playable_spec(pick))
                info = _with_format(_info_from(raw), pick)
                self._check_limits(info)
            else:
                info = _info_from(raw)
                self._check_limits(info)
            missing = [lang for lang in subtitles if lang not in (raw.get("subtitles") or {})]
            self._check_space(info.filesize)
            if control.cancel.is_set():
                raise Cancelled()
            if not on_info(info):
                return None
            result = _download(ydl, raw, control, missing)
            path = self._output_path(result, workdir)
            if playable and kind == "video":
                path = self._make_playable(path, control)
            probe = probe_media(path, self.ffmpeg)
            final = _info_from(result)
            final = MediaInfo(
                title=final.title,
                duration=final.duration or probe.duration,
                extractor=final.extractor,
                media_id=final.media_id,
                ext=path.suffix.lstrip(".") or final.ext,
                width=final.width or probe.width,
                height=final.height or probe.height,
                uploader=final.uploader,
                filesize=path.stat().st_size,
                webpage_url=final.webpage_url,
                upload_date=final.upload_date,
            )
            if final.filesize and final.filesize > self.settings.max_filesize_bytes:
                raise self._too_large(final.filesize)
            if final.duration and final.duration > self.settings.max_duration_s:
                raise self._too_long(final.duration)
            if control.cancel.is_set():
                raise Cancelled()
            picture = _written_thumbnail(result, workdir)
            if not self.settings.thumbnails:
                thumbnail = None
            elif picture is not None:
                thumbnail = make_thumbnail(self.ffmpeg, picture, workdir / "thumbnail.jpg")
            elif probe.has_video or (kind == "video" and path.suffix.lower() in (".mp4", ".webm", ".mkv")):
                thumbnail = make_thumbnail(
                    self.ffmpeg, path, workdir / "thumbnail.jpg", at_s=frame_time(final.duration)
                )
            else:
                thumbnail = None  # sound only, and the site has no picture: nothing to show
            return Downloaded(
                path=path,
                info=final,
                filename=user_filename(final.title, final.ext),
                thumbnail=thumbnail,
                subtitles=_written_subtitles(result, subtitles),
                subtitles_missing=missing,
            )

    def _make_playable(self, path: Path, control: Control) -> Path:
        """The downloaded video, converted when a phone would not play it (cancel and the size limit hold)."""
        report = control.on_progress

        def converting(_share: float) -> None:
            if report is not None:
                report(ProgressUpdate(status="processing"))

        return make_playable(
            path, self.ffmpeg, cancel=control.cancel, max_bytes=control.max_bytes, on_progress=converting
        )

    def probe(self, url: str) -> dict[str, Any]:
        """What a link offers (formats, subtitles, thumbnail), without downloading: yt-dlp's info dict,
        sanitised, with what the site doesn't state about its files read from their first bytes. Same
        address rules and cookies as a download."""
        control = Control()
        with tempfile.TemporaryDirectory(prefix="probe-", dir=self.settings.tmp_dir) as tmp:
            opts = self._options("probe", url, Path(tmp), "video", "best", ())
            with self._guarded(control), open_ydl(opts) as ydl:
                raw = _extract(ydl, url, control)
                if raw.get("_type") not in ("playlist", "multi_video"):
                    self._describe_files(ydl, raw, control, Path(tmp))
                return dict(ydl.sanitize_info(raw))

    def _describe_files(
        self, ydl: yt_dlp.YoutubeDL, raw: dict[str, Any], control: Control, work: Path
    ) -> None:
        """Fill in the sizes, heights and codecs the site doesn't state (direct links, og:video and <video>
        pages state none), from a few bytes of each file (core.headers): through yt-dlp, so with the address
        guard and the site's cookies; a few files at once; all within FACTS_DEADLINE_S."""
        formats = raw.get("formats") or [raw]
        wanted = [f for f in formats if _needs_facts(f, raw.get("duration"))][:MAX_DESCRIBED]
        if not wanted:
            return

        def open_url(url: str, headers: dict[str, str]) -> Any:
            return ydl.urlopen(Request(url, headers=headers, extensions={"timeout": FACTS_TIMEOUT_S}))

        def describe(index: int, fmt: dict[str, Any]) -> Facts:
            folder = work / f"facts-{index}"
            folder.mkdir()
            read = stream_facts if str(fmt.get("protocol")).startswith("m3u8") else file_facts
            with self._guarded(control):
                return read(open_url, fmt["url"], dict(fmt.get("http_headers") or {}), folder, self.ffmpeg)

        pool = ThreadPoolExecutor(max_workers=FACTS_THREADS, thread_name_prefix="facts")
        try:
            futures = {pool.submit(describe, i, fmt): fmt for i, fmt in enumerate(wanted)}
            done, pending = concurrent.futures.wait(futures, timeout=FACTS_DEADLINE_S)
            if pending:
                control.stop()  # shuts the late ones' connections: they end at once
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        for future in done:
            try:
                facts = future.result()
            except Exception as exc:  # noqa: BLE001 - a file we can't read is listed with what the site said
                log.debug("format %s not described: %s", futures[future].get("format_id"), exc)
                continue
            _apply_facts(futures[future], facts, raw)

    def _options(
        self,
        job_id: str,
        url: str,
        workdir: Path,
        kind: str,
        quality: str,
        subtitles: Sequence[str],
        audio_format: str | None = None,
    ) -> dict[str, Any]:
        """build_options plus what belongs to this process and link: our logger, the site's cookies."""
        opts = build_options(
            self.settings,
            kind=kind,
            quality=quality,
            workdir=workdir,
            ffmpeg=self.ffmpeg,
            subtitles=subtitles,
            audio_format=audio_format,
        )
        opts["logger"] = _Logger(job_id)
        cookies = cookie_file_for(self.settings.cookies_dir, url)
        if cookies is not None:
            opts["cookiefile"] = str(private_copy(cookies, workdir))
        return opts

    @contextlib.contextmanager
    def _guarded(self, control: Control) -> Iterator[None]:
        """The connection guard's policy and the job's control, for yt-dlp's calls on this thread."""
        _guard.policy = self.policy
        _guard.control = control
        _guard.blocked = None
        _guard.pot_provider = pot.provider_address(self.settings.pot_provider_url)
        try:
            yield
        finally:
            _guard.policy = None
            _guard.control = None
            _guard.pot_provider = None

    def _output_path(self, result: dict[str, Any], workdir: Path) -> Path:
        for item in result.get("requested_downloads") or []:
            candidate = item.get("filepath") or item.get("_filename")
            if candidate and Path(candidate).exists():
                return Path(candidate)
        files = [p for p in workdir.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))]
        if not files:
            raise DownloadFailed("The download finished without a file.")
        return max(files, key=lambda p: p.stat().st_size)

    def _check_limits(self, info: MediaInfo) -> None:
        if info.duration and info.duration > self.settings.max_duration_s:
            raise self._too_long(info.duration)
        if info.filesize and info.filesize > self.settings.max_filesize_bytes:
            raise self._too_large(info.filesize)

    def _check_space(self, size: int | None) -> None:
        """Refuse a download the disk has no room for (its size known from the page or the server)."""
        if size:
            check_free_space(download_dirs(self.settings), size)

    def _too_large(self, size: int) -> TooLarge:
        return TooLarge(
            f"This file is {human_size(size)}; the limit is {human_size(self.settings.max_filesize_bytes)}."
        )

    def _too_long(self, duration: float) -> TooLong:
        return TooLong(
            f"This media is {human_duration(duration)} long; the limit is {human_duration(self.settings.max_duration_s)}."
        )

    def _progress_hook(self, control: Control) -> Callable[[dict[str, Any]], None]:
        last = [0.0]
        finished_bytes = [0]
        space_checked: set[str] = set()

        def hook(d: dict[str, Any]) -> None:
            if control.cancel.is_set():
                raise _Abort()
            status = d.get("status")
            if status not in ("downloading", "finished"):
                return
            downloaded = int(d.get("downloaded_bytes") or 0)
            total = d.get("total_bytes") or d.get("total_bytes_estimate")
            stated = d.get("total_bytes")
            name = str(d.get("tmpfilename") or d.get("filename") or "")
            if status == "downloading" and stated and name not in space_checked:
                # The server said how big the file is (Content-Length): refuse now, not when the disk is full.
                space_checked.add(name)
                try:
                    self._check_space(int(stated) - downloaded)
                except MediabotError as exc:
                    control.error = exc
                    raise _Abort() from None
            limit = control.max_bytes
            if limit and (
                finished_bytes[0] + downloaded > limit or (total and finished_bytes[0] + total > limit * 1.05)
            ):
                control.error = self._too_large(int(finished_bytes[0] + max(downloaded, total or 0)))
                raise _Abort()
            if status == "finished":
                finished_bytes[0] += downloaded
                return
            now = time.monotonic()
            if control.on_progress is None or now - last[0] < PROGRESS_INTERVAL_S:
                return
            last[0] = now
            control.on_progress(
                ProgressUpdate(
                    status="downloading",
                    downloaded_bytes=finished_bytes[0] + downloaded,
                    total_bytes=int(finished_bytes[0] + total) if total else None,
                    speed=d.get("speed"),
                    eta=d.get("eta"),
                )
            )

        return hook

    def _postprocessor_hook(self, control: Control) -> Callable[[dict[str, Any]], None]:
        def hook(d: dict[str, Any]) -> None:
            if control.cancel.is_set():
                raise _Abort()
            if d.get("status") == "started" and control.on_progress is not None:
                control.on_progress(ProgressUpdate(status="processing"))

        return hook
