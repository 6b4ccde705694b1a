"""Storage backends over real connections: local files behind a tiny aiohttp server, S3 on moto's server."""

from __future__ import annotations

import errno
import hashlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import yarl
from aiohttp import web
from botocore.exceptions import EndpointConnectionError

import core.storage.local
from core.bootstrap import build_storage
from core.config import Settings
from core.errors import LinkExpired, LinkInvalid, StorageError
from core.storage.keys import content_disposition, make_key, safe_filename
from core.storage.local import LocalStorage
from core.storage.s3 import S3Storage
from tests.support.s3 import MotoS3

UNICODE_NAME = 'Vidéo "été" 日本語 ½; a/b.mp4'
MIB = 1024 * 1024


def make_file(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# --- pure helpers ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("My Video (2024).mp4", "My Video (2024).mp4"),
        ("Vidéo été 日本語.webm", "Vidéo été 日本語.webm"),
        ("a/b\\c:d*e?.mp4", "a_b_c_d_e_.mp4"),
        ("../../etc/passwd", "etc_passwd"),
        ("..", "file"),
        ("", "file"),
        ("line\nbreak\x00nul.m4a", "line_break_nul.m4a"),
    ],
)
def test_safe_filename(filename: str, expected: str) -> None:
    assert safe_filename(filename) == expected


def test_make_key_limits_bytes_and_keeps_extension() -> None:
    key = make_key("0f3a9c", "日本" * 200 + ".mp4")
    prefix, job, name = key.split("/")
    assert (prefix, job) == ("0f", "0f3a9c")
    assert name.endswith(".mp4") and len(name.encode()) <= 150
    assert name[:-4].strip("日本") == ""  # cut on a character boundary
    with pytest.raises(ValueError):
        make_key("../x", "a.mp4")


def test_content_disposition_round_trips_through_a_parser() -> None:
    header = content_disposition(UNICODE_NAME)
    assert header.isascii() and "\n" not in header
    disptype, params = aiohttp.multipart.parse_content_disposition(header)
    assert disptype == "attachment"
    assert params["filename"] == "Video _ete_ _ 1_2_ a_b.mp4"
    assert aiohttp.multipart.content_disposition_filename(params, "filename") == UNICODE_NAME
    assert 'filename="download.mp4"' in content_disposition("日本語.mp4")
    assert 'filename="evil_x-injected_ 1.txt"' in content_disposition('evil"\r\nx-injected: 1.txt')


# --- local storage ---------------------------------------------------------------------------------------------


@dataclass
class LocalSite:
    storage: LocalStorage
    settings: Settings
    base_url: str
    http: aiohttp.ClientSession

    async def get(self, url: str) -> tuple[int, bytes, aiohttp.ClientResponse]:
        async with self.http.get(yarl.URL(url, encoded=True)) as resp:
            return resp.status, await resp.read(), resp


async def serve_file(request: web.Request) -> web.StreamResponse:
    """What the web app's GET /files/{key} does: resolve the signed link, map errors to statuses."""
    storage: LocalStorage = request.app[STORAGE_KEY]
    q = request.query
    try:
        path = storage.resolve_link(
            request.match_info["key"], q.get("exp", ""), q.get("name", ""), q.get("sig", "")
        )
    except LinkExpired:
        raise web.HTTPGone() from None
    except LinkInvalid:
        raise web.HTTPForbidden() from None
    except FileNotFoundError:
        raise web.HTTPNotFound() from None
    return web.FileResponse(path, headers={"Content-Disposition": content_disposition(q["name"])})


STORAGE_KEY = web.AppKey("storage", LocalStorage)


@pytest.fixture
async def local(tmp_path: Path) -> AsyncIterator[LocalSite]:
    app = web.Application()
    app.router.add_get("/files/{key:.+}", serve_file)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        storage="local",
        secret_key="test-signing-key",
        public_url=f"http://127.0.0.1:{port}",
    )
    settings.ensure_dirs()
    storage = build_storage(settings)
    assert isinstance(storage, LocalStorage) and storage.name == "local"
    app[STORAGE_KEY] = storage
    try:
        async with aiohttp.ClientSession() as http:
            yield LocalSite(storage, settings, settings.public_url, http)
    finally:
        await runner.cleanup()


