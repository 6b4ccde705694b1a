"""Disk full, or storage broken, when a download is stored: a plain storage_error and nothing half-written."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from core.bootstrap import Services
from core.config import Settings
from core.db.models import Job
from core.jobs.choices import SubmitRequest
from core.words import human_size
from tests.faults import drills
from tests.support.media_site import MediaSite
from tests.support.services import make_settings, running_services


def _ask(url: str) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id="disk")


@pytest.mark.parametrize("mode", drills.STORAGE_MODES)
async def test_storage_failure_fails_the_job_plainly_and_leaves_nothing(
    tmp_path: Path, media_site: MediaSite, mode: str
) -> None:
    try:
        figures = await drills.storage_failure(tmp_path, media_site, mode)
    except drills.CannotMount as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    assert figures["failed with storage_error"] == 1 and figures["files left behind"] == 0


# -- the whole data dir (SQLite included) on a small disk ------------------------------------------------------

DISK = "24m"  # the data dir's filesystem: database, temp downloads and stored files together
LEASE_S = 10.0


@contextlib.contextmanager
def small_disk(tmp_path: Path) -> Iterator[Settings]:
    """Settings whose data dir (SQLite database included) is a small tmpfs of its own."""
    data_dir = tmp_path / "data"
    with contextlib.ExitStack() as mounted:
        try:
            mounted.enter_context(drills.tiny_tmpfs(data_dir, DISK))
        except drills.CannotMount as exc:
            pytest.skip(f"cannot mount a tmpfs here: {exc}")
        settings = make_settings(tmp_path, data_dir=data_dir, lease_s=LEASE_S, max_attempts=3)
        assert settings.database_url.startswith(f"sqlite+aiosqlite:///{data_dir}")
        yield settings


@contextlib.asynccontextmanager
async def on_a_small_disk(tmp_path: Path) -> AsyncIterator[Services]:
    with small_disk(tmp_path) as settings:
        async with running_services(settings) as services:
            yield services


def files_in(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def one_sentence(message: str) -> bool:
    return message.count(". ") == 0 and message.endswith(".")


async def test_a_download_that_fills_the_disk_fails_at_once_as_out_of_space(
    tmp_path: Path, media_site: MediaSite
) -> None:
    """No size known beforehand (a stream without Content-Length): the disk fills up mid-download. The
    partial file is freed first, so the failure can be written to the database on that same disk."""
    async with on_a_small_disk(tmp_path) as services:
        settings = services.settings
        link = media_site.url(f"/filler.mp4?bytes={60_000_000}&chunked=1&n={uuid.uuid4().hex}")
        submission = await services.jobs.submit(_ask(link))
        # Waiting past several leases: a job left running would be retried, then end as worker_lost.
        final = await services.jobs.wait(submission.job.id, timeout=LEASE_S * 6)
        left = files_in(settings.tmp_dir)
        # The database is writable again and the disk usable: a small download goes through.
        small = await services.jobs.submit(_ask(media_site.url(f"/clip/{uuid.uuid4().hex}.mp4")))
        after = await services.jobs.wait(small.job.id, timeout=60)
    assert final.status == "failed" and final.error is not None, final
    assert final.error.code == "storage_error", final.error
    assert "out of" in final.error.message or "full" in final.error.message, final.error.message
    assert one_sentence(final.error.message), final.error.message
    assert final.attempts == 1, "the job was tried again into a full disk"
    assert left == [], left
    assert after.status == "done", after.error


async def test_a_download_whose_size_is_announced_is_refused_before_filling_the_disk(
    tmp_path: Path, media_site: MediaSite
) -> None:
    """The server states the size (Content-Length): 20 MB, on a 24 MB disk that other files already fill to
    about half. Refused as soon as the download starts, with the size in the sentence."""
    async with on_a_small_disk(tmp_path) as services:
        (services.settings.data_dir / "other-files.bin").write_bytes(bytes(10_000_000))
        link = media_site.url(f"/filler.mp4?bytes={20_000_000}&n={uuid.uuid4().hex}")
        submission = await services.jobs.submit(_ask(link))
        final = await services.jobs.wait(submission.job.id, timeout=LEASE_S * 6)
        left = files_in(services.settings.tmp_dir)
    assert final.status == "failed" and final.error is not None, final
    assert final.error.code == "storage_error", final.error
    assert "out of disk space" in final.error.message and "20 MB" in final.error.message, final.error.message
    assert one_sentence(final.error.message), final.error.message
    assert final.attempts == 1 and left == [], (final.attempts, left)


async def test_a_stated_size_larger_than_the_whole_disk_is_refused_before_downloading(
    tmp_path: Path, media_site: MediaSite
) -> None:
    """The page states its format's size (about 30 MB) before a byte of media is fetched, and the disk holds 24 MB
    in all: the file is too large for this server, whatever is deleted."""
    async with on_a_small_disk(tmp_path) as services:
        path = "/big.mp4"
        before = media_site.hits(path)
        submission = await services.jobs.submit(_ask(media_site.url(f"/formats.html?n={uuid.uuid4().hex}")))
        final = await services.jobs.wait(submission.job.id, timeout=LEASE_S * 6)
    assert final.status == "failed" and final.error is not None, final
    assert final.error.code == "too_large", final.error
    stated = human_size(media_site.files.big_mp4.stat().st_size)
    assert stated in final.error.message and one_sentence(final.error.message), final.error.message
    assert media_site.hits(path) == before  # not one byte of it was asked for


async def test_a_job_handed_back_with_a_known_size_is_not_tried_again_into_a_full_disk(
    tmp_path: Path, media_site: MediaSite
) -> None:
    """A job queued again after an attempt learnt its size (a lost lease, a shutdown): the next claim sees
    the disk has no room for it and ends the job without asking the site for a byte."""
    path = "/filler.mp4"
    link = media_site.url(f"{path}?bytes={20_000_000}&n={uuid.uuid4().hex}")
    with small_disk(tmp_path) as settings:
        (settings.data_dir / "other-files.bin").write_bytes(bytes(10_000_000))
        async with running_services(settings, worker=False) as front:
            submission = await front.jobs.submit(_ask(link))
            async with front.sessions() as session, session.begin():
                await session.execute(
                    update(Job).where(Job.id == submission.job.id).values(total_bytes=20_000_000, attempts=1)
                )
        before = media_site.hits(path)
        async with running_services(settings) as services:  # its worker takes the queued job
            final = await services.jobs.wait(submission.job.id, timeout=LEASE_S * 6)
    assert final.status == "failed" and final.error is not None, final
    assert final.error.code == "storage_error" and "20 MB" in final.error.message, final.error
    assert media_site.hits(path) == before
