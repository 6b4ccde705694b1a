"""Running FFmpeg and ffprobe for cuts: killable on cancel, bounded in time, errors in the person's words.

Everything here blocks; callers run it on a worker thread. The FFmpeg path is passed in (the worker finds it
once, see core.downloader.find_ffmpeg); ffprobe is taken beside it, else from PATH.

(core.playable has a runner of the same shape for conversions; this one is separate while that module moves,
and the two can become one when the move lands.)
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import Cancelled, DownloadFailed
from core.i18n import N_

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 30.0
POLL_S = 0.1


def ffprobe_beside(ffmpeg: str) -> str | None:
    """The ffprobe that comes with `ffmpeg` (same folder), else the one on PATH; None when there is none
    (imageio-ffmpeg ships FFmpeg alone)."""
    sibling = Path(ffmpeg).with_name("ffprobe")
    return str(sibling) if sibling.exists() else shutil.which("ffprobe")


@dataclass(frozen=True)
class Streams:
    """What a cut needs to know of a file: its first picture and sound, and its length."""

    duration: float | None
    video: str | None  # codec name as ffprobe says it (h264, vp9...), None for sound only
    audio: str | None
    width: int | None = None
    height: int | None = None


def probe(path: Path, *, ffmpeg: str, ffprobe: str | None = None) -> Streams:
    """The file's streams: ffprobe when there is one, else what `ffmpeg -i` prints. A cover picture (an
    attached picture in an m4a or mp3) is not a video."""
    ffprobe = ffprobe or ffprobe_beside(ffmpeg)
    if ffprobe:
        data = probe_json(path, ffprobe, "-show_format", "-show_streams")
        streams = data.get("streams") or []
        video = next(
            (s for s in streams if s.get("codec_type") == "video"
             and not (s.get("disposition") or {}).get("attached_pic")),
            None,
        )  # fmt: skip
        audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
        duration = (data.get("format") or {}).get("duration")
        return Streams(
            duration=float(duration) if duration else None,
            video=video.get("codec_name") if video else None,
            audio=audio.get("codec_name") if audio else None,
            width=int(video["width"]) if video and video.get("width") else None,
            height=int(video["height"]) if video and video.get("height") else None,
        )
    err = _run_capture([ffmpeg, "-hide_banner", "-i", str(path)]).stderr
    video = re.search(r"Stream #\S+.*?: Video: (\w+)(?![^\n]*attached pic)[^\n]*?, (\d{2,5})x(\d{2,5})", err)
    audio = re.search(r"Stream #\S+.*?: Audio: (\w+)", err)
    dur = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", err)
    return Streams(
        duration=int(dur[1]) * 3600 + int(dur[2]) * 60 + float(dur[3]) if dur else None,
        video=video[1] if video else None,
        audio=audio[1] if audio else None,
        width=int(video[2]) if video else None,
        height=int(video[3]) if video else None,
    )


def probe_json(path: Path, ffprobe: str, *show: str) -> dict[str, Any]:
    """ffprobe's JSON for `path` (`show`: -show_format, -show_streams, -show_chapters...). Raises
    DownloadFailed when ffprobe can't read the file."""
    proc = _run_capture([ffprobe, "-v", "error", "-print_format", "json", *show, str(path)])
    if proc.returncode != 0:
        log.warning("ffprobe could not read %s: %s", path.name, proc.stderr.strip()[-300:])
        raise DownloadFailed(N_("The stored file could not be read."))
    try:
        data = json.loads(proc.stdout or "{}")
    except ValueError:
        raise DownloadFailed(N_("The stored file could not be read.")) from None
    return data if isinstance(data, dict) else {}


def _run_capture(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s failed: %s", Path(cmd[0]).name, exc)
        raise DownloadFailed(N_("The stored file could not be read.")) from None


def run_ffmpeg(
    ffmpeg: str,
    args: list[str],
    output: Path,
    *,
    cancel: threading.Event,
    timeout_s: float,
    failure: str,
) -> None:
    """Run FFmpeg writing `output`; on cancel (checked every POLL_S) or after `timeout_s` it is killed and
    `output` removed. `failure` is the sentence a person reads when FFmpeg fails (details go to the log)."""
    cmd = [ffmpeg, "-hide_banner", "-nostdin", "-y", "-loglevel", "error", *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    errors: list[str] = []

    def read_errors() -> None:
        assert proc.stderr is not None
        errors.append(proc.stderr.read()[-1000:])

    reader = threading.Thread(target=read_errors, name="ffmpeg-stderr", daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout_s
    try:
        while proc.poll() is None:
            if cancel.wait(POLL_S):
                raise Cancelled()
            if time.monotonic() > deadline:
                log.warning("ffmpeg took over %.0fs for %s: killed", timeout_s, output.name)
                raise DownloadFailed(failure)
    except BaseException:
        proc.kill()
        proc.wait()
        output.unlink(missing_ok=True)
        raise
    finally:
        reader.join(timeout=5)
    if proc.returncode != 0 or not output.exists():
        output.unlink(missing_ok=True)
        log.warning("ffmpeg failed (%s) for %s: %s", proc.returncode, output.name, "".join(errors).strip())
        raise DownloadFailed(failure)
