"""The web page at `/` in headless Chromium against the running app and the local media site: several
downloads at once with live progress, the format picker, cancel and retry (across a dropped WebSocket and a
restarted server), failures in words, the Done list's search/filter/paging/bulk actions, playlists, and the
phone/desktop/dark layouts. Every job is on the page once: in the Queue while it runs, then in Done.

Timings (page load, submit to first progress message) are printed, never asserted: run with `-s` to see them.
`MEDIABOT_UPDATE_SCREENSHOT=1 .venv/bin/pytest tests/browser -q` rewrites the screenshots in docs/.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from core.jobs.choices import SubmitRequest
from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    App,
    Tab,
    app_settings,
    assert_clean,
    open_tab,
    serve_app,
    size_words,
    unique,
)
from tests.support.services import ROOT, wait_until

pytestmark = pytest.mark.timeout(60)

DOCS = ROOT / "docs"
DONE_S = 20_000  # ms: a small local download, queued behind others on 2 workers, ends well within this


def queue(tab: Tab) -> Locator:
    return tab.page.locator("#queue > li.job")


def done(tab: Tab) -> Locator:
    return tab.page.locator("#done > li.job")


def row_of(tab: Tab, job_id: str) -> Locator:
    """A job's row, in whichever list it is now."""
    return tab.page.locator(
        f"#queue > li.job[data-job-id='{job_id}'], #done > li.job[data-job-id='{job_id}']"
    )


async def shown_once(tab: Tab, job_id: str) -> None:
    await expect(tab.page.locator(f"li.job[data-job-id='{job_id}']")).to_have_count(1)


async def submit(page: Page) -> str:
    """Clicks Download for one link; the new job's id, from the API's answer to the page."""
    async with page.expect_response(
        lambda r: urlsplit(r.url).path == "/api/v1/jobs" and r.request.method == "POST"
    ) as answer:
        await page.click("#submit")
    body = await (await answer.value).json()
    return str(body["id"])


async def fetch(app: App, href: str) -> tuple[int, bytes]:
    async with app.api.http.get(href) as resp:
        return resp.status, await resp.read()


async def new_key(app: App) -> str:
    return await app.api.new_key(unique("page"))


async def listed(app: App, key: str, query: str = "") -> list[str]:
    status, body, _ = await app.api.call("GET", f"/api/v1/jobs?limit=100&{query}", key=key)
    assert status == 200, body
    return [job["id"] for job in body["items"]]


