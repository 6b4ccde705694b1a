"""Bodies (and query texts) the API cannot use are a 400 `invalid_request` in one sentence, whatever their
shape: deep nesting never reaches the JSON parser's recursion, and nothing of the body is echoed back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.conftest import Api, web_api, web_settings
from web.bodies import MAX_DEPTH, nesting_depth

NESTED_1000 = b"[" * 1000 + b"]" * 1000
GARBAGE: dict[str, bytes] = {
    "1,000 nested arrays": NESTED_1000,
    "1,000 nested objects": b'{"a":' * 1000 + b"1" + b"}" * 1000,
    "deep inside the url field": b'{"url": ' + NESTED_1000 + b"}",
    "deep inside subtitles": b'{"url": "https://example.com/v.mp4", "subtitles": '
    + b"[" * 900
    + b"]" * 900
    + b"}",
    "unclosed brackets": b"[" * 3000,
    "closing brackets only": b"]" * 3000 + b"}" * 3000,
    "brackets in an unterminated string": b'{"url": "' + b"[" * 3000,
    "a bare string": b'"https://example.com/v.mp4"',
    "a number": b"12",
    "an array": b'[{"url": "https://example.com/v.mp4"}]',
    "null": b"null",
    "empty": b"",
    "whitespace": b" \r\n\t ",
    "not JSON": b"url=https://example.com/v.mp4",
    "invalid UTF-8": b'{"url": "\xff\xfe"}',
    "UTF-16": '{"url": "https://example.com/v.mp4"}'.encode("utf-16"),
    "a number too long to read": b'{"url": "https://example.com/v.mp4", "kind": ' + b"9" * 5000 + b"}",
    "NaN": b'{"url": NaN}',
    "url as an object": b'{"url": {"href": "https://example.com/v.mp4"}}',
    "NUL in the url": b'{"url": "https://example.com/v\\u0000.mp4"}',
    "a lone surrogate in the url": b'{"url": "https://example.com/\\ud800.mp4"}',
    "a lone surrogate in a key": b'{"\\udfff": 1, "url": "https://example.com/v.mp4"}',
    "a lone surrogate in callback_url": b'{"url": "https://example.com/v.mp4", "callback_url": "https://e.com/\\ud800"}',
    "control characters in the url": b'{"url": "https://example.com/\\u0007\\u001b[2J"}',
    "truncated": b'{"url": "https://exa',
}


@pytest.fixture
async def quiet_api(tmp_path: Path, database_url: str) -> AsyncIterator[Api]:
    """The app on SQLite and on PostgreSQL, without a worker: a body read by mistake fetches nothing."""
    async with web_api(web_settings(tmp_path, database_url=database_url), worker=False) as running:
        yield running


def test_nesting_depth_counts_brackets_outside_strings() -> None:
    assert nesting_depth('{"url": "[[[[[[[[", "subtitles": ["en"]}') == 2
    assert nesting_depth('{"a": "\\"[[[[", "b": [[1]]}') == 3  # an escaped quote does not end the string
    assert nesting_depth("[" * 100_000, limit=MAX_DEPTH) == MAX_DEPTH + 1  # stops counting past the limit
    assert nesting_depth("") == 0


def _check_refusal(status: int, body: Any, sent: bytes, name: str = "") -> None:
    assert status == 400, (name, status, body)
    assert isinstance(body, dict) and set(body) == {"error"}, (name, body)
    error = body["error"]
    assert error["code"] == "invalid_request" and error["message"].endswith("."), (name, error)
    assert "Traceback" not in error["message"] and "[[[" not in error["message"]
    if len(sent) > 8:
        assert sent[:40].decode("latin-1") not in error["message"], "the body is never echoed"


async def test_garbage_bodies_are_400(quiet_api: Api) -> None:
    for name, sent in GARBAGE.items():
        status, body, _ = await quiet_api.call(
            "POST", "/api/v1/jobs", data=sent, headers={"Content-Type": "application/json"}
        )
        _check_refusal(status, body, sent, name)
    assert (await quiet_api.call("GET", "/api/v1/jobs"))[1]["items"] == [], "nothing was queued"


async def test_deep_nesting_up_to_the_body_limit(start_api: Any) -> None:
    async with start_api(worker=False, max_body_bytes=300_000, api_rate_per_minute=1000) as api:
        for sent in (
            b"[" * 100_000 + b"]" * 100_000,
            b'{"a":' * 40_000 + b"1" + b"}" * 40_000,
            b"{" * 290_000,
        ):
            status, body, _ = await api.call("POST", "/api/v1/jobs", data=sent)
            _check_refusal(status, body, sent)
        # Nesting a request needs is still read: a valid job in an ordinary shape.
        status, body = await api.submit("https://example.com/v.mp4", subtitles=["en"])
        assert status == 202, body
        assert (await api.call("GET", "/health"))[0] == 200

    async with start_api(worker=False) as small:
        status, body, _ = await small.call("POST", "/api/v1/jobs", data=b"[" * 100_000)
        assert status == 413 and body["error"]["code"] == "body_too_large", body


async def test_bodies_on_retry_are_ignored(quiet_api: Api) -> None:
    """The other POST takes no body: whatever is sent there does not change its answer."""
    for sent in (NESTED_1000, b"\xff\xfe", b"null"):
        status, body, _ = await quiet_api.call("POST", f"/api/v1/jobs/{'0' * 32}/retry", data=sent)
        assert status == 404 and body["error"]["code"] == "not_found", body


async def test_control_characters_in_queries_are_400(quiet_api: Api) -> None:
    """NUL cannot be stored or searched in PostgreSQL text: it was a 500 there."""
    for path in (
        "/api/v1/jobs?q=a%00b",
        "/api/v1/jobs?q=%1B%5B2J",
        "/api/v1/formats?url=http://127.0.0.1:9/%00",
    ):
        status, body, _ = await quiet_api.call("GET", path)
        assert status == 400 and body["error"]["code"] == "invalid_request", (path, body)
        assert "\x00" not in body["error"]["message"]
