"""The page's Subscriptions panel in headless Chromium: follow a channel by its link, stop it, and a link
that is none refused in one sentence."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, expect

from tests.browser.conftest import App, open_tab, unique

pytestmark = pytest.mark.timeout(60)


async def test_follow_a_channel_then_stop_it(browser: Browser, app: App, media_site: Any) -> None:
    key = await app.api.new_key(unique("subs"))
    tab = await open_tab(browser, app, key)
    page = tab.page
    await expect(page.locator("#subs-empty")).to_be_visible()
    name = unique("panel")
    feed = media_site.channel(name, 2)
    await page.fill("#sub-url", feed)
    await page.click("#sub-add")
    row = page.locator("#subs > li.sub")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(feed)
    await expect(page.locator("#subs-empty")).to_be_hidden()
    assert await page.input_value("#sub-url") == ""
    # Stop it: the list is empty again, and the API agrees.
    await row.get_by_role("button", name="Stop following").click()
    await expect(row).to_have_count(0)
    await expect(page.locator("#subs-empty")).to_be_visible()
    status, body, _ = await app.api.call("GET", "/api/v1/subscriptions", key=key)
    assert status == 200 and body["items"] == []
    # A link that is not one: one sentence, nothing added.
    await page.fill("#sub-url", "not a link")
    await page.click("#sub-add")
    await expect(page.locator("#error")).to_be_visible()
    await expect(row).to_have_count(0)
    await tab.context.close()
