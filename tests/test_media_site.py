"""The local test media site works, and yt-dlp can download from it."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from pathlib import Path

import aiohttp
import pytest
import yt_dlp

from tests.support import media as media_mod
from tests.support.media import MediaFiles, ffprobe, generate_media
from tests.support.media_site import MediaSite

# ---------------------------------------------------------------------------- helpers


class _QuietLogger:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def debug(self, msg: str) -> None:
        self.messages.append(msg)

    info = warning = error = debug


def _ytdlp_download(url: str, outdir: Path, extractors: tuple[str, ...] = ("generic",)) -> dict:
    opts = {
        "outtmpl": str(outdir / "%(id)s.%(ext)s"),
        "allowed_extractors": list(extractors),
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": _QuietLogger(),
        "socket_timeout": 10,
        "retries": 0,
        "fragment_retries": 0,
    }
    with yt_dlp.YoutubeDL(opts) as ydl:
        return ydl.extract_info(url, download=True)


def _downloaded_file(info: dict) -> Path:
    path = Path(info["requested_downloads"][0]["filepath"])
    assert path.is_file(), path
    return path


def _get_headers_and_hang_up(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        return sock.recv(1024)


def _streams(probe: dict) -> dict[str, dict]:
    return {s["codec_type"]: s for s in probe["streams"]}


@pytest.fixture
async def http() -> aiohttp.ClientSession:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


# ---------------------------------------------------------------------------- media files


def test_media_files_are_valid(media_files: MediaFiles) -> None:
    video = ffprobe(media_files.video_mp4)
    s = _streams(video)
    assert s["video"]["codec_name"] == "h264" and (s["video"]["width"], s["video"]["height"]) == (320, 240)
    assert s["audio"]["codec_name"] == "aac"
    assert 2.5 <= float(video["format"]["duration"]) <= 3.5
    assert 150_000 < media_files.video_mp4.stat().st_size < 300_000
    with media_files.video_mp4.open("rb") as f:  # faststart: moov before mdat
        head = f.read(64 * 1024)
    assert head.find(b"moov") != -1 and head.find(b"moov") < head.find(b"mdat")

    audio = ffprobe(media_files.audio_m4a)
    assert [st["codec_name"] for st in audio["streams"]] == ["aac"]
    assert 2.5 <= float(audio["format"]["duration"]) <= 3.5

    big = ffprobe(media_files.big_mp4)
    assert _streams(big)["video"]["codec_name"] == "h264"
    assert 28_000_000 <= media_files.big_mp4.stat().st_size <= 34_000_000

    codecs = {"m4a": "aac", "mp3": "mp3", "opus": "opus", "ogg": "vorbis"}
    for kind, path in media_files.tagged.items():
        tagged = ffprobe(path)
        [stream] = tagged["streams"]
        assert stream["codec_name"] == codecs[kind]
        # Ogg keeps its tags on the stream, the others on the file.
        both = {**tagged["format"].get("tags", {}), **stream.get("tags", {})}
        tags = {k.lower(): v for k, v in both.items()}
        assert {k: tags.get(k) for k in media_mod.FILE_TAGS} == media_mod.FILE_TAGS, kind
    assert int(ffprobe(media_files.tagged["mp3"])["streams"][0]["bit_rate"]) == 160_000

    playlist = (media_files.hls_dir / "index.m3u8").read_text()
    segments = [line for line in playlist.splitlines() if line.endswith(".ts")]
    assert playlist.startswith("#EXTM3U") and "#EXT-X-ENDLIST" in playlist and len(segments) >= 3
    assert all((media_files.hls_dir / seg).stat().st_size > 0 for seg in segments)


def test_generate_media_reuses_cache(media_files: MediaFiles, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media_mod, "_generate_into", lambda tmp: pytest.fail("regenerated a complete cache"))
    assert generate_media(media_files.root) == media_files


def test_generate_media_race_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two racing generators: both succeed, one result wins, no temp dirs are left behind."""
    barrier = threading.Barrier(2)
    calls: list[int] = []

    def fake_generate(tmp: Path) -> dict[str, float]:
        calls.append(1)
        barrier.wait(timeout=5)
        names = (media_mod.VIDEO_NAME, media_mod.AUDIO_NAME, media_mod.BIG_NAME, media_mod.THUMB_NAME)
        for name in (*names, *media_mod.TAGGED_NAMES.values()):
            (tmp / name).write_bytes(b"x" * 10)
        (tmp / media_mod.HLS_NAME).mkdir()
        (tmp / media_mod.HLS_NAME / "index.m3u8").write_text("#EXTM3U\n")
        return {}

    monkeypatch.setattr(media_mod, "_generate_into", fake_generate)
    cache = tmp_path / "cache" / "v1"
    results: list[MediaFiles] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(generate_media(cache))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not errors and len(results) == 2 and len(calls) == 2
    assert results[0] == results[1] and media_mod._is_complete(cache)
    assert sorted(p.name for p in cache.parent.iterdir()) == ["v1"]


