"""The HTTP connection layer under the app: what aiohttp answers before (or instead of) our handlers.

- Every error is the API's JSON (`{"error": {"code", "message"}}`), including the HTTP parser's (a request
  line or header too long, a bad method, bad chunking...), and never echoes the request: aiohttp's own
  answer is text/plain with the start of the offending line in it.
- Slow clients cannot hold sockets: a request's line and headers must arrive within
  MEDIABOT_REQUEST_HEADER_TIMEOUT_S of its first byte (or of the connection opening), its body within
  MEDIABOT_REQUEST_BODY_TIMEOUT_S of its headers; else 408 and the connection closes.
- One client address holds at most MEDIABOT_MAX_CONNECTIONS_PER_CLIENT connections. A trusted proxy's
  connections carry many clients, so they are not counted here: their requests are, by the forwarded
  address (web.middlewares.client_slots).

aiohttp has no public hook for its connection handler, so GuardedAppRunner swaps in a Server that builds
GuardedRequestHandler, from the settings aiohttp gathered for its own (tests/web/test_protocol.py covers
each path, so a change in aiohttp shows there).
"""

from __future__ import annotations

import asyncio
import json
import logging
from http import HTTPStatus
from typing import Any

from aiohttp import http_exceptions, web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

from web.errors import BodyTimeout, error_response, http_error, too_many_connections
from web.state import ClientSlots

log = logging.getLogger(__name__)

# Idle keep-alive connections close after this long (aiohttp's own default is an hour).
KEEPALIVE_S = 75.0
# The longest request line read (aiohttp's default is 8190 bytes): a link of the 4096 characters the API
# takes, percent-encoded in a query (`/api/v1/formats?url=`), can be 12 bytes a character. Longer is 414.
MAX_REQUEST_LINE = 65536
# After answering a client that is still sending, read and drop its bytes this long before closing: a close
# with unread bytes makes the kernel send a reset, which can destroy the answer before the client reads it.
LINGER_S = 3.0


def _parse_error(exc: BaseException | None, handler: RequestHandler) -> tuple[int, str, str]:
    """Status, code and message for what the HTTP parser refused; nothing of the request in them."""
    if isinstance(exc, http_exceptions.LineTooLong):
        # What was too long: the request target (the address) starts with / or a scheme; a header does not.
        start = exc.args[0][:8] if exc.args else b""
        start = bytes(start) if isinstance(start, bytes | bytearray) else str(start).encode(errors="replace")
        if start[:1] == b"/" or start[:4].lower() == b"http":
            return 414, "uri_too_long", f"The address is longer than {handler.max_line_size} bytes."
        return 431, "headers_too_large", f"A request header is longer than {handler.max_field_size} bytes."
    if isinstance(exc, http_exceptions.BadHttpMessage) and "Too many headers" in str(exc.message):
        return 431, "headers_too_large", f"The request has more than {handler.max_headers} headers."
    return 400, "invalid_request", "The request is not valid HTTP."


