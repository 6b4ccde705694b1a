"""yt-dlp, embedded: one job's extract-then-download on one `YoutubeDL`, from worker threads only.

A job runs in two phases on one `YoutubeDL` (so the page is fetched once): `extract` reads the media
information and checks the limits before a byte of media is fetched; `download` then fetches the chosen
format into the job's private directory. Cancel and the size limit are enforced by the progress hook,
which raises inside yt-dlp's thread."""

from __future__ import annotations

import contextlib
import copy
import logging
import re
import socket
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yt_dlp
from yt_dlp.utils import DownloadCancelled, DownloadError, download_range_func

from core.config import Settings
from core.cuts.sections import Section
from core.errors import (
    Cancelled,
    DownloadFailed,
    MediabotError,
    PrivateAddress,
    TooLarge,
    TooLong,
    UnsupportedUrl,
    WontFit,
)
from core.i18n import N_
from core.media import pot, thumbnails
from core.media.access import Access
from core.media.control import PROGRESS_INTERVAL_S, Control, ProgressUpdate
from core.media.cookies import check_cookies_dir, cookie_file_for, private_copy
from core.media.describe import describe_files
from core.media.errors import translate_error
from core.media.ffmpeg import find_ffmpeg
from core.media.formats import chosen_format, format_spec
from core.media.netguard import guarded, install_connection_guard, share_ssl_contexts
from core.media.options import YdlLogger, allowed_extractors, build_options, open_ydl
from core.media.playable import choose_playable_format, make_playable, playable_spec
from core.media.probe import probe_media
from core.media.results import (
    Downloaded,
    MediaInfo,
    PlaylistFound,
    info_from,
    playlist_found,
    user_filename,
    with_format,
    written_subtitles,
    written_thumbnail,
)
from core.media.thumbnails import frame_time, make_thumbnail
from core.media.ydl import new_ydl
from core.net import AddressPolicy
from core.storage.space import check_free_space, download_dirs
from core.words import human_duration, human_size

log = logging.getLogger(__name__)


class _Abort(DownloadCancelled):
    msg = "aborted by mediabot"


def _check_ffmpeg_targets(raw: dict[str, Any], policy: AddressPolicy) -> None:
    """The media's own addresses (each format's) pass the address policy: FFmpeg, which downloads a range,
    connects without the guard yt-dlp's requests go through. A redirect FFmpeg follows is not seen here,
    so a site that redirects its media to a private address is refused only by the guard's other paths."""
    if policy.allow_private:
        return
    urls = {f.get("url") for f in raw.get("formats") or [raw] if isinstance(f.get("url"), str)}
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https"):
            continue
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        if policy.host_allowed(host, port):
            continue
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise DownloadFailed(N_("The host {host} could not be found.").format(host=host)) from None
        if any(not policy.permits(host, port, str(info[4][0])) for info in infos):
            raise PrivateAddress()


def _extract(ydl: yt_dlp.YoutubeDL, url: str, control: Control) -> dict[str, Any]:
    """The link's information, read without downloading; errors in the person's words."""
    try:
        raw = ydl.extract_info(url, download=False)
    except (DownloadError, DownloadCancelled) as exc:
        raise translate_error(exc, control) from None
    if raw is None:
        raise UnsupportedUrl(UnsupportedUrl.no_media_message)
    return raw


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


