"""Where finished files live (local disk or S3) and the links that hand them to people.

Files move once (DESIGN.md section 6): the worker downloads into a temp dir, `save` renames the file into place
(local) or streams it to S3 in parts. Links are computed from the key on demand and never stored.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import logging
import os
import re
import secrets
import shutil
import stat as stat_module
import time
import unicodedata
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.config import Settings
from core.errors import MediabotError, StorageError, TooLarge, human_size

log = logging.getLogger(__name__)

MB = 1024 * 1024
PART_SIZE = 8 * MB
# SigV4 presigned URLs cannot live longer than seven days.
S3_MAX_LINK_TTL_S = 7 * 24 * 3600
PROBE_PREFIX = "_probe/"
_S3_ERRORS = (BotoCoreError, ClientError, Boto3Error)
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}


class LinkExpired(MediabotError):
    code = "link_expired"
    default_message = "This download link has expired. Ask for the file again to get a new link."


class LinkInvalid(MediabotError):
    code = "link_invalid"
    default_message = "This download link is not valid. Check that it was copied completely."


class Storage(Protocol):
    name: str

    async def save(self, src: Path, key: str, *, filename: str, content_type: str | None = None) -> int: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int | None: ...

    async def link(self, key: str, *, filename: str, ttl_s: int | None = None) -> str: ...

    async def fetch(self, key: str, dest: Path) -> None: ...

    async def probe(self) -> None: ...


def build_storage(settings: Settings) -> Storage:
    if settings.storage == "s3":
        return S3Storage(settings)
    return LocalStorage(settings)


# --- free space ----------------------------------------------------------------------------------------------

# Left free beyond a download's own size: the database (SQLite sits in DATA_DIR by default), its journal and
# the other jobs share the disk, and a disk filled to the last byte fails them all.
SPACE_MARGIN = 16 * MB


def download_dirs(settings: Settings) -> tuple[Path, ...]:
    """Where a download takes room: the temp dir, and the files dir when storage is local."""
    return (settings.tmp_dir, settings.files_dir) if settings.storage == "local" else (settings.tmp_dir,)


def check_free_space(dirs: tuple[Path, ...], size: int) -> None:
    """Refuse a download of `size` bytes that the disks under `dirs` have no room for: TooLarge when it is
    larger than a whole disk, StorageError (out of space, try later) when it is larger than what is free.
    Blocking (statvfs): call it from a thread."""
    seen: set[int] = set()
    for directory in dirs:
        path = directory
        while not path.exists() and path != path.parent:
            path = path.parent
        try:
            device = path.stat().st_dev
            usage = shutil.disk_usage(path)
        except OSError as exc:
            log.warning("free space of %s unknown: %s", directory, exc)
            continue
        if device in seen:
            continue  # same disk as a directory already counted (local storage: the usual case)
        seen.add(device)
        if size > usage.total:
            raise TooLarge(
                f"This file is {human_size(size)}; this server has room for {human_size(usage.total)}."
            )
        if usage.free < size + SPACE_MARGIN:
            log.warning(
                "refusing a %s download: %s free on the disk of %s",
                human_size(size),
                human_size(usage.free),
                directory,
            )
            raise StorageError.out_of_space(size)


# --- names ---------------------------------------------------------------------------------------------------

_SAFE_PUNCT = frozenset(" .-_()")
_MAX_NAME_BYTES = 150
_MAX_EXT_BYTES = 16
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{2,100}")


def _safe_char(ch: str) -> bool:
    # Letters, digits and combining marks (needed by Devanagari, Thai...) of any script.
    return ch in _SAFE_PUNCT or unicodedata.category(ch)[0] in "LNM"


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode()[:limit].decode(errors="ignore")


def safe_filename(filename: str) -> str:
    """The name with only unicode letters/digits/space/.-_() kept, at most ~150 UTF-8 bytes, extension kept."""
    name = unicodedata.normalize("NFC", filename)
    name = "".join(ch if _safe_char(ch) else "_" for ch in name)
    name = re.sub(r"_{2,}", "_", name).strip(" ._")
    stem, ext = os.path.splitext(name)
    if len(ext.encode()) > _MAX_EXT_BYTES:
        stem, ext = name, ""
    stem = _truncate_utf8(stem, _MAX_NAME_BYTES - len(ext.encode())).rstrip(" .")
    return (stem or "file") + ext


def make_key(job_id: str, filename: str, run: str | None = None) -> str:
    """Where a job's file is stored. `run` names one attempt at the job: two attempts (one that lost its
    lease and one that took over) never write, or clean up, each other's files."""
    if not _JOB_ID.fullmatch(job_id) or (run is not None and not _JOB_ID.fullmatch(run)):
        raise ValueError(f"unexpected job id {job_id!r} / run {run!r}")
    folder = f"{job_id[:2]}/{job_id}" + (f"/{run}" if run else "")
    return f"{folder}/{safe_filename(filename)}"


