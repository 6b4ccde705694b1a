"""The web page at `/` in a real browser (headless Chromium) against the running app and the media site.

The screenshot taken mid-run is kept in tmp_path; to refresh the README's copy:
`MEDIABOT_UPDATE_SCREENSHOT=1 .venv/bin/pytest tests/browser -q` writes docs/screenshot-web.png.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.cdp import Browser, Page, launch
from tests.support.services import IN_CI, ROOT
from tests.web.conftest import Api, web_api, web_settings

pytestmark = pytest.mark.timeout(90)

SCREENSHOT = ROOT / "docs" / "screenshot-web.png"
PHONE = (400, 860)


@pytest.fixture
def chromium() -> str:
    path = os.environ.get("MEDIABOT_TEST_CHROMIUM") or shutil.which("chromium")
    if not path:
        message = "chromium is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(message + " (CI=true: the browser test must run)")
        pytest.skip(message)
    return path


@pytest.fixture
async def browser(chromium: str, tmp_path: Path) -> AsyncIterator[Browser]:
    async with launch(chromium, tmp_path / "chromium") as running:
        yield running


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Api]:
    async with web_api(web_settings(tmp_path / "app")) as running:
        yield running


def row(job_id: str) -> str:
    """The job's entry in "Recent downloads" (ids are hex, safe in a selector)."""
    return f"document.querySelector('#jobs li[data-job-id=\"{job_id}\"]')"


async def open_page(browser: Browser, app: Api, tmp_path: Path) -> Page:
    page = await browser.new_page(*PHONE, downloads=tmp_path / "downloads")
    await page.goto(app.base + "/")
    await page.wait_for("document.documentElement.dataset.ready === 'true'", what="the page script")
    return page


async def enter_key(page: Page, key: str) -> None:
    await page.type("#key-input", key)
    await page.click("#key-save")


def assert_clean(page: Page, app: Api) -> None:
    """Nothing from elsewhere, the key in no URL but the WebSockets' token, no script or CSP errors."""
    assert page.requests, "the page made no requests?"
    assert all(u.startswith(app.base + "/") or u.startswith("data:") for u in page.requests), page.requests
    assert not [u for u in page.requests if app.key in u], "the key leaked into a URL"
    for address in page.websockets:
        parts = urlsplit(address)
        assert app.key not in parts.path and parse_qs(parts.query).get("token") == [app.key], address
    assert page.errors == []


async def test_page_submits_follows_saves_lists_and_cancels(
    browser: Browser, app: Api, media_site: Any, tmp_path: Path
) -> None:
    page = await open_page(browser, app, tmp_path)
    source = media_site.files.video_mp4.read_bytes()

    # The key, entered once, is kept in this browser.
    await enter_key(page, app.key)
    await page.wait_for("!document.querySelector('#key-saved').hidden", what="the key to be accepted")
    assert await page.evaluate("localStorage.getItem('mediabot.apiKey')") == app.key
    assert await page.evaluate("document.querySelector('#key-input').value") == ""

    # Paste a link, choose video at 720p, submit; progress reaches 100% and the file is offered.
    await page.type("#url-input", media_site.url(f"/clip/{uuid.uuid4().hex}.mp4"))
    await page.select("#quality-select", "720")
    await page.click("#submit")
    await page.wait_for(
        "document.querySelector('#bar').value === 100 && !document.querySelector('#download').hidden",
        what="the download to finish",
    )
    assert (await page.text("#progress-text")).startswith("100%")
    assert await page.text("#status") == "Done: your file is ready."
    assert await page.evaluate("document.querySelector('#cancel').hidden")
    job_id = await page.evaluate("document.querySelector('#download').dataset.jobId")
    job = await app.job(job_id)
    assert (job["status"], job["kind"], job["quality"]) == ("done", "video", "720")
    assert page.websockets, "progress was not followed over the WebSocket"

    # Clicking the link saves the very bytes the media site served.
    began = browser.listen("Browser.downloadWillBegin")
    ended = browser.listen("Browser.downloadProgress", lambda p: p["state"] in ("completed", "canceled"))
    await page.click("#download")
    async with asyncio.timeout(15):
        download, progress = await began, await ended
    assert progress["state"] == "completed"
    assert (tmp_path / "downloads" / download["guid"]).read_bytes() == source

    # The job is among the recent ones, with its own link; still so after a reload, without the key again.
    await page.wait_for(f"{row(job_id)}?.dataset.status === 'done'", what="the job in recent downloads")
    await page.goto(app.base + "/")
    await page.wait_for(f"{row(job_id)}?.querySelector('a.download:not([hidden])')", what="recent jobs")
    assert await page.evaluate("document.querySelector('#key-form').hidden")

    # A slow download shows live progress (screenshot), then is cancelled from the page.
    await page.type("#url-input", media_site.url(f"/slow.mp4?rate=2000000&n={uuid.uuid4().hex}"))
    await page.click("#submit")
    await page.wait_for(
        "document.querySelector('#bar').value >= 10 && !document.querySelector('#cancel').hidden",
        timeout=20,
        what="visible progress",
    )
    slow_id = await page.evaluate("document.querySelector('#cancel').dataset.jobId")
    assert slow_id != job_id
    shot = tmp_path / "screenshot-web.png"
    await page.screenshot(shot)
    assert shot.read_bytes().startswith(b"\x89PNG")
    if os.environ.get("MEDIABOT_UPDATE_SCREENSHOT"):
        shutil.copyfile(shot, SCREENSHOT)

    await page.click("#cancel")
    await page.wait_for(
        f"document.querySelector('#status').textContent === 'Cancelled.' && {row(slow_id)}?.dataset.status === 'cancelled'",
        what="the cancel to show",
    )
    assert (await app.job(slow_id))["status"] == "cancelled"
    assert await page.evaluate("document.querySelector('#cancel').hidden")
    assert_clean(page, app)