async def test_local_save_is_a_rename(local: LocalSite) -> None:
    src = make_file(local.settings.tmp_dir / "job1" / "out.mp4", 300_000)
    inode = src.stat().st_ino
    key = make_key("abcdef12", "out.mp4")

    assert await local.storage.save(src, key, filename="out.mp4", content_type="video/mp4") == 300_000

    stored = local.settings.files_dir / key
    assert stored.stat().st_ino == inode
    assert not src.exists()
    assert await local.storage.exists(key)
    assert await local.storage.size(key) == 300_000
    assert await local.storage.size("ab/missing/x.mp4") is None
    assert not await local.storage.exists("ab/missing/x.mp4")


async def test_two_attempts_at_one_job_keep_apart(local: LocalSite) -> None:
    """An attempt that lost its lease cleans up its own file only, never the file of the attempt that took
    over (same job, same file name)."""
    keys = [make_key("abcdef12", "out.mp4", run) for run in ("run1", "run2")]
    assert keys[0] != keys[1] and all(k.endswith("/out.mp4") for k in keys)
    for index, key in enumerate(keys):
        src = make_file(local.settings.tmp_dir / f"job1-{index}" / "out.mp4", 1000 + index)
        await local.storage.save(src, key, filename="out.mp4", content_type="video/mp4")
    await local.storage.delete(keys[0])
    assert not await local.storage.exists(keys[0])
    assert await local.storage.size(keys[1]) == 1001
    with pytest.raises(ValueError):
        make_key("abcdef12", "out.mp4", "../x")


async def test_local_link_round_trip_over_http(local: LocalSite) -> None:
    src = make_file(local.settings.tmp_dir / "j" / "f.mp4", 50_000)
    digest = sha256(src)
    key = make_key("c0ffee42", UNICODE_NAME)
    await local.storage.save(src, key, filename=UNICODE_NAME)

    url = await local.storage.link(key, filename=UNICODE_NAME, ttl_s=60)
    assert url.startswith(f"{local.base_url}/files/") and url.isascii()

    status, body, resp = await local.get(url)
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == digest
    assert resp.content_disposition is not None and resp.content_disposition.filename == UNICODE_NAME

    parsed = yarl.URL(url, encoded=True)
    exp, name, sig = (parsed.query[k] for k in ("exp", "name", "sig"))
    assert int(exp) - time.time() == pytest.approx(60, abs=2)
    path_key = parsed.path.removeprefix("/files/")
    assert local.storage.resolve_link(path_key, exp, name, sig) == (local.settings.files_dir / key).resolve()


async def test_local_link_tampered_or_expired(local: LocalSite) -> None:
    key = make_key("deadbeef", "a.mp4")
    await local.storage.save(make_file(local.settings.tmp_dir / "a.mp4", 10), key, filename="a.mp4")
    url = yarl.URL(await local.storage.link(key, filename="a.mp4", ttl_s=30), encoded=True)
    exp, name, sig = url.query["exp"], url.query["name"], url.query["sig"]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]

    resolve = local.storage.resolve_link
    for args in [
        (key, exp, name, flipped),  # forged signature
        (key, str(int(exp) + 3600), name, sig),  # extended expiry
        (key, exp, "other.exe", sig),  # changed name
        ("de/deadbeef/b.mp4", exp, name, sig),  # another file
        (key, exp, name, sig[:-2]),  # truncated
        (key, "", name, sig),
        (key, "１２３", name, sig),  # non-ASCII digits
    ]:
        with pytest.raises(LinkInvalid):
            resolve(*args)

    assert resolve(key, exp, name, sig, now=int(exp)).is_file()
    with pytest.raises(LinkExpired):
        resolve(key, exp, name, sig, now=int(exp) + 1)

    assert (await local.get(str(url.update_query(sig=flipped))))[0] == 403
    expired = await local.storage.link(key, filename="a.mp4", ttl_s=-5)
    assert (await local.get(expired))[0] == 410
    assert LinkExpired().to_dict()["code"] == "link_expired"
    assert LinkInvalid().to_dict()["code"] == "link_invalid"