def _raw_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> bytes:
    """A whole JSON error response, for when there is no request to answer through aiohttp."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    lines = [
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
        "Content-Type: application/json; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class GuardedRequestHandler(RequestHandler):
    """aiohttp's connection handler with JSON errors, header and body deadlines, and a cap per client."""

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._slots = manager.slots
        self._header_timeout_s = manager.header_timeout_s
        self._body_timeout_s = manager.body_timeout_s
        self._client: str | None = None  # the address holding a slot, if any
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None
        self._close_gently = False  # after the next answer, linger, then close
        self._linger_timer: asyncio.TimerHandle | None = None

    # -- the connection -------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) and peer else None
        if address is not None and not self._slots.trusted(address):
            if not self._slots.take(address):
                log.info("refused a connection from %s: it holds %d already", address, self._slots.limit)
                self._reply_and_close(
                    429, "too_many_connections", too_many_connections(self._slots.limit), {"Retry-After": "1"}
                )
                return
            self._client = address
        self._start_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_timers()
        if self._linger_timer is not None:
            self._linger_timer.cancel()
            self._linger_timer = None
        if self._client is not None:
            self._slots.give_back(self._client)
            self._client = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        requests = self._request_count
        super().data_received(data)
        if self._upgraded or self._payload_parser is not None:
            self._cancel_timers()  # a WebSocket now: its own heartbeat watches it
            return
        if self._request_count != requests and self._messages:
            # Headers complete: the body (if one is still coming) gets its own deadline.
            self._cancel_header_timer()
            payload = self._messages[-1][1]
            if isinstance(payload, StreamReader) and not payload.is_eof():
                self._start_body_timer(payload)
        elif data and self._header_timer is None and self._body is None:
            self._start_header_timer()  # the first bytes of the next request on this connection

    # -- deadlines ------------------------------------------------------------------------------------

    def _start_header_timer(self) -> None:
        if self._header_timer is None and not self._force_close:
            self._header_timer = self._loop.call_later(self._header_timeout_s, self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _start_body_timer(self, payload: StreamReader) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body = payload
        self._body_timer = self._loop.call_later(self._body_timeout_s, self._body_late)
        payload.on_eof(self._body_complete)

    def _body_complete(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._body = None

    def _cancel_timers(self) -> None:
        self._cancel_header_timer()
        self._body_complete()

    def _headers_late(self) -> None:
        self._header_timer = None
        log.debug(
            "closing a connection from %s: no complete request within %ss",
            self._client,
            self._header_timeout_s,
        )
        if self._request_in_progress or self._messages:
            self.force_close()  # a response is on its way: no second one on the same connection
            return
        self._reply_and_close(
            408,
            "request_timeout",
            f"The request's headers did not arrive within {self._header_timeout_s:g} s.",
        )

    def _body_late(self) -> None:
        self._body_timer = None
        payload, self._body = self._body, None
        log.debug("closing a connection from %s: the body took over %ss", self._client, self._body_timeout_s)
        if payload is None or payload.is_eof():
            return
        if not self._request_in_progress:
            self.force_close()  # answered already: what is left of the body is not worth waiting for
            return
        # The handler reading it gets 408 (web.middlewares.errors); the connection closes after that answer.
        self._close_gently = True
        payload.set_exception(
            BodyTimeout(f"The request body did not arrive within {self._body_timeout_s:g} s.")
        )

    def _reply_and_close(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        if self.transport is not None:
            self.transport.write(_raw_error(status, code, message, headers))
        self._linger()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        sent = await super().finish_response(request, resp, start_time)
        if self._close_gently:
            self._linger()  # answered a client that may still be sending (a late body, a refused request)
        return sent

    def _linger(self) -> None:
        """Half-close and drop whatever the client still sends for LINGER_S, then close."""
        transport = self.transport
        if transport is None or self._linger_timer is not None:
            return
        # From here aiohttp stops (and data_received drops what arrives); we close the socket ourselves.
        self._force_close = True
        if self._waiter is not None:
            self._waiter.cancel()
        if transport.can_write_eof():
            transport.write_eof()
        self._linger_timer = self._loop.call_later(LINGER_S, transport.close)

    # -- errors aiohttp answers itself ------------------------------------------------------------------

    def log_exception(self, *args: Any, **kw: Any) -> None:
        # aiohttp reads what is left of a body after the response ("lingering"); a body that could not be
        # read (answered 400 or 408 already) raises there again: the client's doing, not an error of ours.
        exc = kw.get("exc_info")
        if isinstance(exc, RequestPayloadError | http_exceptions.HttpProcessingError | BodyTimeout):
            log.debug("dropped the rest of an unreadable request body: %s", type(exc).__name__)
            return
        super().log_exception(*args, **kw)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The parser's refusals, and failures outside the app's error middleware, as the API's JSON."""
        if status == 400 and isinstance(exc, http_exceptions.HttpProcessingError):
            self._close_gently = True  # the rest of what the client sends is unreadable
            status, code, text = _parse_error(exc, self)
            # One line, without the request's bytes (aiohttp logs a traceback quoting them).
            log.info(
                "refused a malformed request from %s: %s (%d)", request.remote, type(exc).__name__, status
            )
        elif isinstance(exc, ConnectionError):
            log.debug("client %s went away: %s", request.remote, type(exc).__name__)
            code, text = http_error(status)
        else:
            if status >= 500:
                log.error("error handling %s %s", request.method, request.rel_url.path, exc_info=exc)
            code, text = http_error(status)
        if request.writer.output_size > 0:
            raise ConnectionError("A response was started already: the connection is closed instead.")
        response = error_response(status, code, text)
        response.force_close()
        return response


class GuardedServer(web.Server):
    """aiohttp's Server, building GuardedRequestHandler and answering aiohttp's own HTTP errors (raised
    outside the middlewares, such as 417 for an Expect header) as JSON."""

    def __init__(
        self,
        handler: Any,
        *,
        slots: ClientSlots,
        header_timeout_s: float,
        body_timeout_s: float,
        **kwargs: Any,
    ) -> None:
        async def json_errors(request: web.BaseRequest) -> web.StreamResponse:
            try:
                return await handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:
                    raise
                response = error_response(exc.status, *http_error(exc.status))
                response.force_close()
                return response

        super().__init__(json_errors, **kwargs)
        self.slots = slots
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """An AppRunner whose connections are GuardedRequestHandlers."""

    def __init__(
        self,
        app: web.Application,
        *,
        slots: ClientSlots,
        header_timeout_s: float,
        body_timeout_s: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self._guard: dict[str, Any] = {
            "slots": slots,
            "header_timeout_s": header_timeout_s,
            "body_timeout_s": body_timeout_s,
        }

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts the app and gathers aiohttp's handler settings
        return GuardedServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            **self._guard,
            **plain._kwargs,
        )
