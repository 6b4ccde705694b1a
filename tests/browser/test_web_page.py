"""The web page at `/` in headless Chromium against the running app and the local media site: several
downloads at once with live progress, the format picker, cancel and retry (across a dropped WebSocket),
failures in words, history search/filter/paging/delete, playlists, and the phone/desktop/dark layouts.

Timings (page load, submit to first progress message) are printed, never asserted: run with `-s` to see them.
`MEDIABOT_UPDATE_SCREENSHOT=1 .venv/bin/pytest tests/browser -q` rewrites docs/web-{phone,desktop}[-dark].png.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.async_api import Browser, Locator, expect

from tests.browser.conftest import DESKTOP, PHONE, App, Tab, assert_clean, open_tab, size_words, unique
from tests.support.services import ROOT, wait_until

pytestmark = pytest.mark.timeout(60)

DOCS = ROOT / "docs"
DONE_S = 20_000  # ms: a small local download, queued behind others on 2 workers, ends well within this


def downloads(tab: Tab) -> Locator:
    return tab.page.locator("#downloads > li.job")


def history(tab: Tab) -> Locator:
    return tab.page.locator("#history > li.job")


def row_of(tab: Tab, where: str, job_id: str) -> Locator:
    return tab.page.locator(f"#{where} > li.job[data-job-id='{job_id}']")


async def newest(tab: Tab) -> Locator:
    """The card on top of Downloads now, pinned by its id (`.first` follows whichever card is on top later)."""
    return row_of(tab, "downloads", await downloads(tab).first.get_attribute("data-job-id") or "")


async def fetch(app: App, href: str) -> tuple[int, bytes]:
    async with app.api.http.get(href) as resp:
        return resp.status, await resp.read()


async def new_key(app: App) -> str:
    return await app.api.new_key(unique("page"))


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
    await expect(downloads(tab)).to_have_count(2)
    ids = await downloads(tab).evaluate_all("(rows) => rows.map((li) => li.dataset.jobId)")
    assert len(set(ids)) == 2
    for job_id in ids:
        await expect(row_of(tab, "downloads", job_id)).to_have_attribute(
            "data-status", "done", timeout=DONE_S
        )
    assert await page.input_value("#url-input") == "", "links that started stay in the box"

    for job_id in ids:
        job = await app.api.job(job_id, key=key)
        assert job["status"] == "done" and job["url"] in links
        # The end arrived over the job's own WebSocket, not from a page reload.
        assert any(f["status"] == "done" for f in tab.job_frames(job_id)), f"no live end for {job_id}"
        row = row_of(tab, "downloads", job_id)
        await expect(row.locator(".details")).to_contain_text(size_words(job["filesize"]))
        save = row.locator("a.download")
        await expect(save).to_be_visible()
        status, body = await fetch(app, await save.get_attribute("href") or "")
        assert status == 200 and body == source
        # It is in the history too, with the same state.
        await expect(row_of(tab, "history", job_id)).to_have_attribute("data-status", "done")
    first = [at for at, url, m in tab.frames if m.get("job", {}).get("id") in ids]
    print(f"\n[bench] submit -> first progress message: {(min(first) - clicked) * 1000:.0f} ms (two links)")
    assert_clean(tab, app, caplog.text)
    await tab.context.close()


async def test_format_picker_240p_with_english_subtitles(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    tab = await open_tab(browser, app, key)
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
    labels = await page.locator("#format-select option").all_text_contents()
    assert labels[1:] == [f["label"] + (" (estimated)" if f["filesize_estimated"] else "") for f in video]
    assert [lang for lang in offered["subtitles"]] == ["de", "en"]
    await expect(page.locator("#subs-choices input")).to_have_count(2)
    await page.select_option("#format-select", small["format_id"])
    await expect(page.locator("#quality-select")).to_be_disabled()
    await page.check("#subs-choices input[value='en']")
    await page.click("#submit")

    row = await newest(tab)
    await expect(row).to_have_attribute("data-status", "done", timeout=DONE_S)
    job_id = await row.get_attribute("data-job-id") or ""
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
    await page.click("#submit")
    row = await newest(tab)
    await expect(row).to_have_attribute("data-status", "done", timeout=DONE_S)
    job = await app.api.job(await row.get_attribute("data-job-id") or "", key=key)
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


async def test_cancel_a_slow_download_across_a_dropped_socket_then_retry_it(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    tab = await open_tab(browser, app, key)
    page = tab.page
    await page.fill("#url-input", media_site.url(f"/slow.mp4?rate=3000000&n={unique('slow')}"))
    await page.click("#submit")
    row = await newest(tab)
    await expect(row).to_have_attribute("data-status", "running", timeout=DONE_S)
    job_id = await row.get_attribute("data-job-id") or ""
    bar = row.locator("progress")
    await page.wait_for_function("(bar) => bar.value >= 2", arg=await bar.element_handle())
    await expect(row.locator(".progress-words")).to_contain_text("%")

    # The server drops the socket: the page follows the job again from the last state it saw.
    sockets_before = len(tab.sockets)
    seen = [f["seq"] for f in tab.job_frames(job_id)]
    assert await app.drop_websockets() >= 1
    await wait_until(lambda: len(tab.sockets) > sockets_before or None, timeout=10, interval=0.05)
    resumed = tab.sockets[-1]
    after = int(parse_qs(urlsplit(resumed).query)["after"][0])
    # No message can arrive between the drop and the reconnect: the last one seen is the resume point.
    assert seen and after == max(seen), (after, seen)
    await wait_until(
        lambda: (
            any(f["seq"] > after for _, url, m in tab.frames if url == resumed for f in [m["job"]]) or None
        ),
        timeout=10,
        interval=0.05,
    )

    await row.locator("button.cancel").click()
    await expect(row).to_have_attribute("data-status", "cancelled")
    assert (await app.api.job(job_id, key=key))["status"] == "cancelled"
    await expect(row.locator("button.cancel")).to_be_hidden()

    # Retry: the same ask again, as a new download at the top, followed live like the first.
    await row.locator("button.retry").click()
    await expect(downloads(tab)).to_have_count(2)
    again = await newest(tab)
    retry_id = await again.get_attribute("data-job-id") or ""
    assert retry_id != job_id
    await expect(again).to_have_attribute("data-status", "running", timeout=DONE_S)
    retried = await app.api.job(retry_id, key=key)
    assert retried["url"] == (await app.api.job(job_id, key=key))["url"]
    await again.locator("button.cancel").click()
    await expect(again).to_have_attribute("data-status", "cancelled")
    assert_clean(tab, app, caplog.text)
    await tab.context.close()


async def test_failures_are_one_plain_sentence(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
    tab = await open_tab(browser, app, key)
    page = tab.page

    # A page without media: the job fails, and its row says why in the API's own sentence.
    await page.fill("#url-input", media_site.url(f"/nomedia.html?n={unique('n')}"))
    await page.click("#submit")
    row = await newest(tab)
    await expect(row).to_have_attribute("data-status", "failed", timeout=DONE_S)
    job = await app.api.job(await row.get_attribute("data-job-id") or "", key=key)
    message = job["error"]["message"]
    shown = (await row.locator(".job-error").text_content() or "").strip()
    assert shown == message
    assert shown.endswith(".") and "Traceback" not in shown and "/tmp" not in shown and "Error:" not in shown
    await expect(row.locator("button.retry")).to_be_visible()

    # A link the API refuses at once: its message, word for word, and the link stays to be corrected.
    bad = "file:///etc/passwd"
    status, body = await app.api.submit(bad, key=key)
    assert status == 422, body
    await page.fill("#url-input", bad)
    await page.click("#submit")
    await expect(page.locator("#error")).to_have_text(body["error"]["message"])
    assert await page.input_value("#url-input") == bad
    await expect(downloads(tab)).to_have_count(1)

    # Only the expected refusal appears as a console error: nothing from scripts or the CSP.
    tab.console = [line for line in tab.console if "status of 422" not in line]
    assert_clean(tab, app, caplog.text)
    await tab.context.close()


async def test_history_search_filter_load_more_copy_and_delete(
    browser: Browser, app: App, media_site: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    key = await new_key(app)
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
        assert status in (200, 202), body
        ids.append(body["id"])
    for job_id in ids:
        await app.api.wait_status(job_id, "done", "failed", key=key, timeout=40)

    tab = await open_tab(browser, app, key, viewport=DESKTOP)
    await tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app.base)
    page = tab.page
    # Newest first, ten to a page, then the rest.
    await expect(history(tab)).to_have_count(10)
    shown = await history(tab).evaluate_all("(rows) => rows.map((li) => li.dataset.jobId)")
    assert shown == ids[::-1][:10]
    await page.click("#load-more")
    await expect(history(tab)).to_have_count(12)
    await expect(page.locator("#load-more")).to_be_hidden()
    await expect(page.locator("#history-status")).to_have_text("12 shown, that is all.")

    # Each finished video shows its thumbnail, length and size.
    done = row_of(tab, "history", ids[0])
    job = await app.api.job(ids[0], key=key)
    await expect(done.locator("img.thumb")).to_be_visible()
    await expect(done.locator(".details")).to_contain_text(size_words(job["filesize"]))

    # Search (title or link), then kind, then status.
    await page.fill("#search-input", "alpha-")
    await expect(history(tab)).to_have_count(7)
    assert all("alpha-" in t for t in await history(tab).locator(".title").all_text_contents())
    await page.fill("#search-input", "")
    await page.select_option("#kind-filter", "audio")
    await expect(history(tab)).to_have_count(1)
    await expect(history(tab).first).to_have_attribute("data-job-id", ids[10])
    await expect(history(tab).first.locator(".title")).to_have_text("Song Title")
    await page.select_option("#kind-filter", "")
    await page.select_option("#status-filter", "failed")
    await expect(history(tab)).to_have_count(1)
    await expect(history(tab).first).to_have_attribute("data-job-id", ids[11])
    await expect(history(tab).first.locator(".job-error")).to_be_visible()
    await page.select_option("#status-filter", "")

    # Copy link puts the file's link on the clipboard.
    await page.fill("#search-input", f"beta-2-{tag}")
    await expect(history(tab)).to_have_count(1)
    target = history(tab).first
    victim = ids[8]
    await expect(target).to_have_attribute("data-job-id", victim)
    await target.locator("button.copy").click()
    await expect(target.locator("button.copy")).to_have_text("Copied")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == await target.locator("a.download").get_attribute("href")
    status, _ = await fetch(app, copied)
    assert status == 200

    # Delete (after a confirmation): gone from the page, from the API, and its file with it.
    page.once("dialog", lambda dialog: dialog.accept())
    await target.locator("button.delete").click()
    await expect(history(tab)).to_have_count(0)
    await expect(page.locator("#history-status")).to_have_text("No downloads match.")
    status, _, _ = await app.api.call("GET", f"/api/v1/jobs/{victim}", key=key)
    assert status == 404
    status, _ = await fetch(app, copied)
    assert status == 404
    assert (await app.api.job(ids[7], key=key))["status"] == "done"
    assert_clean(tab, app, caplog.text, followed=False)  # all had ended: nothing to follow
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
    await page.click("#submit")
    row = await newest(tab)
    items = row.locator(".items > li.job")
    await expect(items).to_have_count(3, timeout=DONE_S)
    for index in range(3):
        await expect(items.nth(index)).to_have_attribute("data-status", "done", timeout=DONE_S)
    await expect(row).to_have_attribute("data-status", "done")
    await expect(row.locator(":scope > .body .details").first).to_contain_text("Playlist: 3 items")
    await expect(row.locator(":scope > .body .progress-words").first).to_have_text("3 of 3 done")
    await expect(row.locator(":scope > .body > .actions a.download")).to_be_hidden()
    for href in await items.locator("a.download").evaluate_all("(links) => links.map((a) => a.href)"):
        status, body = await fetch(app, href)
        assert status == 200 and body == source
    # In the history: one entry, its items inside it (not beside it).
    playlist_id = await row.get_attribute("data-job-id") or ""
    await expect(history(tab)).to_have_count(1)
    await expect(row_of(tab, "history", playlist_id).locator(".items > li.job")).to_have_count(3)
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
    await page.click("#submit")
    row = await newest(tab)
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
    await expect(row.locator(":scope > .body .progress-words").first).to_contain_text("0 of 2 done")

    await row.locator(":scope > .body > .actions button.cancel").click()
    await expect(row).to_have_attribute("data-status", "cancelled")
    for index in range(2):
        await expect(items.nth(index)).to_have_attribute("data-status", "cancelled")
    job = await app.api.job(await row.get_attribute("data-job-id") or "", key=key)
    assert [item["status"] for item in job["items"]] == ["cancelled"] * 2
    assert_clean(tab, app, caplog.text)
    await tab.context.close()


async def _no_sideways_scroll(tab: Tab) -> None:
    width = await tab.page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the page scrolls sideways: {width}"


async def _shoot(tab: Tab, name: str) -> None:
    shot = await tab.page.screenshot(full_page=True)
    assert shot.startswith(b"\x89PNG")
    if os.environ.get("MEDIABOT_UPDATE_SCREENSHOT"):
        (DOCS / name).write_bytes(shot)


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
    for _ in range(8):
        await page.keyboard.press("Tab")
        order.append(await page.evaluate("document.activeElement.id || document.activeElement.name"))
        if order[-1] == "submit":
            break
    # The order the form reads in: what to get, how good, optionally a format, then go.
    assert order == ["kind", "quality-select", "formats-button", "submit"], order
    outline = await page.evaluate("(() => { const s = getComputedStyle(document.activeElement);"
                                  " return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()")  # fmt: skip
    assert outline[0] != "none" and outline[1] >= 2, f"no visible focus: {outline}"
    clicked = time.perf_counter()
    await page.keyboard.press("Enter")
    done = await newest(tab)
    await expect(done).to_have_attribute("data-status", "done", timeout=DONE_S)
    first = min(at for at, _, m in tab.frames if m.get("job"))
    print(f"[bench] submit -> first progress message: {(first - clicked) * 1000:.0f} ms (keyboard)")
    await expect(page.locator("#announcer")).to_contain_text("done")

    # Something of each kind on screen: a failure and a download in progress.
    await page.fill("#url-input", media_site.url(f"/nomedia.html?k={unique('k')}"))
    await page.click("#submit")
    await expect(downloads(tab).first).to_have_attribute("data-status", "failed", timeout=DONE_S)
    cards = await downloads(tab).count()
    await page.fill("#url-input", media_site.url(f"/slow.mp4?rate=600000&k={unique('k')}"))
    await page.click("#submit")
    await expect(downloads(tab)).to_have_count(cards + 1)  # the new card, not the failed one before it
    slow = await newest(tab)
    await page.wait_for_function(
        "(row) => row.dataset.status === 'running' && row.querySelector('progress').value >= 3",
        arg=await slow.element_handle(),
        timeout=DONE_S,
    )
    done_id = await done.get_attribute("data-job-id") or ""
    await expect(done.locator("img.thumb")).to_be_visible()
    await _no_sideways_scroll(tab)
    await _shoot(tab, "web-phone.png")
    assert_clean(tab, app, caplog.text)

    # The same history in other windows: dark on the phone, light and dark on a desktop.
    for viewport, scheme, name in [
        (PHONE, "dark", "web-phone-dark.png"),
        (DESKTOP, "light", "web-desktop.png"),
        (DESKTOP, "dark", "web-desktop-dark.png"),
    ]:
        other = await open_tab(browser, app, key, viewport=viewport, color_scheme=scheme)
        await expect(history(other)).to_have_count(3)
        await expect(row_of(other, "history", done_id).locator("img.thumb")).to_be_visible()
        background = await other.page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == ("rgb(18, 21, 25)" if scheme == "dark" else "rgb(244, 246, 248)"), background
        await _no_sideways_scroll(other)
        if viewport is DESKTOP:
            # Two columns: the history beside the form, not under it.
            boxes = await other.page.evaluate(
                "['new-section', 'history-section'].map((id) => document.getElementById(id).getBoundingClientRect().x)"
            )
            assert boxes[1] > boxes[0] + 300, boxes
        await _shoot(other, name)
        await other.context.close()

    await slow.locator("button.cancel").click()
    await expect(slow).to_have_attribute("data-status", "cancelled")
    await tab.context.close()
