"""The operator's API: admin keys only (any other key gets the 404 of an unknown address), bans that stop a
key's or a chat user's submissions, quotas, figures and the queue, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import schemathesis
from schemathesis.engine import events, from_schema

from core.admin import texts
from core.jobs.choices import SubmitRequest
from tests.support.media_site import MediaSite
from tests.web import test_fuzz as fuzzing
from tests.web.conftest import Api

pytestmark = [pytest.mark.timeout(60), pytest.mark.both_databases]

ADMIN_CALLS = [
    ("GET", "/api/v1/admin/stats", None),
    ("GET", "/api/v1/admin/bans", None),
    ("POST", "/api/v1/admin/bans", {"source": "telegram", "user_id": "1"}),
    ("DELETE", "/api/v1/admin/bans/telegram/1", None),
    ("PUT", "/api/v1/admin/limits", {"source": "telegram", "user_id": "1", "requests_per_hour": 5}),
    ("GET", "/api/v1/admin/queue", None),
]


def clip(site: MediaSite) -> str:
    return site.url(f"/clip/{uuid.uuid4().hex[:12]}.mp4")


async def test_a_key_that_is_not_an_admin_key_finds_nothing_there(api: Api) -> None:
    _, unknown, _ = await api.call("GET", "/api/v1/admin/nothing")
    assert unknown == {"error": {"code": "not_found", "message": "There is nothing at this address."}}
    for method, path, body in ADMIN_CALLS:
        status, answer, _ = await api.call(method, path, json=body)
        assert (status, answer) == (404, unknown), (method, path)
    status, _, _ = await api.call("GET", "/api/v1/admin/stats", key="mb_" + "x" * 43)
    assert status == 401


async def test_an_admin_key_bans_and_unbans_a_key_and_sets_a_chat_users_quota(
    api: Api, media_site: MediaSite
) -> None:
    _, admin_key = await api.services.keys.create("operator", admin=True)
    tester = await api.services.keys.verify(api.key)
    assert tester is not None and not tester.is_admin
    status, job = await api.submit(clip(media_site))
    assert status == 202, job
    await api.wait_status(job["id"], "done")

    status, stats, _ = await api.call("GET", "/api/v1/admin/stats", key=admin_key)
    assert status == 200
    assert [p["name"] for p in stats["periods"]] == ["today", "7d"]
    for period in stats["periods"]:
        assert (period["requests"], period["downloads"], period["cache_hits"]) == (1, 1, 0)
        assert period["bytes"] > 0 and period["failures"] == {}
        assert period["top_sites"] == [{"site": "127.0.0.1", "requests": 1}]
        assert period["busiest_users"] == [{"source": "api", "user_id": tester.id, "requests": 1}]

    ban = {"source": "api", "user_id": tester.id, "reason": "too many jobs"}
    status, made, _ = await api.call("POST", "/api/v1/admin/bans", key=admin_key, json=ban)
    assert status == 201, made
    assert made["banned_by"] == "api:operator" and made["reason"] == "too many jobs"
    status, refused = await api.submit(clip(media_site))
    assert (status, refused["error"]) == (
        403, {"code": "banned", "message": "You can't use this bot. Reason: too many jobs"}
    )  # fmt: skip
    status, body, _ = await api.call("POST", "/api/v1/subscriptions", json={"url": clip(media_site)})
    assert (status, body["error"]["code"]) == (403, "banned")
    status, listed, _ = await api.call("GET", "/api/v1/admin/bans", key=admin_key)
    assert [(b["source"], b["user_id"]) for b in listed["items"]] == [("api", tester.id)]

    status, _, _ = await api.call("DELETE", f"/api/v1/admin/bans/api/{tester.id}", key=admin_key)
    assert status == 204
    status, _ = await api.submit(clip(media_site))
    assert status == 202
    status, gone, _ = await api.call("DELETE", f"/api/v1/admin/bans/api/{tester.id}", key=admin_key)
    assert (status, gone["error"]["message"]) == (404, texts.NOT_BANNED)

    # A chat user's quota.
    await api.services.jobs.submit(
        SubmitRequest(text=clip(media_site), source="telegram", user_id="555", kind="video")
    )
    body = {"source": "telegram", "user_id": "555", "requests_per_hour": 99}
    status, limit, _ = await api.call("PUT", "/api/v1/admin/limits", key=admin_key, json=body)
    assert (status, limit) == (200, {**body, "overridden": True})
    assert (await api.services.admin.admit("telegram", "555")).requests_per_hour == 99
    body["requests_per_hour"] = None
    status, limit, _ = await api.call("PUT", "/api/v1/admin/limits", key=admin_key, json=body)
    assert (
        limit["overridden"] is False
        and limit["requests_per_hour"] == api.services.settings.user_requests_per_hour
    )

    status, queue, _ = await api.call("GET", "/api/v1/admin/queue", key=admin_key)
    assert status == 200 and set(queue) == {"sites", "jobs"}


async def test_bad_admin_input_gets_one_sentence(api: Api, media_site: MediaSite) -> None:
    info, admin_key = await api.services.keys.create("operator", admin=True)
    await api.services.jobs.submit(
        SubmitRequest(text=clip(media_site), source="api", user_id=info.id, kind="video")
    )
    cases = [
        ({"source": "api", "user_id": info.id}, 409, texts.BAN_SELF),
        ({"source": "telegram", "user_id": "424242"}, 404, texts.UNKNOWN_USER),
        ({"source": "matrix", "user_id": "1"}, 400, None),
        ({"source": "telegram", "user_id": "a b"}, 400, None),
        ({"source": "telegram", "user_id": "1", "reason": "x" * 201}, 400, None),
        ({"source": "telegram", "user_id": "1", "extra": 1}, 400, None),
    ]
    for body, status, sentence in cases:
        got, answer, _ = await api.call("POST", "/api/v1/admin/bans", key=admin_key, json=body)
        assert got == status, (body, answer)
        message = answer["error"]["message"]
        assert message == sentence if sentence else message.startswith("Invalid request: "), message
    for body in (
        {"source": "telegram", "user_id": "1", "requests_per_hour": 0},
        {"source": "telegram", "user_id": "1", "requests_per_hour": "5"},
        {"source": "telegram", "user_id": "1"},
    ):
        got, answer, _ = await api.call("PUT", "/api/v1/admin/limits", key=admin_key, json=body)
        assert got == 400 and answer["error"]["message"].startswith("Invalid request: "), answer
    assert (await api.call("DELETE", "/api/v1/admin/bans/matrix/1", key=admin_key))[0] == 404


@pytest.mark.timeout(240)
async def test_the_admin_operations_hold_to_their_document_under_fuzzing(start_api: Any) -> None:
    """schemathesis with every check over the operator's operations, with an admin key (the main fuzz test
    uses an ordinary key, which gets 404 there)."""
    async with start_api(**fuzzing.SETTINGS) as api:
        _, admin_key = await api.services.keys.create("fuzz-operator", admin=True)

        def run() -> fuzzing.Outcome:
            outcome = fuzzing.Outcome()
            config = schemathesis.Config.from_dict(
                {
                    "headers": {"Authorization": f"Bearer {admin_key}"},
                    "seed": 20,
                    "generation": {
                        "max-examples": fuzzing.MAX_EXAMPLES,
                        "database": "none",
                        "deterministic": True,
                    },
                    "checks": {"enabled": True},
                    # No links lead from one of these operations to another: nothing stateful to follow.
                    "phases": {"stateful": {"enabled": False}},
                    "request-timeout": 10,
                }
            )
            schema = schemathesis.openapi.from_url(api.base + "/api/openapi.json", config=config)
            schema = schema.include(path_regex="^/api/v1/(admin/|me$)")
            for event in from_schema(schema).execute():
                if isinstance(event, events.ScenarioFinished):
                    outcome.calls[event.phase.value] += len(event.recorder.interactions)
                    for checks in event.recorder.checks.values():
                        for check in checks:
                            info = check.failure_info
                            if info is not None:
                                where = getattr(info.failure, "operation", "") or event.recorder.label
                                outcome.failures[(check.name, where, "")] = (
                                    f"{where}: {info.failure.message[:300]}\n    {info.code_sample}"
                                )
                elif isinstance(event, events.NonFatalError | events.FatalError):
                    outcome.errors.append(repr(event)[:300])
            return outcome

        outcome = await asyncio.to_thread(run)
        print(f"schemathesis (admin): {outcome.summary()}")
        assert not outcome.failures and not outcome.errors, [*outcome.failures.items(), *outcome.errors][:20]
        assert outcome.calls.total() > 50
