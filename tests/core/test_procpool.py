"""Downloads in child processes (core.media.procpool): real children running yt-dlp against the local media
site; the parent sees progress, answers the children's questions, gets the file or the error as its class,
and cancel and stop reach the child."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from core.errors import Cancelled, DownloadFailed, UnsupportedUrl
from core.media.control import Control, ProgressUpdate
from core.media.lazy_downloader import LazyDownloader, download_processes
from core.media.procpool import ProcessPool
from core.media.results import Downloaded, MediaInfo
from tests.support.services import ROOT, make_settings, wait_until


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


@pytest.fixture
def downloader(tmp_path: Path):  # type: ignore[no-untyped-def]
    made = LazyDownloader(make_settings(tmp_path, worker_concurrency=2), processes=2)
    yield made
    made.close()


async def test_a_download_runs_in_a_child_and_reports_to_the_parent(
    downloader: LazyDownloader, media_site, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    progress: list[ProgressUpdate] = []
    asked: list[tuple[MediaInfo, int]] = []
    control = Control(on_progress=progress.append)

    def on_info(info: MediaInfo) -> bool:
        asked.append((info, os.getpid()))
        return True

    url = media_site.url("/clip/child.mp4")
    result = await asyncio.to_thread(
        downloader.run, "job1", url, "video", "best", tmp_path / "w1", control, on_info
    )
    assert isinstance(result, Downloaded)
    assert result.path.is_file() and result.path.stat().st_size > 0
    assert result.thumbnail is not None and result.thumbnail.is_file()
    assert result.info.title == "child"
    # The question was asked of this process; the download itself ran in a child.
    assert asked and asked[0][1] == os.getpid() and asked[0][0].title == "child"
    assert any(p.status == "downloading" for p in progress)
    assert downloader.pool is not None
    (pid,) = downloader.pool.pids
    assert pid != os.getpid() and alive(pid)
    assert not downloader.loaded  # no Downloader (so no yt-dlp) was built in this process

    # Told not to go on (finished from the cache): nothing is downloaded.
    skipped = await asyncio.to_thread(
        downloader.run, "job2", media_site.url("/clip/other.mp4"), "video", "best", tmp_path / "w2",
        Control(), lambda _info: False,
    )  # fmt: skip
    assert skipped is None
    assert not list((tmp_path / "w2").glob("*.mp4"))

    # Pacing's question about the site is answered by a child too.
    assert await asyncio.to_thread(downloader.site_of_url, url, ("generic",)) == "127.0.0.1"


async def test_errors_come_back_as_their_class(
    downloader: LazyDownloader, media_site, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(DownloadFailed) as missing:
        await asyncio.to_thread(
            downloader.run, "j", media_site.url("/missing.mp4"), "video", "best", tmp_path / "w", Control(),
            lambda _i: True,
        )  # fmt: skip
    assert "404" in missing.value.message
    with pytest.raises(UnsupportedUrl) as unsupported:
        await asyncio.to_thread(
            downloader.run, "j", media_site.url("/nomedia.html"), "video", "best", tmp_path / "w2",
            Control(), lambda _i: True,
        )  # fmt: skip
    assert unsupported.value.code == "unsupported_url"
    # A question the parent fails to answer fails the download with the parent's error.
    with pytest.raises(Cancelled):
        await asyncio.to_thread(
            downloader.run, "j", media_site.url("/clip/q.mp4"), "video", "best", tmp_path / "w3",
            Control(), _raise_cancelled,
        )  # fmt: skip


def _raise_cancelled(_info: Any) -> bool:
    raise Cancelled()


async def test_cancel_reaches_a_stalled_download_in_the_child(
    downloader: LazyDownloader, media_site, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    started = threading.Event()
    control = Control(on_progress=lambda _p: started.set())
    running = asyncio.ensure_future(
        asyncio.to_thread(
            downloader.run,
            "stall",
            media_site.url("/stall.mp4"),
            "video",
            "best",
            tmp_path / "w",
            control,
            lambda _i: True,
        )  # fmt: skip
    )
    await wait_until(started.is_set, timeout=60)
    control.stop()
    with pytest.raises(Cancelled):
        await asyncio.wait_for(running, 30)  # the stall would hold it for a minute
    assert downloader.pool is not None
    (pid,) = downloader.pool.pids
    assert alive(pid)  # stopped the way a thread's download stops: the child serves the next one
    result = await asyncio.to_thread(
        downloader.run, "next", media_site.url("/clip/after.mp4"), "video", "best", tmp_path / "w2",
        Control(), lambda _i: True,
    )  # fmt: skip
    assert isinstance(result, Downloaded)
    # Cancelled before it reached the child: stopped there at once, the child not killed for it.
    early = Control()
    early.stop()
    with pytest.raises(Cancelled):
        await asyncio.to_thread(
            downloader.run, "early", media_site.url("/stall.mp4"), "video", "best", tmp_path / "w3", early,
            lambda _i: True,
        )  # fmt: skip
    assert downloader.pool.pids == [pid] and alive(pid)


async def test_children_start_with_work_and_stop_when_idle(media_site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pool = ProcessPool(make_settings(tmp_path, worker_concurrency=4), 2, idle_s=0.5)
    try:
        assert pool.pids == []  # nothing runs before the first job
        await asyncio.gather(
            *(
                asyncio.to_thread(
                    pool.call,
                    "run",
                    f"j{n}",
                    media_site.url(f"/clip/idle{n}.mp4"),
                    "video",
                    "best",
                    tmp_path / f"w{n}",
                    Control(),
                    lambda _i: True,
                )  # fmt: skip
                for n in range(3)
            )
        )
        started = pool.pids
        assert 1 <= len(started) <= 2
        await wait_until(lambda: not pool.pids, timeout=30)
        await wait_until(lambda: not any(alive(pid) for pid in started), timeout=30)
    finally:
        pool.close()


async def test_close_stops_running_children_at_once(
    downloader: LazyDownloader, media_site, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    started = threading.Event()
    running = asyncio.ensure_future(
        asyncio.to_thread(
            downloader.run,
            "stall",
            media_site.url("/stall.mp4"),
            "video",
            "best",
            tmp_path / "w",
            Control(on_progress=lambda _p: started.set()),
            lambda _i: True,
        )  # fmt: skip
    )
    await wait_until(started.is_set, timeout=60)
    assert downloader.pool is not None
    pids = downloader.pool.pids
    await asyncio.to_thread(downloader.close)
    with pytest.raises(Cancelled):
        await asyncio.wait_for(running, 30)
    assert pids and not any(alive(pid) for pid in pids)


PARENT = """
import sys, threading
from pathlib import Path
from core.config import load_settings
from core.media.control import Control
from core.media.lazy_downloader import LazyDownloader
d = LazyDownloader(load_settings(data_dir=sys.argv[1], allow_private_urls=True, allowed_extractors=["generic"]),
                   processes=1)
c = Control(on_progress=lambda _p: None)
def go():
    d.run("stall", sys.argv[2], "video", "best", Path(sys.argv[1]) / "w", c, lambda _i: (print("PID", *d.pool.pids, flush=True), True)[1])
threading.Thread(target=go, daemon=True).start()
threading.Event().wait()
"""


async def test_a_child_does_not_outlive_a_killed_parent(media_site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path), media_site.url("/stall.mp4")],
        cwd=str(ROOT), stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), 60)
        child = int(line.split()[1])
        assert alive(child)
        os.kill(parent.pid, signal.SIGKILL)  # no clean-up code of the parent runs
        parent.wait(10)
        await wait_until(lambda: not alive(child), timeout=30)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_processes_by_default_only_where_people_are_served(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, worker_concurrency=4)
    cores = len(os.sched_getaffinity(0))
    assert download_processes(settings, warm=False) == min(4, cores)
    assert download_processes(settings, warm=True) == 0  # mediabot worker: threads, as before
    assert download_processes(make_settings(tmp_path, worker_concurrency=1), warm=False) == 1
    assert download_processes(make_settings(tmp_path, download_processes=0), warm=False) == 0
    assert download_processes(make_settings(tmp_path, download_processes=3), warm=True) == 3
