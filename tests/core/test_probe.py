from pathlib import Path

import pytest

from core.media.probe import Probe, _probe_external, probe_media


@pytest.mark.parametrize("name", ["video_mp4", "audio_m4a", "big_mp4"])
def test_mp4_reader_agrees_with_ffprobe(media_files, name: str) -> None:
    path: Path = getattr(media_files, name)
    fast = probe_media(path, "ffmpeg")
    slow = _probe_external(path, "/usr/bin/ffmpeg")
    assert fast.width == slow.width and fast.height == slow.height
    assert fast.has_video == slow.has_video and fast.has_audio == slow.has_audio
    assert (fast.vcodec, fast.acodec) == (slow.vcodec, slow.acodec) and fast.acodec == "aac"
    assert fast.duration == pytest.approx(slow.duration, abs=0.1)


def test_other_containers_and_garbage_fall_back(tmp_path: Path, media_files) -> None:
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x01ftyp" + b"x" * 100)
    assert probe_media(garbage, None) == Probe()
    segment = next(media_files.hls_dir.glob("*.ts"))
    assert probe_media(segment, "/usr/bin/ffmpeg").has_video