# ---------------------------------------------------------------------------- HTTP behaviour


async def test_full_get_headers(
    media_site: MediaSite, media_files: MediaFiles, http: aiohttp.ClientSession
) -> None:
    data = media_files.video_mp4.read_bytes()
    async with http.get(media_site.url("/video.mp4")) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "video/mp4"
        assert r.headers["Accept-Ranges"] == "bytes"
        assert int(r.headers["Content-Length"]) == len(data)
        assert await r.read() == data
    async with http.get(media_site.url("/audio.m4a")) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "audio/mp4"
        assert await r.read() == media_files.audio_m4a.read_bytes()


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=100-199", 100, 199),
        ("bytes=1000-", 1000, None),
        ("bytes=-500", -500, None),
        ("bytes=0-0", 0, 0),
    ],
)
async def test_range(
    media_site: MediaSite,
    media_files: MediaFiles,
    http: aiohttp.ClientSession,
    header: str,
    start: int,
    end: int | None,
) -> None:
    data = media_files.big_mp4.read_bytes()
    size = len(data)
    expected = data[start:] if end is None else data[start : end + 1]
    first = start if start >= 0 else size + start
    for path in ("/big.mp4", "/slow.mp4?rate=50000000"):
        async with http.get(media_site.url(path), headers={"Range": header}) as r:
            assert r.status == 206
            assert r.headers["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{size}"
            assert int(r.headers["Content-Length"]) == len(expected)
            assert r.headers["Content-Type"] == "video/mp4"
            assert await r.read() == expected


async def test_range_unsatisfiable(
    media_site: MediaSite, media_files: MediaFiles, http: aiohttp.ClientSession
) -> None:
    size = media_files.video_mp4.stat().st_size
    async with http.get(media_site.url("/video.mp4"), headers={"Range": f"bytes={size}-"}) as r:
        assert r.status == 416
        assert r.headers["Content-Range"] == f"bytes */{size}"


async def test_head(media_site: MediaSite, media_files: MediaFiles, http: aiohttp.ClientSession) -> None:
    hits, heads = media_site.hits("/big.mp4"), media_site.heads("/big.mp4")
    async with http.head(media_site.url("/big.mp4")) as r:
        assert r.status == 200
        assert int(r.headers["Content-Length"]) == media_files.big_mp4.stat().st_size
        assert r.headers["Content-Type"] == "video/mp4" and r.headers["Accept-Ranges"] == "bytes"
        assert await r.read() == b""
    assert media_site.hits("/big.mp4") == hits  # HEAD is not a GET hit
    assert media_site.heads("/big.mp4") == heads + 1


async def test_not_found(media_site: MediaSite, http: aiohttp.ClientSession) -> None:
    for path in ("/missing.mp4", "/no/such/thing", "/hls/nope.ts"):
        async with http.get(media_site.url(path)) as r:
            assert r.status == 404, path
            assert r.headers["Content-Type"].startswith("text/plain")


async def test_pages(media_site: MediaSite, http: aiohttp.ClientSession) -> None:
    async def page(path: str) -> str:
        async with http.get(media_site.url(path)) as r:
            assert r.status == 200
            assert r.headers["Content-Type"] == "text/html; charset=utf-8"
            return await r.text()

    og = await page("/page.html")
    assert f'<meta property="og:video" content="{media_site.url("/video.mp4")}">' in og
    assert '<meta property="og:title" content="Test Clip">' in og and "<title>Test Clip</title>" in og
    assert '<video controls><source src="/video.mp4" type="video/mp4"></video>' in await page(
        "/video-tag.html"
    )
    assert 'src="/hls/index.m3u8"' in await page("/hls-page.html")
    nomedia = await page("/nomedia.html")
    assert "<video" not in nomedia and ".mp4" not in nomedia and "og:" not in nomedia
    playlist = await page("/playlist.html?n=4")
    for i in range(1, 5):
        assert f'<a href="/clip/{i}.mp4">' in playlist
    assert playlist.count("<video") == 4 and "/clip/5.mp4" not in playlist

    song = await page("/tagged-song.html?src=opus")
    assert media_site.url("/tagged.opus") in song and '"name": "Song Title"' in song
    titled = await page("/titled.html?title=%CE%A9%CE%BC%CE%AD%CE%B3%CE%B1")
    assert '<meta property="og:title" content="Ωμέγα">' in titled and media_site.url("/video.mp4") in titled
    assert 'content="http://example.com/v.mp4"' in await page("/titled.html?video=http://example.com/v.mp4")
    assert 'src="/clip/b7.mp4"' in await page("/pages/b7/video-tag.html")
    async with http.get(media_site.url("/tagged.mp3")) as r:
        assert r.headers["Content-Type"] == "audio/mpeg" and (await r.read())[:3] == b"ID3"

    async with http.get(media_site.url("/hls/index.m3u8")) as r:
        assert r.headers["Content-Type"] == "application/vnd.apple.mpegurl"
        assert (await r.text()).startswith("#EXTM3U")
    async with http.get(media_site.url("/hls/seg000.ts")) as r:
        assert r.headers["Content-Type"] == "video/mp2t"
        assert (await r.read())[:1] == b"\x47"  # MPEG-TS sync byte


async def test_redirect(media_site: MediaSite, http: aiohttp.ClientSession) -> None:
    target = "http://forbidden.invalid/x.mp4"
    async with http.get(media_site.url("/redirect"), params={"to": target}, allow_redirects=False) as r:
        assert r.status == 302 and r.headers["Location"] == target
    async with http.get(media_site.url("/redirect"), allow_redirects=False) as r:
        assert r.status == 400


async def test_cookie(media_site: MediaSite, media_files: MediaFiles, http: aiohttp.ClientSession) -> None:
    async with http.get(media_site.url("/cookie.mp4")) as r:
        assert r.status == 403 and r.headers["Content-Type"].startswith("text/plain")
    assert media_site.last_cookie is None
    async with http.get(media_site.url("/cookie.mp4"), headers={"Cookie": "a=1; session=ok"}) as r:
        assert r.status == 200 and r.headers["Content-Type"] == "video/mp4"
        assert await r.read() == media_files.video_mp4.read_bytes()
    assert media_site.last_cookie == "a=1; session=ok"


async def test_counters(media_site: MediaSite, http: aiohttp.ClientSession) -> None:
    media_site.reset_counts()
    for path in ("/clip/7.mp4", "/clip/7.mp4?x=1", "/clip/8.mp4"):
        async with http.get(media_site.url(path)) as r:
            await r.read()
    assert media_site.hits("/clip/7.mp4") == 2
    assert media_site.hits("/clip/8.mp4?ignored=yes") == 1
    assert media_site.hits(media_site.url("/clip/8.mp4")) == 1  # a full URL works too
    assert media_site.downloads("/clip/7.mp4") == 2 and media_site.downloads("/clip/8.mp4") == 1
    assert media_site.hits("/clip/9.mp4") == 0

    # A client that reads the headers and hangs up (like yt-dlp's probe) is a hit, not a download.
    # (A raw socket: aiohttp's own client would have buffered ~256 KB before close().)
    for path in ("/video.mp4", "/big.mp4"):
        head = await asyncio.to_thread(_get_headers_and_hang_up, media_site.port, path)
        assert head.startswith(b"HTTP/1.1 200 OK"), head
        await asyncio.sleep(0.05)
        assert (media_site.hits(path), media_site.downloads(path)) == (1, 0), path

    # A small range is not a download; the whole body (or a range over 64 KiB) is.
    async with http.get(media_site.url("/big.mp4"), headers={"Range": "bytes=0-1023"}) as r:
        await r.read()
    async with http.get(media_site.url("/big.mp4"), headers={"Range": "bytes=0-199999"}) as r:
        await r.read()
    assert media_site.downloads("/big.mp4") == 1
    async with http.get(media_site.url("/big.mp4")) as r:
        await r.read()
    assert (media_site.hits("/big.mp4"), media_site.downloads("/big.mp4")) == (4, 2)

    media_site.reset_counts()
    assert media_site.hits("/clip/7.mp4") == 0 and media_site.downloads("/big.mp4") == 0


# Asserts a duration: in the serial group with the drills (tests/support/groups.py).
@pytest.mark.xdist_group("serial")
async def test_slow_streams_at_rate(media_site: MediaSite, http: aiohttp.ClientSession) -> None:
    before = media_site.downloads("/slow.mp4")  # the site is the session's: other tests download it too

    async def measure(path: str, seconds: float) -> float:
        received = 0
        async with http.get(media_site.url(path)) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "video/mp4"
            t0 = time.monotonic()
            async for chunk in r.content.iter_any():
                received += len(chunk)
                if time.monotonic() - t0 >= seconds:
                    break
            elapsed = time.monotonic() - t0
        return received / elapsed

    default_rate = await measure("/slow.mp4", 0.6)
    assert 350_000 < default_rate < 700_000, default_rate
    fast_rate = await measure("/slow.mp4?rate=2000000", 0.5)
    assert 1_400_000 < fast_rate < 2_700_000, fast_rate

    # The client went away mid-stream: the handler stops writing, quietly.
    for _ in range(100):
        if media_site.in_flight() == 0:
            break
        await asyncio.sleep(0.02)
    assert media_site.in_flight() == 0
    assert media_site.downloads("/slow.mp4") == before


# Asserts a duration: in the serial group with the drills (tests/support/groups.py).
@pytest.mark.xdist_group("serial")
async def test_slow_small_range_completes(
    media_site: MediaSite, media_files: MediaFiles, http: aiohttp.ClientSession
) -> None:
    data = media_files.big_mp4.read_bytes()
    t0 = time.monotonic()
    async with http.get(media_site.url("/slow.mp4"), headers={"Range": "bytes=5000-104999"}) as r:
        assert r.status == 206 and await r.read() == data[5000:105000]
    assert 0.12 < time.monotonic() - t0 < 1.0  # 100 kB at 500 kB/s ~ 0.2 s


async def test_a_gated_download_is_held_until_its_gate_opens(
    media_site: MediaSite, media_files: MediaFiles, http: aiohttp.ClientSession
) -> None:
    data = media_files.big_mp4.read_bytes()
    url = media_site.gated_url(head=100_000)
    before = media_site.downloads("/slow.mp4")
    async with http.get(url) as r:
        assert r.status == 200 and r.content_length == len(data)
        body = b""
        # Shut, the gate lets a trickle through: half a second of reading comes nowhere near the end.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.5):
                while chunk := await r.content.read(1 << 16):
                    body += chunk
        assert 100_000 <= len(body) < len(data) // 4 and not r.content.at_eof()
        assert media_site.in_flight() >= 1
        media_site.open_gate(url)
        body += await r.read()
    assert body == data
    assert media_site.downloads("/slow.mp4") == before + 1
    # An open gate stays open: the same URL comes at once, whole, with Range too.
    async with http.get(url, headers={"Range": "bytes=5000-"}) as r:
        assert r.status == 206 and await r.read() == data[5000:]
    async with http.get(media_site.url("/slow.mp4?gate=")) as r:
        assert r.status == 400 and "gate" in await r.text()


# Asserts a duration: in the serial group with the drills (tests/support/groups.py).
@pytest.mark.xdist_group("serial")
async def test_stop_cuts_streams_fast(media_files: MediaFiles, http: aiohttp.ClientSession) -> None:
    site = await MediaSite(media_files).start()
    async with http.get(site.url("/slow.mp4?rate=100000")) as r:
        await r.content.readexactly(16 * 1024)
        t0 = time.monotonic()
        await site.stop()
        assert time.monotonic() - t0 < 1.0
        with pytest.raises(aiohttp.ClientError):
            await r.read()


# ---------------------------------------------------------------------------- yt-dlp


async def test_ytdlp_direct_mp4(media_site: MediaSite, tmp_path: Path) -> None:
    media_site.reset_counts()
    info = await asyncio.to_thread(_ytdlp_download, media_site.url("/video.mp4"), tmp_path)
    probe = ffprobe(_downloaded_file(info))
    assert set(_streams(probe)) == {"video", "audio"}
    # yt-dlp probes the URL (reads the headers, hangs up), then downloads it.
    assert media_site.hits("/video.mp4") == 2
    assert media_site.downloads("/video.mp4") == 1


async def test_ytdlp_og_video_page(media_site: MediaSite, tmp_path: Path) -> None:
    media_site.reset_counts()
    info = await asyncio.to_thread(_ytdlp_download, media_site.url("/page.html"), tmp_path)
    assert info["title"] == "Test Clip"
    probe = ffprobe(_downloaded_file(info))
    assert _streams(probe)["video"]["width"] == 320
    assert media_site.downloads("/video.mp4") == 1


async def test_ytdlp_hls(media_site: MediaSite, tmp_path: Path) -> None:
    media_site.reset_counts()
    info = await asyncio.to_thread(_ytdlp_download, media_site.url("/hls/index.m3u8"), tmp_path)
    path = _downloaded_file(info)
    probe = ffprobe(path)
    assert path.suffix == ".mp4" and set(_streams(probe)) == {"video", "audio"}
    assert 2.5 <= float(probe["format"]["duration"]) <= 3.5
    assert media_site.downloads("/hls/seg002.ts") == 1


async def test_ytdlp_video_tag_pages_need_html5_extractor(media_site: MediaSite, tmp_path: Path) -> None:
    # <video> tags are found by yt-dlp's "html5" embed extractor, not by "generic" itself.
    for path in ("/video-tag.html", "/hls-page.html"):
        info = await asyncio.to_thread(_ytdlp_download, media_site.url(path), tmp_path, ("generic", "html5"))
        probe = ffprobe(_downloaded_file(info))
        assert set(_streams(probe)) == {"video", "audio"}, path


async def test_ytdlp_nomedia_is_unsupported(media_site: MediaSite, tmp_path: Path) -> None:
    with pytest.raises(yt_dlp.utils.DownloadError, match="Unsupported URL"):
        await asyncio.to_thread(_ytdlp_download, media_site.url("/nomedia.html"), tmp_path)
    assert await asyncio.to_thread(lambda: list(tmp_path.iterdir())) == []
