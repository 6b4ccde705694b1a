"""Thumbnails people see in chats and the web app: a JPEG within the Telegram Bot API's limits (320 px a
side, 200 KB), made by ffmpeg from the site's picture or, when the site has none, from a frame of the video.
Blocking: the worker calls it on a download thread."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

MAX_SIDE = 320
MAX_BYTES = 200_000
# JPEG quality steps (ffmpeg's -q:v, 2 best .. 31 worst); a 320 px picture fits at the first almost always.
QUALITIES = (3, 7, 14, 24)
FFMPEG_TIMEOUT_S = 30


def make_thumbnail(ffmpeg: str | None, src: Path, dest: Path, *, at_s: float | None = None) -> Path | None:
    """`src` (a picture, or a video when `at_s` is given: the frame at that second) as a JPEG at `dest`
    within the limits; None when ffmpeg is missing or can't read it (no thumbnail is not an error)."""
    if not ffmpeg:
        return None
    scale = (
        f"scale='min({MAX_SIDE},iw)':'min({MAX_SIDE},ih)':force_original_aspect_ratio=decrease,"
        # JPEG wants even dimensions for 4:2:0; a 1-pixel crop is invisible.
        "scale=trunc(iw/2)*2:trunc(ih/2)*2"
    )
    seek = ["-ss", f"{max(at_s, 0.0):.3f}"] if at_s is not None else []
    for quality in QUALITIES:
        cmd = [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *seek, "-i", str(src),
               "-frames:v", "1", "-vf", scale, "-q:v", str(quality), "-f", "image2", "-c:v", "mjpeg",
               str(dest)]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT_S, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            log.info("thumbnail not made: %s", type(exc).__name__)
            return None
        if done.returncode != 0 or not dest.exists() or dest.stat().st_size == 0:
            log.info(
                "thumbnail not made: ffmpeg said %s", done.stderr.decode(errors="replace")[-200:].strip()
            )
            dest.unlink(missing_ok=True)
            return None
        if dest.stat().st_size <= MAX_BYTES:
            return dest
    dest.unlink(missing_ok=True)
    return None


def frame_time(duration: float | None) -> float:
    """Where to take a frame: a second in (past a black first frame), or the middle of a shorter clip."""
    if not duration:
        return 0.0
    return min(1.0, duration / 2)
