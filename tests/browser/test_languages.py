"""The page in the browser's language (issue 24 item 1), in headless Chromium: Persian laid out right to
left, German left to right, the picker's choice kept in localStorage over the browser's; screenshots of
both go to docs/ when MEDIABOT_UPDATE_SCREENSHOT=1."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import DESKTOP, App, open_tab, unique

pytestmark = pytest.mark.timeout(60)
DOCS = Path(__file__).resolve().parents[2] / "docs"


async def test_persian_is_right_to_left_and_the_picker_switches_to_german(browser: Browser, app: App) -> None:
    key = await app.api.new_key(unique("fa"))
    tab = await open_tab(browser, app, key, locale="fa-IR", viewport=DESKTOP)
    page = tab.page
    html = page.locator("html")
    await expect(html).to_have_attribute("dir", "rtl")
    await expect(html).to_have_attribute("lang", "fa")
    await expect(page.locator("#new-heading")).to_have_text("دانلود تازه")
    await expect(page.locator("#job-form button[type=submit]")).to_have_text("دانلود")
    # Laid out right to left: the heading's text starts at the right edge of its box.
    box = await page.locator("main").bounding_box()
    heading = await page.evaluate(
        "() => { const r = document.createRange(); r.selectNodeContents(document.getElementById('new-heading'));"
        " return r.getBoundingClientRect().right; }"
    )
    assert box is not None and heading > box["x"] + box["width"] / 2
    if os.environ.get("MEDIABOT_UPDATE_SCREENSHOT"):
        await page.screenshot(path=str(DOCS / "web-desktop-fa.png"))

    # The picker: Deutsch, kept in this browser over its Persian.
    await page.select_option("#language", "de")
    await expect(html).to_have_attribute("dir", "ltr")
    await expect(page.locator("#new-heading")).to_have_text("Neuer Download")
    assert await page.evaluate("() => localStorage.getItem('mediabot.language')") == "de"
    await page.reload()
    await page.wait_for_function("() => document.documentElement.dataset.ready === 'true'")
    await expect(page.locator("#new-heading")).to_have_text("Neuer Download")
    await expect(page.locator("#language")).to_have_value("de")
    if os.environ.get("MEDIABOT_UPDATE_SCREENSHOT"):
        await page.screenshot(path=str(DOCS / "web-desktop-de.png"))
    assert tab.errors == []
    await tab.context.close()


async def test_an_english_browser_stays_english(browser: Browser, app: App) -> None:
    tab = await open_tab(browser, app, await app.api.new_key(unique("en")))
    await expect(tab.page.locator("html")).to_have_attribute("dir", "ltr")
    await expect(tab.page.locator("#new-heading")).to_have_text("New download")
    assert not [u for u in tab.requests if "/i18n/" in u], "English needs no catalog"
    await tab.context.close()
