"""A real S3 endpoint for tests: moto's threaded server on 127.0.0.1 and dummy AWS credentials.

Use it with the session fixture ``moto_s3``::

    async def test_x(moto_s3):
        bucket = moto_s3.new_bucket()
        settings = Settings(storage="s3", s3_bucket=bucket, s3_endpoint_url=moto_s3.endpoint_url, ...)
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

REGION = "us-east-1"

# Dummy credentials, and everything else that could point boto3 somewhere other than the local server
# (profiles, shared config files, a global endpoint override, instance metadata) switched off.
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_EC2_METADATA_DISABLED": "true",
}
_AWS_UNSET = (
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)


@dataclass
class MotoS3:
    endpoint_url: str
    region: str
    client: Any  # a boto3 S3 client on the server, for arranging and checking state

    def new_bucket(self) -> str:
        """Create a bucket with a unique name and return the name."""
        name = f"test-{uuid.uuid4().hex[:20]}"
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in bucket under prefix."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def multipart_uploads(self, bucket: str) -> list[dict[str, Any]]:
        """Multipart uploads started in bucket and neither completed nor aborted."""
        return list(self.client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in _AWS_ENV.items():
            mp.setenv(name, value)
        for name in _AWS_UNSET:
            mp.delenv(name, raising=False)
        # botocore honours HTTP(S)_PROXY; make sure loopback never goes through one.
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        mp.setenv("no_proxy", "127.0.0.1,localhost")
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

        # Port 0: the kernel picks a free port and the server reports it, with no window for a clash.
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            endpoint_url = f"http://{host}:{port}"
            client = boto3.session.Session().client(
                "s3",
                region_name=REGION,
                endpoint_url=endpoint_url,
                config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
            )
            yield MotoS3(endpoint_url=endpoint_url, region=REGION, client=client)
        finally:
            server.stop()
