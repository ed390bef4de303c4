"""Internal firmware endpoint (runtime -> API): a Dot fetched a whole release file.

Local storage only: the runtime serves `/ota/firmware/<token>` and, after the
last byte of the file went out, reports the (rollout, Dot) the signed token
names. Idempotent; an unknown pair is simply not recorded.
"""

from __future__ import annotations

from fastapi import APIRouter

from functions import firmware_store
from functions.agents_store import parse_uuid
from functions.deps import InternalDb
from functions.errors import NotFound
from shared.internal_api import FirmwareDownloaded, Ok

router = APIRouter(prefix="/api/internal/firmware", tags=["internal"])


@router.post("/downloaded", response_model=Ok)
async def downloaded(body: FirmwareDownloaded, conn: InternalDb) -> Ok:
    rollout_id, device_id = parse_uuid(body.rollout_id), parse_uuid(body.device_id)
    if rollout_id is None or device_id is None:
        raise NotFound("Rollout or device not found.")
    if not await firmware_store.downloaded(conn, rollout_id, device_id):
        raise NotFound("That Dot was not offered that rollout.")
    return Ok()
