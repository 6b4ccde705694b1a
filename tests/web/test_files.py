"""`/files/...`: signed local links, with Range, HEAD, expiry and refusals that never leak a file."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import yarl

from core.storage.keys import make_key
from core.storage.local import LocalStorage
from tests.web.conftest import Api

NAME = 'Vidéo "été" 日本語.mp4'


async def stored_file(api: Api, tmp_path: Path, size: int = 300_000) -> tuple[str, bytes]:
    data = os.urandom(size)
    src = tmp_path / f"src-{uuid.uuid4().hex}"
    src.write_bytes(data)
    key = make_key(uuid.uuid4().hex, NAME)
    await api.services.storage.save(src, key, filename=NAME, content_type="video/mp4")
    return key, data


def forged(api: Api, key: str, name: str, exp: int) -> str:
    """A link as someone holding the signing key would make it, for keys storage.link refuses to sign."""
    storage = api.services.storage
    assert isinstance(storage, LocalStorage)
    secret = api.services.settings.signing_key()
    sig = hmac.new(secret, "\x00".join(("v1", key, str(exp), name)).encode(), hashlib.sha256).hexdigest()
    path = "/".join(quote(part, safe="") for part in key.split("/"))
    return f"{api.base}/files/{path}?exp={exp}&name={quote(name, safe='')}&sig={sig}"


async def get(api: Api, url: str, method: str = "GET", **headers: str) -> tuple[int, bytes, Any]:
    async with api.http.request(method, yarl.URL(url, encoded=True), headers=headers) as resp:
        return resp.status, await resp.read(), resp


async def test_download_range_head_and_headers(start_api: Any, tmp_path: Path) -> None:
    async with start_api(worker=False) as api:
        key, data = await stored_file(api, tmp_path)
        link = await api.services.storage.link(key, filename=NAME)

        status, body, resp = await get(api, link)
        assert status == 200 and body == data
        assert resp.headers["Content-Type"] == "video/mp4"
        assert resp.headers["Content-Length"] == str(len(data))
        assert resp.headers["Accept-Ranges"] == "bytes"
        disposition = resp.headers["Content-Disposition"]
        assert disposition.startswith('attachment; filename="') and "filename*=UTF-8''" in disposition
        assert unquote(disposition.split("filename*=UTF-8''", 1)[1]) == NAME

        status, body, resp = await get(api, link, Range="bytes=1000-1999")
        assert status == 206 and body == data[1000:2000]
        assert resp.headers["Content-Range"] == f"bytes 1000-1999/{len(data)}"
        status, body, _ = await get(api, link, Range=f"bytes=-{len(data) // 3}")
        assert status == 206 and body == data[-(len(data) // 3) :]
        status, _, _ = await get(api, link, Range=f"bytes={len(data) + 10}-")
        assert status == 416

        status, body, resp = await get(api, link, method="HEAD")
        assert status == 200 and body == b"" and resp.headers["Content-Length"] == str(len(data))


async def test_refusals(start_api: Any, tmp_path: Path) -> None:
    async with start_api(worker=False) as api:
        key, _ = await stored_file(api, tmp_path)
        link = await api.services.storage.link(key, filename=NAME)
        url = yarl.URL(link, encoded=True)
        exp = int(url.query["exp"])

        async def refused(target: str, status: int, code: str) -> None:
            got, body, resp = await get(api, target)
            assert got == status, (target, body[:200])
            assert resp.content_type == "application/json"
            assert code.encode() in body and b"Traceback" not in body

        sig = url.query["sig"]
        await refused(link.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:]), 403, "link_invalid")
        await refused(link.replace("sig=", "sig=zz"), 403, "link_invalid")
        await refused(link.split("&sig=")[0], 403, "link_invalid")
        await refused(link.replace(f"exp={exp}", f"exp={exp + 3600}"), 403, "link_invalid")
        await refused(link.replace("name=", "name=x"), 403, "link_invalid")
        # A correctly signed link whose time is up.
        expired = await api.services.storage.link(key, filename=NAME, ttl_s=-5)
        await refused(expired, 410, "link_expired")

        # Traversal: unsigned, and even signed with the real key, nothing outside the files directory.
        secret_file = api.services.settings.data_dir / "secret.key"
        assert secret_file.exists()
        for target in (
            f"{api.base}/files/../secret.key",
            f"{api.base}/files/%2e%2e/secret.key?exp={exp}&name=x&sig={'0' * 64}",
            f"{api.base}/files/..%2fsecret.key",
            forged(api, "../secret.key", "secret.key", int(time.time()) + 60),
            forged(api, "aa/../../secret.key", "secret.key", int(time.time()) + 60),
            forged(api, "/etc/hostname", "hostname", int(time.time()) + 60),
        ):
            status, body, _ = await get(api, target)
            assert status in (403, 404), (target, status)
            assert secret_file.read_bytes() not in body

        # A valid link to a file deleted since.
        await api.services.storage.delete(key)
        await refused(link, 404, "not_found")
