"""Submission limits: only accepted submissions count against a key's rate; refused ones (a typo, a bad
link) have their own, more generous limit, still answered 429 with Retry-After. With and without Redis."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.conftest import Api


@pytest.fixture(params=["in-process", "redis"])
def limiter(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for each rate limiter: this process's, or Redis's (shared by processes)."""
    if request.param == "redis":
        return {"redis_url": request.getfixturevalue("redis_url")}
    return {}


async def refuse_a_few(api: Api, n: int) -> None:
    """`n` submissions a person could get wrong, each refused in its own way."""
    mistakes: list[dict[str, Any]] = [
        {"json": {"url": "no link here"}},  # 422 invalid_url
        {"json": {"url": "ftp://example.com/v.mp4"}},  # 422 invalid_url
        {"json": {"url": "https://example.com/v.mp4", "kind": "gif"}},  # 400
        {"data": b'{"url": "https://example.com/v.mp4",'},  # 400: not JSON
        {"json": {"url": "https://example.com/v.mp4", "format_id": "bad id"}},  # 400
    ]
    for n_ in range(n):
        status, body, _ = await api.call("POST", "/api/v1/jobs", **mistakes[n_ % len(mistakes)])
        assert status in (400, 422), body


async def test_refused_submissions_do_not_use_up_the_rate(start_api: Any, limiter: dict[str, Any]) -> None:
    async with start_api(worker=False, api_rate_per_minute=3, api_max_concurrent=2, **limiter) as api:
        await refuse_a_few(api, 12)
        status, body, _ = await api.call("POST", f"/api/v1/jobs/{'0' * 32}/retry")  # 404: nothing to retry
        assert status == 404, body
        # Over the cap on running downloads: refused with 429, and not counted either.
        first = [await api.submit(f"https://example.com/a{n}.mp4") for n in range(2)]
        assert [status for status, _ in first] == [202, 202]
        status, body = await api.submit("https://example.com/a2.mp4")
        assert status == 429 and body["error"]["code"] == "too_many_jobs", body
        await api.call("DELETE", f"/api/v1/jobs/{first[0][1]['id']}")
        # The third accepted submission is the last of the minute.
        assert (await api.submit("https://example.com/a3.mp4"))[0] == 202
        status, body, resp = await api.call(
            "POST", "/api/v1/jobs", json={"url": "https://example.com/a4.mp4"}
        )
        assert status == 429 and body["error"]["code"] == "rate_limited", body
        assert "3 a minute" in body["error"]["message"]
        assert 1 <= int(resp.headers["Retry-After"]) <= 60


async def test_refusals_have_their_own_limit(start_api: Any, limiter: dict[str, Any]) -> None:
    async with start_api(worker=False, api_refusals_per_minute=5, **limiter) as api:
        await refuse_a_few(api, 5)
        status, body, resp = await api.call("POST", "/api/v1/jobs", json={"url": "still no link"})
        assert status == 429 and body["error"]["code"] == "rate_limited", body
        assert "refused submissions" in body["error"]["message"] and "5 a minute" in body["error"]["message"]
        assert 1 <= int(resp.headers["Retry-After"]) <= 60
        # Past it, submissions wait out the minute, good ones too; retries count the same way.
        status, body = await api.submit("https://example.com/fine.mp4")
        assert status == 429 and "refused submissions" in body["error"]["message"]
        status, body, _ = await api.call("POST", f"/api/v1/jobs/{'0' * 32}/retry")
        assert status == 429, body
        # Reads are not submissions, and another key has its own count.
        assert (await api.call("GET", "/api/v1/jobs"))[0] == 200
        other = await api.new_key("other")
        assert (await api.submit("https://example.com/fine.mp4", key=other))[0] == 202