def check_key(key: str) -> str:
    """Refuse keys that are not plain relative paths (absolute, '..', empty segments, NUL, backslash)."""
    if not key or len(key.encode()) > 1024 or "\x00" in key or "\\" in key or key.startswith("/"):
        raise ValueError(f"invalid storage key {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError(f"invalid storage key {key!r}")
    return key


_ASCII_KEEP = re.compile(r"[^A-Za-z0-9 !#$&'()+,.=@^_`{}~\[\]-]")
# RFC 5987 attr-char beyond quote()'s always-safe letters, digits and "_.-~".
_ATTR_SAFE = "!#$&+^`|"


def content_disposition(filename: str) -> str:
    """`attachment; filename="ascii fallback"; filename*=UTF-8''percent-encoded` (RFC 6266 / RFC 5987)."""
    decomposed = unicodedata.normalize("NFKD", filename)
    ascii_name = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    ascii_name = re.sub(r"_{2,}", "_", _ASCII_KEEP.sub("_", ascii_name)).strip(" .")
    stem, ext = os.path.splitext(ascii_name)
    if not stem.strip("_ "):
        ascii_name = "download" + ext
    encoded = quote(unicodedata.normalize("NFC", filename), safe=_ATTR_SAFE)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{encoded}"


# --- local disk ----------------------------------------------------------------------------------------------


class LocalStorage:
    """Files under settings.files_dir, served by the web app through signed, expiring links."""

    name = "local"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._root = settings.files_dir
        self._key_bytes: bytes | None = None

    def _path(self, key: str) -> Path:
        return self._root / check_key(key)

    def path_for(self, key: str) -> Path:
        """Where a stored file lives on this machine (for the CLI and for serving it)."""
        return self._path(key)

    # save ---------------------------------------------------------------------------------------------------

    async def save(self, src: Path, key: str, *, filename: str, content_type: str | None = None) -> int:
        dest = self._path(key)
        try:
            return await asyncio.to_thread(self._save_sync, Path(src), dest)
        except OSError as exc:
            log.warning("storing %s as %s failed: %s", src, key, exc)
            raise StorageError.from_os_error(exc) from exc

    def _save_sync(self, src: Path, dest: Path) -> int:
        for attempt in range(3):
            try:
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.replace(src, dest)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    self._copy_into_place(src, dest)
                return dest.stat().st_size
            except FileNotFoundError:
                # A concurrent delete() may have pruned the (then empty) parent between mkdir and rename.
                if attempt == 2 or not src.exists():
                    self._prune(dest.parent)
                    raise
            except OSError:
                self._prune(dest.parent)
                raise
        raise AssertionError("unreachable")

    def _copy_into_place(self, src: Path, dest: Path) -> None:
        """Cross-device move: copy to a hidden temp name next to dest, fsync, rename, then drop the source."""
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
        try:
            shutil.copyfile(src, tmp)
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, dest)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        try:
            src.unlink()
        except OSError as exc:
            log.warning("could not remove %s after copying it into storage: %s", src, exc)

    def _prune(self, directory: Path) -> None:
        """Remove empty directories from `directory` up to, not including, files_dir."""
        root = self._root
        while directory != root and root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    # reads and deletes --------------------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            await asyncio.to_thread(self._delete_sync, path)
        except OSError as exc:
            log.warning("deleting %s failed: %s", key, exc)
            raise StorageError("The file could not be deleted. Please try again later.") from exc

    def _delete_sync(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._prune(path.parent)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self._path(key).is_file)

    async def size(self, key: str) -> int | None:
        path = self._path(key)

        def stat() -> int | None:
            try:
                st = path.stat()
            except (FileNotFoundError, NotADirectoryError):
                return None
            return st.st_size if stat_module.S_ISREG(st.st_mode) else None

        try:
            return await asyncio.to_thread(stat)
        except OSError as exc:
            raise StorageError("The file could not be read. Please try again later.") from exc

    async def fetch(self, key: str, dest: Path) -> None:
        """Copy the stored file to dest; FileNotFoundError when there is none."""
        path = self._path(key)

        def copy() -> None:
            if not path.is_file():
                raise FileNotFoundError(key)
            try:
                shutil.copyfile(path, dest)
            except BaseException:
                Path(dest).unlink(missing_ok=True)
                raise

        try:
            await asyncio.to_thread(copy)
        except OSError as exc:
            if isinstance(exc, FileNotFoundError) and not path.is_file():
                raise FileNotFoundError(key) from None
            log.warning("fetching %s failed: %s", key, exc)
            raise StorageError("The file could not be read. Please try again later.") from exc

    async def probe(self) -> None:
        """Write a file in tmp_dir, move it into files_dir, read it back, compare and delete it."""
        try:
            await asyncio.to_thread(self._probe_sync)
        except OSError as exc:
            log.warning("local storage probe failed: %s", exc)
            raise StorageError(f"The file storage is not working ({_reason(exc)}).") from exc

    def _probe_sync(self) -> None:
        payload = secrets.token_bytes(32)
        dest = self._path(f"{PROBE_PREFIX}{secrets.token_hex(8)}")
        tmp_dir = self._settings.tmp_dir
        tmp_dir.mkdir(parents=True, exist_ok=True)
        src = tmp_dir / f"probe-{secrets.token_hex(8)}"
        try:
            src.write_bytes(payload)
            self._save_sync(src, dest)
            if dest.read_bytes() != payload:
                raise StorageError("The file storage returned different bytes than were written.")
            if tmp_dir.stat().st_dev != self._root.stat().st_dev:
                log.warning("tmp_dir and files_dir are on different filesystems: every save copies the file")
        finally:
            src.unlink(missing_ok=True)
            dest.unlink(missing_ok=True)
            self._prune(dest.parent)

    # links --------------------------------------------------------------------------------------------------

    def _signature(self, key: str, exp: str, name: str) -> str:
        if self._key_bytes is None:
            # Read (or generated into DATA_DIR) on first use, not when the service is built.
            self._key_bytes = self._settings.signing_key()
        message = "\x00".join(("v1", key, exp, name)).encode()
        return hmac.new(self._key_bytes, message, hashlib.sha256).hexdigest()

    async def link(self, key: str, *, filename: str, ttl_s: int | None = None) -> str:
        check_key(key)
        if "\x00" in filename:
            raise ValueError("filename contains NUL")
        ttl = self._settings.link_ttl_s if ttl_s is None else ttl_s
        exp = str(int(time.time()) + ttl)
        sig = self._signature(key, exp, filename)
        path = "/".join(quote(part, safe="") for part in key.split("/"))
        return f"{self._settings.public_url}/files/{path}?exp={exp}&name={quote(filename, safe='')}&sig={sig}"

    def resolve_link(self, key: str, exp: str, name: str, sig: str, now: float | None = None) -> Path:
        """The file a signed link points at; LinkInvalid, LinkExpired or FileNotFoundError otherwise.

        key, exp, name and sig are the decoded path remainder after /files/ and the query values.
        """
        if not re.fullmatch(r"[0-9]{1,12}", exp or "") or not re.fullmatch(r"[0-9a-fA-F]{64}", sig or ""):
            raise LinkInvalid()
        if "\x00" in key or "\x00" in name:
            raise LinkInvalid()
        if not hmac.compare_digest(self._signature(key, exp, name), sig.lower()):
            raise LinkInvalid()
        if (time.time() if now is None else now) > int(exp):
            raise LinkExpired()
        try:
            check_key(key)
        except ValueError:
            raise LinkInvalid() from None
        root = Path(os.path.realpath(self._root))
        real = Path(os.path.realpath(self._root / key))
        if not real.is_relative_to(root) or real == root:
            raise LinkInvalid()
        if not real.is_file():
            raise FileNotFoundError(key)
        return real