async def test_local_path_traversal_is_refused(local: LocalSite) -> None:
    storage, files_dir = local.storage, local.settings.files_dir
    secret = make_file(local.settings.data_dir / "outside" / "secret.txt", 64)
    secret_bytes = secret.read_bytes()
    exp = str(int(time.time()) + 60)

    # A symlinked directory and a symlinked file that both lead out of files_dir.
    (files_dir / "ev").mkdir()
    (files_dir / "ev" / "dir").symlink_to(secret.parent, target_is_directory=True)
    (files_dir / "ev" / "job").mkdir()
    (files_dir / "ev" / "job" / "file.txt").symlink_to(secret)

    # Validly signed (as if the key leaked), so only the path checks stand in the way.
    malformed = [
        "../outside/secret.txt",
        "ev/../../outside/secret.txt",
        str(secret),  # absolute
        "ev/job/file.txt\x00.mp4",
        "./ev/job/file.txt",
        "ev//job/file.txt",
        "ev\\..\\..\\outside\\secret.txt",
    ]
    for key in [*malformed, "ev/dir/secret.txt", "ev/job/file.txt"]:
        with pytest.raises(LinkInvalid):
            storage.resolve_link(key, exp, "s.txt", storage._signature(key, exp, "s.txt"))
    for key in malformed:
        with pytest.raises(ValueError):
            await storage.link(key, filename="s.txt")

    # Encoded forms sent raw over HTTP, signed for what a decoder would make of them.
    sig = storage._signature("../outside/secret.txt", exp, "s.txt")
    for raw_path in [
        "..%2Foutside%2Fsecret.txt",
        "%2e%2e/outside/secret.txt",
        "%2E%2E%2Foutside%2Fsecret.txt",
        "%252e%252e%252Foutside%252Fsecret.txt",
        "ev/..%2F..%2Foutside/secret.txt",
        "%2Fetc%2Fpasswd",
    ]:
        status, body, _ = await local.get(f"{local.base_url}/files/{raw_path}?exp={exp}&name=s.txt&sig={sig}")
        assert status in (403, 404), raw_path
        assert secret_bytes not in body


@pytest.mark.parametrize("blocker", ["parent_is_a_file", "target_is_a_directory"])
async def test_local_save_error_leaves_nothing(local: LocalSite, blocker: str) -> None:
    files_dir = local.settings.files_dir
    key = "zz/zz1234/out.mp4"
    if blocker == "parent_is_a_file":
        (files_dir / "zz").write_bytes(b"not a directory")
    else:
        make_file(files_dir / key / "inside", 1)
    before = files_under(files_dir)
    src = make_file(local.settings.tmp_dir / "j" / "out.mp4", 1000)

    with pytest.raises(StorageError) as info:
        await local.storage.save(src, key, filename="out.mp4")

    assert info.value.code == "storage_error"
    assert str(local.settings.data_dir) not in str(info.value) and "zz" not in str(info.value)
    assert files_under(files_dir) == before
    assert src.exists()


def _other_device_dir(tmp_path: Path) -> Path:
    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no second filesystem to move across")
    return shm


async def test_local_save_across_devices_copies(local: LocalSite, tmp_path: Path) -> None:
    src = make_file(
        _other_device_dir(tmp_path) / f"mediabot-test-{os.getpid()}-{time.time_ns()}.bin", 2 * MIB
    )
    try:
        digest = sha256(src)
        key = make_key("ee112233", "x.bin")
        assert await local.storage.save(src, key, filename="x.bin") == 2 * MIB
        assert sha256(local.settings.files_dir / key) == digest
        assert not src.exists()
        assert files_under(local.settings.files_dir) == ["ee", "ee/ee112233", "ee/ee112233/x.bin"]
    finally:
        src.unlink(missing_ok=True)


