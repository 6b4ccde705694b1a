"""The API's format picker, chosen formats, thumbnails, subtitles and history, end to end: a real server on
127.0.0.1, real services and worker, the local media site."""

from __future__ import annotations

import asyncio
import io
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from PIL import Image

from tests.support.media import ffprobe
from tests.web.conftest import Api


async def fetch(api: Api, url: str) -> tuple[int, bytes, str]:
    async with api.http.get(url) as resp:
        return resp.status, await resp.read(), resp.content_type


async def formats_of(api: Api, url: str, **kw: Any) -> tuple[int, Any]:
    status, body, _ = await api.call("GET", f"/api/v1/formats?url={quote(url, safe='')}", **kw)
    return status, body


async def finished(api: Api, url: str, *, key: str | None = None, **fields: Any) -> dict[str, Any]:
    status, job = await api.submit(url, key=key, **fields)
    assert status in (200, 202), job
    return await api.wait_status(job["id"], "done", "failed", "cancelled", timeout=60, key=key)


async def listed(api: Api, query: str) -> list[str]:
    status, page, _ = await api.call("GET", f"/api/v1/jobs?{query}")
    assert status == 200, page
    return [job["id"] for job in page["items"]]


async def test_formats_of_a_link_then_cached(api: Api, media_site: Any) -> None:
    url = media_site.url("/formats.html")
    big_downloads = media_site.downloads("/big.mp4")

    status, body = await formats_of(api, url)
    assert status == 200, body
    assert body["url"] == url and body["title"] == "Format Test" and body["cached"] is False
    assert body["playlist"] is None
    assert body["thumbnail"] == media_site.url("/thumb.png")
    assert body["subtitles"] == ["de", "en"]
    # Best first, each with the size the site states.
    assert [f["format_id"] for f in body["formats"]] == ["360p", "240p"]
    sizes = {
        "360p": media_site.files.big_mp4.stat().st_size,
        "240p": media_site.files.video_mp4.stat().st_size,
    }
    for choice in body["formats"]:
        assert choice["kind"] == "video" and choice["ext"] == "mp4"
        assert choice["filesize"] == sizes[choice["format_id"]] and choice["filesize_estimated"] is False
        assert choice["height"] == int(choice["format_id"].removesuffix("p"))
        assert choice["label"].startswith(f"{choice['format_id']} · H.264 + AAC · ")
        assert (choice["vcodec"], choice["acodec"], choice["codecs"]) == ("h264", "aac", "H.264 + AAC")

    hits = media_site.hits("/formats.html")
    status, again = await formats_of(api, url)
    assert status == 200 and again["cached"] is True
    assert {**again, "cached": False} == body
    assert media_site.hits("/formats.html") == hits  # answered from the cache: the page was not read again
    assert media_site.downloads("/big.mp4") == big_downloads  # reading formats downloads nothing


async def test_formats_errors_and_rate_limit(start_api: Any, media_site: Any) -> None:
    async with start_api(worker=False, api_calls_per_minute=7) as api:
        status, body, _ = await api.call("GET", "/api/v1/formats")
        assert (
            status == 400 and body["error"]["code"] == "invalid_request" and "url" in body["error"]["message"]
        )
        for text, code in (
            ("no link here", "invalid_url"),
            ("ftp://example.com/v.mp4", "invalid_url"),
            (media_site.url("/nomedia.html"), "unsupported_url"),
        ):
            status, body = await formats_of(api, text)
            assert (status, body["error"]["code"]) == (422, code), (text, body)
            message = body["error"]["message"]
            assert message.endswith(".") and "Traceback" not in message and "/tmp" not in message
        async with api.http.get(api.base + "/api/v1/formats?url=https://example.com/v.mp4") as resp:
            assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthorized"
        # Counted by the same per-key limiter as every other call: 4 calls above, 3 more, the 8th is refused.
        for _ in range(3):
            assert (await api.call("GET", "/api/v1/jobs"))[0] == 200
        status, body = await formats_of(api, media_site.url("/formats.html"))
        assert status == 429 and body["error"]["code"] == "rate_limited"

    async with start_api(worker=False, allow_private_urls=False) as strict:
        status, body = await formats_of(strict, media_site.url("/formats.html"))
        assert status == 422 and body["error"]["code"] == "private_address"


