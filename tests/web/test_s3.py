"""S3 mode (moto's server on 127.0.0.1): file_url is a presigned link that serves the file over HTTP."""

from __future__ import annotations

from typing import Any

import yarl

from tests.support.s3 import MotoS3


async def test_presigned_file_url(start_api: Any, moto_s3: MotoS3, media_site: Any) -> None:
    bucket = moto_s3.new_bucket()
    async with start_api(storage="s3", s3_bucket=bucket, s3_endpoint_url=moto_s3.endpoint_url) as api:
        _, job = await api.submit(media_site.url("/clip/3.mp4"))
        done = await api.wait_status(job["id"], "done", "failed")
        assert done["status"] == "done", done
        assert done["file_url"].startswith(moto_s3.endpoint_url + "/" + bucket + "/")
        source = media_site.files.video_mp4.read_bytes()
        async with api.http.get(yarl.URL(done["file_url"], encoded=True)) as resp:
            assert resp.status == 200 and await resp.read() == source
            assert "attachment" in resp.headers["Content-Disposition"]

        status, _, resp = await api.call("GET", f"/api/v1/jobs/{job['id']}/file", allow_redirects=False)
        assert status == 302 and resp.headers["Location"].startswith(moto_s3.endpoint_url)
        async with api.http.get(yarl.URL(resp.headers["Location"], encoded=True)) as fetched:
            assert await fetched.read() == source

        # Local file links do not exist in S3 mode.
        status, body, _ = await api.call("GET", "/files/ab/cd/x.mp4?exp=1&name=x&sig=" + "0" * 64)
        assert status == 404 and body["error"]["code"] == "not_found"

        status, health, _ = await api.call("GET", "/health/detailed")
        assert status == 200 and health["components"]["storage"]["backend"] == "s3"


async def test_the_page_lets_in_thumbnails_from_the_bucket(
    start_api: Any, moto_s3: MotoS3, media_site: Any
) -> None:
    """The page's CSP names the S3 endpoint for pictures: a thumbnail presigned there shows on the page."""
    bucket = moto_s3.new_bucket()
    async with start_api(storage="s3", s3_bucket=bucket, s3_endpoint_url=moto_s3.endpoint_url) as api:
        _, job = await api.submit(media_site.url("/formats.html?s3"), format_id="240p")
        done = await api.wait_status(job["id"], "done", "failed")
        assert done["status"] == "done", done
        thumb = done["thumbnail_url"]
        assert thumb and thumb.startswith(moto_s3.endpoint_url + "/" + bucket + "/"), thumb
        async with api.http.get(yarl.URL(thumb, encoded=True)) as resp:
            assert resp.status == 200 and (await resp.read())[:2] == b"\xff\xd8"
        async with api.http.get(api.base + "/") as page:
            policy = dict(
                part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";")
            )
        sources = policy["img-src"].split()
        origin = str(yarl.URL(thumb).origin())
        assert origin in sources and "*" not in sources, policy["img-src"]
        # Nothing else was widened: scripts and connections stay on the page's own origin.
        assert (policy["script-src"], policy["connect-src"]) == ("'self'", "'self'")
