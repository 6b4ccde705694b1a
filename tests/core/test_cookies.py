"""Per-site cookies: passed to their own site only, never logged, refused when others can read them."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from yt_dlp.utils import DownloadError

from core.jobs.choices import SubmitRequest
from core.media.control import Control
from core.media.errors import translate_error
from tests.support.services import make_settings, running_services

SECRET = "ok"


def cookies_dir(tmp_path: Path, domain: str, mode: int = 0o600) -> Path:
    folder = tmp_path / "cookies"
    folder.mkdir(exist_ok=True)
    path = folder / f"{domain}.txt"
    path.write_text(f"# Netscape HTTP Cookie File\n{domain}\tFALSE\t/\tFALSE\t0\tsession\t{SECRET}\n")
    path.chmod(mode)
    return folder


def ask(url: str) -> SubmitRequest:
    return SubmitRequest(text=url, source="cli", user_id="a")


def cookies_seen(media_site, path: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.cookie or "" for r in media_site.requests if r.path == path]


async def test_cookies_go_to_their_own_site_only(
    tmp_path: Path, media_site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = make_settings(tmp_path, cookies_dir=cookies_dir(tmp_path, "127.0.0.1"))
    async with running_services(settings) as services:
        n = uuid.uuid4().hex
        own = await services.jobs.submit(ask(media_site.url(f"/cookie.mp4?n={n}")))
        assert (await services.jobs.wait(own.job.id, timeout=30)).status == "done"
        assert any("session=ok" in c for c in cookies_seen(media_site, "/cookie.mp4"))

        # The same server under another host name is another site: no cookie file matches it.
        before = len(cookies_seen(media_site, "/cookie.mp4"))
        other = await services.jobs.submit(ask(f"http://localhost:{media_site.port}/cookie.mp4?n={n}"))
        final = await services.jobs.wait(other.job.id, timeout=30)
        assert final.status == "failed" and final.error and "403" in final.error.message
        assert all("session=ok" not in c for c in cookies_seen(media_site, "/cookie.mp4")[before:])
    # Cookie contents never reach the log, at any level.
    assert not any("session\tok" in r.getMessage() or "\tsession\t" in r.getMessage() for r in caplog.records)


async def test_world_readable_cookie_files_are_refused(
    tmp_path: Path, media_site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    settings = make_settings(tmp_path, cookies_dir=cookies_dir(tmp_path, "127.0.0.1", mode=0o644))
    async with running_services(settings) as services:
        sub = await services.jobs.submit(ask(media_site.url(f"/cookie.mp4?n={uuid.uuid4().hex}")))
        final = await services.jobs.wait(sub.job.id, timeout=30)
    assert final.status == "failed"
    assert any(
        "readable by every user" in r.getMessage() and "chmod 600" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize(
    "message",
    [
        "ERROR: [youtube] dQw4w9WgXcQ: Sign in to confirm you’re not a bot. Use --cookies-from-browser or --cookies "
        "for the authentication.",
        "ERROR: [instagram] Cx1: Requested content is not available, rate-limit reached or login required. "
        "Use --cookies",
        "ERROR: [vimeo] 123: This video is private",
    ],
)
def test_login_walls_have_their_own_code(message: str) -> None:
    error = translate_error(DownloadError(message), Control())
    assert error.code == "login_required"
    assert "MEDIABOT_COOKIES_DIR" in error.message


def test_ordinary_failures_are_not_login_walls() -> None:
    assert (
        translate_error(DownloadError("ERROR: HTTP Error 500: Internal Server Error"), Control()).code
        == "download_failed"
    )