async def test_chosen_format_and_thumbnail(api: Api, media_site: Any) -> None:
    big_downloads = media_site.downloads("/big.mp4")
    job = await finished(api, media_site.url("/formats.html"), format_id="240p")
    assert job["status"] == "done", job
    assert job["format_id"] == "240p" and job["subtitle_langs"] == [] and job["subtitles"] == []
    status, data, _ = await fetch(api, job["file_url"])
    assert status == 200 and data == media_site.files.video_mp4.read_bytes()
    assert media_site.downloads("/big.mp4") == big_downloads

    assert job["thumbnail_url"] and job["thumbnail_url"].startswith(api.base + "/files/")
    status, thumb, content_type = await fetch(api, job["thumbnail_url"])
    assert status == 200 and content_type == "image/jpeg"
    assert thumb[:3] == b"\xff\xd8\xff" and len(thumb) <= 200_000
    with Image.open(io.BytesIO(thumb)) as image:
        assert image.format == "JPEG" and max(image.size) <= 320
        # The site's 16:9 poster scaled down, not a frame of the 4:3 video.
        assert abs(image.size[0] / image.size[1] - 16 / 9) < 0.02, image.size


async def test_subtitles_embedded_and_missing_listed(api: Api, media_site: Any, tmp_path: Path) -> None:
    job = await finished(api, media_site.url("/formats.html"), format_id="240p", subtitles=["en", "fr"])
    assert job["status"] == "done", job
    assert job["subtitle_langs"] == ["en", "fr"] and job["subtitles_missing"] == ["fr"]
    [sub] = job["subtitles"]
    assert sub["lang"] == "en" and sub["filename"].endswith(".srt")
    status, text, _ = await fetch(api, sub["url"])
    assert status == 200 and len(text) == sub["size"]
    assert "Hello there" in text.decode() and "-->" in text.decode()

    status, data, _ = await fetch(api, job["file_url"])
    assert status == 200
    video = tmp_path / "with-subs.mp4"
    video.write_bytes(data)
    streams = (await asyncio.to_thread(ffprobe, video))["streams"]
    assert [s["codec_name"] for s in streams if s["codec_type"] == "subtitle"] == ["mov_text"]
    assert any(s["codec_type"] == "video" for s in streams)


async def test_unknown_format_fails_with_a_sentence(api: Api, media_site: Any) -> None:
    job = await finished(api, media_site.url("/formats.html"), format_id="1080p")
    assert job["status"] == "failed" and job["error"]["code"] == "unknown_format", job
    message = job["error"]["message"]
    assert "1080p" in message and "240p" in message and "360p" in message
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message
    assert job["file_url"] is None and job["thumbnail_url"] is None

    for bad in ({"format_id": ""}, {"format_id": "x" * 129}, {"subtitles": ["english!"]},
                {"subtitles": [f"l{c}" for c in "abcdefghi"]}):  # fmt: skip
        status, body = await api.submit(media_site.url("/formats.html"), **bad)
        assert status == 400 and body["error"]["code"] == "invalid_request", (bad, body)
    status, body = await api.submit(media_site.url("/formats.html"), format_id="bad id")
    assert status == 400 and "a format id from GET /api/v1/formats" in body["error"]["message"]
    assert "^" not in body["error"]["message"], "no regular expression in a person's error"


async def test_song_has_uploader_date_and_cover(api: Api, media_site: Any) -> None:
    job = await finished(api, media_site.url("/song.html"), kind="audio")
    assert job["status"] == "done", job
    assert job["title"] == "Song Title" and job["uploader"] == "Some Artist"
    assert job["upload_date"] == "20261102"
    status, thumb, content_type = await fetch(api, job["thumbnail_url"])
    assert status == 200 and content_type == "image/jpeg" and len(thumb) <= 200_000

    # A plain audio file without any picture has no thumbnail: null, not an error.
    plain = await finished(api, media_site.url("/audio.m4a"), kind="audio")
    assert plain["status"] == "done" and plain["thumbnail_url"] is None


