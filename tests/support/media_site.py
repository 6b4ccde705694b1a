"""A local media web site (aiohttp, 127.0.0.1 only) for tests and benchmarks.

Usage::

    site = MediaSite()            # or MediaSite(generate_media(...))
    await site.start()
    url = site.url("/video.mp4")  # http://127.0.0.1:PORT/video.mp4
    ...
    site.hits("/video.mp4"), site.downloads("/video.mp4")
    await site.stop()

Routes (all GET also answer HEAD; every response has a Content-Type):

==========================  ===========================================================
``/video.mp4``              small H.264/AAC mp4 (Range, Accept-Ranges, HEAD)
``/audio.m4a``              AAC tone
``/big.mp4``                ~30 MB mp4
``/clip/{n}.mp4``           the small video under any name (counted per concrete path)
``/page.html``              ``og:video`` (absolute URL) + title/og:title "Test Clip"
``/video-tag.html``         ``<video><source src="/video.mp4" type="video/mp4"></video>``
``/hls/index.m3u8``         HLS playlist of the small video; segments ``/hls/segNNN.ts``
``/hls-page.html``          ``<video>`` pointing at ``/hls/index.m3u8``
``/nomedia.html``           plain HTML without media
``/missing.mp4``            404
``/slow.mp4``               big.mp4 throttled (default 500 000 B/s, ``?rate=B_PER_S``), 16 KiB chunks, Range
``/slow.mp4?gate=NAME``     big.mp4 held by a gate instead: 64 KiB every 0.1 s (the job runs, with progress, for
                            ~50 s at most) until ``open_gate(NAME)``, then the rest at full speed; ``&head=N``
                            sends the first N bytes at once. A test that only needs a job to keep running while
                            it acts uses a gate (``gated_url()``), not a rate it then waits out
``/redirect?to=URL``        302 to URL
``/chunked/{n}.mp4``        the small video streamed without Content-Length (its size unknown until the end)
``/filler.mp4?bytes=N``     N bytes (not playable media) as ``video/mp4`` with a Content-Length; with
                            ``&chunked=1`` streamed without one, so the size is unknown until the end
``/cookie.mp4``             small video if the Cookie header contains ``session=ok``, else 403
``/channel/{name}.xml``     a channel's RSS feed, newest first: ``channel(name, n)`` sets how many clips it has
                            (``/clip/{name}-{i}.mp4``, "{name} {i}", i = n..1); it grows while a test runs
``/playlist.html?n=N``      N (default 3) items: ``<a href="/clip/i.mp4">`` and one ``<video>`` each, i = 1..N
``/thumb.png``              1280x720 PNG poster (larger than Telegram's thumbnail limits)
``/subs/{lang}.vtt``        WebVTT subtitles of the small video in ``en``, ``de`` (others 404)
``/formats.html``           JW Player page "Format Test": 240p (video.mp4) and 360p (big.mp4) with sizes,
                            poster ``/thumb.png``, subtitle tracks ``en`` and ``de``
                            (``?broken=LANG`` lists one more track, whose file is a 404)
``/song.html``              JSON-LD page "Song Title" by "Some Artist" (2026-11-02) with ``/thumb.png``
                            as its thumbnail and ``/audio.m4a`` as its content
``/tagged.{ext}``           a tone whose own tags say "File Own Title" by "File Own Artist" (``FILE_TAGS``):
                            ext ``m4a`` (AAC), ``mp3`` (160 kbit/s), ``opus`` and ``ogg`` (Vorbis)
``/tagged-song.html``       ``/song.html`` with ``/tagged.{src}`` as its content (``?src=mp3``, default m4a)
``/titled.html``            ``og:video`` of ``/video.mp4`` (or of ``?video=URL``), titled by ``?title=`` (any script)
``/pages/{name}/video-tag.html``  ``<video>`` of ``/clip/{name}.mp4``: pages of one file name, other media
``/codecs.html?offer=...``  "Codec Test": a JW Player page playing ``/codecs.mpd`` with the same query
``/codecs.mpd?offer=...``   DASH manifest (sizes and codecs stated, one file per representation, as video
                            sites serve them) of a 2 s clip with two chapters: pictures only in H.264 (mp4),
                            VP9 (webm) and AV1 (mp4) at 144p, 240p and 360p (ids ``h264-240``...), sound only as
                            AAC (``aac``, m4a) and Opus (``opus``, webm). ``offer`` lists codecs (``vp9``)
                            or single pictures (``h264-240``), comma-separated (default: all). Made on first use.
``/codecs/{name}``          those files (``vp9-360.webm``, ``sound-aac.m4a``...), and ``chapters.m4a``
                            (AAC with two chapters)
``/counter.{mp4,m4a}``      16 s whose every frame says which it is, with three chapters (tests/support/chaptered.py),
                            made on first use
``/counter.html``           JSON-LD "Counter" whose content is ``/counter.mp4``, its length (16 s) stated
``/chapters.html?kind=K``   JSON-LD "Chapter Clip" whose content (``/video.mp4``, or ``/audio.m4a`` for
                            ``kind=audio``) has no chapters of its own but the page lists two (``hasPart``)
==========================  ===========================================================

Counting:

* ``hits(path)``: GET requests for the path (query string ignored; HEAD is counted by ``heads``).
* ``downloads(path)``: GET responses whose body reached the client completely, and whose
  body is the whole resource or larger than 64 KiB (so tiny probe ranges do not count).
  "Reached the client" means every byte left our buffers and was acknowledged by the
  client's TCP stack while the connection was still open (Linux ``TCP_INFO`` + ``SIOCOUTQ``
  on a dup of the socket). yt-dlp's generic extractor first GETs a direct URL, reads only the
  headers and hangs up; its socket cannot absorb a body larger than the client's receive
  window (~64-130 KiB on loopback), so that probe is not counted, while the real download is.
  Bodies smaller than the receive window cannot be told apart that way: keep media files
  larger than ~200 KB if a test depends on the distinction (``video.mp4`` is ~250 KB).
  The count is evaluated when ``downloads()`` is called, so no sleep is needed after the
  client returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import html
import json
import logging
import socket
import struct
import termios
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from .media import (
    CODEC_HEIGHTS,
    CODEC_SECONDS,
    CODECS,
    SOUNDS,
    CodecMedia,
    MediaFiles,
    generate_codec_media,
    generate_media,
)

log = logging.getLogger(__name__)

CHUNK = 256 * 1024  # unthrottled write size
SLOW_CHUNK = 16 * 1024
SLOW_DEFAULT_RATE = 500_000  # bytes per second
# While a gate is shut: GATE_CHUNK every GATE_TRICKLE_S. A steady trickle from the first byte, so that yt-dlp
# sizes its reads to it (it grows them to what arrived in the last second, up to 4 MB: after a fast burst
# one read would wait out seconds of trickle) and its progress hook, where a stop is noticed, keeps running.
GATE_CHUNK = 64 * 1024
GATE_TRICKLE_S = 0.1
DOWNLOAD_MIN_PARTIAL = 64 * 1024
PENDING_TIMEOUT = 60.0  # give up deciding about a delivery after this long

_TCP_ESTABLISHED = 1
_TCP_CLOSE_WAIT = 8
_OPEN_STATES = (_TCP_ESTABLISHED, _TCP_CLOSE_WAIT)

HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".png": "image/png",
    ".mp3": "audio/mpeg",
    ".opus": "audio/ogg",
    ".ogg": "audio/ogg",
}

# Subtitles of the small video, by language: two cues each.
SUBTITLES = {
    "en": ("Hello there", "General Kenobi"),
    "de": ("Hallo da", "General Kenobi, auf Deutsch"),
}

_CLIENT_GONE = (ConnectionError,)


@dataclass(frozen=True)
class Blob:
    data: bytes
    content_type: str
    last_modified: str


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: str
    range: str | None
    cookie: str | None
    user_agent: str | None


class _Pending:
    """A response whose body was fully handed to the kernel; waiting for the client's ACKs."""

    __slots__ = ("path", "sock", "transport", "deadline")

    def __init__(self, path: str, sock: socket.socket, transport: asyncio.BaseTransport | None) -> None:
        self.path = path
        self.sock = sock
        self.transport = transport
        self.deadline = time.monotonic() + PENDING_TIMEOUT

    def state(self) -> bool | None:
        """True: delivered; False: connection broke first; None: not known yet."""
        t = self.transport
        if t is not None and getattr(t, "get_write_buffer_size", lambda: 0)() > 0:
            return None if time.monotonic() < self.deadline else False
        try:
            state = self.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
            if state not in _OPEN_STATES:
                return False
            outq = struct.unpack("i", fcntl.ioctl(self.sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]
        except OSError:
            return False
        if outq == 0:
            return True
        return None if time.monotonic() < self.deadline else False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _norm_path(path: str) -> str:
    """'/a?b=1' -> '/a'; 'http://h:1/a?b' -> '/a'."""
    return urlsplit(path).path or "/"


def _item_count(request: web.Request) -> int | None:
    """`?n=` of the list pages: 0..10000 (3 when absent), None when it is anything else."""
    try:
        n = int(request.query.get("n", "3"))
    except ValueError:
        return None
    return n if 0 <= n <= 10_000 else None


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """Single byte range -> (start, end_inclusive); None = serve whole; 'unsatisfiable' -> 416."""
    if not header:
        return None
    header = header.strip()
    if not header.lower().startswith("bytes=") or "," in header:
        return None  # unknown unit or multi-range: ignoring Range is allowed (RFC 9110)
    spec = header[6:].strip()
    first, sep, last = spec.partition("-")
    if not sep:
        return None
    try:
        if first == "":  # suffix range: last N bytes
            n = int(last)
            if n <= 0:
                return "unsatisfiable"
            return (max(size - n, 0), size - 1) if size else "unsatisfiable"
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start < 0 or (last and end < start):
        return None  # syntactically invalid: ignore the header
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size - 1)


