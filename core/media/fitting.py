"""Making a copy of a media that fits a size limit: the worker's half of the delivery planner.

In order of preference: a smaller format the site offers (its size known before a byte is fetched), a
two-pass FFmpeg re-encode to the limit (MEDIABOT_REENCODE_TO_FIT), parts that each fit (when the destination
takes parts). Every function here blocks: the runner calls them on a download thread.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import Settings
from core.errors import Cancelled, DownloadFailed, MediabotError, TooLarge, WontFit
from core.i18n import N_
from core.jobs.views import variant_limit
from core.media.control import Control, ProgressUpdate
from core.media.playable import h264_only
from core.media.probe import probe_media
from core.media.results import MediaInfo, user_filename
from core.words import human_size

if TYPE_CHECKING:
    # The fitter runs on the worker's downloader, made on first use (core.media.lazy_downloader).
    from core.media.downloader import Downloader
    from core.media.lazy_downloader import LazyDownloader

log = logging.getLogger(__name__)

# Room left for the container and the encoder's aim: two-pass x264 lands within a few percent.
ENCODE_HEADROOM = 0.92
MIN_VIDEO_BPS = 90_000  # below this a picture is not worth sending; a link is better
MIN_AUDIO_BPS = 24_000
MAX_PARTS = 20
FFMPEG_TIMEOUT_S = 3600


@dataclass(frozen=True)
class Fitted:
    paths: list[Path]
    method: str  # smaller_format | reencode | split
    info: MediaInfo
    filenames: list[str]


def _size(fmt: dict[str, Any]) -> float | None:
    return fmt.get("filesize") or fmt.get("filesize_approx")


def _has(fmt: dict[str, Any], codec: str) -> bool:
    # Formats that don't name their codecs (plain files, players' source lists) are taken to have both.
    return fmt.get(codec) != "none"


def choose_fitting_format(
    info: dict[str, Any], kind: str, quality: str, limit: int
) -> tuple[str, int | None] | None:
    """The best format (or video+audio pair) whose known size fits `limit`: (format spec, height), or None
    when the site states no size that fits. Formats of unknown size are never guessed at."""
    budget = limit * 0.97
    cap = None if quality in ("best", "", None) or kind == "audio" else int(quality)
    formats = [f for f in info.get("formats") or [] if f.get("format_id") and _size(f)]
    audio_only = [f for f in formats if _has(f, "acodec") and not _has(f, "vcodec")]
    if kind == "audio":
        pool = audio_only or [f for f in formats if _has(f, "acodec")]
        fitting = [f for f in pool if (_size(f) or 0) <= budget]
        if not fitting:
            return None
        best = max(fitting, key=lambda f: (f.get("abr") or 0, _size(f) or 0))
        return str(best["format_id"]), None
    candidates: list[tuple[tuple[Any, ...], str, int | None]] = []
    for f in formats:
        if not _has(f, "vcodec"):
            continue
        height = f.get("height")
        if cap is not None and height and height > cap:
            continue
        size = _size(f) or 0
        mp4 = f.get("ext") == "mp4"
        if _has(f, "acodec"):
            if size <= budget:
                candidates.append(((height or 0, mp4, size), str(f["format_id"]), height))
            continue
        # Video only: pair it with the best audio that still fits beside it.
        room = budget - size
        partners = [a for a in audio_only if (_size(a) or 0) <= room]
        if partners:
            audio = max(partners, key=lambda a: (a.get("ext") == "m4a", a.get("abr") or 0, _size(a) or 0))
            total = size + (_size(audio) or 0)
            candidates.append(((height or 0, mp4, total), f"{f['format_id']}+{audio['format_id']}", height))
    if not candidates:
        return None
    _, spec, height = max(candidates, key=lambda c: c[0])
    return spec, height


class Fitter:
    """Makes fitted copies for one worker process (it shares the downloader's yt-dlp and ffmpeg)."""

    def __init__(self, settings: Settings, downloader: Downloader | LazyDownloader) -> None:
        self.settings = settings
        self.downloader = downloader
        self.ffmpeg = downloader.ffmpeg

    def run(
        self,
        job_id: str,
        url: str,
        kind: str,
        quality: str,
        variant: str,
        source: Callable[[Path], Path],
        workdir: Path,
        control: Control,
        title: str | None = None,
        playable: bool = False,
        access: Any = None,
        refused: Callable[[str], None] | None = None,
        ask_site: bool = True,
    ) -> Fitted:
        """`source(dir)` gives the full-quality file (stored, or fetched into `dir`). A `playable` copy's
        smaller format is converted like its original when phones can't play it (re-encodes are H.264).
        The smaller format is fetched from the site as `access` (a pacing identity; core.media.downloader.Access);
        a refusal is told to `refused(outcome)` and the copy is made from the stored file instead.
        `ask_site=False`: the site is not asked at all (every identity of it rests)."""
        limit, split = variant_limit(variant)
        workdir.mkdir(parents=True, exist_ok=True)
        if self.settings.fit_smaller_format and ask_site:
            found = self._smaller_format(
                job_id, url, kind, quality, limit, workdir / "format", control, playable=playable,
                access=access, refused=refused,
            )  # fmt: skip
            if found is not None:
                return found
        if not (self.settings.reencode_to_fit or split):
            raise WontFit(f"No smaller format of this media fits in {human_size(limit)}.")
        if self.ffmpeg is None:
            raise WontFit("No smaller format fits, and FFmpeg is not installed to make one.")
        src = source(workdir / "source")
        probe = probe_media(src, self.ffmpeg)
        duration = probe.duration
        if not duration:
            raise WontFit("The length of this media is unknown, so it cannot be made to fit.")
        info_title = title or "media"
        if self.settings.reencode_to_fit:
            out = self._reencode(src, workdir / "encode", kind, limit, duration, probe.height, control)
            if out is not None:
                return self._fitted([out], "reencode", info_title, kind)
        if split:
            parts = self._split(src, workdir / "parts", limit, duration, control)
            if parts is not None:
                return self._fitted(parts, "split", info_title, kind)
        raise WontFit(f"No copy of this media fits in {human_size(limit)}.")

    # -- a smaller format ---------------------------------------------------------------------------------

    def _smaller_format(
        self,
        job_id: str,
        url: str,
        kind: str,
        quality: str,
        limit: int,
        workdir: Path,
        control: Control,
        *,
        playable: bool = False,
        access: Any = None,
        refused: Callable[[str], None] | None = None,
    ) -> Fitted | None:
        def choose(info: dict[str, Any]) -> str | None:
            # A playable copy takes an H.264 format that fits as stated before one that must be converted
            # (and may then outgrow the limit).
            found = choose_fitting_format(h264_only(info), kind, quality, limit) if playable else None
            found = found or choose_fitting_format(info, kind, quality, limit)
            return found[0] if found is not None else None

        try:
            result = self.downloader.run(
                job_id,
                url,
                kind,
                quality,
                workdir,
                control,
                lambda _info: True,  # a copy never finishes from the media cache: it is always made
                choose_format=choose,
                max_bytes=limit,
                playable=playable,
                access=access,
            )
        except (WontFit, TooLarge) as exc:
            log.info("[%s] no smaller format fits %d bytes (%s)", job_id, limit, exc.code)
            control.error = None
            return None
        except MediabotError as exc:
            if exc.outcome is None or refused is None or control.cancel.is_set():
                raise
            # The site refused us (rate limit, bot check, a dead proxy): the identity rests, and the copy
            # is made from the file we have rather than failing.
            log.info("[%s] the site refused the smaller format (%s)", job_id, exc.outcome)
            refused(exc.outcome)
            control.error = None
            return None
        if result is None:
            return None
        if result.path.stat().st_size > limit:
            # The site's stated size was too optimistic.
            return None
        return Fitted([result.path], "smaller_format", result.info, [result.filename])

    # -- re-encoding --------------------------------------------------------------------------------------

    def _reencode(
        self, src: Path, workdir: Path, kind: str, limit: int, duration: float, height: int | None,
        control: Control,
    ) -> Path | None:  # fmt: skip
        workdir.mkdir(parents=True, exist_ok=True)
        total_bps = limit * 8 * ENCODE_HEADROOM / duration
        for _ in range(2):
            if kind == "audio":
                audio_bps = min(192_000, int(total_bps))
                if audio_bps < MIN_AUDIO_BPS:
                    return None
                out = workdir / "audio.m4a"
                args = [
                    "-i",
                    str(src),
                    "-vn",
                    "-c:a",
                    "aac",
                    "-b:a",
                    str(audio_bps),
                    "-movflags",
                    "+faststart",
                ]
                self._ffmpeg([*args, str(out)], duration, control, (0.0, 1.0), limit)
            else:
                audio_bps = 128_000 if total_bps > 1_500_000 else 96_000 if total_bps > 600_000 else 64_000
                video_bps = int(total_bps - audio_bps)
                if video_bps < MIN_VIDEO_BPS:
                    return None
                out = workdir / "video.mp4"
                self._two_pass(src, out, workdir, video_bps, audio_bps, _target_height(video_bps, height),
                               duration, control, limit)  # fmt: skip
            size = out.stat().st_size
            if size <= limit:
                return out
            log.info("re-encode came out at %d bytes for a %d limit; aiming lower", size, limit)
            total_bps *= 0.9 * limit / size
        return None

    def _two_pass(
        self, src: Path, out: Path, workdir: Path, video_bps: int, audio_bps: int, height: int | None,
        duration: float, control: Control, limit: int,
    ) -> None:  # fmt: skip
        scale = ["-vf", f"scale=-2:'min(ih,{height})'"] if height else []
        passlog = str(workdir / "pass")
        video = ["-map", "0:v:0", "-c:v", "libx264", "-preset", "veryfast", "-b:v", str(video_bps), *scale,
                 "-pix_fmt", "yuv420p", "-passlogfile", passlog]  # fmt: skip
        first = ["-i", str(src), *video, "-pass", "1", "-an", "-f", "null", os.devnull]
        self._ffmpeg(first, duration, control, (0.0, 0.5), limit)
        second = ["-i", str(src), *video, "-pass", "2", "-map", "0:a:0?", "-c:a", "aac", "-b:a", str(audio_bps),
                  "-movflags", "+faststart", str(out)]  # fmt: skip
        self._ffmpeg(second, duration, control, (0.5, 1.0), limit)

    # -- splitting ----------------------------------------------------------------------------------------

    def _split(
        self, src: Path, workdir: Path, limit: int, duration: float, control: Control
    ) -> list[Path] | None:
        size = src.stat().st_size
        segment = max(1.0, duration * limit * 0.9 / size)
        ext = src.suffix.lstrip(".") or "mp4"
        for _ in range(5):
            if duration / segment > MAX_PARTS:
                return None
            if workdir.exists():
                for old in workdir.iterdir():
                    old.unlink()
            workdir.mkdir(parents=True, exist_ok=True)
            args = ["-i", str(src), "-map", "0", "-c", "copy", "-f", "segment", "-segment_time", f"{segment:.3f}",
                    "-reset_timestamps", "1"]  # fmt: skip
            if ext in ("mp4", "m4a", "mov"):
                args += ["-segment_format_options", "movflags=+faststart"]
            self._ffmpeg([*args, str(workdir / f"part%03d.{ext}")], duration, control, (0.0, 1.0), limit)
            parts = sorted(workdir.glob(f"part*.{ext}"))
            biggest = max((p.stat().st_size for p in parts), default=0)
            if parts and biggest <= limit:
                return parts
            # Cuts fall on keyframes, so a part can run long: aim shorter.
            segment *= 0.7 * limit / max(biggest, 1)
        return None

    # -- helpers ------------------------------------------------------------------------------------------

    def _fitted(self, paths: list[Path], method: str, title: str, kind: str) -> Fitted:
        probe = probe_media(paths[0], self.ffmpeg)
        ext = paths[0].suffix.lstrip(".")
        if len(paths) == 1:
            names = [user_filename(title, ext)]
        else:
            names = [
                user_filename(f"{title} (part {i} of {len(paths)})", ext) for i in range(1, len(paths) + 1)
            ]
        info = MediaInfo(
            title=title, duration=probe.duration, extractor=None, media_id=None, ext=ext, width=probe.width,
            height=probe.height, uploader=None, filesize=sum(p.stat().st_size for p in paths), webpage_url=None,
        )  # fmt: skip
        return Fitted(paths, method, info, names)

    def _ffmpeg(
        self, args: list[str], duration: float, control: Control, span: tuple[float, float], limit: int
    ) -> None:
        """Run ffmpeg, reporting progress over `span` of the bar, stopping at once on cancel."""
        assert self.ffmpeg is not None
        cmd = [self.ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-progress", "pipe:1",
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
        started = time.monotonic()
        try:
            while proc.poll() is None:
                if control.cancel.is_set():
                    raise Cancelled()
                if time.monotonic() - started > FFMPEG_TIMEOUT_S:
                    raise DownloadFailed(N_("Making a smaller copy took too long."))
                if control.on_progress is not None:
                    fraction = span[0] + (span[1] - span[0]) * min(1.0, out_time[0] / duration)
                    control.on_progress(
                        ProgressUpdate(
                            status="downloading", downloaded_bytes=int(limit * fraction), total_bytes=limit
                        )
                    )
                time.sleep(0.25)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            for reader in readers:
                reader.join(timeout=5)
        if proc.returncode != 0:
            log.warning("ffmpeg failed (%s): %s", proc.returncode, "".join(errors).strip())
            raise DownloadFailed(N_("FFmpeg could not make a smaller copy of this media."))


def _target_height(video_bps: int, height: int | None) -> int | None:
    """Fewer bits need fewer pixels: the height a bitrate carries well (None: keep the source's)."""
    target = next(
        (
            h
            for bps, h in ((2_500_000, 1080), (1_200_000, 720), (700_000, 480), (350_000, 360))
            if video_bps >= bps
        ),
        240,
    )
    return target if height is None or height > target else None


__all__ = ["Fitted", "Fitter", "choose_fitting_format"]
