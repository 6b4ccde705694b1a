"""Issue 24 item 1 on the web: `error.message` follows Accept-Language while codes and keys stay English; the
page is served in the browser's language and direction; each locale's catalog is served as JSON."""

from __future__ import annotations

from tests.web.conftest import Api


async def test_error_message_follows_accept_language_and_the_code_stays(api: Api) -> None:
    status, body, _ = await api.call("POST", "/api/v1/jobs", json={"url": "not a link"})
    assert status == 422 and body["error"]["code"] == "invalid_url"
    english = body["error"]["message"]
    assert english.startswith("That doesn't look like a link")

    status, body, _ = await api.call(
        "POST",
        "/api/v1/jobs",
        json={"url": "not a link"},
        headers={"Accept-Language": "fa-IR,fa;q=0.9,en;q=0.5"},
    )
    assert status == 422 and set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"] == {
        "code": "invalid_url",
        "message": "این پیوند به نظر نمی‌رسد: باید با http:// یا https:// شروع شود.",
    }

    status, body, _ = await api.call("GET", "/api/v1/jobs/nope", headers={"Accept-Language": "de"})
    assert (status, body["error"]["code"], body["error"]["message"]) == (
        404,
        "not_found",
        "Kein solcher Auftrag.",
    )

    # A language we don't have, or none: English.
    _, body, _ = await api.call("POST", "/api/v1/jobs", json={"url": "x"}, headers={"Accept-Language": "ja"})
    assert body["error"]["message"] == english


async def test_the_page_is_rtl_for_persian_and_its_catalog_is_served(api: Api) -> None:
    async with api.http.get(api.base + "/", headers={"Accept-Language": "fa"}) as resp:
        page = await resp.text()
        assert resp.headers["Vary"] == "Accept-Language"
    assert '<html lang="fa" dir="rtl">' in page
    async with api.http.get(api.base + "/", headers={"Accept-Language": "de-DE,de;q=0.8"}) as resp:
        assert '<html lang="de" dir="ltr">' in await resp.text()

    async with api.http.get(api.base + "/i18n/fa.json") as resp:
        assert resp.status == 200
        catalog = await resp.json()
    assert catalog["locale"] == "fa" and catalog["dir"] == "rtl"
    assert catalog["messages"]["New download"] == "دانلود تازه"
    async with api.http.get(api.base + "/i18n/xx.json") as resp:
        unknown = await resp.json()
    assert unknown == {"locale": "en", "dir": "ltr", "messages": {}, "fallback": True}
    async with api.http.get(api.base + "/static/i18n.js") as resp:
        assert resp.status == 200 and "export function t(" in await resp.text()


async def test_a_malformed_body_and_an_unknown_subscription_are_refused_in_german(api: Api) -> None:
    german = {"Accept-Language": "de-DE,de;q=0.9", "Content-Type": "application/json"}
    status, body, _ = await api.call("POST", "/api/v1/jobs", data=b"{not json", headers=german)
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    assert body["error"]["message"] == "Der Inhalt ist kein gültiges JSON."

    # A sentence with a value in it, translated where it is raised.
    _, body, _ = await api.call("POST", "/api/v1/jobs", data=b"[1]", headers=german)
    assert body["error"]["message"].startswith("Der Inhalt muss ein JSON-Objekt sein, etwa {")

    status, body, _ = await api.call("GET", "/api/v1/subscriptions/nope", headers={"Accept-Language": "de"})
    assert (status, body["error"]) == (404, {"code": "not_found", "message": "Kein solches Abonnement."})
