"""The page's Admin panel in headless Chromium: shown for an admin key only; figures, a ban made with the
form and lifted with its button, the queue by site."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, expect

from core.jobs.choices import SubmitRequest
from tests.browser.conftest import App, open_tab, unique

pytestmark = pytest.mark.timeout(60)


async def test_the_admin_panel_is_for_admin_keys_only(browser: Browser, app: App, media_site: Any) -> None:
    plain = await app.api.new_key(unique("plain"))
    tab = await open_tab(browser, app, plain)
    await expect(tab.page.locator("#workspace")).to_be_visible()
    await expect(tab.page.locator("#admin-section")).to_be_hidden()
    assert not [u for u in tab.requests if "/api/v1/admin/" in u], "a plain key asked for the admin figures"
    await tab.context.close()

    person = str(int(unique("tg")[-8:], 16))  # a Telegram user id no other test uses
    await app.api.services.jobs.submit(
        SubmitRequest(
            text=media_site.url(f"/clip/{unique('a')}.mp4"), source="telegram", user_id=person, kind="video"
        )
    )
    _, admin_key = await app.api.services.keys.create(unique("ops"), admin=True)
    tab = await open_tab(browser, app, admin_key)
    page = tab.page
    panel = page.locator("#admin-section")
    await expect(panel).to_be_visible()
    await expect(page.locator("#admin-stats th", has_text="Today (UTC)")).to_be_visible()
    await expect(page.locator("#admin-stats th", has_text="Last 7 days")).to_be_visible()
    requests = page.locator('#admin-stats tr[data-figure="Requests"] td')
    await expect(requests).to_have_count(2)
    assert int(await requests.first.text_content() or "0") >= 1
    await expect(page.locator("#admin-bans-empty")).to_be_visible()

    # Ban with the form: listed, and the API agrees.
    await page.select_option("#ban-source", "telegram")
    await page.fill("#ban-user", person)
    await page.fill("#ban-reason", "spam links")
    await page.click("#ban-add")
    row = page.locator("#admin-bans > li")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(f"telegram:{person}")
    await expect(row).to_contain_text("spam links")
    assert await page.input_value("#ban-user") == ""
    assert [b.user_id for b in await app.api.services.admin.bans()] == [person]

    # Someone who never used the service: one sentence, nothing listed.
    await page.fill("#ban-user", "999999999999")
    await page.click("#ban-add")
    await expect(page.locator("#error")).to_have_text("No one with that id has used this bot.")
    await expect(row).to_have_count(1)

    # Unban with the row's button.
    await row.get_by_role("button", name=f"Unban telegram:{person}").click()
    await expect(row).to_have_count(0)
    await expect(page.locator("#admin-bans-empty")).to_be_visible()
    assert await app.api.services.admin.bans() == []
    await expect(page.locator("#admin-queue-heading")).to_be_visible()
    assert tab.errors == []
    assert not [line for line in tab.console if line.startswith("error:") and "404" not in line], tab.console
    await tab.context.close()


async def test_the_admin_panel_speaks_the_browsers_language(browser: Browser, app: App) -> None:
    """A Russian browser: the panel's headings, figures and the API's refusal sentence in Russian."""
    _, admin_key = await app.api.services.keys.create(unique("ops-ru"), admin=True)
    tab = await open_tab(browser, app, admin_key, locale="ru-RU")
    page = tab.page
    await expect(page.locator("#admin-section")).to_be_visible()
    await expect(page.locator("#admin-heading")).to_have_text("Администрирование")
    await expect(page.locator("#admin-stats th", has_text="Сегодня (UTC)")).to_be_visible()
    await expect(page.locator('#admin-stats tr[data-figure="Requests"] th')).to_have_text("Запросы")
    await expect(page.locator("#ban-add")).to_have_text("Заблокировать")

    await page.fill("#ban-user", "999999999999")
    await page.click("#ban-add")
    await expect(page.locator("#error")).to_have_text("Пользователь с таким id этим ботом не пользовался.")
    await tab.context.close()