async def test_local_failed_copy_leaves_no_partial(
    local: LocalSite, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_file(_other_device_dir(tmp_path) / f"mediabot-test-{os.getpid()}-{time.time_ns()}.bin", MIB)

    def disk_full(source: Path, dest: Path) -> None:
        with open(source, "rb") as fin, open(dest, "wb") as fout:
            fout.write(fin.read(1000))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dest))

    monkeypatch.setattr(core.storage.local.shutil, "copyfile", disk_full)
    try:
        with pytest.raises(StorageError):
            await local.storage.save(src, make_key("ff001122", "x.bin"), filename="x.bin")
        assert files_under(local.settings.files_dir) == []
        assert src.stat().st_size == MIB
    finally:
        src.unlink(missing_ok=True)


async def test_local_fetch_and_delete(local: LocalSite, tmp_path: Path) -> None:
    src = make_file(local.settings.tmp_dir / "j" / "f.bin", 123_456)
    digest = sha256(src)
    key = make_key("ab12cd34", "f.bin")
    await local.storage.save(src, key, filename="f.bin")
    await local.storage.save(
        make_file(local.settings.tmp_dir / "g.bin", 5), "ab/other/g.bin", filename="g.bin"
    )
    link = await local.storage.link(key, filename="f.bin")

    await local.storage.fetch(key, tmp_path / "copy.bin")
    assert sha256(tmp_path / "copy.bin") == digest

    await local.storage.delete(key)
    assert not await local.storage.exists(key)
    assert not (local.settings.files_dir / "ab" / "ab12cd34").exists()  # emptied job dir pruned
    assert (local.settings.files_dir / "ab" / "other" / "g.bin").exists()  # shared parent kept
    await local.storage.delete("ab/other/g.bin")
    assert local.settings.files_dir.is_dir() and files_under(local.settings.files_dir) == []
    await local.storage.delete(key)  # already gone: fine

    with pytest.raises(FileNotFoundError):
        await local.storage.fetch(key, tmp_path / "again.bin")
    assert not (tmp_path / "again.bin").exists()
    assert (await local.get(link))[0] == 404


async def test_local_probe(local: LocalSite) -> None:
    await local.storage.probe()
    assert files_under(local.settings.files_dir) == []
    assert files_under(local.settings.tmp_dir) == []

    local.settings.files_dir.rmdir()
    local.settings.files_dir.write_bytes(b"oops")  # files_dir is not a directory
    with pytest.raises(StorageError) as info:
        await local.storage.probe()
    assert str(local.settings.data_dir) not in info.value.message
    assert files_under(local.settings.tmp_dir) == []


# --- S3 on moto ------------------------------------------------------------------------------------------------


def s3_storage(moto_s3: MotoS3, tmp_path: Path, bucket: str, prefix: str = "") -> S3Storage:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        s3_bucket=bucket,
        s3_endpoint_url=moto_s3.endpoint_url,
        s3_region=moto_s3.region,
        s3_prefix=prefix,
    )
    storage = build_storage(settings)
    assert isinstance(storage, S3Storage) and storage.name == "s3"
    return storage


async def test_s3_multipart_save_link_fetch_delete(moto_s3: MotoS3, tmp_path: Path) -> None:
    bucket = moto_s3.new_bucket()
    storage = s3_storage(moto_s3, tmp_path, bucket, prefix="/media/")
    src = make_file(tmp_path / "work" / "big.mp4", 20 * MIB)
    digest = sha256(src)
    key = make_key("5a5a5a5a", UNICODE_NAME)

    assert await storage.save(src, key, filename=UNICODE_NAME, content_type="video/mp4") == 20 * MIB
    assert not src.exists()

    assert moto_s3.keys(bucket) == [f"media/{key}"]
    head = moto_s3.client.head_object(Bucket=bucket, Key=f"media/{key}")
    assert head["ETag"].strip('"').endswith("-3")  # 20 MiB in 8 MiB parts
    assert head["ContentType"] == "video/mp4"
    assert await storage.exists(key) and await storage.size(key) == 20 * MIB

    url = await storage.link(key, filename=UNICODE_NAME, ttl_s=120)
    assert "X-Amz-Expires=120" in url
    async with aiohttp.ClientSession() as http, http.get(yarl.URL(url, encoded=True)) as resp:
        assert resp.status == 200
        body = await resp.read()
        assert resp.content_disposition is not None and resp.content_disposition.filename == UNICODE_NAME
    assert hashlib.sha256(body).hexdigest() == digest

    await storage.fetch(key, tmp_path / "fetched.mp4")
    assert sha256(tmp_path / "fetched.mp4") == digest

    await storage.delete(key)
    assert not await storage.exists(key) and await storage.size(key) is None
    assert moto_s3.keys(bucket) == []
    await storage.delete(key)  # already gone: fine
    with pytest.raises(FileNotFoundError):
        await storage.fetch(key, tmp_path / "missing.mp4")
    assert not (tmp_path / "missing.mp4").exists()


