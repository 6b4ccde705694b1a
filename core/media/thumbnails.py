"""Thumbnails people see in chats and the web app: a JPEG within the Telegram Bot API's limits (320 px a
side, 200 KB), from the site's picture or, when the site has none, from a keyframe of the video.

Pictures are scaled by Pillow and frames decoded by PyAV, in process: an ffmpeg process costs 65 ms just to
start on our machines, which was half of a 30 MB local job. The ffmpeg command line remains the fallback
for anything those two can't read. Blocking: the worker calls this on a download thread.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

MAX_SIDE = 320
MAX_BYTES = 200_000
JPEG_QUALITIES = (85, 70, 50, 30)  # Pillow's scale; a 320 px picture fits at the first almost always
FFMPEG_TIMEOUT_S = 30


def warm_up() -> None:
    """Import the decoders once per process (about 90 ms), so the first job doesn't pay for it."""
    try:
        import av  # noqa: F401
        import PIL.Image  # noqa: F401
    except ImportError:
        pass


def make_thumbnail(ffmpeg: str | None, src: Path, dest: Path, *, at_s: float | None = None) -> Path | None:
    """`src` (a picture, or a video when `at_s` is given: the keyframe at or before that second) as a JPEG
    at `dest` within the limits; None when nothing can read it (no thumbnail is not an error)."""
    try:
        image = _frame(src, at_s) if at_s is not None else _picture(src)
        if image is not None and _save(image, dest):
            return dest
    except Exception as exc:  # noqa: BLE001 - any decoder failure: try the ffmpeg command line
        log.debug("thumbnail in process failed (%s); trying ffmpeg", type(exc).__name__)
    return _with_ffmpeg(ffmpeg, src, dest, at_s)


def frame_time(duration: float | None) -> float:
    """Where to take a frame: a second in (past a black first frame), or the middle of a shorter clip."""
    if not duration:
        return 0.0
    return min(1.0, duration / 2)


def _picture(src: Path):  # type: ignore[no-untyped-def]
    from PIL import Image

    with Image.open(src) as opened:
        opened.draft("RGB", (MAX_SIDE * 2, MAX_SIDE * 2))  # JPEG sources decode at a fraction of their size
        return opened.convert("RGB")


def _frame(src: Path, at_s: float):  # type: ignore[no-untyped-def]
    import av

    with av.open(str(src)) as container:
        if not container.streams.video:
            return None
        stream = container.streams.video[0]
        # Keyframes only: no decoding of the frames in between, so a frame costs the same anywhere.
        stream.codec_context.skip_frame = "NONKEY"
        if at_s > 0 and container.duration:
            container.seek(int(at_s * 1_000_000), backward=True, any_frame=False)
        for frame in container.decode(stream):
            return frame.to_image()
    return None


def _save(image, dest: Path) -> bool:  # type: ignore[no-untyped-def]
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    for quality in JPEG_QUALITIES:
        image.save(dest, "JPEG", quality=quality, optimize=True)
        if dest.stat().st_size <= MAX_BYTES:
            return True
    dest.unlink(missing_ok=True)
    return False


def _with_ffmpeg(ffmpeg: str | None, src: Path, dest: Path, at_s: float | None) -> Path | None:
    if not ffmpeg:
        return None
    scale = (
        f"scale='min({MAX_SIDE},iw)':'min({MAX_SIDE},ih)':force_original_aspect_ratio=decrease,"
        "scale=trunc(iw/2)*2:trunc(ih/2)*2"  # 4:2:0 JPEG wants even sides; a 1-pixel crop is invisible
    )
    seek = ["-ss", f"{max(at_s, 0.0):.3f}"] if at_s is not None else []
    for quality in (3, 7, 14, 24):  # ffmpeg's -q:v, 2 best .. 31 worst
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
