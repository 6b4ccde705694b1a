"""Media whose every frame says which one it is, with chapters: made once with FFmpeg and cached like
tests/support/media.py does (its own version, so neither set rebuilds the other).

- `counter.mp4`: COUNTER_SECONDS of 320x240 H.264 at 25 fps, one keyframe every 2 s (so a cut that starts on
  the keyframe before the asked time shows), AAC sound, and CHAPTERS. Frame n is flat grey: its luma is
  16 + 4 * (n mod 55) and its blue-difference chroma 32 + 16 * (n // 55), so `frame_number` reads n back
  from any decoded frame (neighbours differ by 4 levels, far more than the encoder's error on a flat picture).
- `counter.m4a`: the same length of AAC sound with the same CHAPTERS.

Chapter borders fall on keyframes (every 2 s), so a split by stream copy starts each part on its border.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .media import FFMPEG, MARKER, _run, default_cache_dir

CHAPTERED_VERSION = "chaptered-v1"
FPS = 25
WIDTH, HEIGHT = 320, 240
COUNTER_SECONDS = 16
GOP = 2 * FPS
CHAPTERS = (("Opening", 0.0, 4.0), ("Middle part", 4.0, 12.0), ("Credits", 12.0, 16.0))
_LUMA_STEPS = 55  # frames before the luma wraps (16 + 4 * 54 = 232 stays within video range)


@dataclass(frozen=True)
class ChapteredMedia:
    root: Path

    @property
    def video(self) -> Path:
        return self.root / "counter.mp4"

    @property
    def audio(self) -> Path:
        return self.root / "counter.m4a"

    def files(self) -> list[Path]:
        return [self.video, self.audio]


def _ffmetadata(path: Path, title: str) -> Path:
    lines = [";FFMETADATA1", f"title={title}"]
    for name, start, end in CHAPTERS:
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={int(start * 1000)}", f"END={int(end * 1000)}",
                  f"title={name}"]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def counter_source(seconds: float, width: int = WIDTH, height: int = HEIGHT, fps: int = FPS) -> str:
    """The lavfi source of the frame counter described above."""
    return (
        f"color=black:size={width}x{height}:rate={fps}:duration={seconds},"
        f"geq=lum='16+4*mod(N\\,{_LUMA_STEPS})':cb='32+16*floor(N/{_LUMA_STEPS})':cr=128"
    )


def _generate_into(tmp: Path) -> None:
    media = ChapteredMedia(tmp)
    meta = _ffmetadata(tmp / "chapters.txt", "Counter")
    _run([
        "-f", "lavfi", "-i", counter_source(COUNTER_SECONDS),
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={COUNTER_SECONDS}",
        "-i", str(meta), "-map", "0:v", "-map", "1:a", "-map_metadata", "2", "-map_chapters", "2",
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
        "-g", str(GOP), "-keyint_min", str(GOP), "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "96k", "-shortest", "-movflags", "+faststart", str(media.video),
    ])  # fmt: skip
    _run([
        "-f", "lavfi", "-i", f"sine=frequency=660:sample_rate=44100:duration={COUNTER_SECONDS}",
        "-i", str(meta), "-map", "0:a", "-map_metadata", "1", "-map_chapters", "1",
        "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart", str(media.audio),
    ])  # fmt: skip


def _complete(root: Path) -> bool:
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("version") == CHAPTERED_VERSION and all(
        p.is_file() and p.stat().st_size > 0 for p in ChapteredMedia(root).files()
    )


def generate_chaptered(cache_dir: Path | None = None) -> ChapteredMedia:
    """The counter media, generated atomically on first use (concurrent xdist workers: one wins the rename,
    the others use its copy)."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir().parent / CHAPTERED_VERSION
    if _complete(root):
        return ChapteredMedia(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        _generate_into(tmp)
        (tmp / MARKER).write_text(json.dumps({"version": CHAPTERED_VERSION}))
        os.chmod(tmp, 0o755)
        if root.exists() and not _complete(root):
            shutil.rmtree(root, ignore_errors=True)
        try:
            os.rename(tmp, root)
        except OSError:
            if not _complete(root):
                raise
        return ChapteredMedia(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def frame_planes(
    path: Path, index: int = 0, *, width: int = WIDTH, height: int = HEIGHT
) -> tuple[float, float]:
    """Mean luma and blue-difference chroma of decoded frame `index` of `path` (video range, 4:2:0)."""
    proc = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-vf", f"select=eq(n\\,{index}),scale={width}:{height}",
         "-frames:v", "1", "-pix_fmt", "yuv420p", "-f", "rawvideo", "-"],
        capture_output=True, timeout=30, check=True,
    )  # fmt: skip
    luma_size, chroma_size = width * height, (width // 2) * (height // 2)
    raw = proc.stdout
    assert len(raw) >= luma_size + chroma_size, f"no frame {index} in {path}"
    luma = sum(raw[:luma_size]) / luma_size
    cb = sum(raw[luma_size : luma_size + chroma_size]) / chroma_size
    return luma, cb


def frame_number(path: Path, index: int = 0, *, width: int = WIDTH, height: int = HEIGHT) -> int:
    """Which source frame decoded frame `index` of `path` shows (see the module's note)."""
    luma, cb = frame_planes(path, index, width=width, height=height)
    return round((cb - 32) / 16) * _LUMA_STEPS + round((luma - 16) / 4)


def frame_numbers(path: Path) -> list[int]:
    """Which source frame each decoded frame of `path` shows, in order, in one FFmpeg run (each frame is flat,
    so a 16x12 picture of it keeps its planes' means)."""
    width, height = 16, 12
    proc = subprocess.run(
        [FFMPEG, "-v", "error", "-i", str(path), "-vf", f"scale={width}:{height}", "-fps_mode", "passthrough",
         "-pix_fmt", "yuv420p",
         "-f", "rawvideo", "-"],
        capture_output=True, timeout=60, check=True,
    )  # fmt: skip
    luma_size, chroma_size = width * height, (width // 2) * (height // 2)
    frame_size = luma_size + 2 * chroma_size
    numbers = []
    for at in range(0, len(proc.stdout) - frame_size + 1, frame_size):
        frame = proc.stdout[at : at + frame_size]
        luma = sum(frame[:luma_size]) / luma_size
        cb = sum(frame[luma_size : luma_size + chroma_size]) / chroma_size
        numbers.append(round((cb - 32) / 16) * _LUMA_STEPS + round((luma - 16) / 4))
    return numbers
