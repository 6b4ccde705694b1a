"""Which ffmpeg the media work uses (the system's, else the one imageio-ffmpeg ships) and its version."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)


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
