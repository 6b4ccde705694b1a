"""Test media generated once with ffmpeg and cached on disk.

``generate_media()`` returns a :class:`MediaFiles` whose paths live in a cache
directory (``$MEDIABOT_TEST_MEDIA_DIR`` or ``/tmp/mediabot-test-media/<MEDIA_VERSION>``).
The first call generates every file into a temporary sibling directory and
renames it into place in one step, so concurrent processes (xdist workers, two
pytest sessions) never see a half-written cache: the loser of the race simply
discards its copy and uses the winner's.

Bump ``MEDIA_VERSION`` whenever the recipes below change.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MEDIA_VERSION = "v3"
DEFAULT_ROOT = Path("/tmp/mediabot-test-media")
ENV_VAR = "MEDIABOT_TEST_MEDIA_DIR"
MARKER = "MEDIA_VERSION.json"

FFMPEG = shutil.which("ffmpeg") or "/usr/bin/ffmpeg"
FFPROBE = shutil.which("ffprobe") or "/usr/bin/ffprobe"
FF = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]

SMALL_SECONDS = 3
BIG_SECONDS = 10
BIG_BITRATE = "24M"  # 10 s at 24 Mbit/s CBR (x264 filler) -> ~30.7 MB, in ~1 s of encoding
STEP_TIMEOUT = 60.0  # seconds per ffmpeg run

# Names inside the cache directory.
VIDEO_NAME = "video.mp4"
AUDIO_NAME = "audio.m4a"
BIG_NAME = "big.mp4"
HLS_NAME = "hls"
THUMB_NAME = "thumb.png"
# Sound files whose own tags differ from what the song pages say: the site's words must win.
TAGGED_NAMES = {"m4a": "tagged.m4a", "mp3": "tagged.mp3", "opus": "tagged.opus", "ogg": "tagged.ogg"}
FILE_TAGS = {"title": "File Own Title", "artist": "File Own Artist", "album": "File Own Album"}
TAGGED_MP3_BITRATE = "160k"  # not what an mp3 re-encode would choose, so a re-encode shows


@dataclass(frozen=True)
class MediaFiles:
    root: Path
    video_mp4: Path  # ~3 s 320x240 H.264 + AAC, faststart, ~250 KB
    audio_m4a: Path  # ~3 s AAC sine tone
    big_mp4: Path  # ~30 MB valid mp4 (10 s, 640x360, noise at 24 Mbit/s CBR)
    hls_dir: Path  # index.m3u8 + segNNN.ts (~1 s each) of video_mp4
    thumb_png: Path  # 1280x720 PNG poster, well over Telegram's thumbnail limits (320 px, 200 KB)
    # ~3 s tones carrying FILE_TAGS: AAC in m4a, MP3 at 160 kbit/s, Opus in Ogg, Vorbis in Ogg
    tagged: dict[str, Path]


def default_cache_dir() -> Path:
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_ROOT / MEDIA_VERSION


def _files(root: Path) -> MediaFiles:
    return MediaFiles(
        root=root,
        video_mp4=root / VIDEO_NAME,
        audio_m4a=root / AUDIO_NAME,
        big_mp4=root / BIG_NAME,
        hls_dir=root / HLS_NAME,
        thumb_png=root / THUMB_NAME,
        tagged={kind: root / name for kind, name in TAGGED_NAMES.items()},
    )


def _is_complete(root: Path) -> bool:
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("version") != MEDIA_VERSION:
        return False
    f = _files(root)
    return all(
        p.is_file() and p.stat().st_size > 0
        for p in (f.video_mp4, f.audio_m4a, f.big_mp4, f.thumb_png, *f.tagged.values())
    ) and ((f.hls_dir / "index.m3u8").is_file())


def _run(args: list[str], timeout: float = STEP_TIMEOUT) -> None:
    try:
        proc = subprocess.run(FF + args, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"ffmpeg timed out after {timeout}s: {' '.join(args)}") from exc
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr[-2000:]}")


def _gen_video(out: Path) -> None:
    _run([
        "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=25:duration={SMALL_SECONDS}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={SMALL_SECONDS}",
        "-map", "0:v", "-map", "1:a",
        # keyframe every second so the HLS copy cuts ~1 s segments
        # constant 560 kbit/s (x264 filler) -> ~250 KB: larger than a loopback receive window,
        # which MediaSite relies on to tell yt-dlp's header probe from the real download
        "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
        "-b:v", "560k", "-minrate", "560k", "-maxrate", "560k", "-bufsize", "560k",
        "-x264-params", "nal-hrd=cbr",
        "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "96k",
        "-shortest", "-movflags", "+faststart",
        "-metadata", "title=Test Clip",
        str(out),
    ])  # fmt: skip


def _gen_audio(out: Path) -> None:
    _run([
        "-f", "lavfi", "-i", f"sine=frequency=660:sample_rate=44100:duration={SMALL_SECONDS}",
        "-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart",
        str(out),
    ])  # fmt: skip


def _gen_big(out: Path) -> None:
    # Noise defeats compression; nal-hrd=cbr makes x264 pad to the exact bitrate,
    # so the size is deterministic (~BIG_SECONDS * 24 Mbit/s / 8 = ~30.7 MB).
    _run([
        "-f", "lavfi", "-i", f"color=c=gray:size=640x360:rate=25:duration={BIG_SECONDS},noise=alls=60:allf=t",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={BIG_SECONDS}",
        "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-b:v", BIG_BITRATE, "-minrate", BIG_BITRATE, "-maxrate", BIG_BITRATE, "-bufsize", "12M",
        "-x264-params", "nal-hrd=cbr",
        "-c:a", "aac", "-b:a", "128k",
        "-shortest", "-movflags", "+faststart",
        str(out),
    ])  # fmt: skip


def _gen_thumb(out: Path) -> None:
    _run([
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=1:duration=1", "-frames:v", "1",
        str(out),
    ])  # fmt: skip


def _gen_tagged(out_dir: Path) -> None:
    codecs = {
        "m4a": ["-c:a", "aac", "-b:a", "96k", "-movflags", "+faststart"],
        "mp3": ["-c:a", "libmp3lame", "-b:a", TAGGED_MP3_BITRATE],
        "opus": ["-c:a", "libopus", "-b:a", "64k"],
        "ogg": ["-c:a", "libvorbis", "-q:a", "3"],
    }
    tags = [arg for key, value in FILE_TAGS.items() for arg in ("-metadata", f"{key}={value}")]
    for kind, name in TAGGED_NAMES.items():
        _run([
            "-f", "lavfi", "-i", f"sine=frequency=550:sample_rate=48000:duration={SMALL_SECONDS}",
            *codecs[kind], *tags, str(out_dir / name),
        ])  # fmt: skip


def _gen_hls(src: Path, out_dir: Path) -> None:
    out_dir.mkdir()
    _run([
        "-i", str(src), "-c", "copy",
        "-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod",
        "-hls_segment_filename", str(out_dir / "seg%03d.ts"),
        str(out_dir / "index.m3u8"),
    ])  # fmt: skip


def _generate_into(tmp: Path) -> dict[str, float]:
    timings: dict[str, float] = {}
    steps = [
        ("video_mp4", lambda: _gen_video(tmp / VIDEO_NAME)),
        ("audio_m4a", lambda: _gen_audio(tmp / AUDIO_NAME)),
        ("big_mp4", lambda: _gen_big(tmp / BIG_NAME)),
        ("hls_dir", lambda: _gen_hls(tmp / VIDEO_NAME, tmp / HLS_NAME)),
        ("thumb_png", lambda: _gen_thumb(tmp / THUMB_NAME)),
        ("tagged", lambda: _gen_tagged(tmp)),
    ]
    for name, step in steps:
        t0 = time.perf_counter()
        step()
        timings[name] = round(time.perf_counter() - t0, 3)
    return timings


def generate_media(cache_dir: Path | None = None) -> MediaFiles:
    """Return the test media, generating it (atomically) on first use."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if _is_complete(root):
        return _files(root)

    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        t0 = time.perf_counter()
        timings = _generate_into(tmp)
        timings["total"] = round(time.perf_counter() - t0, 3)
        (tmp / MARKER).write_text(json.dumps({"version": MEDIA_VERSION, "timings_s": timings}, indent=1))
        os.chmod(tmp, 0o755)  # mkdtemp creates 0700

        if root.exists() and not _is_complete(root):
            # Stale or foreign content (e.g. an older version in $MEDIABOT_TEST_MEDIA_DIR):
            # move it aside atomically; if another process already did, that is fine.
            trash = root.parent / f".{root.name}.stale-{os.getpid()}-{time.monotonic_ns()}"
            try:
                os.rename(root, trash)
            except FileNotFoundError:
                pass
            else:
                shutil.rmtree(trash, ignore_errors=True)
        try:
            os.rename(tmp, root)  # atomic; fails if another process won the race
        except OSError:
            if not _is_complete(root):
                raise
        return _files(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def media_timings(files: MediaFiles) -> dict[str, float]:
    """Generation timings (seconds) recorded when the cache was built."""
    try:
        return json.loads((files.root / MARKER).read_text()).get("timings_s", {})
    except (OSError, ValueError):
        return {}


def ffprobe(path: Path, timeout: float = 20.0) -> dict:
    """ffprobe -show_format -show_streams as a dict (raises on invalid media)."""
    proc = subprocess.run(
        [FFPROBE, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"ffprobe rejected {path}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


# -- the same clip in several codecs and heights (phones play H.264 only), and chapters ----------------------
# Made on first use only (the site generates them when a page asks), cached like the media above under their
# own version, so the set above is not rebuilt when this one changes. Pictures and sound are separate files,
# as video sites serve them over DASH.

CODEC_MEDIA_VERSION = "codecs-v1"
CODEC_SECONDS = 2
# height -> width (4:3, sides that every encoder takes)
CODEC_HEIGHTS = {144: 192, 240: 320, 360: 480}
# codec -> (container, DASH mimeType, DASH codecs, the encoder's arguments)
CODECS: dict[str, tuple[str, str, str, list[str]]] = {
    "h264": ("mp4", "video/mp4", "avc1.42E01E", ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]),
    "vp9": ("webm", "video/webm", "vp09.00.10.08",
            ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1"]),
    "av1": ("mp4", "video/mp4", "av01.0.04M.08",
            ["-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-row-mt", "1"]),
}  # fmt: skip
# sound -> (file name, DASH mimeType, DASH codecs, the encoder's arguments)
SOUNDS: dict[str, tuple[str, str, str, list[str]]] = {
    "aac": ("sound-aac.m4a", "audio/mp4", "mp4a.40.2", ["-c:a", "aac", "-b:a", "64k"]),
    "opus": ("sound-opus.webm", "audio/webm", "opus", ["-c:a", "libopus", "-b:a", "48k"]),
}
# Chapters every picture file carries, and the audio file below (written from an ffmetadata file).
CHAPTERS = (("Opening", 0.0, 1.0), ("Ending", 1.0, 2.0))
CHAPTERS_AUDIO_NAME = "chapters.m4a"


def codec_file_name(codec: str, height: int) -> str:
    return f"{codec}-{height}.{CODECS[codec][0]}"


@dataclass(frozen=True)
class CodecMedia:
    root: Path

    def video(self, codec: str, height: int) -> Path:
        """The picture only (no sound), with CHAPTERS."""
        return self.root / codec_file_name(codec, height)

    def sound(self, name: str) -> Path:
        return self.root / SOUNDS[name][0]

    @property
    def chapters_m4a(self) -> Path:
        """AAC sound with CHAPTERS."""
        return self.root / CHAPTERS_AUDIO_NAME

    def files(self) -> list[Path]:
        pictures = [self.video(c, h) for c in CODECS for h in CODEC_HEIGHTS]
        return [*pictures, *(self.sound(s) for s in SOUNDS), self.chapters_m4a]


def _ffmetadata(path: Path, title: str) -> Path:
    lines = [";FFMETADATA1", f"title={title}"]
    for name, start, end in CHAPTERS:
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={int(start * 1000)}", f"END={int(end * 1000)}",
                  f"title={name}"]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def _generate_codecs_into(tmp: Path) -> None:
    media = CodecMedia(tmp)
    meta = _ffmetadata(tmp / "chapters.txt", "Codec Test")
    for codec, (_, _, _, encoder) in CODECS.items():
        for height, width in CODEC_HEIGHTS.items():
            _run([
                "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=25:duration={CODEC_SECONDS}",
                "-i", str(meta), "-map", "0:v", "-map_metadata", "1", "-map_chapters", "1",
                *encoder, "-b:v", "200k", "-g", "25", str(media.video(codec, height)),
            ])  # fmt: skip
    for name, (_, _, _, encoder) in SOUNDS.items():
        _run([
            "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={CODEC_SECONDS}",
            *encoder, str(media.sound(name)),
        ])  # fmt: skip
    _run([
        "-f", "lavfi", "-i", f"sine=frequency=660:sample_rate=44100:duration={CODEC_SECONDS}",
        "-i", str(_ffmetadata(tmp / "audio-chapters.txt", "Chapter Song")),
        "-map", "0:a", "-map_metadata", "1", "-map_chapters", "1",
        "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", str(media.chapters_m4a),
    ])  # fmt: skip


def _codecs_complete(root: Path) -> bool:
    try:
        marker = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return marker.get("version") == CODEC_MEDIA_VERSION and all(
        p.is_file() and p.stat().st_size > 0 for p in CodecMedia(root).files()
    )


def generate_codec_media(cache_dir: Path | None = None) -> CodecMedia:
    """The codec set (H.264, VP9 and AV1 pictures at each of CODEC_HEIGHTS, AAC and Opus sound, an m4a with
    chapters), generated atomically on first use like generate_media."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir().parent / CODEC_MEDIA_VERSION
    if _codecs_complete(root):
        return CodecMedia(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        t0 = time.perf_counter()
        _generate_codecs_into(tmp)
        timings = {"total": round(time.perf_counter() - t0, 3)}
        (tmp / MARKER).write_text(json.dumps({"version": CODEC_MEDIA_VERSION, "timings_s": timings}))
        os.chmod(tmp, 0o755)
        if root.exists() and not _codecs_complete(root):
            shutil.rmtree(root, ignore_errors=True)
        try:
            os.rename(tmp, root)
        except OSError:
            if not _codecs_complete(root):
                raise
        return CodecMedia(root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def ffprobe_chapters(path: Path, timeout: float = 20.0) -> list[dict]:
    """ffprobe -show_chapters: [{start_time, end_time, tags: {title}}] (raises on invalid media)."""
    proc = subprocess.run(
        [FFPROBE, "-v", "error", "-print_format", "json", "-show_chapters", str(path)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"ffprobe rejected {path}: {proc.stderr.strip()}")
    return json.loads(proc.stdout).get("chapters", [])