async def test_two_links_at_once_each_followed_live_to_its_file(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    tab = await open_tab(browser, app, key)
    page = tab.page
    source = media_site.files.video_mp4.read_bytes()
    links = [media_site.url(f"/clip/{unique('two')}.mp4") for _ in range(2)]

    await page.fill("#url-input", "\n".join(links))
    clicked = time.perf_counter()
    await page.click("#submit")
    await expect(page.locator("#queue > li.job, #done > li.job")).to_have_count(2)
    ids = await page.locator("#queue > li.job, #done > li.job").evaluate_all(
        "(rows) => rows.map((li) => li.dataset.jobId)"
    )
    assert len(set(ids)) == 2
    for job_id in ids:
        # Each ends in Done, and is on the page once: not in the Queue too.
        await expect(done(tab).and_(row_of(tab, job_id))).to_have_attribute(
            "data-status", "done", timeout=DONE_S
        )
        await shown_once(tab, job_id)
    await expect(queue(tab)).to_have_count(0)
    await expect(page.locator("#queue-empty")).to_be_visible()
    assert await page.input_value("#url-input") == "", "links that started stay in the box"

    for job_id in ids:
        job = await app.api.job(job_id, key=key)
        assert job["status"] == "done" and job["url"] in links
        # The end arrived over the job's own WebSocket, not from a page reload.
        assert any(f["status"] == "done" for f in tab.job_frames(job_id)), f"no live end for {job_id}"
        row = row_of(tab, job_id)
        await expect(row.locator(".details")).to_contain_text(size_words(job["filesize"]))
        # Which link it was: the row names the site and the end of the link (both are titled alike).
        await expect(row.locator("a.source")).to_contain_text(urlsplit(job["url"]).path.rsplit("/", 1)[-1])
        assert await row.locator("a.source").get_attribute("href") == job["url"]
        save = row.locator("a.download")
        await expect(save).to_be_visible()
        status, body = await fetch(app, await save.get_attribute("href") or "")
        assert status == 200 and body == source
    first = [at for at, url, m in tab.frames if m.get("job", {}).get("id") in ids]
    print(f"\n[bench] submit -> first progress message: {(min(first) - clicked) * 1000:.0f} ms (two links)")
    assert_clean(tab, app, caplog.text)
    await tab.context.close()


async def test_format_picker_240p_with_english_subtitles_readable_on_a_phone(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    tab = await open_tab(browser, app, key, viewport=PHONE)
    page = tab.page
    link = media_site.url(f"/formats.html?v={unique('f')}")
    status, offered, _ = await app.api.call("GET", "/api/v1/formats", key=key, params={"url": link})
    assert status == 200, offered
    video = [f for f in offered["formats"] if f["kind"] == "video"]
    small = next(f for f in video if f["height"] == 240)

    await page.fill("#url-input", link)
    await page.click("#formats-button")
    await expect(page.locator("#formats-panel")).to_be_visible()
    await expect(page.locator("#formats-summary")).to_contain_text("Format Test")
    choices = page.locator("#format-choices label.choice")
    labels = [f["label"] + (" (estimated)" if f["filesize_estimated"] else "") for f in video]
    await expect(choices).to_have_text(["Best up to the quality chosen (automatic)", *labels])
    # On a 390 px phone each choice is shown whole: wrapped if it must, never cut or wider than the screen.
    for index in range(await choices.count()):
        fits = await choices.nth(index).evaluate(
            "(label) => { const text = label.querySelector('span'); const box = label.getBoundingClientRect();"
            " return text.scrollWidth <= text.clientWidth && box.right <= window.innerWidth; }"
        )
        assert fits, await choices.nth(index).text_content()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert [lang for lang in offered["subtitles"]] == ["de", "en"]
    await expect(page.locator("#subs-choices input")).to_have_count(2)
    await page.get_by_label(labels[video.index(small)], exact=True).check()
    await expect(page.locator("#quality-select")).to_be_disabled()
    await page.check("#subs-choices input[value='en']")
    job_id = await submit(page)

    row = row_of(tab, job_id)
    await expect(row).to_have_attribute("data-status", "done", timeout=DONE_S)
    job = await app.api.job(job_id, key=key)
    assert (job["format_id"], job["subtitle_langs"], job["height"]) == (small["format_id"], ["en"], 240)
    # The 240p source with an English subtitle track put in (the 360p one is 30 MB).
    assert media_site.files.video_mp4.stat().st_size <= job["filesize"] < 1_000_000
    await expect(row.locator(".details")).to_contain_text(
        f"Video 240p · 0:03 · {size_words(job['filesize'])}"
    )
    # The English subtitles as a file of their own; no German ones, as none were asked for.
    subs = row.locator("a.subtitle")
    await expect(subs).to_have_count(1)
    await expect(subs).to_have_text("Subtitles (en)")
    status, srt = await fetch(app, await subs.get_attribute("href") or "")
    assert status == 200 and "Hello there" in srt.decode()
    # The thumbnail is shown (the CSP lets the stored picture in).
    thumb = row.locator("img.thumb")
    await expect(thumb).to_be_visible()
    assert await thumb.evaluate("(img) => img.complete && img.naturalWidth > 0")
    assert_clean(tab, app, caplog.text)
    await tab.context.close()


async def test_sound_only_as_mp3_remembered_for_the_next_visit(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    tab = await open_tab(browser, app, key)
    page = tab.page
    await expect(page.locator("#audio-format-select")).to_be_hidden()
    await page.check("input[name='kind'][value='audio']")
    # Sound only: a file type to choose, no video quality.
    await expect(page.locator("#quality-select")).to_be_hidden()
    await expect(page.locator("#audio-format-select")).to_be_visible()
    await page.select_option("#audio-format-select", "mp3")
    await page.fill("#url-input", media_site.url(f"/song.html?{unique('mp3')}"))
    job_id = await submit(page)
    row = row_of(tab, job_id)
    await expect(row).to_have_attribute("data-status", "done", timeout=DONE_S)
    job = await app.api.job(job_id, key=key)
    assert (job["kind"], job["audio_format"], job["ext"]) == ("audio", "mp3", "mp3")
    await expect(row.locator(".title")).to_have_text("Song Title")
    await expect(row.locator(".details")).to_contain_text(f"Audio mp3 · 0:03 · {size_words(job['filesize'])}")
    await expect(row.locator(".details")).to_contain_text("by Some Artist")
    await expect(row.locator("img.thumb")).to_be_visible()  # the cover
    status, body = await fetch(app, await row.locator("a.download").get_attribute("href") or "")
    assert status == 200 and body[:3] == b"ID3" and len(body) == job["filesize"]
    assert await row.locator("a.download").get_attribute("download") == job["filename"]

    # The next visit in this browser offers MP3 again.
    await page.reload()
    await page.wait_for_function("() => document.documentElement.dataset.ready === 'true'")
    await page.check("input[name='kind'][value='audio']")
    assert await page.input_value("#audio-format-select") == "mp3"
    assert_clean(tab, app, caplog.text)
    await tab.context.close()


async def test_sound_is_labelled_audio_even_when_asked_as_video_and_in_a_playlist(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    tab = await open_tab(browser, app, key)
    page = tab.page
    # A sound file asked for as a video (the default) is still sound: said so by what came out.
    await page.fill("#url-input", media_site.url(f"/audio.m4a?{unique('a')}"))
    single = await submit(page)
    await expect(row_of(tab, single)).to_have_attribute("data-status", "done", timeout=DONE_S)
    job = await app.api.job(single, key=key)
    assert (job["kind"], job["ext"], job["height"]) == ("video", "m4a", None), job
    await expect(row_of(tab, single).locator(".details")).to_contain_text("Audio m4a")
    await expect(row_of(tab, single).locator(".details")).not_to_contain_text("Video")

    # A playlist's MP3 items are "Audio mp3", not "Video".
    await page.check("input[name='kind'][value='audio']")
    await page.select_option("#audio-format-select", "mp3")
    await page.fill("#url-input", media_site.url(f"/feed.xml?n=2&v={unique('pa')}"))
    playlist = await submit(page)
    items = row_of(tab, playlist).locator(".items > li.job")
    await expect(items).to_have_count(2, timeout=DONE_S)
    for index in range(2):
        await expect(items.nth(index)).to_have_attribute("data-status", "done", timeout=DONE_S)
        await expect(items.nth(index).locator(".details")).to_contain_text("Audio mp3")
        await expect(items.nth(index).locator(".details")).not_to_contain_text("Video")
    assert_clean(tab, app, caplog.text)
    await tab.context.close()


async def test_cancel_a_slow_download_across_a_dropped_socket_then_retry_it_in_place(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    tab = await open_tab(browser, app, key)
    page = tab.page
    await page.fill("#url-input", media_site.url(f"/slow.mp4?rate=3000000&n={unique('slow')}"))
    job_id = await submit(page)
    row = queue(tab).and_(row_of(tab, job_id))
    await expect(row).to_have_attribute("data-status", "running", timeout=DONE_S)
    bar = row.locator("progress")
    await page.wait_for_function("(bar) => bar.value >= 2", arg=await bar.element_handle())
    await expect(row.locator(".progress-words")).to_contain_text("%")

    # The server drops the socket: the page reads the job again, then follows it from that state.
    sockets_before = len(tab.sockets)
    seen = [f["seq"] for f in tab.job_frames(job_id)]
    async with page.expect_response(
        lambda r: urlsplit(r.url).path == f"/api/v1/jobs/{job_id}" and r.request.method == "GET"
    ) as answer:
        assert await app.drop_websockets() >= 1
    read = await (await answer.value).json()
    await wait_until(lambda: len(tab.sockets) > sockets_before or None, timeout=10, interval=0.05)
    resumed = tab.sockets[-1]
    after = int(parse_qs(urlsplit(resumed).query)["after"][0])
    # From the state read (the server's own record, which may be a little behind what the socket sent).
    assert seen and after == read["seq"], (after, read["seq"], seen)
    await wait_until(
        lambda: (
            any(f["seq"] > after for _, url, m in tab.frames if url == resumed for f in [m["job"]]) or None
        ),
        timeout=10,
        interval=0.05,
    )

    await row.locator("button.cancel").click()
    cancelled = done(tab).and_(row_of(tab, job_id))
    await expect(cancelled).to_have_attribute("data-status", "cancelled")
    assert (await app.api.job(job_id, key=key))["status"] == "cancelled"
    await expect(cancelled.locator("button.cancel")).to_be_hidden()

    # Retry: the same ask again, in the same row (now the new job's), not a second row beside the old one.
    original = await app.api.job(job_id, key=key)
    element = await cancelled.element_handle()
    await cancelled.locator("button.retry").click()
    await expect(page.locator(f"li.job[data-job-id='{job_id}']")).to_have_count(0)
    retry_id = await element.get_attribute("data-job-id") or ""
    assert retry_id and retry_id != job_id
    again = row_of(tab, retry_id)
    await expect(again).to_have_attribute("data-status", "running", timeout=DONE_S)
    assert await again.evaluate("(li, old) => li === old", element), "a new row, not the old one replaced"
    # Focus stays on the row, on what can be done with it now.
    assert await page.evaluate("document.activeElement.dataset.action") == "cancel"
    await expect(page.locator("#queue > li.job, #done > li.job")).to_have_count(1)
    retried = await app.api.job(retry_id, key=key)
    assert retried["url"] == original["url"] and await listed(app, key) == [retry_id]
    status, _, _ = await app.api.call("GET", f"/api/v1/jobs/{job_id}", key=key)
    assert status == 404, "the retried job left the history"
    await again.locator("button.cancel").click()
    await expect(again).to_have_attribute("data-status", "cancelled")
    assert_clean(tab, app, caplog.text)
    await tab.context.close()


async def test_failures_are_one_plain_sentence_and_a_delete_mentions_no_file(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    tab = await open_tab(browser, app, key)
    page = tab.page

    # A page without media: the job fails, and its row says why in the API's own sentence.
    await page.fill("#url-input", media_site.url(f"/nomedia.html?n={unique('n')}"))
    job_id = await submit(page)
    row = row_of(tab, job_id)
    await expect(row).to_have_attribute("data-status", "failed", timeout=DONE_S)
    job = await app.api.job(job_id, key=key)
    message = job["error"]["message"]
    shown = (await row.locator(".job-error").text_content() or "").strip()
    assert shown == message
    assert shown.endswith(".") and "Traceback" not in shown and "/tmp" not in shown and "Error:" not in shown
    await expect(row.locator("button.retry")).to_be_visible()
    await expect(row.locator(".badge")).to_have_text("Failed")

    # A link the API refuses at once: its message, word for word, and the link stays to be corrected.
    bad = "file:///etc/passwd"
    status, body = await app.api.submit(bad, key=key)
    assert status == 422, body
    await page.fill("#url-input", bad)
    await page.click("#submit")
    await expect(page.locator("#error")).to_have_text(body["error"]["message"])
    assert await page.input_value("#url-input") == bad
    await expect(page.locator("#queue > li.job, #done > li.job")).to_have_count(1)

    # Deleting it: no file is mentioned, as it has none.
    await expect(row.locator("button.delete")).to_have_attribute("aria-label", f"Delete {job['url']}")
    asked: list[str] = []

    async def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", answer)
    await row.locator("details.more > summary").click()
    await row.locator("button.delete").click()
    await expect(row).to_have_count(0)
    assert asked == [f"Delete “{job['url']}” from your history?"], asked
    assert await listed(app, key) == []

    # Only the expected refusal appears as a console error: nothing from scripts or the CSP.
    assert_clean(tab, app, caplog.text, expected=("status of 422",))
    await tab.context.close()


async def test_done_list_search_filter_more_than_ten_a_page_copy_and_delete(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    owner = await app.api.services.keys.verify(key)
    assert owner is not None
    tag = unique("h")
    asks: list[tuple[str, dict[str, Any]]] = [
        *[(media_site.url(f"/clip/alpha-{i}-{tag}.mp4"), {}) for i in range(1, 8)],
        *[(media_site.url(f"/clip/beta-{i}-{tag}.mp4"), {}) for i in range(1, 4)],
        (media_site.url(f"/song.html?{tag}"), {"kind": "audio"}),
        (media_site.url(f"/nomedia.html?{tag}"), {}),
    ]
    ids = []
    for url, fields in asks:
        status, body = await app.api.submit(url, key=key, **fields)
        if status == 429 and body["error"]["code"] == "too_many_jobs":
            # Twelve asks against a limit of ten running: on a loaded machine the first ones may not have
            # finished yet (a person would wait too). Wait for the earlier ones, then ask again.
            for job_id in ids:
                await app.api.wait_status(job_id, "done", "failed", key=key, timeout=40)
            status, body = await app.api.submit(url, key=key, **fields)
        assert status in (200, 202), body
        ids.append(body["id"])
    for job_id in ids:
        await app.api.wait_status(job_id, "done", "failed", key=key, timeout=40)
    # 45 more asks for one stored clip, each its own entry (answered from the cache): 57 in all.
    older = media_site.url(f"/clip/gamma-{tag}.mp4")
    for _ in range(45):
        ask = SubmitRequest(text=older, source="api", user_id=owner.id)
        await app.api.services.jobs.wait((await app.api.services.jobs.submit(ask)).job.id, timeout=40)
    newest_first = await listed(app, key, "status=done,failed,cancelled")
    assert len(newest_first) == 57

    tab = await open_tab(browser, app, key, viewport=DESKTOP)
    await tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app.base)
    page = tab.page
    # Newest first, fifty to a page, then the rest.
    await expect(done(tab)).to_have_count(50)
    shown = await done(tab).evaluate_all("(rows) => rows.map((li) => li.dataset.jobId)")
    assert shown == newest_first[:50]
    await page.click("#load-more")
    await expect(done(tab)).to_have_count(57)
    await expect(page.locator("#load-more")).to_be_hidden()
    await expect(page.locator("#history-status")).to_have_text("57 shown, that is all.")
    await expect(queue(tab)).to_have_count(0)

    # Each finished video shows its thumbnail, length and size.
    oldest = row_of(tab, ids[0])
    job = await app.api.job(ids[0], key=key)
    await expect(oldest.locator("img.thumb")).to_be_visible()
    await expect(oldest.locator(".details")).to_contain_text(size_words(job["filesize"]))

    # Search (title or link), then kind, then status.
    await page.fill("#search-input", "alpha-")
    await expect(done(tab)).to_have_count(7)
    assert all("alpha-" in t for t in await done(tab).locator(".title").all_text_contents())
    await page.fill("#search-input", "")
    await page.select_option("#kind-filter", "audio")
    await expect(done(tab)).to_have_count(1)
    await expect(done(tab).first).to_have_attribute("data-job-id", ids[10])
    await expect(done(tab).first.locator(".title")).to_have_text("Song Title")
    await page.select_option("#kind-filter", "")
    await page.select_option("#status-filter", "failed")
    await expect(done(tab)).to_have_count(1)
    await expect(done(tab).first).to_have_attribute("data-job-id", ids[11])
    await expect(done(tab).first.locator(".job-error")).to_be_visible()
    await page.select_option("#status-filter", "")

    # Copy link puts the file's link on the clipboard.
    await page.fill("#search-input", f"beta-2-{tag}")
    await expect(done(tab)).to_have_count(1)
    target = done(tab).first
    victim = ids[8]
    await expect(target).to_have_attribute("data-job-id", victim)
    await target.locator("details.more > summary").click()
    await target.locator("button.copy").click()
    await expect(target.locator("button.copy")).to_have_text("Copied")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == await target.locator("a.download").get_attribute("href")
    status, _ = await fetch(app, copied)
    assert status == 200

    # Delete (after a confirmation that names the file): gone from the page, from the API, with its file.
    asked: list[str] = []

    async def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", answer)
    await target.locator("button.delete").click()
    await expect(done(tab)).to_have_count(0)
    assert asked and asked[0].endswith("from your history, and its file?"), asked
    await expect(page.locator("#history-status")).to_have_text("Nothing matches.")
    status, _, _ = await app.api.call("GET", f"/api/v1/jobs/{victim}", key=key)
    assert status == 404
    status, _ = await fetch(app, copied)
    assert status == 404
    assert (await app.api.job(ids[7], key=key))["status"] == "done"
    assert_clean(tab, app, caplog.text, followed=False)  # all had ended: nothing to follow
    await tab.context.close()


async def test_bulk_retry_failed_delete_selected_and_clear_finished(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    tag = unique("b")
    failing = [media_site.url(f"/missing.mp4?{tag}-{i}") for i in range(2)]
    fine = [media_site.url(f"/clip/bulk-{i}-{tag}.mp4") for i in range(3)]
    ids = {}
    for url in [*failing, *fine]:
        status, body = await app.api.submit(url, key=key)
        assert status in (200, 202), body
        ids[url] = body["id"]
    for job_id in ids.values():
        await app.api.wait_status(job_id, "done", "failed", key=key, timeout=40)

    tab = await open_tab(browser, app, key)
    page = tab.page
    await expect(done(tab)).to_have_count(5)

    # Retry failed: each failed row becomes its new job (in the Queue, then Done): never two rows for one ask.
    await page.click("#retry-failed")
    for url in failing:
        await expect(row_of(tab, ids[url])).to_have_count(0)
    await expect(page.locator("#queue > li.job, #done > li.job")).to_have_count(5)
    await expect(done(tab).locator(".job-error:not([hidden])")).to_have_count(2, timeout=DONE_S)
    again = await listed(app, key)
    assert len(again) == 5 and not {ids[url] for url in failing} & set(again)
    for job_id in again:
        await shown_once(tab, job_id)

    # Delete selected: two ticked, both gone (after one confirmation), the rest untouched.
    chosen = [ids[fine[0]], ids[fine[1]]]
    await expect(page.locator("#delete-selected")).to_be_disabled()
    for job_id in chosen:
        await row_of(tab, job_id).locator("input.pick").check()
    await expect(page.locator("#delete-selected")).to_have_text("Delete selected (2)")
    asked: list[str] = []

    async def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.on("dialog", answer)
    await page.click("#delete-selected")
    await expect(done(tab)).to_have_count(3)
    assert asked == ["Delete 2 downloads from your history, and their files?"], asked
    assert not set(chosen) & set(await listed(app, key))

    # Clear finished: everything finished goes, failed ones included (no file to mention for those).
    await page.click("#clear-finished")
    await expect(done(tab)).to_have_count(0)
    assert asked[1] == "Clear all 3 finished downloads from your history, and 1 file?", asked
    assert await listed(app, key) == []
    await expect(page.locator("#history-status")).to_have_text("Nothing yet.")
    await expect(page.locator("#bulk")).to_be_hidden()
    assert_clean(tab, app, caplog.text, followed=False)
    await tab.context.close()


async def test_playlist_shown_as_a_group_with_each_items_file(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    tab = await open_tab(browser, app, key)
    page = tab.page
    source = media_site.files.video_mp4.read_bytes()
    await page.fill("#url-input", media_site.url(f"/feed.xml?n=3&v={unique('p')}"))
    playlist_id = await submit(page)
    row = row_of(tab, playlist_id)
    items = row.locator(".items > li.job")
    await expect(items).to_have_count(3, timeout=DONE_S)
    for index in range(3):
        await expect(items.nth(index)).to_have_attribute("data-status", "done", timeout=DONE_S)
    await expect(row).to_have_attribute("data-status", "done")
    await expect(row.locator(":scope > .body > .meta > .details")).to_contain_text("Playlist: 3 items")
    await expect(row.locator(":scope > .body > .progress-line > .progress-words")).to_have_text("3 of 3 done")
    await expect(row.locator(":scope > .actions a.download")).to_be_hidden()
    for href in await items.locator("a.download").evaluate_all("(links) => links.map((a) => a.href)"):
        status, body = await fetch(app, href)
        assert status == 200 and body == source
    # One entry, its items inside it (not beside it).
    await expect(page.locator("#queue > li.job, #done > li.job")).to_have_count(1)
    job = await app.api.job(playlist_id, key=key)
    assert [item["status"] for item in job["items"]] == ["done"] * 3
    assert_clean(tab, app, caplog.text)
    await tab.context.close()


async def test_a_running_playlist_shows_each_items_progress_and_cancels_as_one(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    tab = await open_tab(browser, app, key)
    page = tab.page
    # Two slow items (a rate of their own, so no other test's items are shared), both running on 2 workers.
    rate = 1_500_000 + uuid.uuid4().int % 100_000
    await page.fill("#url-input", media_site.url(f"/feed.xml?n=2&item=slow&rate={rate}"))
    playlist_id = await submit(page)
    row = queue(tab).and_(row_of(tab, playlist_id))
    items = row.locator(".items > li.job")
    await expect(items).to_have_count(2, timeout=DONE_S)
    for index in range(2):
        await page.wait_for_function(
            "(li) => li.dataset.status === 'running' && li.querySelector('progress').value >= 1",
            arg=await items.nth(index).element_handle(),
            timeout=DONE_S,
        )
        await expect(items.nth(index).locator(".progress-words")).to_contain_text(
            f" of {size_words(media_site.files.big_mp4.stat().st_size)}"
        )
        # An item is cancelled with its playlist, not on its own.
        await expect(items.nth(index).locator("button.cancel")).to_be_hidden()
    await expect(row).to_have_attribute("data-status", "running")
    await expect(row.locator(":scope > .body > .progress-line > .progress-words")).to_contain_text(
        "0 of 2 done"
    )

    await row.locator(":scope > .actions button.cancel").click()
    ended = row_of(tab, playlist_id)
    await expect(ended).to_have_attribute("data-status", "cancelled")
    for index in range(2):
        await expect(ended.locator(".items > li.job").nth(index)).to_have_attribute(
            "data-status", "cancelled"
        )
    job = await app.api.job(playlist_id, key=key)
    assert [item["status"] for item in job["items"]] == ["cancelled"] * 2
    assert_clean(tab, app, caplog.text)
    await tab.context.close()


@pytest.mark.timeout(150)
async def test_a_restarted_server_mid_download_the_page_recovers_without_a_reload(
    browser: Browser, media_site: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The app stops mid-download (the in-process worker hands the job back) and starts again on the same
    port and data: the notice comes and goes, and the card tells the truth throughout."""
    caplog.set_level(logging.INFO)
    settings = app_settings(tmp_path / "restart", shutdown_grace_s=0.5)
    async with contextlib.AsyncExitStack() as first_run:
        app = await first_run.enter_async_context(serve_app(settings))
        key = app.api.key
        tab = await open_tab(browser, app, key)
        page = tab.page
        slow = media_site.gated_url()  # held until the app is back
        await page.fill("#url-input", slow)
        job_id = await submit(page)
        row = row_of(tab, job_id)
        await page.wait_for_function(
            "(li) => li.dataset.status === 'running' && li.querySelector('progress').value >= 2",
            arg=await row.element_handle(),
            timeout=DONE_S,
        )
        await expect(row.locator(".progress-words")).to_contain_text("left")
    # Stopped: the page says it lost mediabot, and the card no longer claims a speed or a time left.
    await expect(page.locator("#connection")).to_be_visible(timeout=10_000)
    await expect(row.locator(".progress-words")).to_contain_text("Connection lost at")
    await expect(row.locator(".progress-words")).not_to_contain_text("left")
    assert "stale" in (await row.get_attribute("class") or "")

    sockets_before = len(tab.sockets)
    reads: list[Any] = []
    page.on(
        "response",
        lambda r: (
            reads.append(r) if urlsplit(r.url).path == f"/api/v1/jobs/{job_id}" and r.status == 200 else None
        ),
    )
    async with serve_app(settings, key=key) as again:
        # Back: the notice goes by itself, the job is read again and followed from what was read.
        await expect(page.locator("#connection")).to_be_hidden(timeout=20_000)
        await wait_until(lambda: reads or None, timeout=10, interval=0.05)
        read = await reads[0].json()
        assert read["status"] in ("queued", "running", "done"), read
        await wait_until(lambda: len(tab.sockets) > sockets_before or None, timeout=10, interval=0.05)
        after = int(parse_qs(urlsplit(tab.sockets[sockets_before]).query)["after"][0])
        assert after == read["seq"], (after, read["seq"])
        assert "stale" not in (await row.get_attribute("class") or "")
        # The card shows the job's real state as it moves on, to the end, without a reload.
        media_site.open_gate(slow)
        await expect(row).to_have_attribute("data-status", "done", timeout=60_000)
        assert (await again.api.job(job_id))["status"] == "done"
        await expect(page.locator("#connection")).to_be_hidden()
        await expect(page.locator("#error")).to_be_hidden()
        # The only console errors are the refused connections while the server was down.
        assert_clean(tab, again, caplog.text, expected=("net::ERR_CONNECTION_REFUSED",))
        await tab.context.close()


async def _no_sideways_scroll(tab: Tab) -> None:
    width = await tab.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"


async def _shoot(tab: Tab, name: str) -> None:
    shot = await tab.page.screenshot(full_page=True)
    assert shot.startswith(b"\x89PNG")
    if os.environ.get("MEDIABOT_UPDATE_SCREENSHOT"):
        (DOCS / name).write_bytes(shot)


async def _fields_a_thumb_can_use(tab: Tab) -> None:
    """Every field one types into is as tall as a finger and its text at least 16 px (a phone zooms the page
    into a smaller one), the From/To and Subscribe fields included."""
    small = await tab.page.evaluate(
        """[...document.querySelectorAll('input:not([type=radio]):not([type=checkbox]), textarea, select')]
            .filter((el) => el.offsetParent !== null)
            .map((el) => [el.id || el.name, el.getBoundingClientRect().height, parseFloat(getComputedStyle(el).fontSize)])
            .filter(([, height, font]) => height < 40 || font < 16)"""
    )
    assert not small, f"fields too small for a phone (id, height px, font px): {small}"


async def _compact_rows(tab: Tab) -> None:
    """Every row's buttons on one line (a word that wraps makes a button twice as tall)."""
    heights = await tab.page.locator(".actions > :not([hidden])").evaluate_all(
        "(nodes) => nodes.map((n) => (n.matches('details') ? n.querySelector('summary') : n)"
        ".getBoundingClientRect().height)"
    )
    assert heights and max(heights) <= 40, heights


async def test_keyboard_only_phone_and_desktop_light_and_dark(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    # A first visit on a phone, by keyboard only: the key, then a link, then Download.
    tab = await open_tab(browser, app, key, viewport=PHONE, store_key=False)
    page = tab.page
    timing = await page.evaluate(
        "(() => { const nav = performance.getEntriesByType('navigation')[0];"
        " return [nav.domInteractive, performance.getEntriesByName('mediabot:ready')[0].startTime]; })()"
    )
    print(f"\n[bench] page load: DOM interactive {timing[0]:.0f} ms, script ready {timing[1]:.0f} ms")
    assert await page.get_attribute("#announcer", "aria-live") == "polite"
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.id") == "key-input"
    await page.keyboard.type(key)
    await page.keyboard.press("Enter")
    await expect(page.locator("#key-saved")).to_be_visible()
    assert await page.evaluate("document.activeElement.id") == "url-input"
    await page.keyboard.type(media_site.url(f"/formats.html?k={unique('k')}"))
    order = []
    for _ in range(12):
        await page.keyboard.press("Tab")
        order.append(await page.evaluate("document.activeElement.id || document.activeElement.name"))
        if order[-1] == "submit":
            break
    # The order the form reads in: what to get, how good, optionally a format, optionally a part (from, to),
    # sponsors and chapters, then go.
    assert order == [
        "kind", "quality-select", "formats-button", "start-input", "end-input", "sponsor-select", "chapters-box",
        "submit",
    ], order  # fmt: skip
    outline = await page.evaluate("(() => { const s = getComputedStyle(document.activeElement);"
                                  " return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()")  # fmt: skip
    assert outline[0] != "none" and outline[1] >= 2, f"no visible focus: {outline}"
    clicked = time.perf_counter()
    async with page.expect_response(lambda r: urlsplit(r.url).path == "/api/v1/jobs") as answer:
        await page.keyboard.press("Enter")
    first_id = (await (await answer.value).json())["id"]
    await expect(row_of(tab, first_id)).to_have_attribute("data-status", "done", timeout=DONE_S)
    first = min(at for at, _, m in tab.frames if m.get("job"))
    print(f"[bench] submit -> first progress message: {(first - clicked) * 1000:.0f} ms (keyboard)")
    await expect(page.locator("#announcer")).to_contain_text("done")

    # Something of each kind on screen: done ones, a failure, a playlist and a download in progress.
    for link in [
        f"/clip/{unique('sunset')}.mp4",
        f"/song.html?{unique('k')}",
        f"/nomedia.html?k={unique('k')}",
    ]:
        await page.fill("#url-input", media_site.url(link))
        ended = re.compile("done|failed")
        await expect(row_of(tab, await submit(page))).to_have_attribute("data-status", ended, timeout=DONE_S)
    await page.fill("#url-input", media_site.url(f"/feed.xml?n=2&v={unique('k')}"))
    playlist = await submit(page)
    await expect(row_of(tab, playlist)).to_have_attribute("data-status", "done", timeout=DONE_S)
    await page.fill("#url-input", media_site.url(f"/slow.mp4?rate=600000&k={unique('k')}"))
    slow = row_of(tab, await submit(page))
    await page.wait_for_function(
        "(row) => row.dataset.status === 'running' && row.querySelector('progress').value >= 3",
        arg=await slow.element_handle(),
        timeout=DONE_S,
    )
    await expect(page.locator("#done > li.job .job-error:not([hidden])")).to_have_count(1, timeout=DONE_S)
    await expect(row_of(tab, first_id).locator("img.thumb")).to_be_visible()
    await expect(queue(tab)).to_have_count(1)
    await expect(done(tab)).to_have_count(5)
    await _no_sideways_scroll(tab)
    await _compact_rows(tab)
    await _fields_a_thumb_can_use(tab)
    height = await page.evaluate("document.documentElement.scrollHeight")
    print(f"[bench] phone page height with 6 jobs (one a playlist of 2): {height} px")
    await _shoot(tab, "web-phone.png")
    assert_clean(tab, app, caplog.text)

    # The same lists in other windows: dark on the phone, light and dark on a desktop.
    for viewport, scheme, name in [
        (PHONE, "dark", "web-phone-dark.png"),
        (DESKTOP, "light", "web-desktop.png"),
        (DESKTOP, "dark", "web-desktop-dark.png"),
    ]:
        other = await open_tab(browser, app, key, viewport=viewport, color_scheme=scheme)
        await expect(done(other)).to_have_count(5)
        await expect(queue(other)).to_have_count(1)
        await expect(row_of(other, first_id).locator("img.thumb")).to_be_visible()
        background = await other.page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == ("rgb(18, 21, 25)" if scheme == "dark" else "rgb(244, 246, 248)"), background
        await _no_sideways_scroll(other)
        await _compact_rows(other)
        if viewport is DESKTOP:
            # Two columns: Done beside the form and the queue, not under them.
            boxes = await other.page.evaluate(
                "['new-section', 'done-section'].map((id) => document.getElementById(id).getBoundingClientRect().x)"
            )
            assert boxes[1] > boxes[0] + 300, boxes
        await _shoot(other, name)
        await other.context.close()

    await slow.locator("button.cancel").click()
    await expect(slow).to_have_attribute("data-status", "cancelled")
    await tab.context.close()


async def test_a_part_of_a_video_from_the_from_and_to_fields(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    key = await new_key(app)
    tab = await open_tab(browser, app, key)
    page = tab.page
    await page.fill("#url-input", media_site.url(f"/counter.mp4?{unique('part')}"))
    await page.fill("#start-input", "0:05")
    await page.fill("#end-input", "9")
    job_id = await submit(page)
    row = row_of(tab, job_id)
    await expect(row).to_have_attribute("data-status", "done", timeout=DONE_S)
    job = await app.api.job(job_id, key=key)
    assert job["variant"] == "clip:5.000-9.000" and job["duration"] == pytest.approx(4.0)
    await expect(row.locator(".details")).to_contain_text("clip 0:05-0:09 · 1 chapter")
    assert await page.input_value("#start-input") == "" and await page.input_value("#end-input") == ""

    # An end before the start: the API's sentence, and the fields stay to be corrected.
    await page.fill("#url-input", media_site.url(f"/counter.mp4?{unique('part')}"))
    await page.fill("#start-input", "0:09")
    await page.fill("#end-input", "0:05")
    await page.click("#submit")
    await expect(page.locator("#error")).to_contain_text(
        "The clip must end after it starts: 0:05 is not after 0:09."
    )
    assert await page.input_value("#start-input") == "0:09"
    assert_clean(tab, app, caplog.text, expected=("status of 422",))
    await tab.context.close()


async def test_the_sponsor_choice_is_remembered_and_applies_to_whole_media_only(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    key = await new_key(app)
    tab = await open_tab(browser, app, key)
    page = tab.page
    await page.select_option("#sponsor-select", "remove")
    await page.fill("#url-input", media_site.url(f"/counter.mp4?{unique('sb')}"))
    job_id = await submit(page)
    job = await app.api.job(job_id, key=key)
    assert (job["variant"] or "").startswith("sb=remove"), job

    # The next visit in this browser remembers it; a part of a video is a cut already: no sponsor cut asked.
    await page.reload()
    await page.wait_for_function("() => document.documentElement.dataset.ready === 'true'")
    assert await page.input_value("#sponsor-select") == "remove"
    await page.fill("#url-input", media_site.url(f"/counter.mp4?{unique('sb')}"))
    await page.fill("#start-input", "0:05")
    await page.fill("#end-input", "9")
    clip_id = await submit(page)
    clip = await app.api.job(clip_id, key=key)
    assert clip["variant"] == "clip:5.000-9.000", clip
    await expect(row_of(tab, clip_id)).to_have_attribute("data-status", "done", timeout=DONE_S)
    assert_clean(tab, app, caplog.text)
    await tab.context.close()
