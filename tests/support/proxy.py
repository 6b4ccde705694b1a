"""A small HTTP proxy on loopback that records what passes through it, for the pacing tests.

It forwards plain requests (`GET http://host/path`) and tunnels `CONNECT host:port`, optionally asks for
basic auth (407 without it), can leave from its own loopback address (`egress="127.0.0.2"`, so a site sees
each proxy as a different client), and can be told to refuse connections (`refuse()`: its port closes, as a
dead proxy's does) and to take them again (`accept()`, same port).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit

from .servers import free_port

HEAD_LIMIT = 64 * 1024
_DROP = ("proxy-authorization", "proxy-connection", "connection", "keep-alive")


@dataclass(frozen=True)
class Passed:
    method: str
    target: str  # "http://host:port/path" or "host:port" for CONNECT
    client: str
    authorized: bool


class RecordingProxy:
    def __init__(
        self,
        *,
        auth: tuple[str, str] | None = None,
        egress: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.auth = auth
        self.egress = egress
        self.host = host
        self.port = free_port()
        self.passed: list[Passed] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        """The URL to give mediabot, with the credentials when it asks for some."""
        creds = f"{self.auth[0]}:{self.auth[1]}@" if self.auth else ""
        return f"http://{creds}{self.host}:{self.port}"

    def targets(self, method: str | None = None) -> list[str]:
        return [p.target for p in self.passed if method is None or p.method == method]

    async def start(self) -> RecordingProxy:
        self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)
        return self

    async def refuse(self) -> None:
        """Close the port and drop every connection: a client's connect now fails (connection refused)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await server.wait_closed()

    async def accept(self) -> None:
        if self._server is None:
            await self.start()

    stop = refuse

    async def __aenter__(self) -> RecordingProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.refuse()

    def _authorized(self, headers: dict[str, str]) -> bool:
        if self.auth is None:
            return True
        value = headers.get("proxy-authorization", "")
        expected = base64.b64encode(f"{self.auth[0]}:{self.auth[1]}".encode()).decode()
        return value.strip() == f"Basic {expected}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        client = f"{writer.get_extra_info('peername')[0]}"
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            await self._close(writer)
            return
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ", 2)
        except ValueError:
            await self._answer(writer, 400, "Bad Request")
            return
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        authorized = self._authorized(headers)
        self.passed.append(Passed(method.upper(), target, client, authorized))
        if not authorized:
            await self._answer(
                writer, 407, "Proxy Authentication Required", 'Proxy-Authenticate: Basic realm="test"\r\n'
            )
            return
        if method.upper() == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = await self._connect(host.strip("[]"), int(port or 443))
            if upstream is None:
                await self._answer(writer, 502, "Bad Gateway")
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await self._pipe(reader, writer, *upstream)
            return
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            await self._answer(writer, 400, "Bad Request")
            return
        upstream = await self._connect(parts.hostname, parts.port or 80)
        if upstream is None:
            await self._answer(writer, 502, "Bad Gateway")
            return
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        kept = [line for line in lines[1:] if line and line.partition(":")[0].strip().lower() not in _DROP]
        request = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
        upstream[1].write(request.encode("latin-1"))
        await self._pipe(reader, writer, *upstream)

    async def _connect(
        self, host: str, port: int
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        try:
            local = (self.egress, 0) if self.egress else None
            return await asyncio.wait_for(asyncio.open_connection(host, port, local_addr=local), 10)
        except (OSError, TimeoutError):
            return None

    async def _pipe(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        self._writers.add(up_writer)

        async def flow(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                with contextlib.suppress(OSError, RuntimeError):
                    dst.write_eof() if dst.can_write_eof() else dst.close()

        try:
            # The server's answer ends the exchange (we asked it for Connection: close); the client's side
            # only ends when it hangs up.
            client_side = asyncio.ensure_future(flow(reader, up_writer))
            await flow(up_reader, writer)
            client_side.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await client_side
        finally:
            self._writers.discard(up_writer)
            up_writer.transport.abort()
            await self._close(writer)

    async def _answer(self, writer: asyncio.StreamWriter, status: int, reason: str, extra: str = "") -> None:
        body = f"{status} {reason}\n".encode()
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\n{extra}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        await self._close(writer)

    async def _close(self, writer: asyncio.StreamWriter) -> None:
        self._writers.discard(writer)
        writer.close()
        with contextlib.suppress(OSError, ConnectionError):
            await writer.wait_closed()