async def test_audio_in_the_format_asked_for(api: Api, media_site: Any) -> None:
    job = await finished(api, media_site.url(f"/song.html?mp3-{uuid.uuid4().hex[:8]}"), kind="audio",
                         audio_format="mp3")  # fmt: skip
    assert job["status"] == "done", job
    assert (job["audio_format"], job["ext"]) == ("mp3", "mp3") and job["filename"].endswith(".mp3")
    status, data, _ = await fetch(api, job["file_url"])
    # An ID3 tag (title, artist, cover) in front of MPEG audio frames.
    assert status == 200 and data[:3] == b"ID3"
    status, body = await api.submit(media_site.url("/song.html"), kind="audio", audio_format="flac")
    assert status == 400 and body["error"]["code"] == "invalid_request"
    assert "audio_format" in body["error"]["message"] and "'mp3'" in body["error"]["message"]


async def test_the_original_unless_a_video_every_phone_plays_is_asked(
    api: Api, media_site: Any, tmp_path: Path
) -> None:
    """The API keeps the site's VP9; `playable: true` gets H.264/AAC MP4, as chats do; a retry keeps it."""
    url = media_site.url(f"/codecs.html?offer=vp9&t={uuid.uuid4().hex[:8]}")

    async def video_codec(job: dict[str, Any], name: str) -> str:
        status, data, _ = await fetch(api, job["file_url"])
        assert status == 200
        (tmp_path / name).write_bytes(data)
        return next(
            s["codec_name"] for s in ffprobe(tmp_path / name)["streams"] if s["codec_type"] == "video"
        )

    original = await finished(api, url, quality="360")
    assert original["status"] == "done" and original["playable"] is False
    assert await video_codec(original, "original.mp4") == "vp9"
    phone = await finished(api, url, quality="360", playable=True)
    assert phone["status"] == "done" and phone["playable"] is True and phone["filename"].endswith(".mp4")
    assert await video_codec(phone, "phone.mp4") == "h264"
    status, retried, _ = await api.call("POST", f"/api/v1/jobs/{phone['id']}/retry")
    assert status in (200, 202) and retried["playable"] is True, retried
    status, body = await api.submit(url, playable="maybe")
    assert status == 400 and "playable" in body["error"]["message"]