def _reason(exc: BaseException) -> str:
    """A short, path-free description of an error for health checks."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, type(exc).__name__)
    return type(exc).__name__


# --- S3 ------------------------------------------------------------------------------------------------------


def _is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and str(exc.response.get("Error", {}).get("Code")) in _NOT_FOUND_CODES


class S3Storage:
    """Objects in one bucket under settings.s3_prefix; links are presigned GETs."""

    name = "s3"

    def __init__(self, settings: Settings) -> None:
        if not settings.s3_bucket:
            raise ValueError("S3 storage needs a bucket")
        self._settings = settings
        self._bucket = settings.s3_bucket
        prefix = settings.s3_prefix.strip("/")
        self._prefix = f"{prefix}/" if prefix else ""
        options: dict[str, Any] = {}
        if settings.s3_endpoint_url:
            # boto3 >= 1.36 adds CRC checksum headers by default, which many S3-compatible servers
            # (MinIO, R2, B2, Ceph) reject; send them only when the operation requires them.
            options = {
                "request_checksum_calculation": "when_required",
                "response_checksum_validation": "when_required",
            }
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 5, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=32,
            **options,
        )
        # A private session: the default one is not safe to create clients from in several threads.
        session = boto3.session.Session()
        self._client: BaseClient = session.client(
            "s3",
            region_name=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url or None,
            config=config,
        )
        # Links must name a host the person can reach; inside compose the endpoint (http://minio:9000) is not.
        self._signer: BaseClient = (
            session.client(
                "s3", region_name=settings.s3_region, endpoint_url=settings.s3_public_url, config=config
            )
            if settings.s3_public_url
            else self._client
        )
        self._transfer = TransferConfig(
            multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE, max_concurrency=4, use_threads=True
        )

    def _key(self, key: str) -> str:
        return self._prefix + check_key(key)

    async def save(self, src: Path, key: str, *, filename: str, content_type: str | None = None) -> int:
        s3_key = self._key(key)
        extra = {"ContentDisposition": content_disposition(filename)}
        if content_type:
            extra["ContentType"] = content_type

        def upload() -> int:
            size = os.stat(src).st_size
            # Streams from disk in PART_SIZE parts; s3transfer aborts the multipart upload if a part fails.
            self._client.upload_file(str(src), self._bucket, s3_key, ExtraArgs=extra, Config=self._transfer)
            return size

        try:
            size = await asyncio.to_thread(upload)
        except (*_S3_ERRORS, OSError) as exc:
            log.warning("uploading %s to s3://%s/%s failed: %s", src, self._bucket, s3_key, exc)
            raise StorageError() from exc
        # Same contract as the local backend: the file has moved, the source is gone.
        await asyncio.to_thread(_unlink_quietly, Path(src))
        return size

    async def delete(self, key: str) -> None:
        s3_key = self._key(key)
        try:
            await asyncio.to_thread(self._client.delete_object, Bucket=self._bucket, Key=s3_key)
        except _S3_ERRORS as exc:
            if _is_not_found(exc):
                return
            log.warning("deleting s3://%s/%s failed: %s", self._bucket, s3_key, exc)
            raise StorageError("The file could not be deleted. Please try again later.") from exc

    async def size(self, key: str) -> int | None:
        s3_key = self._key(key)
        try:
            head = await asyncio.to_thread(self._client.head_object, Bucket=self._bucket, Key=s3_key)
        except _S3_ERRORS as exc:
            if _is_not_found(exc):
                return None
            log.warning("head s3://%s/%s failed: %s", self._bucket, s3_key, exc)
            raise StorageError("The file could not be read. Please try again later.") from exc
        return int(head["ContentLength"])

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def link(self, key: str, *, filename: str, ttl_s: int | None = None) -> str:
        ttl = self._settings.link_ttl_s if ttl_s is None else ttl_s
        if ttl > S3_MAX_LINK_TTL_S:
            log.warning("link TTL %ss exceeds the S3 maximum; links last %ss", ttl, S3_MAX_LINK_TTL_S)
            ttl = S3_MAX_LINK_TTL_S
        params = {
            "Bucket": self._bucket,
            "Key": self._key(key),
            "ResponseContentDisposition": content_disposition(filename),
        }
        try:
            return await asyncio.to_thread(
                self._signer.generate_presigned_url, "get_object", Params=params, ExpiresIn=ttl
            )
        except _S3_ERRORS as exc:
            raise StorageError("A download link could not be made. Please try again later.") from exc

    async def fetch(self, key: str, dest: Path) -> None:
        """Download the object to dest (written under a temp name, then renamed); FileNotFoundError if missing."""
        s3_key = self._key(key)
        try:
            await asyncio.to_thread(
                self._client.download_file, self._bucket, s3_key, str(dest), Config=self._transfer
            )
        except (*_S3_ERRORS, OSError) as exc:
            if _is_not_found(exc):
                raise FileNotFoundError(key) from None
            log.warning("downloading s3://%s/%s failed: %s", self._bucket, s3_key, exc)
            raise StorageError("The file could not be read. Please try again later.") from exc

    async def probe(self) -> None:
        """Put, get, compare and delete a small object under _probe/."""
        s3_key = self._key(f"{PROBE_PREFIX}{secrets.token_hex(8)}")
        payload = secrets.token_bytes(32)

        def roundtrip() -> None:
            self._client.put_object(Bucket=self._bucket, Key=s3_key, Body=payload)
            try:
                body = self._client.get_object(Bucket=self._bucket, Key=s3_key)["Body"]
                with body:
                    back = body.read()
            finally:
                self._client.delete_object(Bucket=self._bucket, Key=s3_key)
            if back != payload:
                raise StorageError("The file storage returned different bytes than were written.")

        try:
            await asyncio.to_thread(roundtrip)
        except (*_S3_ERRORS, OSError) as exc:
            log.warning("S3 probe on bucket %s failed: %s", self._bucket, exc)
            raise StorageError(f"The file storage is not working ({_reason(exc)}).") from exc


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s after uploading it: %s", path, exc)
