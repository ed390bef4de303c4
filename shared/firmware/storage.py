"""The one seam to where release files live: a local directory or an S3 bucket.

`LocalStorage` keeps files under `OPENDOT_DATA_DIR/firmware/` for `make up`;
the runtime serves them at `/ota/firmware/<signed token>` with range requests
and tells the API when a Dot fetched a whole file (`tracks_downloads`).
`S3Storage` (shared/firmware/s3.py) keeps them in a bucket and hands Dots
presigned GET URLs; S3 cannot tell us about downloads.

Keys are always `firmware/<release uuid>.bin` (the database derives them), so
a path can never leave the directory.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Protocol

from shared.firmware.links import DownloadGrant, link_key, sign
from shared.firmware.settings import FirmwareSettings

KEY = re.compile(r"^firmware/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.bin$")


class StorageError(Exception):
    """The storage could not do it; the message is safe to show (no credentials)."""


class FirmwareStorage(Protocol):
    tracks_downloads: bool

    async def put(self, key: str, source: BinaryIO, size: int, sha256: str) -> None:
        """Store `size` bytes read from `source` (at its start) under `key`."""

    async def delete(self, key: str) -> None:
        """Remove `key`; a missing object is not an error."""

    def download_url(self, grant: DownloadGrant, *, base_url: str) -> str:
        """A URL a Dot can GET the grant's file from until `grant.expires_at`."""

    async def aclose(self) -> None: ...


def checked_key(key: str) -> str:
    if not KEY.match(key):
        raise StorageError("Not a firmware storage key.")
    return key


class LocalStorage:
    tracks_downloads = True

    def __init__(self, directory: Path, internal_secret: str) -> None:
        self.directory = directory
        self._link_key = link_key(internal_secret)

    def path(self, key: str) -> Path:
        return self.directory / checked_key(key).removeprefix("firmware/")

    async def put(self, key: str, source: BinaryIO, size: int, sha256: str) -> None:
        target = self.path(key)
        try:
            await asyncio.to_thread(_write_atomically, target, source)
        except OSError as exc:
            raise StorageError(f"Could not write the release file: {exc.strerror}.") from exc

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self.path(key).unlink, missing_ok=True)
        except OSError as exc:
            raise StorageError(f"Could not remove the release file: {exc.strerror}.") from exc

    def download_url(self, grant: DownloadGrant, *, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/ota/firmware/{sign(self._link_key, grant)}"

    async def aclose(self) -> None:
        return None


def _write_atomically(target: Path, source: BinaryIO) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    source.seek(0)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_storage(settings: FirmwareSettings, internal_secret: str) -> FirmwareStorage:
    if settings.firmware_storage == "s3":
        from shared.firmware.s3 import S3Storage

        return S3Storage.from_settings(settings)
    return LocalStorage(settings.firmware_dir, internal_secret)