@pytest.mark.both_databases
async def test_history_filters_retry_and_remove(api: Api, media_site: Any) -> None:
    video = await finished(api, media_site.url("/video.mp4"))
    audio = await finished(api, media_site.url("/audio.m4a"), kind="audio")
    picked = await finished(api, media_site.url("/formats.html"), format_id="240p")
    missing = await finished(api, media_site.url("/missing.mp4"))
    assert [j["status"] for j in (video, audio, picked, missing)] == ["done", "done", "done", "failed"]

    assert await listed(api, "kind=audio") == [audio["id"]]
    assert await listed(api, "kind=video") == [missing["id"], picked["id"], video["id"]]
    assert await listed(api, "q=FORMAT%20test") == [picked["id"]]  # the title, in any case
    assert await listed(api, "q=audio.M4A") == [audio["id"]]  # the link
    assert await listed(api, "q=.mp4&kind=video&status=done") == [video["id"]]
    assert await listed(api, "q=100%25") == []  # % is a character to find, not a wildcard
    for query in ("kind=gif", "q=" + "a" * 201):
        status, body, _ = await api.call("GET", f"/api/v1/jobs?{query}")
        assert status == 400 and body["error"]["code"] == "invalid_request", query

    # Retry a failed job: the same ask again as a new job, and the site is asked again.
    hits = media_site.hits("/missing.mp4")
    status, retried, resp = await api.call("POST", f"/api/v1/jobs/{missing['id']}/retry")
    assert status == 202 and retried["id"] != missing["id"], retried
    assert retried["url"] == missing["url"] and resp.headers["Location"] == f"/api/v1/jobs/{retried['id']}"
    again = await api.wait_status(retried["id"], "failed", "done", timeout=30)
    assert again["status"] == "failed" and media_site.hits("/missing.mp4") > hits
    # A retry keeps the chosen format.
    status, repicked, _ = await api.call("POST", f"/api/v1/jobs/{picked['id']}/retry")
    assert status == 202 and repicked["format_id"] == "240p"
    assert (await api.wait_status(repicked["id"], "done"))["filesize"] == picked["filesize"]

    other = await api.new_key("other")
    assert (await api.call("POST", f"/api/v1/jobs/{video['id']}/retry", key=other))[0] == 404
    assert (await api.call("DELETE", f"/api/v1/history/{video['id']}", key=other))[0] == 404

    # Someone else's copy of the same file outlives our removal; the last one to remove deletes the file.
    theirs = await finished(api, media_site.url("/video.mp4"), key=other)
    assert theirs["status"] == "done"
    status, body, _ = await api.call("DELETE", f"/api/v1/history/{video['id']}")
    assert status == 204 and body == b""
    assert video["id"] not in await listed(api, "limit=100")
    assert (await api.call("DELETE", f"/api/v1/history/{video['id']}"))[0] == 204
    assert (await api.call("GET", f"/api/v1/jobs/{video['id']}"))[0] == 404, "removed means gone"
    theirs = await api.job(theirs["id"], key=other)
    assert (await fetch(api, theirs["file_url"]))[0] == 200

    status, _, _ = await api.call("DELETE", f"/api/v1/history/{theirs['id']}", key=other)
    assert status == 204
    assert (
        await listed(api, "") != [] and (await api.call("GET", "/api/v1/jobs", key=other))[1]["items"] == []
    )
    assert (await fetch(api, theirs["file_url"]))[0] == 404
    assert (await fetch(api, video["file_url"]))[0] == 404

    # Removing a picked format's job deletes its thumbnail too.
    assert (await fetch(api, picked["thumbnail_url"]))[0] == 200
    await api.call("DELETE", f"/api/v1/history/{repicked['id']}")
    await api.call("DELETE", f"/api/v1/history/{picked['id']}")
    assert (await fetch(api, picked["thumbnail_url"]))[0] == 404


async def test_retry_of_a_running_job_is_a_conflict(start_api: Any, media_site: Any) -> None:
    async with start_api() as api:
        status, job = await api.submit(media_site.url("/slow.mp4?rate=400000"))
        assert status == 202
        status, body, _ = await api.call("POST", f"/api/v1/jobs/{job['id']}/retry")
        assert status == 409 and body["error"]["code"] == "still_active" and body["error"]["message"]
        # Removing a running job cancels it.
        assert (await api.call("DELETE", f"/api/v1/history/{job['id']}"))[0] == 204
        assert (await api.call("GET", f"/api/v1/jobs/{job['id']}"))[0] == 404
        assert await listed(api, "") == []


async def test_formats_from_a_worker_process_on_redis(
    tmp_path: Path, media_site: Any, redis_url: str, pg_url: str, worker_processes: Any
) -> None:
    """A web process without a worker asks a `mediabot worker` process what a link offers (only workers run
    yt-dlp); the worker's refusal reaches the caller as if the web process had read the link itself."""
    from tests.web.conftest import web_api, web_settings

    settings = web_settings(tmp_path, database_url=pg_url, redis_url=redis_url)
    big_downloads = media_site.downloads("/big.mp4")
    async with web_api(settings, worker=False) as api:
        # Asked before any worker runs: the question waits in the stream for one.
        asking = asyncio.ensure_future(formats_of(api, media_site.url("/formats.html")))
        await asyncio.sleep(0.5)
        assert not asking.done()
        worker_processes(settings)
        status, body = await asyncio.wait_for(asking, 60)
        assert status == 200, body
        assert body["formats"] and {c["format_id"] for c in body["formats"]} >= {"240p"}
        assert media_site.downloads("/big.mp4") == big_downloads  # reading formats downloads nothing
        status, body = await formats_of(api, media_site.url("/nomedia.html"))
        assert (status, body["error"]["code"]) == (422, "unsupported_url"), body
        assert "Traceback" not in body["error"]["message"]
