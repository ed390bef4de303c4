"""Internal firmware endpoint (runtime -> API): a Dot fetched a whole release file.

Local storage only: the runtime serves `/ota/firmware/<token>` and, after the
last byte of the file went out, reports the (rollout, Dot) the signed token
names. Idempotent; an unknown pair is simply not recorded.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from functions import firmware_store
from functions.agents_store import parse_uuid
from functions.deps import InternalDb
from functions.errors import NotFound
from functions.models import Ok, RequestBody

router = APIRouter(prefix="/api/internal/firmware", tags=["internal"])


class DownloadedBody(RequestBody):
    rollout_id: str = Field(min_length=1, max_length=64)
    device_id: str = Field(min_length=1, max_length=64)


@router.post("/downloaded", response_model=Ok)
async def downloaded(body: DownloadedBody, conn: InternalDb) -> Ok:
    rollout_id, device_id = parse_uuid(body.rollout_id), parse_uuid(body.device_id)
    if rollout_id is None or device_id is None:
        raise NotFound("Rollout or device not found.")
    if not await firmware_store.downloaded(conn, rollout_id, device_id):
        raise NotFound("That Dot was not offered that rollout.")
    return Ok()