async def test_page_shows_api_errors_in_plain_words(browser: Browser, app: Api, tmp_path: Path) -> None:
    page = await open_page(browser, app, tmp_path)

    # A wrong key is refused with the API's own sentence, and not kept.
    await enter_key(page, "mb_not-a-real-key")
    await page.wait_for("!document.querySelector('#error').hidden", what="the error")
    assert await page.text("#error") == "This API key is not valid (unknown or revoked)."
    assert await page.evaluate("localStorage.getItem('mediabot.apiKey')") is None
    assert not await page.evaluate("document.querySelector('#key-form').hidden")

    # A link the API refuses: its message, word for word.
    await page.evaluate("document.querySelector('#key-input').value = ''")
    await enter_key(page, app.key)
    await page.wait_for("document.querySelector('#error').hidden", what="the error to clear")
    bad = "file:///etc/passwd"
    status, body = await app.submit(bad)
    assert status == 422, body
    await page.type("#url-input", bad)
    await page.click("#submit")
    await page.wait_for("!document.querySelector('#error').hidden", what="the error")
    assert await page.text("#error") == body["error"]["message"]
    assert await page.evaluate("document.querySelector('#current').hidden")

    # Only the expected refusals (401, 422) appear as errors: nothing from scripts or the CSP.
    assert all("status of 401" in e or "status of 422" in e for e in page.errors), page.errors
    page.errors.clear()
    assert_clean(page, app)


async def test_page_follows_a_playlist_to_each_items_file_and_cancels_the_rest(
    browser: Browser, media_site: Any, tmp_path: Path
) -> None:
    source = media_site.files.video_mp4.read_bytes()
    async with web_api(web_settings(tmp_path / "app", max_playlist_items=3, worker_concurrency=2)) as app:
        page = await open_page(browser, app, tmp_path)
        await enter_key(page, app.key)
        await page.wait_for("!document.querySelector('#key-saved').hidden", what="the key to be accepted")

        # A channel link: the page shows how much of it is taken, then each item reaching its file.
        await page.type("#url-input", media_site.url("/feed.xml?n=143"))
        await page.click("#submit")
        items = "document.querySelectorAll('#current-items > li')"
        await page.wait_for(
            f"{items}.length === 3 && [...{items}].every((li) => li.dataset.status === 'done'"
            " && !li.querySelector('a.download').hidden)",
            timeout=30,
            what="the playlist's items to finish",
        )
        assert await page.text("#playlist-line") == "Playlist: 3 of 143 items"
        await page.wait_for(
            "document.querySelector('#status').textContent === 'Done: 3 files are ready.'", what="the end"
        )
        assert await page.text("#progress-text") == "3 of 3 done"
        assert await page.evaluate("document.querySelector('#download').hidden")
        links = await page.evaluate(f"[...{items}].map((li) => li.querySelector('a.download').href)")
        for href in links:
            async with app.http.get(href) as resp:
                assert resp.status == 200 and await resp.read() == source
        playlist_id = await page.evaluate("document.querySelector('#cancel').dataset.jobId")
        assert (await app.job(playlist_id))["status"] == "done"
        # Recent downloads: the playlist, its items inside it (not beside it).
        await page.wait_for(f"{row(playlist_id)}?.dataset.status === 'done'", what="the playlist in the list")
        assert await page.evaluate("document.querySelectorAll('#jobs > li').length") == 1
        assert await page.evaluate(f"{row(playlist_id)}.querySelectorAll('.items > li').length") == 3

        # A playlist of slow items: Cancel stops every item still going.
        await page.type("#url-input", media_site.url("/feed.xml?n=20&item=slow&rate=200000"))
        await page.click("#submit")
        await page.wait_for(
            f"{items}.length === 3 && [...{items}].some((li) => li.dataset.status === 'running')"
            " && !document.querySelector('#cancel').hidden",
            timeout=20,
            what="the slow items to start",
        )
        slow_id = await page.evaluate("document.querySelector('#cancel').dataset.jobId")
        assert slow_id != playlist_id
        await page.click("#cancel")
        await page.wait_for(
            f"document.querySelector('#status').textContent === 'Cancelled.'"
            f" && [...{items}].every((li) => li.dataset.status === 'cancelled')",
            what="the cancel to show",
        )
        assert [item["status"] for item in (await app.job(slow_id))["items"]] == ["cancelled"] * 3
        assert_clean(page, app)
