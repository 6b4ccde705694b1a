"""The HTTP layer under the app, driven with raw sockets: every error is the API's JSON and never echoes the
request (the parser's too), slow clients are cut off, and one address cannot hold every socket."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
from typing import Any

import pytest

from tests.web.conftest import Api

MARK = "ECHOMARK"  # put into every malformed request: it must never come back
# How long a test waits for the server to act before calling it stuck: far beyond the timeouts set, so a
# loaded machine does not fail it (nothing here measures speed).
GIVE_UP_S = 15


async def exchange(api: Api, data: bytes) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", api.services.settings.port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), GIVE_UP_S)
    finally:
        writer.close()


def parse(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, json.loads(body) if body else None


def assert_json_error(raw: bytes, status: int, code: str) -> dict[str, str]:
    got, headers, body = parse(raw)
    assert got == status, raw[:300]
    assert headers["content-type"].startswith("application/json"), headers
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert MARK.lower() not in raw.decode("latin-1").lower(), "the request is echoed back"
    return headers


def request(line: str, *headers: str, body: bytes = b"") -> bytes:
    return "\r\n".join([line, "Host: 127.0.0.1", *headers, "", ""]).encode("latin-1") + body


MALFORMED: dict[str, tuple[bytes, int, str]] = {
    "a 100,000-character url= query": (
        request(f"GET /api/v1/formats?url=https://{MARK}.example/{'a' * 100_000} HTTP/1.1"),
        414,
        "uri_too_long",
    ),
    "a header too long": (
        request("GET /health HTTP/1.1", f"X-Big: {MARK}{'b' * 10_000}"),
        431,
        "headers_too_large",
    ),
    "a 100 KB header, sent at once": (
        request("GET /health HTTP/1.1", f"X-Big: {MARK}{'h' * 100_000}"),
        431,
        "headers_too_large",
    ),
    "a header name too long": (
        request("GET /health HTTP/1.1", f"X-{MARK}{'n' * 9000}: 1"),
        431,
        "headers_too_large",
    ),
    "too many headers": (
        request("GET /health HTTP/1.1", *(f"X-{MARK}-{n}: 1" for n in range(200))),
        431,
        "headers_too_large",
    ),
    "an invalid method": (request(f"G{MARK}( /health HTTP/1.1"), 400, "invalid_request"),
    "TLS on the HTTP port": (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + MARK.encode() + b"\r\n\r\n",
        400,
        "invalid_request",
    ),
    "garbage": (MARK.encode() + b"\x00\xff\xfe garbage\r\n\r\n", 400, "invalid_request"),
    "an unknown HTTP version": (request(f"GET /{MARK} HTTP/9.9"), 400, "invalid_request"),
    "spaces in the address": (request(f"GET /a {MARK} c HTTP/1.1"), 400, "invalid_request"),
    "a header without a colon": (request("GET /health HTTP/1.1", MARK), 400, "invalid_request"),
    "NUL in a header": (request("GET /health HTTP/1.1", f"X-A: {MARK}\x00b"), 400, "invalid_request"),
    "a bad chunk size": (
        request(
            "POST /api/v1/jobs HTTP/1.1",
            "Transfer-Encoding: chunked",
            body=f"{MARK}\r\nabc\r\n0\r\n\r\n".encode(),
        ),
        400,
        "invalid_request",
    ),
    "Content-Length and chunked": (
        request(
            "POST /api/v1/jobs HTTP/1.1",
            "Content-Length: 3",
            "Transfer-Encoding: chunked",
            body=b"3\r\nabc\r\n0\r\n\r\n",
        ),
        400,
        "invalid_request",
    ),
    "a negative Content-Length": (
        request("POST /api/v1/jobs HTTP/1.1", "Content-Length: -3", body=b"abc"),
        400,
        "invalid_request",
    ),
    "an unknown Expect": (
        request("POST /api/v1/jobs HTTP/1.1", f"Expect: {MARK}", "Content-Length: 0"),
        417,
        "invalid_request",
    ),
}


async def test_parser_errors_are_json_and_never_echo(
    start_api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with start_api(worker=False) as api:
        for name, (data, status, code) in MALFORMED.items():
            raw = await exchange(api, data)
            assert raw, name
            try:
                assert_json_error(raw, status, code)
            except AssertionError as exc:
                raise AssertionError(f"{name}: {exc}") from None
        # A 10,000-character link (the case) reaches the API, which refuses it in its own words.
        long_link = request(
            f"GET /api/v1/formats?url=https://{MARK}.example/{'a' * 10_000} HTTP/1.1",
            f"Authorization: Bearer {api.key}",
            "Connection: close",
        )
        assert_json_error(await exchange(api, long_link), 400, "invalid_request")
        # A body aiohttp cannot decode reaches the app: 400 as well, not a 500.
        broken = request(
            "POST /api/v1/jobs HTTP/1.1",
            f"Authorization: Bearer {api.key}",
            "Content-Encoding: gzip",
            "Content-Length: 12",
            "Connection: close",
            body=f"{MARK}1234".encode(),
        )
        assert_json_error(await exchange(api, broken), 400, "invalid_request")
        # Still serving.
        assert (await api.call("GET", "/health"))[0] == 200
        squeezed = gzip.compress(json.dumps({"url": "https://example.com/v.mp4"}).encode())
        status, body, _ = await api.call(
            "POST", "/api/v1/jobs", data=squeezed, headers={"Content-Encoding": "gzip"}
        )
        assert status == 202, body
    # One log line per refusal, without the request's bytes and without a traceback.
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert MARK not in logged and "Traceback" not in logged
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "refusals are not errors of ours"


async def trickle(api: Api, data: bytes, every_s: float = 0.2) -> bytes:
    """Send `data` a byte at a time; returns what the server answered before closing (or b"" if it hung
    up without a word). Gives up after GIVE_UP_S: the connection was held."""
    reader, writer = await asyncio.open_connection("127.0.0.1", api.services.settings.port)

    async def send() -> None:
        for n in range(len(data)):
            writer.write(data[n : n + 1])
            await writer.drain()
            await asyncio.sleep(every_s)

    sender = asyncio.create_task(send())
    try:
        return await asyncio.wait_for(reader.read(), GIVE_UP_S)
    finally:
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
        writer.close()


async def test_slow_clients_are_cut_off_while_others_are_served(start_api: Any) -> None:
    async with start_api(worker=False, request_header_timeout_s=1, request_body_timeout_s=1) as api:
        slow_headers = request("GET /health HTTP/1.1", "X-Slow: " + "s" * 200)
        body = json.dumps({"url": "https://example.com/slow.mp4"}).encode()
        slow_body = request(
            "POST /api/v1/jobs HTTP/1.1",
            f"Authorization: Bearer {api.key}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", api.services.settings.port)
        writer.write(slow_body)  # headers at once, then the body a byte at a time
        await writer.drain()

        async def body_trickle() -> bytes:
            for n in range(len(body)):
                writer.write(body[n : n + 1])
                await writer.drain()
                await asyncio.sleep(0.2)
            return b""

        body_sender = asyncio.create_task(body_trickle())
        slow = [asyncio.create_task(trickle(api, slow_headers)) for _ in range(50)]
        silent = [asyncio.create_task(trickle(api, b"")) for _ in range(3)]  # connect, send nothing
        await asyncio.sleep(0.3)

        # A normal client meanwhile: served as usual.
        assert (await api.call("GET", "/health"))[0] == 200
        status, job = await api.submit("https://example.com/fast.mp4")
        assert status == 202, job

        for answer in await asyncio.gather(*slow, *silent):
            assert_json_error(answer, 408, "request_timeout")
        answer = await asyncio.wait_for(reader.read(), GIVE_UP_S)
        body_sender.cancel()
        writer.close()
        assert_json_error(answer, 408, "request_timeout")
        assert "body" in parse(answer)[2]["error"]["message"]
        # Nothing of the slow body was submitted; the normal client's job is there.
        status, page, _ = await api.call("GET", "/api/v1/jobs")
        assert [j["url"] for j in page["items"]] == ["https://example.com/fast.mp4"]


async def idle_connections(api: Api, n: int) -> list[asyncio.StreamWriter]:
    writers = []
    for _ in range(n):
        _, writer = await asyncio.open_connection("127.0.0.1", api.services.settings.port)
        writers.append(writer)
    return writers


async def test_connections_per_client_address(start_api: Any) -> None:
    async with start_api(worker=False, max_connections_per_client=5) as api:
        held = await idle_connections(api, 5)
        headers = assert_json_error(
            await exchange(api, request("GET /health HTTP/1.1")), 429, "too_many_connections"
        )
        assert headers["retry-after"] == "1"
        held.pop().close()
        await asyncio.sleep(0.2)  # the server sees the close
        raw = await exchange(api, request("GET /health HTTP/1.1", "Connection: close"))
        assert parse(raw)[0] == 200
        for writer in held:
            writer.close()


async def test_behind_a_trusted_proxy_clients_are_counted_by_forwarded_address(start_api: Any) -> None:
    async with start_api(worker=False, max_connections_per_client=2, trusted_proxies=["127.0.0.0/8"]) as api:
        # The proxy's own connections are not capped: every client comes through them.
        held = await idle_connections(api, 4)
        assert (await api.call("GET", "/health"))[0] == 200

        def from_client(ip: str) -> dict[str, str]:
            return {**api.auth(), "X-Forwarded-For": ip}

        sockets = [
            await api.http.ws_connect(api.ws_url("/api/v1/events"), headers=from_client("203.0.113.9"))
            for _ in range(2)
        ]
        status, body, resp = await api.call("GET", "/api/v1/jobs", headers={"X-Forwarded-For": "203.0.113.9"})
        assert status == 429 and body["error"]["code"] == "too_many_connections", body
        assert resp.headers["Retry-After"] == "1"
        assert (await api.call("GET", "/api/v1/jobs", headers={"X-Forwarded-For": "203.0.113.10"}))[0] == 200
        await sockets.pop().close()
        await asyncio.sleep(0.2)
        assert (await api.call("GET", "/api/v1/jobs", headers={"X-Forwarded-For": "203.0.113.9"}))[0] == 200
        for ws in sockets:
            await ws.close()
        for writer in held:
            writer.close()
