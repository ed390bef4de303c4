"""The storage seam: the local directory, and S3 against moto's S3 server on loopback.

The SigV4 signer is also checked against botocore's own (a dev dependency via
moto) for the same instant and credentials: equal signatures mean AWS, Supabase
Storage and MinIO accept ours.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto.server import ThreadedMotoServer

from shared.firmware.links import DownloadGrant, link_key, verify
from shared.firmware.s3 import S3Storage, SigV4
from shared.firmware.storage import LocalStorage, StorageError

ACCESS, SECRET, REGION, BUCKET = (
    "AKIDEXAMPLE",
    "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "eu-west-2",
    "opendot-fw",
)
NOW = dt.datetime(2026, 11, 25, 12, 30, 0, tzinfo=dt.UTC)


def _grant(ttl: int = 300) -> DownloadGrant:
    return DownloadGrant(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), int(time.time()) + ttl)


# --- the signer against botocore ------------------------------------------------------


def _freeze(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))


def test_presigned_get_matches_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    _freeze(monkeypatch)
    url = "https://abc.supabase.co/storage/v1/s3/opendot-fw/firmware/x y.bin"
    ours = SigV4(ACCESS, SECRET, REGION).presign("GET", url, 900, NOW)
    request = AWSRequest(method="GET", url=url.replace(" ", "%20"))
    S3SigV4QueryAuth(Credentials(ACCESS, SECRET), "s3", REGION, expires=900).add_auth(request)
    theirs = request.url
    assert ours.split("X-Amz-Signature=")[1] == theirs.split("X-Amz-Signature=")[1]
    assert "X-Amz-Expires=900" in ours and ours.startswith("https://abc.supabase.co/storage/")


def test_signed_put_matches_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    _freeze(monkeypatch)
    url = "https://opendot-fw.s3.eu-west-2.amazonaws.com/firmware/a.bin"
    body = b"\xe9firmware"
    digest = hashlib.sha256(body).hexdigest()
    ours = SigV4(ACCESS, SECRET, REGION).sign_headers(
        "PUT", url, digest, NOW, {"content-type": "application/octet-stream"}
    )
    request = AWSRequest(
        method="PUT",
        url=url,
        data=body,
        headers={"content-type": "application/octet-stream", "x-amz-content-sha256": digest},
    )
    S3SigV4Auth(Credentials(ACCESS, SECRET), "s3", REGION).add_auth(request)
    assert ours["authorization"] == request.headers["Authorization"]


# --- S3 against moto -------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS,
        aws_secret_access_key=SECRET,
    ).create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    try:
        yield endpoint
    finally:
        server.stop()


async def test_s3_put_presign_delete(moto_endpoint: str) -> None:
    storage = S3Storage(
        bucket=BUCKET, region=REGION, access_key=ACCESS, secret_key=SECRET, endpoint=moto_endpoint
    )
    grant = _grant()
    body = bytes(range(256)) * 40
    try:
        await storage.put(
            grant.storage_key, io.BytesIO(body), len(body), hashlib.sha256(body).hexdigest()
        )
        url = storage.download_url(grant, base_url="ignored")
        assert "X-Amz-Signature=" in url and str(grant.release_id) in url
        async with httpx.AsyncClient() as client:
            got = await client.get(url)
            assert got.status_code == 200 and got.content == body
            ranged = await client.get(url, headers={"Range": "bytes=10-19"})
            assert ranged.status_code == 206 and ranged.content == body[10:20]
            await storage.delete(grant.storage_key)
            assert (await client.get(url)).status_code == 404
        await storage.delete(grant.storage_key)  # already gone: not an error
    finally:
        await storage.aclose()


async def test_s3_refusal_is_a_storage_error(moto_endpoint: str) -> None:
    storage = S3Storage(
        bucket="no-such-bucket",
        region=REGION,
        access_key=ACCESS,
        secret_key=SECRET,
        endpoint=moto_endpoint,
    )
    try:
        with pytest.raises(StorageError, match="refused the upload"):
            await storage.put(_grant().storage_key, io.BytesIO(b"abc"), 3, "0" * 64)
        with pytest.raises(StorageError, match="changed while"):
            await storage.put(_grant().storage_key, io.BytesIO(b"abcd"), 3, "0" * 64)
    finally:
        await storage.aclose()


async def test_s3_unreachable_is_a_storage_error() -> None:
    storage = S3Storage(
        bucket=BUCKET,
        region=REGION,
        access_key=ACCESS,
        secret_key=SECRET,
        endpoint=f"http://127.0.0.1:{_free_port()}",
    )
    try:
        with pytest.raises(StorageError, match="not reachable"):
            await storage.put(_grant().storage_key, io.BytesIO(b"abc"), 3, "0" * 64)
    finally:
        await storage.aclose()


# --- the local directory ----------------------------------------------------------------


async def test_local_put_link_delete(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "firmware", "secret-a")
    grant = _grant()
    await storage.put(grant.storage_key, io.BytesIO(b"bin" * 100), 300, "unused")
    path = storage.path(grant.storage_key)
    assert path.read_bytes() == b"bin" * 100
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left
    url = storage.download_url(grant, base_url="http://dot.test:8787/")
    assert url.startswith("http://dot.test:8787/ota/firmware/")
    token = url.rsplit("/", 1)[1]
    assert verify(link_key("secret-a"), token, time.time()) == grant
    assert verify(link_key("secret-b"), token, time.time()) is None
    await storage.delete(grant.storage_key)
    await storage.delete(grant.storage_key)
    assert not path.exists()


def test_local_refuses_keys_outside_the_directory(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, "s")
    for key in ("firmware/../../etc/passwd", "../x.bin", "firmware/abc.bin"):
        with pytest.raises(StorageError):
            storage.path(key)
