"""The OTA answer's `firmware` section: `{version, url, force, size, sha256}` or nothing.

The decision and the bookkeeping are one call to `private.firmware_offer` in
the bootstrap's transaction (one index probe for the board's live rollout;
see `opendot bench firmware`). `version` and `url` are what the firmware reads
(`force: 1` makes it install an older version: a pin or a rollback); `size` and
`sha256` are extra keys the firmware ignores and the simulator checks.

A local-storage URL points at the runtime the Dot is talking to (the WebSocket
URL it is about to be given, as http), so it works on a LAN without
configuration; an S3 URL is presigned for the bucket.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg

from functions import firmware_store
from functions.settings import ApiSettings
from shared.firmware.links import DownloadGrant
from shared.firmware.storage import FirmwareStorage
from shared.firmware.versions import firmware_key


def http_base(websocket_url: str) -> str:
    """`wss://host:8787/ws` -> `https://host:8787` (where the runtime serves files)."""
    scheme, _, rest = websocket_url.partition("://")
    host = rest.split("/", 1)[0]
    return ("https" if scheme.lower() == "wss" else "http") + "://" + host


async def firmware_answer(
    conn: asyncpg.Connection,
    *,
    storage: FirmwareStorage | None,
    settings: ApiSettings,
    device_id: uuid.UUID,
    version: str | None,
    board: str | None,
    websocket_url: str,
) -> dict[str, Any] | None:
    key = firmware_key(version)
    if storage is None or key is None or not board or version is None:
        return None
    row = await firmware_store.offer(
        conn,
        device_id=device_id,
        version=version,
        key=key,
        board=board,
        max_offers=settings.firmware_max_offers,
    )
    if row is None:
        return None
    grant = DownloadGrant(
        release_id=row["release_id"],
        rollout_id=row["rollout_id"],
        device_id=device_id,
        expires_at=int(time.time()) + settings.firmware_url_ttl_s,
    )
    answer: dict[str, Any] = {
        "version": row["version"],
        "url": storage.download_url(grant, base_url=http_base(websocket_url)),
    }
    if row["force"]:
        answer["force"] = 1
    answer["size"] = row["size"]
    answer["sha256"] = row["sha256"]
    return answer
