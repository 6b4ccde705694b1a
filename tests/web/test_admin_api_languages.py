"""Issue 24 item 1 x item 4 on the API: the operator's error sentences follow Accept-Language (codes and keys
stay English), as every other API error does."""

from __future__ import annotations

import pytest

from tests.web.conftest import Api

pytestmark = pytest.mark.timeout(60)


async def test_the_admin_apis_sentences_follow_accept_language(api: Api) -> None:
    me, admin_key = await api.services.keys.create("operator", admin=True)
    ban_self = {"source": "api", "user_id": me.id}

    status, body, _ = await api.call(
        "POST",
        "/api/v1/admin/bans",
        key=admin_key,
        json=ban_self,
        headers={"Accept-Language": "de-DE,de;q=0.9"},
    )
    assert (status, body["error"]) == (
        409,
        {"code": "cannot_ban", "message": "Du kannst dich nicht selbst sperren."},
    )

    # Our validator's sentence inside the body's problems, in French; pydantic's field name stays as the API's.
    bad = {"source": "telegram", "user_id": "1", "requests_per_hour": "3"}
    status, body, _ = await api.call(
        "PUT", "/api/v1/admin/limits", key=admin_key, json=bad, headers={"Accept-Language": "fr"}
    )
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert body["error"]["message"] == "Requête non valide : requests_per_hour: doit être un nombre entier."

    # An ordinary key finds nothing there, in Russian; without the header, English.
    status, body, _ = await api.call("GET", "/api/v1/admin/stats", headers={"Accept-Language": "ru"})
    assert (status, body["error"]["message"]) == (404, "По этому адресу ничего нет.")
    status, body, _ = await api.call("POST", "/api/v1/admin/bans", key=admin_key, json=ban_self)
    assert body["error"]["message"] == "You can't ban yourself."