class MediaSite:
    def __init__(self, files: MediaFiles | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("MediaSite serves on loopback only")
        self.files = files
        self.host = host
        self._port = port
        self.base_url = ""
        self.last_cookie: str | None = None
        self.requests: list[RequestRecord] = []
        self._hits: Counter[str] = Counter()
        self._heads: Counter[str] = Counter()
        self._downloads: Counter[str] = Counter()
        self._pending: set[_Pending] = set()
        self._active: set[asyncio.BaseTransport] = set()  # connections with a body in flight
        self._blobs: dict[str, Blob] = {}
        self._codec_media: CodecMedia | None = None
        self._codec_lock = asyncio.Lock()
        self._gates: dict[str, asyncio.Event] = {}
        self._channels: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self._reaper: asyncio.Task[None] | None = None
        self._stopping = False
        self.app = self._make_app()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> MediaSite:
        if self._runner is not None:
            return self
        if self.files is None:
            self.files = await asyncio.to_thread(generate_media)
        self._blobs = await asyncio.to_thread(self._load_blobs, self.files)
        self._stopping = False
        if self.app.frozen:  # restarted after stop(): an aiohttp Application runs once
            self.app = self._make_app()
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=2.0, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._port))
        sock.listen(512)
        sock.setblocking(False)
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner
        port = sock.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.base_url = f"http://{host}:{port}"
        self._reaper = asyncio.create_task(self._reap_loop(), name="media-site-reaper")
        return self

    async def stop(self) -> None:
        self._stopping = True
        for gate in self._gates.values():
            gate.set()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        # Cut connections still receiving a body (e.g. /slow.mp4, or a client that stopped
        # reading): the handlers then end at once instead of holding up runner.cleanup().
        for transport in list(self._active):
            transport.abort()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._resolve_pending(final=True)

    async def __aenter__(self) -> MediaSite:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1]) if self.base_url else 0

    # ------------------------------------------------------------------ counters

    def url(self, path: str) -> str:
        if not self.base_url:
            raise RuntimeError("MediaSite is not started")
        return self.base_url + (path if path.startswith("/") else "/" + path)

    def gated_url(self, name: str | None = None, *, head: int | None = None) -> str:
        """The URL of big.mp4 behind a shut gate (a new name when none is given; see ``/slow.mp4?gate``)."""
        name = name or uuid.uuid4().hex[:12]
        self._gate(name)
        query = f"gate={name}" + (f"&head={head}" if head is not None else "")
        return self.url(f"/slow.mp4?{query}")

    def open_gate(self, name_or_url: str) -> None:
        """Let a gated download (and every later request through that gate) finish at full speed."""
        name = name_or_url
        if "gate=" in name_or_url:
            name = name_or_url.split("gate=", 1)[1].split("&", 1)[0]
        self._gate(name).set()

    def _gate(self, name: str) -> asyncio.Event:
        return self._gates.setdefault(name, asyncio.Event())

    def hits(self, path: str) -> int:
        return self._hits[_norm_path(path)]

    def heads(self, path: str) -> int:
        return self._heads[_norm_path(path)]

    def downloads(self, path: str, settle: float = 0.1) -> int:
        """Completed downloads of path (see module doc).

        A body the client has read may still wait for the client's delayed ACK (up to
        ~40 ms on Linux loopback); bodies of this path still in flight are therefore given up
        to ``settle`` seconds (a short blocking wait: ACKs are handled by the kernel, not by
        this event loop) before counting.
        """
        key = _norm_path(path)
        self._resolve_pending()
        deadline = time.monotonic() + settle
        while any(p.path == key for p in self._pending) and time.monotonic() < deadline:
            time.sleep(0.001)
            self._resolve_pending()
        return self._downloads[key]

    def pending_downloads(self) -> int:
        """Bodies written but not yet known to be delivered (or broken)."""
        self._resolve_pending()
        return len(self._pending)

    def in_flight(self) -> int:
        """Responses whose body is being written right now (e.g. a /slow.mp4 stream)."""
        return len(self._active)

    def reset_counts(self) -> None:
        self._resolve_pending(final=True)
        self._hits.clear()
        self._heads.clear()
        self._downloads.clear()
        self.requests.clear()
        self.last_cookie = None

    def _resolve_pending(self, final: bool = False) -> None:
        for p in list(self._pending):
            ok = p.state()
            if ok is None and not final:
                continue
            if ok:
                self._downloads[p.path] += 1
            self._pending.discard(p)
            p.close()

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(0.05 if self._pending else 0.25)
            self._resolve_pending()

    # ------------------------------------------------------------------ app

    @staticmethod
    def _load_blobs(files: MediaFiles) -> dict[str, Blob]:
        def blob(p: Path) -> Blob:
            ctype = CONTENT_TYPES.get(p.suffix, "application/octet-stream")
            return Blob(p.read_bytes(), ctype, formatdate(p.stat().st_mtime, usegmt=True))

        blobs = {
            "video": blob(files.video_mp4),
            "audio": blob(files.audio_m4a),
            "big": blob(files.big_mp4),
            "thumb": blob(files.thumb_png),
        }
        for kind, path in files.tagged.items():
            blobs[f"tagged.{kind}"] = blob(path)
        for p in sorted(files.hls_dir.iterdir()):
            if p.suffix in (".m3u8", ".ts"):
                blobs["hls/" + p.name] = blob(p)
        return blobs

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.middlewares.append(self._record_middleware)
        r = app.router
        r.add_get("/video.mp4", self._blob_handler("video"))
        r.add_get("/audio.m4a", self._blob_handler("audio"))
        r.add_get("/big.mp4", self._blob_handler("big"))
        r.add_get("/clip/{name:[^/]+}.mp4", self._blob_handler("video"))
        r.add_get("/cookie.mp4", self._cookie)
        r.add_get("/slow.mp4", self._slow)
        r.add_get("/stall.mp4", self._stall)
        r.add_get("/missing.mp4", self._missing)
        r.add_get("/hls/{name:[^/]+}", self._hls)
        r.add_get("/page.html", self._page)
        r.add_get("/video-tag.html", self._video_tag)
        r.add_get("/hls-page.html", self._hls_page)
        r.add_get("/nomedia.html", self._nomedia)
        r.add_get("/playlist.html", self.playlist_found)
        r.add_get("/feed.xml", self._feed)
        r.add_get("/channel/{name:[^/]+}.xml", self._channel)
        r.add_get("/qualities.html", self._qualities)
        r.add_get("/thumb.png", self._blob_handler("thumb"))
        r.add_get("/subs/{lang}.vtt", self._subtitles)
        r.add_get("/formats.html", self._formats)
        r.add_get("/song.html", self._song)
        for kind in ("m4a", "mp3", "opus", "ogg"):
            r.add_get(f"/tagged.{kind}", self._blob_handler(f"tagged.{kind}"))
        r.add_get("/tagged-song.html", self._tagged_song)
        r.add_get("/titled.html", self._titled)
        r.add_get("/pages/{name:[^/]+}/video-tag.html", self._named_video_tag)
        r.add_get("/codecs.html", self._codecs_page)
        r.add_get("/codecs.mpd", self._codecs_manifest)
        r.add_get("/codecs/{name}", self._codec_file)
        r.add_get("/chapters.html", self._chapters_page)
        r.add_get("/counter.{ext:mp4|m4a}", self._counter)
        r.add_get("/counter.html", self._counter_page)
        r.add_get("/redirect", self._redirect)
        r.add_get("/filler.mp4", self._filler)
        r.add_get("/chunked/{name:[^/]+}.mp4", self._chunked)
        r.add_get("/", self._index)
        return app

    @web.middleware
    async def _record_middleware(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        path = request.path
        if request.method == "GET":
            self._hits[path] += 1
        elif request.method == "HEAD":
            self._heads[path] += 1
        h = request.headers
        self.requests.append(
            RequestRecord(
                request.method,
                path,
                request.query_string,
                h.get("Range"),
                h.get("Cookie"),
                h.get("User-Agent"),
            )
        )
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.content_type in ("", "application/octet-stream"):
                exc.content_type = "text/plain"
            raise

    # ------------------------------------------------------------------ body sending

    async def _send(
        self,
        request: web.Request,
        data: bytes,
        content_type: str,
        *,
        rate: float | None = None,
        gate: tuple[asyncio.Event, int] | None = None,
        last_modified: str | None = None,
        status: int = 200,
    ) -> web.StreamResponse:
        """Send data (honouring a single Range) and record whether it was delivered."""
        size = len(data)
        start, end = 0, size - 1
        rng = _parse_range(request.headers.get("Range"), size) if status == 200 else None
        if rng == "unsatisfiable":
            return web.Response(
                status=416, text="range not satisfiable\n", content_type="text/plain",
                headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
            )  # fmt: skip
        resp = web.StreamResponse(status=status)
        resp.content_type = content_type.split(";")[0]
        if "charset=" in content_type:
            resp.charset = content_type.split("charset=")[1]
        resp.headers["Accept-Ranges"] = "bytes"
        if last_modified:
            resp.headers["Last-Modified"] = last_modified
        if isinstance(rng, tuple):
            start, end = rng
            resp.set_status(206)
            resp.headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        length = max(end - start + 1, 0)
        resp.content_length = length
        if request.method == "HEAD":
            await resp.prepare(request)
            return resp

        path = request.path
        view = memoryview(data)[start : end + 1]
        transport = request.transport
        if transport is not None:
            self._active.add(transport)
        try:
            await resp.prepare(request)
            if gate is not None:
                await self._gated_write(request, resp, view, *gate)
                if self._stopping:
                    return self._abort(request, resp)
            elif rate is None:
                for off in range(0, length, CHUNK):
                    if self._stopping:
                        return self._abort(request, resp)
                    await resp.write(view[off : off + CHUNK])
            else:
                await self._throttled_write(request, resp, view, rate)
                if self._stopping:
                    return self._abort(request, resp)
            await resp.write_eof()
        except _CLIENT_GONE:
            return resp  # the client hung up: not a download
        finally:
            if transport is not None:
                self._active.discard(transport)
        if length == size or length > DOWNLOAD_MIN_PARTIAL:
            self._track_delivery(request, path)
        return resp

    async def _throttled_write(
        self, request: web.Request, resp: web.StreamResponse, view: memoryview, rate: float
    ) -> None:
        t0 = time.monotonic()
        sent = 0
        n = len(view)
        while sent < n and not self._stopping:
            transport = request.transport
            if transport is None or transport.is_closing():
                raise ConnectionResetError("client went away")
            chunk = view[sent : sent + SLOW_CHUNK]
            await resp.write(chunk)
            sent += len(chunk)
            delay = t0 + sent / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)

    async def _gated_write(
        self, request: web.Request, resp: web.StreamResponse, view: memoryview, gate: asyncio.Event, head: int
    ) -> None:
        sent = 0
        n = len(view)
        while sent < n and not self._stopping:
            transport = request.transport
            if transport is None or transport.is_closing():
                raise ConnectionResetError("client went away")
            step = CHUNK if gate.is_set() else max(min(head - sent, CHUNK), GATE_CHUNK)
            await resp.write(view[sent : sent + step])
            sent += step
            if sent >= head and not gate.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(gate.wait(), GATE_TRICKLE_S)

    def _abort(self, request: web.Request, resp: web.StreamResponse) -> web.StreamResponse:
        # The site is stopping: cut the connection so the client sees an error, not a hang.
        if request.transport is not None:
            request.transport.abort()
        return resp

    def _track_delivery(self, request: web.Request, path: str) -> None:
        transport = request.transport
        tsock = transport.get_extra_info("socket") if transport is not None else None
        try:
            sock = tsock.dup() if tsock is not None and tsock.fileno() >= 0 else None
        except OSError:
            sock = None
        if sock is None:
            return  # connection already gone before we could look: cannot confirm delivery
        try:
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
        except (OSError, AttributeError):
            # No TCP_INFO (not Linux / not TCP): fall back to "body written to the kernel".
            sock.close()
            self._downloads[path] += 1
            return
        p = _Pending(path, sock, transport)
        self._pending.add(p)
        self._resolve_one(p)

    def _resolve_one(self, p: _Pending) -> None:
        ok = p.state()
        if ok is None:
            return
        if ok:
            self._downloads[p.path] += 1
        self._pending.discard(p)
        p.close()

    # ------------------------------------------------------------------ handlers

    def _blob_handler(self, key: str):  # type: ignore[no-untyped-def]
        async def handler(request: web.Request) -> web.StreamResponse:
            b = self._blobs[key]
            return await self._send(request, b.data, b.content_type, last_modified=b.last_modified)

        return handler

    async def _counter_page(self, request: web.Request) -> web.StreamResponse:
        """A page that states its media's length (JSON-LD, as video sites do), so yt-dlp knows it before any
        download: the counter video, 16 s."""
        ld = {
            "@context": "https://schema.org", "@type": "VideoObject", "name": "Counter",
            "uploadDate": "2026-12-01", "duration": "PT16S", "contentUrl": self.url("/counter.mp4"),
        }  # fmt: skip
        head = f'<script type="application/ld+json">{json.dumps(ld)}</script>\n'
        return await self._html(request, "Counter", "<h1>Counter</h1>", head)

    async def _counter(self, request: web.Request) -> web.StreamResponse:
        from .chaptered import generate_chaptered

        media = await asyncio.to_thread(generate_chaptered)
        path = media.video if request.match_info["ext"] == "mp4" else media.audio
        key = f"counter.{request.match_info['ext']}"
        if key not in self._blobs:
            data = await asyncio.to_thread(path.read_bytes)
            ctype = CONTENT_TYPES.get(path.suffix, "application/octet-stream")
            self._blobs[key] = Blob(data, ctype, formatdate(path.stat().st_mtime, usegmt=True))
        b = self._blobs[key]
        return await self._send(request, b.data, b.content_type, last_modified=b.last_modified)

    async def _cookie(self, request: web.Request) -> web.StreamResponse:
        cookie = request.headers.get("Cookie")
        self.last_cookie = cookie
        if not cookie or "session=ok" not in cookie:
            return web.Response(status=403, text="forbidden: no session cookie\n", content_type="text/plain")
        b = self._blobs["video"]
        return await self._send(request, b.data, b.content_type, last_modified=b.last_modified)

    async def _slow(self, request: web.Request) -> web.StreamResponse:
        if "gate" in request.query:
            return await self._gated(request)
        try:
            rate = float(request.query.get("rate", SLOW_DEFAULT_RATE))
        except ValueError:
            rate = 0
        if not rate > 0:
            return web.Response(
                status=400, text="rate must be a positive number\n", content_type="text/plain"
            )
        b = self._blobs["big"]
        return await self._send(request, b.data, b.content_type, rate=rate, last_modified=b.last_modified)

    async def _gated(self, request: web.Request) -> web.StreamResponse:
        name = request.query.get("gate", "")
        try:
            head = int(request.query.get("head", 0))
        except ValueError:
            head = -1
        if not name or head < 0:
            return web.Response(
                status=400, text="gate=NAME is required, head a byte count\n", content_type="text/plain"
            )
        b = self._blobs["big"]
        return await self._send(
            request, b.data, b.content_type, gate=(self._gate(name), head), last_modified=b.last_modified
        )

    async def _stall(self, request: web.Request) -> web.StreamResponse:
        """The first 256 KB of the big clip, then silence with the connection open (a server that hangs
        mid-download), until the client goes away or a minute has passed."""
        b = self._blobs["big"]
        resp = web.StreamResponse(headers={"Content-Type": b.content_type})
        resp.content_length = len(b.data)
        await resp.prepare(request)
        await resp.write(b.data[: 256 * 1024])
        for _ in range(600):
            if request.transport is None or request.transport.is_closing():
                break
            await asyncio.sleep(0.1)
        return resp

    async def _chunked(self, request: web.Request) -> web.StreamResponse:
        b = self._blobs["video"]
        resp = web.StreamResponse(headers={"Content-Type": b.content_type})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        if request.method == "HEAD":
            return resp
        try:
            for off in range(0, len(b.data), CHUNK):
                await resp.write(b.data[off : off + CHUNK])
            await resp.write_eof()
        except _CLIENT_GONE:
            pass
        return resp

    async def _filler(self, request: web.Request) -> web.StreamResponse:
        """N bytes of filler, generated as they are sent (a file larger than a small disk, for example)."""
        try:
            size = int(request.query.get("bytes", "0"))
        except ValueError:
            size = -1
        if not 0 < size <= 8 * 1024**3:
            return web.Response(status=400, text="bytes must be 1..8 GiB\n", content_type="text/plain")
        resp = web.StreamResponse(headers={"Content-Type": "video/mp4"})
        if request.query.get("chunked") == "1":
            resp.enable_chunked_encoding()
        else:
            resp.content_length = size
        await resp.prepare(request)
        if request.method == "HEAD":
            return resp
        block = bytes(CHUNK)
        try:
            for off in range(0, size, CHUNK):
                if self._stopping:
                    return self._abort(request, resp)
                await resp.write(block[: min(CHUNK, size - off)])
            await resp.write_eof()
        except _CLIENT_GONE:
            pass
        return resp

    async def _missing(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="404: Not Found\n", content_type="text/plain")

    async def _hls(self, request: web.Request) -> web.StreamResponse:
        b = self._blobs.get("hls/" + request.match_info["name"])
        if b is None:
            return await self._missing(request)
        return await self._send(request, b.data, b.content_type)

    async def _html(self, request: web.Request, title: str, body: str, head: str = "") -> web.StreamResponse:
        t = html.escape(title)
        doc = (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{t}</title>\n{head}</head>\n<body>\n{body}\n</body>\n</html>\n"
        )
        return await self._send(request, doc.encode(), HTML)

    async def _page(self, request: web.Request) -> web.StreamResponse:
        video = html.escape(self.url("/video.mp4"))
        head = (
            '<meta property="og:title" content="Test Clip">\n'
            '<meta property="og:type" content="video.other">\n'
            f'<meta property="og:video" content="{video}">\n'
            '<meta property="og:video:type" content="video/mp4">\n'
            '<meta property="og:video:width" content="320">\n'
            '<meta property="og:video:height" content="240">\n'
        )
        return await self._html(
            request, "Test Clip", "<h1>Test Clip</h1>\n<p>A page with an og:video.</p>", head
        )

    async def _video_tag(self, request: web.Request) -> web.StreamResponse:
        body = '<h1>Video tag</h1>\n<video controls><source src="/video.mp4" type="video/mp4"></video>'
        return await self._html(request, "Video Tag Clip", body)

    async def _hls_page(self, request: web.Request) -> web.StreamResponse:
        body = (
            "<h1>HLS</h1>\n<video controls>"
            '<source src="/hls/index.m3u8" type="application/x-mpegURL"></video>'
        )
        return await self._html(request, "HLS Clip", body)

    async def _nomedia(self, request: web.Request) -> web.StreamResponse:
        body = '<h1>Nothing to see</h1>\n<p>This page has no media at all. <a href="/">Home</a></p>'
        return await self._html(request, "No Media Here", body)

    async def playlist_found(self, request: web.Request) -> web.StreamResponse:
        n = _item_count(request)
        if n is None:
            return web.Response(
                status=400, text="n must be an integer in 0..10000\n", content_type="text/plain"
            )
        links = "\n".join(f'<li><a href="/clip/{i}.mp4">Clip {i}</a></li>' for i in range(1, n + 1))
        videos = "\n".join(
            f'<video controls><source src="/clip/{i}.mp4" type="video/mp4"></video>' for i in range(1, n + 1)
        )
        body = f"<h1>Playlist of {n}</h1>\n<ul>\n{links}\n</ul>\n{videos}"
        return await self._html(request, f"Playlist of {n}", body)

    async def _feed(self, request: web.Request) -> web.StreamResponse:
        """An RSS feed of n clips (a channel, as yt-dlp's generic extractor reads one); `item=slow&rate=R`
        makes every item a slow download (R bytes/s) of its own, `item=gated&gate=NAME` a gated download
        behind gate `NAME-i` (i = 1..n), `item=page` a <video> page of its own."""
        n = _item_count(request)
        if n is None:
            return web.Response(
                status=400, text="n must be an integer in 0..10000\n", content_type="text/plain"
            )
        if request.query.get("item") == "slow":
            rate = request.query.get("rate", str(SLOW_DEFAULT_RATE))
            links = [self.url(f"/slow.mp4?rate={rate}&item={i}") for i in range(1, n + 1)]
        elif request.query.get("item") == "gated":
            name = request.query.get("gate") or uuid.uuid4().hex[:12]
            links = [self.url(f"/slow.mp4?gate={name}-{i}") for i in range(1, n + 1)]
        elif request.query.get("item") == "page":
            # Every item a <video> page of its own, all titled alike ("Video Tag Clip").
            links = [self.url(f"/pages/{i}/video-tag.html") for i in range(1, n + 1)]
        else:
            links = [self.url(f"/clip/{i}.mp4") for i in range(1, n + 1)]
        items = "\n".join(
            f"<item><title>Clip {i}</title><link>{html.escape(links[i - 1])}</link>"
            f"<guid>clip-{i}</guid></item>"
            for i in range(1, n + 1)
        )
        doc = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>Channel of {n}</title><link>{html.escape(self.url('/'))}</link>"
            f"<description>A feed of {n} clips</description>\n{items}\n</channel></rss>\n"
        )
        return await self._send(request, doc.encode(), "application/rss+xml")

    def channel(self, name: str, n: int) -> str:
        """Give channel `name` `n` clips (a new video appears when n grows); its feed's address."""
        self._channels[name] = n
        return self.url(f"/channel/{name}.xml")

    async def _channel(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in self._channels:
            raise web.HTTPNotFound()
        n = self._channels[name]
        items = "\n".join(
            f"<item><title>{html.escape(name)} {i}</title>"
            f"<link>{html.escape(self.url(f'/clip/{name}-{i}.mp4'))}</link><guid>{html.escape(name)}-{i}</guid></item>"
            for i in range(n, 0, -1)
        )
        doc = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            f"<title>Channel {html.escape(name)}</title><link>{html.escape(self.url('/'))}</link>"
            f"<description>{n} clips, newest first</description>\n{items}\n</channel></rss>\n"
        )
        return await self._send(request, doc.encode(), "application/rss+xml")

    async def _qualities(self, request: web.Request) -> web.StreamResponse:
        """A player page offering the clip at two qualities with their sizes (as JW Player sites do), so a
        smaller format can be chosen before downloading."""
        sources = [
            {"file": self.url("/big.mp4"), "label": "360p", "height": 360, "type": "mp4",
             "filesize": len(self._blobs["big"].data)},
            {"file": self.url("/video.mp4"), "label": "240p", "height": 240, "type": "mp4",
             "filesize": len(self._blobs["video"].data)},
        ]  # fmt: skip
        setup = json.dumps({"playlist": [{"title": "Two Qualities", "duration": 10, "sources": sources}]})
        body = f'<div id="player"></div>\n<script>jwplayer("player").setup({setup});</script>'
        return await self._html(request, "Two Qualities", body)

    async def _subtitles(self, request: web.Request) -> web.StreamResponse:
        cues = SUBTITLES.get(request.match_info["lang"])
        if cues is None:
            return web.Response(status=404, text="no such subtitles\n", content_type="text/plain")
        doc = (
            "WEBVTT\n\n"
            f"00:00:00.000 --> 00:00:01.500\n{cues[0]}\n\n"
            f"00:00:01.500 --> 00:00:03.000\n{cues[1]}\n"
        )
        return await self._send(request, doc.encode(), "text/vtt; charset=utf-8")

    async def _formats(self, request: web.Request) -> web.StreamResponse:
        """A player page with two formats of known size, a poster and two subtitle tracks: what the format
        picker, thumbnails and subtitles are tested against."""
        sources = [
            {"file": self.url("/video.mp4"), "label": "240p", "height": 240, "type": "mp4",
             "filesize": len(self._blobs["video"].data)},
            {"file": self.url("/big.mp4"), "label": "360p", "height": 360, "type": "mp4",
             "filesize": len(self._blobs["big"].data)},
        ]  # fmt: skip
        # ?broken=fr lists a track the site can't deliver (its file is a 404), as broken players do.
        langs = [*SUBTITLES, *request.query.getall("broken", [])]
        tracks = [
            {"file": self.url(f"/subs/{lang}.vtt"), "kind": "captions", "label": lang} for lang in langs
        ]
        setup = json.dumps({"playlist": [{"title": "Format Test", "duration": 3, "image": self.url("/thumb.png"),
                                          "sources": sources, "tracks": tracks}]})  # fmt: skip
        body = f'<div id="player"></div>\n<script>jwplayer("player").setup({setup});</script>'
        return await self._html(request, "Format Test", body)

    async def _song(self, request: web.Request, content: str = "/audio.m4a") -> web.StreamResponse:
        """A page that names its media's title, artist, date and cover (JSON-LD, as music sites do)."""
        ld = {
            "@context": "https://schema.org", "@type": "VideoObject", "name": "Song Title",
            "author": {"@type": "Person", "name": "Some Artist"}, "uploadDate": "2026-11-02",
            "thumbnailUrl": self.url("/thumb.png"), "contentUrl": self.url(content), "duration": "PT3S",
        }  # fmt: skip
        head = f'<script type="application/ld+json">{json.dumps(ld)}</script>\n'
        return await self._html(request, "Song Title", "<h1>Song Title</h1>", head)

    async def _tagged_song(self, request: web.Request) -> web.StreamResponse:
        """The song page, its sound a file whose own tags name another title and artist."""
        src = request.query.get("src", "m4a")
        if f"tagged.{src}" not in self._blobs:
            return web.Response(
                status=400, text="src must be m4a, mp3, opus or ogg\n", content_type="text/plain"
            )
        return await self._song(request, f"/tagged.{src}")

    async def _titled(self, request: web.Request) -> web.StreamResponse:
        """An og:video page with the title asked for, in whatever script (history search is tested with it)."""
        title = request.query.get("title", "Untitled")
        video = html.escape(request.query.get("video") or self.url("/video.mp4"))
        head = (
            f'<meta property="og:title" content="{html.escape(title)}">\n'
            f'<meta property="og:video" content="{video}">\n'
            '<meta property="og:video:type" content="video/mp4">\n'
        )
        return await self._html(request, title, f"<h1>{html.escape(title)}</h1>", head)

    async def _named_video_tag(self, request: web.Request) -> web.StreamResponse:
        """Pages that share a file name but show other media: yt-dlp names such media after the page's file."""
        name = html.escape(request.match_info["name"])
        body = f'<h1>Video tag</h1>\n<video controls><source src="/clip/{name}.mp4" type="video/mp4"></video>'
        return await self._html(request, "Video Tag Clip", body)

    # Site chapters (JSON-LD hasPart clips), as yt-dlp reads them into its info's `chapters`.
    SITE_CHAPTERS = (("Intro", 0.0, 1.5), ("Outro", 1.5, 3.0))

    async def codec_media(self) -> CodecMedia:
        async with self._codec_lock:
            if self._codec_media is None:
                self._codec_media = await asyncio.to_thread(generate_codec_media)
            return self._codec_media

    def _offered(self, request: web.Request) -> list[tuple[str, int]] | None:
        """`?offer=vp9,h264-240` as (codec, height) pairs, best first; None when it names something unknown."""
        offered: list[tuple[str, int]] = []
        for token in request.query.get("offer", ",".join(CODECS)).split(","):
            codec, _, height = token.strip().partition("-")
            if codec not in CODECS or (height and (not height.isdigit() or int(height) not in CODEC_HEIGHTS)):
                return None
            offered += [(codec, h) for h in CODEC_HEIGHTS if not height or h == int(height)]
        return sorted(set(offered), key=lambda o: (-o[1], o[0]))

    async def _codecs_page(self, request: web.Request) -> web.StreamResponse:
        """A player page whose video is the DASH manifest below (JW Player, as the other pages here)."""
        manifest = self.url(f"/codecs.mpd?{request.query_string}" if request.query_string else "/codecs.mpd")
        setup = json.dumps(
            {"playlist": [{"title": "Codec Test", "duration": CODEC_SECONDS,
                           "sources": [{"file": manifest, "type": "dash"}]}]}
        )  # fmt: skip
        body = f'<div id="player"></div>\n<script>jwplayer("player").setup({setup});</script>'
        return await self._html(request, "Codec Test", body)

    async def _codecs_manifest(self, request: web.Request) -> web.StreamResponse:
        """The same clip in several codecs and heights, as a DASH manifest stating codecs, sizes and heights
        (the way YouTube serves formats: pictures and sound apart)."""
        media = await self.codec_media()
        offered = self._offered(request)
        if offered is None:
            return web.Response(status=400, text="unknown format in offer\n", content_type="text/plain")

        def representation(rid: str, path: Path, codecs: str, extra: str) -> str:
            size = path.stat().st_size
            return (
                f'<Representation id="{rid}" codecs="{codecs}" bandwidth="{size * 8 // CODEC_SECONDS}"{extra}>'
                f'<BaseURL yt:contentLength="{size}">{self.url("/codecs/" + path.name)}</BaseURL>'
                "</Representation>"
            )

        sets = []
        for mime in sorted({CODECS[codec][1] for codec, _ in offered}):
            reps = "".join(
                representation(f"{codec}-{h}", media.video(codec, h), CODECS[codec][2],
                               f' width="{CODEC_HEIGHTS[h]}" height="{h}" frameRate="25"')
                for codec, h in offered if CODECS[codec][1] == mime
            )  # fmt: skip
            sets.append(f'<AdaptationSet contentType="video" mimeType="{mime}">{reps}</AdaptationSet>')
        for name, (_, mime, codecs, _) in SOUNDS.items():
            rep = representation(f"sound-{name}", media.sound(name), codecs, ' audioSamplingRate="48000"')
            sets.append(
                f'<AdaptationSet contentType="audio" mimeType="{mime}" lang="en">{rep}</AdaptationSet>'
            )
        doc = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:yt="http://youtube.com/yt/2012/10/10" '
            f'type="static" mediaPresentationDuration="PT{CODEC_SECONDS}S" '
            'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">'
            f'<Period duration="PT{CODEC_SECONDS}S">{"".join(sets)}</Period></MPD>\n'
        )
        return await self._send(request, doc.encode(), "application/dash+xml")

    async def _codec_file(self, request: web.Request) -> web.StreamResponse:
        media = await self.codec_media()
        found = {p.name: p for p in media.files()}.get(request.match_info["name"])
        if found is None:
            return await self._missing(request)
        data = await asyncio.to_thread(found.read_bytes)
        ctype = {".webm": "video/webm", ".m4a": "audio/mp4"}.get(found.suffix, "video/mp4")
        return await self._send(request, data, ctype)

    async def _chapters_page(self, request: web.Request) -> web.StreamResponse:
        """A page that lists its media's chapters (as video sites do), for media that has none inside."""
        audio = request.query.get("kind") == "audio"
        ld = {
            "@context": "https://schema.org", "@type": "VideoObject", "name": "Chapter Clip",
            "uploadDate": "2026-12-01", "duration": "PT3S",
            "contentUrl": self.url("/audio.m4a" if audio else "/video.mp4"),
            "hasPart": [{"@type": "Clip", "name": name, "startOffset": start, "endOffset": end}
                        for name, start, end in self.SITE_CHAPTERS],
        }  # fmt: skip
        head = f'<script type="application/ld+json">{json.dumps(ld)}</script>\n'
        return await self._html(request, "Chapter Clip", "<h1>Chapter Clip</h1>", head)

    async def _redirect(self, request: web.Request) -> web.Response:
        to = request.query.get("to")
        if not to:
            return web.Response(status=400, text="missing ?to=\n", content_type="text/plain")
        return web.Response(
            status=302, headers={"Location": to}, text=f"redirecting to {to}\n", content_type="text/plain"
        )

    async def _index(self, request: web.Request) -> web.StreamResponse:
        items = [
            "/video.mp4", "/audio.m4a", "/big.mp4", "/clip/1.mp4", "/page.html", "/video-tag.html",
            "/hls/index.m3u8", "/hls-page.html", "/nomedia.html", "/missing.mp4", "/slow.mp4", "/slow.mp4?gate=g",
            "/cookie.mp4", "/stall.mp4", "/playlist.html?n=3", "/feed.xml?n=3", "/qualities.html",
            "/thumb.png", "/subs/en.vtt", "/formats.html", "/song.html", "/tagged.mp3", "/tagged-song.html",
            "/titled.html?title=Gr%C3%B6%C3%9Fe", "/pages/a/video-tag.html", "/codecs.html", "/codecs.mpd",
            "/chapters.html", "/counter.html",
        ]  # fmt: skip
        body = "<ul>\n" + "\n".join(f"<li><span>{html.escape(p)}</span></li>" for p in items) + "\n</ul>"
        return await self._html(request, "mediabot test media site", body)