async def test_s3_upload_to_missing_bucket(moto_s3: MotoS3, tmp_path: Path) -> None:
    storage = s3_storage(moto_s3, tmp_path, "no-such-bucket-here")
    src = make_file(tmp_path / "work" / "f.mp4", 9 * MIB)  # multipart: fails at CreateMultipartUpload
    small = make_file(tmp_path / "work" / "s.mp4", 1000)  # single PutObject

    for path in (src, small):
        with pytest.raises(StorageError) as info:
            await storage.save(path, "aa/aa01/f.mp4", filename="f.mp4")
        assert "no-such-bucket" not in info.value.message and str(tmp_path) not in info.value.message
        assert path.exists()
    assert "no-such-bucket-here" not in [b["Name"] for b in moto_s3.client.list_buckets()["Buckets"]]


async def test_s3_failed_part_aborts_multipart(moto_s3: MotoS3, tmp_path: Path) -> None:
    bucket = moto_s3.new_bucket()
    storage = s3_storage(moto_s3, tmp_path, bucket)
    src = make_file(tmp_path / "work" / "f.mp4", 20 * MIB)

    def drop_part_two(params: dict, **_: object) -> None:
        if params.get("PartNumber") == 2:
            raise EndpointConnectionError(endpoint_url=moto_s3.endpoint_url)

    storage._client.meta.events.register("before-parameter-build.s3.UploadPart", drop_part_two)
    with pytest.raises(StorageError):
        await storage.save(src, "bb/bb01/f.mp4", filename="f.mp4")

    assert moto_s3.keys(bucket) == []
    assert moto_s3.multipart_uploads(bucket) == []
    assert not await storage.exists("bb/bb01/f.mp4")
    assert src.exists()


async def test_s3_probe(moto_s3: MotoS3, tmp_path: Path) -> None:
    bucket = moto_s3.new_bucket()
    await s3_storage(moto_s3, tmp_path, bucket, prefix="p").probe()
    assert moto_s3.keys(bucket) == []

    with pytest.raises(StorageError) as info:
        await s3_storage(moto_s3, tmp_path, "missing-bucket-probe").probe()
    assert "NoSuchBucket" in info.value.message


async def test_s3_links_name_the_public_endpoint(moto_s3: MotoS3, tmp_path: Path) -> None:
    """Inside compose the service talks to http://minio:9000; people must get a link they can reach."""
    bucket = moto_s3.new_bucket()
    public = moto_s3.endpoint_url.replace("127.0.0.1", "localhost")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        s3_bucket=bucket,
        s3_endpoint_url=moto_s3.endpoint_url,
        s3_public_url=public,
        s3_region=moto_s3.region,
    )
    storage = build_storage(settings)
    src = make_file(tmp_path / "clip.mp4", 1000)
    await storage.save(src, "ab/abcd/clip.mp4", filename="clip.mp4")
    url = await storage.link("ab/abcd/clip.mp4", filename="clip.mp4")
    assert url.startswith(public + "/") and not url.startswith(moto_s3.endpoint_url)
    async with aiohttp.ClientSession() as http, http.get(yarl.URL(url, encoded=True)) as resp:
        assert resp.status == 200 and len(await resp.read()) == 1000
