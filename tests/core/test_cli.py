"""`mediabot download` as a person runs it, and ffmpeg found without a system install."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import uuid
from pathlib import Path

import pytest

from core.jobs.choices import SubmitRequest
from core.media.ffmpeg import find_ffmpeg
from tests.support.media import ffprobe
from tests.support.services import (
    ROOT,
    make_settings,
    run_mediabot,
    running_services,
    settings_env,
    wait_until,
)


async def test_download_command_prints_the_file(tmp_path: Path, media_site, media_files) -> None:
    env = settings_env(make_settings(tmp_path))
    clip = f"/clip/{uuid.uuid4().hex}.mp4"
    code, out, err = await run_mediabot(env, "download", media_site.url(clip))
    assert code == 0, err
    path = Path(out.strip().splitlines()[-1])
    assert path.read_bytes() == media_files.video_mp4.read_bytes()
    code, out, err = await run_mediabot(env, "download", media_site.url(clip), "--audio")
    assert code == 0, err
    audio = Path(out.strip().splitlines()[-1])
    assert [s["codec_type"] for s in ffprobe(audio)["streams"]] == ["audio"]
    # The second video request is a cache hit: same file, no new download.
    downloads = media_site.downloads(clip)
    code, out, err = await run_mediabot(env, "download", media_site.url(clip))
    assert code == 0 and Path(out.strip().splitlines()[-1]) == path
    assert "from cache" in err
    assert media_site.downloads(clip) == downloads


async def test_download_command_reports_errors_in_words(tmp_path: Path, media_site) -> None:
    env = settings_env(make_settings(tmp_path))
    code, out, err = await run_mediabot(env, "download", media_site.url("/nomedia.html"))
    assert code == 1 and out == ""
    assert "That page has no video or sound we can find." in err and "Traceback" not in err
    code, _, err = await run_mediabot(env, "download", "ftp://example.com/x.mp4")
    assert code == 1 and "Only http:// and https://" in err
    # A private address: the plain refusal, then, for the operator at this terminal, how to allow the host.
    strict = settings_env(make_settings(tmp_path, allow_private_urls=False))
    code, out, err = await run_mediabot(strict, "download", media_site.url("/video.mp4"))
    port = media_site.url("/").split(":")[-1].strip("/")
    assert code == 1 and out == "" and "private network address" in err, err
    assert f"MEDIABOT_ALLOWED_PRIVATE_HOSTS=127.0.0.1:{port}" in err and "Traceback" not in err


async def test_download_command_through_the_shared_queue(
    tmp_path: Path, pg_url, redis_url, media_site, worker_processes
) -> None:
    settings = make_settings(tmp_path, database_url=pg_url, redis_url=redis_url)
    worker_processes(settings)
    code, out, err = await run_mediabot(
        settings_env(settings), "download", media_site.url(f"/clip/{uuid.uuid4().hex}.mp4")
    )
    assert code == 0, err
    assert Path(out.strip().splitlines()[-1]).exists()


def test_ffmpeg_falls_back_to_the_wheel_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    found = find_ffmpeg("auto")
    assert found and "imageio_ffmpeg" in found and os.access(found, os.X_OK)


async def test_audio_extraction_with_only_the_wheel_ffmpeg(tmp_path: Path, media_site) -> None:
    import imageio_ffmpeg

    settings = make_settings(tmp_path, ffmpeg=imageio_ffmpeg.get_ffmpeg_exe())
    async with running_services(settings) as services:
        submission = await services.jobs.submit(
            SubmitRequest(
                text=media_site.url(f"/clip/{uuid.uuid4().hex}.mp4"), source="cli", user_id="a", kind="audio"
            )
        )
        final = await services.jobs.wait(submission.job.id, timeout=60)
        assert final.status == "done", final.error
        path = await services.jobs.local_path(final.id)
        assert path is not None and [s["codec_type"] for s in ffprobe(path)["streams"]] == ["audio"]


async def test_download_command_prints_each_playlist_item(tmp_path: Path, media_site) -> None:
    env = settings_env(make_settings(tmp_path, max_playlist_items=2))
    media_site.reset_counts()
    code, out, err = await run_mediabot(env, "download", media_site.url("/feed.xml?n=143"))
    assert code == 0, err
    assert "Playlist: 2 of 143 items" in err
    paths = [Path(line) for line in out.split()]
    assert len(paths) == 2 and all(p.is_file() and p.suffix == ".mp4" for p in paths)
    assert media_site.downloads("/clip/3.mp4") == 0


async def test_formats_command_lists_choices_and_download_takes_one(tmp_path: Path, media_site) -> None:
    env = settings_env(make_settings(tmp_path))
    code, out, err = await run_mediabot(env, "formats", media_site.url("/formats.html"))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "Format Test"
    assert lines[1].split() == ["ID", "RESOLUTION", "CODECS", "SIZE"]
    assert [line.split()[:2] for line in lines[2:4]] == [["360p", "640x360"], ["240p", "320x240"]]
    assert "H.264 + AAC" in lines[2] and lines[2].endswith("MB") and lines[3].endswith("KB")
    # A table: each column starts where its heading does.
    for heading in ("RESOLUTION", "CODECS", "SIZE"):
        column = lines[1].index(heading)
        assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines[2:4]), heading
    assert lines[-1] == "subtitles: de, en"
    code, out, err = await run_mediabot(
        env, "download", media_site.url("/formats.html"), "--format", "240p", "--subs", "en,fr"
    )
    assert code == 0, err
    path = Path(out.strip().splitlines()[-1])
    streams = ffprobe(path)["streams"]
    assert [s.get("height") for s in streams if s["codec_type"] == "video"] == [240], "the 240p format"
    assert [s["codec_name"] for s in streams if s["codec_type"] == "subtitle"] == ["mov_text"]
    assert "no subtitles in fr" in err
    code, out, err = await run_mediabot(env, "download", media_site.url("/formats.html"), "--format", "8k")
    assert code == 1 and 'no format "8k"' in err and "Traceback" not in err


async def test_download_keeps_a_copy_where_output_says(tmp_path: Path, media_site, media_files) -> None:
    """-o: a file name, a folder, a folder for a playlist; the copies are the person's own files, apart
    from the stored ones that retention deletes."""
    env = settings_env(make_settings(tmp_path, max_playlist_items=2))
    clip = media_site.url(f"/clip/{uuid.uuid4().hex}.mp4")
    mine = tmp_path / "mine"
    mine.mkdir()

    code, out, err = await run_mediabot(env, "download", clip, "-o", str(mine / "holiday.mp4"))
    assert code == 0, err
    assert out.strip() == str(mine / "holiday.mp4")
    assert (mine / "holiday.mp4").read_bytes() == media_files.video_mp4.read_bytes()
    assert not [p for p in mine.iterdir() if p.name.startswith(".")], "no temporary file left behind"

    # A folder that exists: the file keeps its own name there; the stored file is another one.
    code, out, err = await run_mediabot(env, "download", clip, "--output", str(mine))
    assert code == 0, err
    copy = Path(out.strip())
    assert (
        copy.parent == mine
        and copy.suffix == ".mp4"
        and copy.read_bytes() == media_files.video_mp4.read_bytes()
    )
    stored = next((tmp_path / "data").rglob(copy.name))
    assert not copy.samefile(stored)

    # A playlist: one file per item in the folder, made when missing.
    code, out, err = await run_mediabot(
        env, "download", media_site.url("/feed.xml?n=5"), "-o", str(tmp_path / "feed")
    )
    assert code == 0, err
    paths = [Path(line) for line in out.split()]
    assert len(paths) == 2 and all(p.parent == tmp_path / "feed" and p.is_file() for p in paths)

    # Nowhere to put it: said before anything is downloaded.
    code, out, err = await run_mediabot(env, "download", clip, "-o", str(tmp_path / "nope" / "x.mp4"))
    assert (
        code != 0
        and out == ""
        and f"There is no folder {tmp_path / 'nope'}" in err
        and "Traceback" not in err
    )


async def test_download_audio_format(tmp_path: Path, media_site) -> None:
    env = settings_env(make_settings(tmp_path))
    code, out, err = await run_mediabot(
        env, "download", media_site.url(f"/clip/{uuid.uuid4().hex}.mp4"), "--audio-format", "mp3"
    )
    assert code == 0, err
    path = Path(out.strip().splitlines()[-1])
    assert path.suffix == ".mp3"
    assert [s["codec_name"] for s in ffprobe(path)["streams"] if s["codec_type"] != "video"] == ["mp3"]
    code, _, err = await run_mediabot(env, "download", media_site.url("/video.mp4"), "--audio-format", "flac")
    assert code == 2 and "invalid choice: 'flac'" in err


async def test_download_prints_log_lines_only_with_verbose(tmp_path: Path, media_site) -> None:
    env = settings_env(make_settings(tmp_path, log_level="INFO"))
    code, _, err = await run_mediabot(env, "download", media_site.url(f"/clip/{uuid.uuid4().hex}.mp4"))
    assert code == 0, err
    assert " INFO " not in err, err
    code, _, err = await run_mediabot(env, "download", "-v", media_site.url(f"/clip/{uuid.uuid4().hex}.mp4"))
    assert code == 0, err
    assert " INFO worker.runner: job " in err, err
    # The CLI's own words for what is not a link (the core's are a chat's).
    code, _, err = await run_mediabot(env, "download", "example.com/video")
    assert code == 2 and err.strip() == (
        "mediabot: example.com/video is not a full address: start it with https:// (or http://)."
    )


@pytest.mark.parametrize(("sig", "name"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGHUP, "SIGHUP")])
async def test_download_cancels_its_job_on_sigterm_and_sighup(
    tmp_path: Path, media_site, sig: signal.Signals, name: str
) -> None:
    """As Ctrl-C does: the job is cancelled (not left running for nobody), one sentence, a non-zero exit."""
    settings = make_settings(tmp_path)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mediabot",
        "download",
        media_site.url(f"/slow.mp4?rate=200000&n={uuid.uuid4().hex}"),
        env=settings_env(settings),
        cwd=str(ROOT),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    database = settings.data_dir / "mediabot.db"

    def status() -> str | None:
        if not database.exists():
            return None
        with contextlib.closing(sqlite3.connect(database)) as conn:
            with contextlib.suppress(sqlite3.OperationalError):
                row = conn.execute("SELECT status FROM jobs").fetchone()
                return row[0] if row else None
        return None

    try:
        await wait_until(lambda: status() == "running", timeout=60)
        proc.send_signal(sig)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 128 + sig, err
    assert out == b""
    assert (
        err.decode().strip().splitlines()[-1] == f"mediabot: stopped by {name}; the download was cancelled."
    ), err.decode()
    assert status() == "cancelled"


async def test_download_output_from_s3_storage(tmp_path: Path, media_site, media_files, moto_s3) -> None:
    settings = make_settings(
        tmp_path, storage="s3", s3_bucket=moto_s3.new_bucket(), s3_endpoint_url=moto_s3.endpoint_url
    )
    target = tmp_path / "clip.mp4"
    code, out, err = await run_mediabot(
        settings_env(settings), "download", media_site.url(f"/clip/{uuid.uuid4().hex}.mp4"), "-o", str(target)
    )
    assert code == 0, err
    assert out.strip() == str(target)
    assert target.read_bytes() == media_files.video_mp4.read_bytes()


async def test_download_section_prints_the_clip(tmp_path: Path, media_site) -> None:
    from tests.support.chaptered import FPS, frame_number

    env = settings_env(make_settings(tmp_path))
    url = media_site.url("/counter.mp4") + "?cli=section"
    code, out, err = await run_mediabot(env, "download", url, "--section", "0:06-0:08")
    assert code == 0, err
    path = Path(out.strip().splitlines()[-1])
    assert abs(float(ffprobe(path)["format"]["duration"]) - 2.0) <= 0.1
    assert frame_number(path, 0) == 6 * FPS
    code, out, err = await run_mediabot(env, "download", url, "--section", "0:08-0:06")
    assert code == 2 and err.strip() == "mediabot: The clip must end after it starts: 0:06 is not after 0:08."