class Downloader:
    """Owns yt-dlp for one process. Its methods block: call them through `asyncio.to_thread`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ffmpeg = find_ffmpeg(settings.ffmpeg)
        self.policy = AddressPolicy(settings.allow_private_urls, tuple(settings.allowed_private_hosts))
        install_connection_guard()
        share_ssl_contexts()
        sites = check_cookies_dir(settings.cookies_dir)
        if sites:
            log.info("cookies available for: %s", ", ".join(sites))

    def warm_up(self) -> None:
        """Import the extractors once per process, so the first job doesn't pay for it."""
        with new_ydl(self._base_options()) as ydl:
            ydl.get_info_extractor("Generic")
        if self.settings.thumbnails:
            thumbnails.warm_up()

    def _base_options(self) -> dict[str, Any]:
        opts: dict[str, Any] = {"quiet": True, "noprogress": True, "logger": YdlLogger("warmup")}
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
        access: Access | None = None,
        section: Section | None = None,
    ) -> Downloaded | PlaylistFound | None:
        """Extract, check limits, ask `on_info` whether to go on (False: finished elsewhere), download.

        A playlist comes back as PlaylistFound when `expand_playlist`, else its first entry is downloaded.
        `choose_format(info)` picks the format spec after extraction (None: WontFit); `format_id` is the
        person's own choice (UnknownFormat when the site has no such format); `max_bytes` lowers the size
        limit. `subtitles`: languages to embed and keep as .srt; `audio_format`: an audio job's file format
        instead of the operator's; `playable`: a video every phone plays (core.media.playable: an H.264 format
        when the site has a good one, else the best picture converted). `section`: only that part of the media
        is downloaded (yt-dlp's download ranges, the picture re-encoded at the cuts so the first frame is the
        one asked for); only its length counts against the duration limit. Returns None when `on_info` said
        stop. Raises MediabotError subclasses.
        """
        workdir.mkdir(parents=True, exist_ok=True)
        opts = self._options(job_id, url, workdir, kind, quality, subtitles, audio_format, access)
        if section is not None:
            end = float("inf") if section.end is None else section.end
            opts["download_ranges"] = download_range_func(None, [(section.start, end)])
            opts["force_keyframes_at_cuts"] = True
        opts["progress_hooks"] = [self._progress_hook(control)]
        opts["postprocessor_hooks"] = [self._postprocessor_hook(control)]
        control.max_bytes = min(
            self.settings.max_filesize_bytes, max_bytes or self.settings.max_filesize_bytes
        )
        with self._guarded(control, access), open_ydl(opts) as ydl:
            raw = _extract(ydl, url, control)
            if raw.get("_type") in ("playlist", "multi_video"):
                entries = [e for e in raw.get("entries") or [] if e]
                if not entries:
                    raise UnsupportedUrl(UnsupportedUrl.no_media_message)
                if expand_playlist:
                    return playlist_found(raw, entries, self.settings.max_playlist_items)
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
                info = info_from(raw)
            elif format_id is not None:
                chosen = chosen_format(raw, format_id, kind)
                ydl.format_selector = ydl.build_format_selector(format_spec(chosen, kind))
                info = with_format(info_from(raw), chosen)
                self._check_limits(info, section)
            elif playable and kind == "video" and (pick := choose_playable_format(raw, quality)):
                ydl.format_selector = ydl.build_format_selector(playable_spec(pick))
                info = with_format(info_from(raw), pick)
                self._check_limits(info, section)
            else:
                info = info_from(raw)
                self._check_limits(info, section)
            if section is not None:
                # FFmpeg fetches a range itself, outside the connection guard: its addresses are checked here.
                _check_ffmpeg_targets(raw, self.policy)
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
            if section is not None:
                path = self._picture_and_sound(path, control)
            probe = probe_media(path, self.ffmpeg)
            final = info_from(result)
            final = MediaInfo(
                title=final.title,
                # A section's file: its own length, not the media's.
                duration=(probe.duration or section.length)
                if section is not None
                else (final.duration or probe.duration),
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
            picture = written_thumbnail(result, workdir)
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
                subtitles=written_subtitles(result, subtitles),
                subtitles_missing=missing,
            )

    def _picture_and_sound(self, path: Path, control: Control) -> Path:
        """A downloaded range with only its picture and sound: FFmpeg keeps the source's chapters (and their
        text track) shifted but not cut, so the file would say it lasts as long as they do (10.8 s for a 4 s
        clip); they are dropped."""
        if self.ffmpeg is None:
            return path
        from core.cuts.ffmpeg import run_ffmpeg

        dest = path.with_name(f"{path.stem}.clip{path.suffix}")
        args = ["-i", str(path), "-map", "0:v?", "-map", "0:a?", "-c", "copy", "-map_metadata", "0",
                "-map_chapters", "-1"]  # fmt: skip
        if path.suffix.lower() in (".mp4", ".m4a", ".mov"):
            args += ["-movflags", "+faststart"]
        run_ffmpeg(
            self.ffmpeg, [*args, str(dest)], dest, cancel=control.cancel, timeout_s=600.0,
            failure="The clip could not be cut from this file.",
        )  # fmt: skip
        path.unlink(missing_ok=True)
        return dest

    def _make_playable(self, path: Path, control: Control) -> Path:
        """The downloaded video, converted when a phone would not play it (cancel and the size limit hold)."""
        report = control.on_progress

        def converting(_share: float) -> None:
            if report is not None:
                report(ProgressUpdate(status="processing"))

        return make_playable(
            path, self.ffmpeg, cancel=control.cancel, max_bytes=control.max_bytes, on_progress=converting
        )

    def probe(self, url: str, access: Access | None = None) -> dict[str, Any]:
        """What a link offers (formats, subtitles, thumbnail), without downloading: yt-dlp's info dict,
        sanitised, with what the site doesn't state about its files read from their first bytes. Same
        address rules and cookies as a download (a pacing identity's when given)."""
        control = Control()
        with tempfile.TemporaryDirectory(prefix="probe-", dir=self.settings.tmp_dir) as tmp:
            opts = self._options("probe", url, Path(tmp), "video", "best", (), access=access)
            with self._guarded(control, access), open_ydl(opts) as ydl:
                raw = _extract(ydl, url, control)
                if raw.get("_type") not in ("playlist", "multi_video"):
                    describe_files(ydl, raw, Path(tmp), self.ffmpeg, lambda: self._guarded(control), control)
                return dict(ydl.sanitize_info(raw))

    def list_entries(self, url: str, access: Access | None = None) -> PlaylistFound:
        """A channel's or playlist's newest entries as the site lists them (flat: one listing, no entry
        extracted), at most MAX_PLAYLIST_ITEMS; a link to a single video is a list of itself. `access`: the
        pacing identity to list as."""
        control = Control()
        with tempfile.TemporaryDirectory(prefix="list-", dir=self.settings.tmp_dir) as tmp:
            opts = self._options("list", url, Path(tmp), "video", "best", (), access=access)
            opts["noplaylist"] = False
            with self._guarded(control, access), open_ydl(opts) as ydl:
                raw = _extract(ydl, url, control)
        if raw.get("_type") in ("playlist", "multi_video"):
            entries = [e for e in raw.get("entries") or [] if e]
            return playlist_found(raw, entries, self.settings.max_playlist_items)
        page = raw.get("webpage_url") or url
        return PlaylistFound(
            title=raw.get("title"), entries=[{"url": page, "title": raw.get("title")}], total=1
        )

    def _options(
        self,
        job_id: str,
        url: str,
        workdir: Path,
        kind: str,
        quality: str,
        subtitles: Sequence[str],
        audio_format: str | None = None,
        access: Access | None = None,
    ) -> dict[str, Any]:
        """build_options plus what belongs to this process and link: our logger, the site's cookies (the
        pacing identity's when given, else the link's domain file) and proxy."""
        opts = build_options(
            self.settings,
            kind=kind,
            quality=quality,
            workdir=workdir,
            ffmpeg=self.ffmpeg,
            subtitles=subtitles,
            audio_format=audio_format,
        )
        opts["logger"] = YdlLogger(job_id)
        if access is not None:
            if access.cookiefile is not None:
                opts["cookiefile"] = str(access.cookiefile)
            if access.proxy:
                opts["proxy"] = access.proxy
            return opts
        cookies = cookie_file_for(self.settings.cookies_dir, url)
        if cookies is not None:
            opts["cookiefile"] = str(private_copy(cookies, workdir))
        return opts

    def _guarded(
        self, control: Control, access: Access | None = None
    ) -> contextlib.AbstractContextManager[None]:
        """The connection guard's policy and the job's control, for yt-dlp's calls on this thread."""
        proxy = access.proxy if access is not None else None
        return guarded(self.policy, control, pot.provider_address(self.settings.pot_provider_url), proxy)

    def _output_path(self, result: dict[str, Any], workdir: Path) -> Path:
        for item in result.get("requested_downloads") or []:
            candidate = item.get("filepath") or item.get("_filename")
            if candidate and Path(candidate).exists():
                return Path(candidate)
        files = [p for p in workdir.iterdir() if p.is_file() and not p.name.endswith((".part", ".ytdl"))]
        if not files:
            raise DownloadFailed(N_("The download finished without a file."))
        return max(files, key=lambda p: p.stat().st_size)

    def _check_limits(self, info: MediaInfo, section: Section | None = None) -> None:
        if section is not None:
            # Only the section is downloaded: its length counts, and the media's size does not.
            section.check(info.duration, self.settings.max_duration_s)
            return
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
            N_("This file is {size}; the limit is {limit}.").format(
                size=human_size(size), limit=human_size(self.settings.max_filesize_bytes)
            )
        )

    def _too_long(self, duration: float) -> TooLong:
        return TooLong(
            N_("This media is {duration} long; the limit is {limit}.").format(
                duration=human_duration(duration), limit=human_duration(self.settings.max_duration_s)
            )
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
