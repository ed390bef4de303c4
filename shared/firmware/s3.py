"""Release files in an S3 bucket: AWS S3, Supabase Storage's S3 API, MinIO, R2.

Three calls (PUT, DELETE, presigned GET) do not justify boto3 in the API's
Lambda package (about 100 MB with botocore, 0.5 s of import on this machine):
this module signs AWS Signature Version 4 itself over httpx, which the API
already uses. The signer follows AWS's published algorithm (canonical request,
string to sign, HMAC-SHA256 key chain); tests run it against moto's S3 server.

Uploads carry their SHA-256 as `x-amz-content-sha256`, so S3 refuses a body
that does not match what the API hashed. Downloads are presigned GETs
(`X-Amz-Expires`): the Dot fetches the bytes straight from the bucket, and the
URL names one object for a few minutes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
from collections.abc import Mapping
from typing import BinaryIO
from urllib.parse import quote, urlsplit

import httpx

from shared.firmware.links import DownloadGrant
from shared.firmware.settings import FirmwareSettings
from shared.firmware.storage import StorageError, checked_key

_ALGORITHM = "AWS4-HMAC-SHA256"
_UNSIGNED = "UNSIGNED-PAYLOAD"
_EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _encode(text: str, safe: str = "-_.~") -> str:
    return quote(text, safe=safe)


class SigV4:
    """AWS Signature Version 4 for one service and region (S3 rules: no double encoding)."""

    def __init__(self, access_key: str, secret_key: str, region: str, service: str = "s3"):
        self.access_key = access_key
        self.secret_key = secret_key
        self.region = region
        self.service = service

    def _scope(self, day: str) -> str:
        return f"{day}/{self.region}/{self.service}/aws4_request"

    def _signature(self, day: str, string_to_sign: str) -> str:
        key = _hmac(("AWS4" + self.secret_key).encode("utf-8"), day)
        for part in (self.region, self.service, "aws4_request"):
            key = _hmac(key, part)
        return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()

    def _string_to_sign(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        payload_hash: str,
        stamp: str,
    ) -> tuple[str, str]:
        canonical_query = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in sorted(query.items()))
        names = sorted(headers)
        canonical_headers = "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names)
        signed = ";".join(names)
        request = "\n".join(
            (
                method,
                _encode(path, "/-_.~"),
                canonical_query,
                canonical_headers,
                signed,
                payload_hash,
            )
        )
        digest = hashlib.sha256(request.encode("utf-8")).hexdigest()
        return "\n".join((_ALGORITHM, stamp, self._scope(stamp[:8]), digest)), signed

    def sign_headers(
        self,
        method: str,
        url: str,
        payload_hash: str,
        now: dt.datetime,
        extra: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """Headers (Authorization, x-amz-date, x-amz-content-sha256, ...) for a request."""
        parts = urlsplit(url)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        headers = {
            "host": parts.netloc,
            "x-amz-content-sha256": payload_hash,
            "x-amz-date": stamp,
            **{k.lower(): v for k, v in (extra or {}).items()},
        }
        to_sign, signed = self._string_to_sign(
            method, parts.path or "/", {}, headers, payload_hash, stamp
        )
        credential = f"{self.access_key}/{self._scope(stamp[:8])}"
        headers["authorization"] = (
            f"{_ALGORITHM} Credential={credential}, SignedHeaders={signed}, "
            f"Signature={self._signature(stamp[:8], to_sign)}"
        )
        del headers["host"]
        return headers

    def presign(self, method: str, url: str, expires_s: int, now: dt.datetime) -> str:
        """A query-signed URL valid for `expires_s` seconds (1 s to 7 days)."""
        parts = urlsplit(url)
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        query = {
            "X-Amz-Algorithm": _ALGORITHM,
            "X-Amz-Credential": f"{self.access_key}/{self._scope(stamp[:8])}",
            "X-Amz-Date": stamp,
            "X-Amz-Expires": str(max(1, min(expires_s, 604_800))),
            "X-Amz-SignedHeaders": "host",
        }
        to_sign, _ = self._string_to_sign(
            method, parts.path or "/", query, {"host": parts.netloc}, _UNSIGNED, stamp
        )
        query["X-Amz-Signature"] = self._signature(stamp[:8], to_sign)
        encoded = "&".join(f"{_encode(k)}={_encode(v)}" for k, v in query.items())
        return f"{parts.scheme}://{parts.netloc}{_encode(parts.path, '/-_.~')}?{encoded}"


class S3Storage:
    tracks_downloads = False

    def __init__(
        self,
        *,
        bucket: str,
        region: str,
        access_key: str,
        secret_key: str,
        endpoint: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.bucket = bucket
        self.signer = SigV4(access_key, secret_key, region)
        if endpoint:  # path-style: what Supabase, MinIO and R2 need
            self._base = f"{endpoint.rstrip('/')}/{_encode(bucket)}"
        else:
            self._base = f"https://{bucket}.s3.{region}.amazonaws.com"
        self._client = httpx.AsyncClient(transport=transport, timeout=timeout_s)

    @classmethod
    def from_settings(cls, settings: FirmwareSettings) -> S3Storage:
        secret = settings.firmware_s3_secret_access_key
        assert settings.firmware_s3_bucket and settings.firmware_s3_access_key_id and secret
        return cls(
            bucket=settings.firmware_s3_bucket,
            region=settings.firmware_s3_region,
            access_key=settings.firmware_s3_access_key_id,
            secret_key=secret.get_secret_value(),
            endpoint=settings.firmware_s3_endpoint,
        )

    def url(self, key: str) -> str:
        return f"{self._base}/{checked_key(key)}"

    async def _send(
        self,
        method: str,
        key: str,
        payload_hash: str,
        content: bytes | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        url = self.url(key)
        headers = self.signer.sign_headers(method, url, payload_hash, _now(), extra)
        try:
            return await self._client.request(method, url, headers=headers, content=content)
        except httpx.HTTPError as exc:
            raise StorageError(f"The S3 storage is not reachable: {type(exc).__name__}.") from exc

    async def put(self, key: str, source: BinaryIO, size: int, sha256: str) -> None:
        source.seek(0)
        body = await asyncio.to_thread(source.read)  # at most OPENDOT_FIRMWARE_MAX_BYTES
        if len(body) != size:
            raise StorageError("The release file changed while it was being stored.")
        extra = {"content-length": str(size), "content-type": "application/octet-stream"}
        response = await self._send("PUT", key, sha256, body, extra)
        if response.status_code != 200:
            raise StorageError(f"The S3 storage refused the upload (HTTP {response.status_code}).")

    async def delete(self, key: str) -> None:
        response = await self._send("DELETE", key, _EMPTY_SHA256)
        if response.status_code not in (200, 204, 404):
            raise StorageError(f"The S3 storage refused the delete (HTTP {response.status_code}).")

    def download_url(self, grant: DownloadGrant, *, base_url: str) -> str:
        now = _now()
        ttl = grant.expires_at - int(now.timestamp())
        return self.signer.presign("GET", self.url(grant.storage_key), ttl, now)

    async def aclose(self) -> None:
        await self._client.aclose()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
