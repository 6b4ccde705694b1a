"""A worker killed while FFmpeg makes a copy takes the encoder with it (ffmpeg writes its progress to a pipe
the worker holds, so it gets SIGPIPE within half a second), and another worker makes the copy."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from core.jobs.choices import SubmitRequest
from tests.support.services import make_settings, running_services, wait_until


def encoders_under(root: Path) -> list[int]:
    """ffmpeg processes working in `root` (the workers' temporary directories)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(part.endswith(b"ffmpeg") for part in cmdline) and str(root).encode() in b" ".join(cmdline):
            found.append(int(entry.name))
    return found


async def test_a_killed_worker_leaves_no_encoder_behind(
    tmp_path: Path, pg_url: str, redis_url: str, media_site, worker_processes
) -> None:
    settings = make_settings(
        tmp_path, database_url=pg_url, redis_url=redis_url, reencode_to_fit=True, fit_smaller_format=False,
        lease_s=3, reconcile_interval_s=0.5,
    )  # fmt: skip
    first = worker_processes(settings)
    async with running_services(settings, worker=False) as services:
        sub = await services.jobs.submit(
            SubmitRequest(text=media_site.url("/big.mp4"), source="cli", user_id="u")
        )
        full = await services.jobs.wait(sub.job.id, timeout=60)
        assert full.status == "done", full.error
        copy = await services.jobs.fit(sub.request.id, 3_000_000)
        async for view in services.jobs.watch(copy.job.id):
            if view.status == "running" and view.progress.downloaded_bytes:
                break  # ffmpeg is encoding
        encoders = encoders_under(settings.tmp_dir)
        assert encoders, "an ffmpeg process works in the worker's temporary directory"
        os.kill(first.pid, signal.SIGKILL)  # the worker alone, not its process group
        await wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in encoders), timeout=5)
        worker_processes(settings)  # another worker takes the job over once the lease runs out
        final = await services.jobs.wait(copy.job.id, timeout=90)
        assert final.status == "done" and final.filesize and final.filesize <= 3_000_000, final.error
        assert final.attempts == 2
