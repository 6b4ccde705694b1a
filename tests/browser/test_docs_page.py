"""/api/docs in headless Chromium: it follows a dark system theme, fits a 390 px phone with every section
open, and shows the descriptions' `code` as code (built from text, never parsed as HTML).

`MEDIABOT_UPDATE_SCREENSHOT=1 .venv/bin/pytest tests/browser -q` rewrites docs/api-docs-phone-dark.png.
"""

from __future__ import annotations

import os

import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import PHONE, App
from tests.support.services import ROOT

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("scheme", ["dark", "light"])
async def test_api_docs_fit_a_phone_follow_the_theme_and_show_code(
    browser: Browser, app: App, scheme: str
) -> None:
    context = await browser.new_context(viewport=PHONE, color_scheme=scheme)  # type: ignore[arg-type]
    page = await context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    await page.goto(app.base + "/api/docs")
    await expect(page.locator("#ops > details.op").first).to_be_visible()
    await expect(page.locator("#schemas > details.op").first).to_be_attached()

    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == ("rgb(18, 21, 25)" if scheme == "dark" else "rgb(255, 255, 255)"), background

    if scheme == "dark":
        # One operation open, as a person would look at it, for the README's picture.
        await page.locator("#ops > details.op").first.locator("summary").click()
        if os.environ.get("MEDIABOT_UPDATE_SCREENSHOT"):
            (ROOT / "docs" / "api-docs-phone-dark.png").write_bytes(await page.screenshot(full_page=True))

    # Everything open: nothing wider than the phone, no description cut off, no Markdown left as is.
    await page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
    widths = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"the page is wider than the phone: {widths}"
    cut = await page.evaluate(
        "[...document.querySelectorAll('td, p, summary')]"
        ".filter((n) => n.scrollWidth > n.clientWidth + 1 || n.getBoundingClientRect().right > window.innerWidth)"
        ".map((n) => n.textContent.slice(0, 60))"
    )
    assert cut == [], cut
    text = await page.evaluate("document.body.innerText")
    assert "`" not in text, "Markdown backticks shown as they are"
    # `next_cursor` in the list's description is code, not text with backticks around it.
    assert await page.locator("td code, p code", has_text="next_cursor").count() >= 1
    assert console == [], console
    await context.close()
