"""S3 storage: objects in one bucket, multipart uploads from the worker, presigned links. The only module
that imports boto3; bootstrap imports it only when MEDIABOT_STORAGE=s3."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.config import Settings
from core.errors import NotFound, StorageError
from core.i18n import N_, _
from core.storage.base import MB, PROBE_PREFIX
from core.storage.keys import check_key, content_disposition
from core.storage.local import unlink_quietly

log = logging.getLogger(__name__)

PART_SIZE = 8 * MB

# SigV4 presigned URLs cannot live longer than seven days.
S3_MAX_LINK_TTL_S = 7 * 24 * 3600
_S3_ERRORS = (BotoCoreError, ClientError, Boto3Error)
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound"}


def _reason(exc: BaseException) -> str:
    """A short, path-free description of an error for health checks."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or "ClientError")
    if isinstance(exc, OSError) and exc.errno is not None:
        return errno.errorcode.get(exc.errno, type(exc).__name__)
    return type(exc).__name__


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

    def local_path(self, key: str) -> Path | None:
        return None

    def resolve_link(self, key: str, exp: str, name: str, sig: str, now: float | None = None) -> Path:
        raise NotFound(N_("Files are served by the storage service, not by this address."))

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
        await asyncio.to_thread(unlink_quietly, Path(src))
        return size

    async def delete(self, key: str) -> None:
        s3_key = self._key(key)
        try:
            await asyncio.to_thread(self._client.delete_object, Bucket=self._bucket, Key=s3_key)
        except _S3_ERRORS as exc:
            if _is_not_found(exc):
                return
            log.warning("deleting s3://%s/%s failed: %s", self._bucket, s3_key, exc)
            raise StorageError(N_("The file could not be deleted. Please try again later.")) from exc

    async def size(self, key: str) -> int | None:
        s3_key = self._key(key)
        try:
            head = await asyncio.to_thread(self._client.head_object, Bucket=self._bucket, Key=s3_key)
        except _S3_ERRORS as exc:
            if _is_not_found(exc):
                return None
            log.warning("head s3://%s/%s failed: %s", self._bucket, s3_key, exc)
            raise StorageError(N_("The file could not be read. Please try again later.")) from exc
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
            raise StorageError(N_("A download link could not be made. Please try again later.")) from exc

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
            raise StorageError(N_("The file could not be read. Please try again later.")) from exc

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
                raise StorageError(N_("The file storage returned different bytes than were written."))

        try:
            await asyncio.to_thread(roundtrip)
        except (*_S3_ERRORS, OSError) as exc:
            log.warning("S3 probe on bucket %s failed: %s", self._bucket, exc)
            raise StorageError(
                _("The file storage is not working ({reason}).").format(reason=_reason(exc))
            ) from exc
