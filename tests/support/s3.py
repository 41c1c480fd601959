"""A local S3 stand-in for the S3 file store: moto's server, in this process, on a free
port of 127.0.0.1 (never AWS). The `s3` fixture (tests/conftest.py, through `moto_server`
and `fresh_bucket`) gives each test its own bucket and made-up credentials in the
environment; `MotoS3.objects` reads what the bucket holds with a plain boto3 client."""

from __future__ import annotations

import contextlib
import logging
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "eu-west-2"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "vigil-test-key",
    "AWS_SECRET_ACCESS_KEY": "vigil-test-secret",
    "AWS_REGION": REGION,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class MotoS3:
    endpoint: str
    bucket: str
    client: Any  # boto3's S3 client, to look at the bucket as an outsider would

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/vigil/files"

    @property
    def overrides(self) -> dict[str, str]:
        """The settings a server needs to keep its files in this bucket."""
        return {
            "VIGIL_FILES_URL": self.url,
            "VIGIL_S3_ENDPOINT_URL": self.endpoint,
            "VIGIL_S3_REGION": REGION,
        }

    def keys(self) -> list[str]:
        answer = self.client.list_objects_v2(Bucket=self.bucket)
        return sorted(item["Key"] for item in answer.get("Contents", []))

    def objects(self) -> dict[str, bytes]:
        """Every object in the bucket, by name, as stored."""
        return {
            key: self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            for key in self.keys()
        }


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server on a free port of 127.0.0.1: its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def fresh_bucket(endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MotoS3:
    """A new bucket on the stand-in, and made-up credentials for it in the environment
    (no AWS configuration of this machine is read)."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    bucket = f"vigil-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return MotoS3(endpoint, bucket, client)
