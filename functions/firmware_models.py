"""Bodies of the firmware endpoints (`/api/firmware/...`), camelCase on the wire."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from functions.models import CamelModel, RequestBody


class Release(CamelModel):
    id: str
    board: str
    version: str
    size: int
    sha256: str
    notes: str
    created_at: str


class ReleaseEnvelope(CamelModel):
    release: Release


class ReleaseList(CamelModel):
    releases: list[Release]


class RolloutCounts(CamelModel):
    """Dots offered the release, that fetched the whole file (null where the storage
    cannot tell: S3), that came back on the new version, and that are stuck."""

    offered: int
    downloaded: int | None
    updated: int
    stuck: int


class RolloutDevice(CamelModel):
    device_id: str
    name: str
    serial_number: str
    state: Literal["offered", "updated", "stuck"]
    offered_count: int
    from_version: str | None
    current_version: str | None
    first_offered_at: str | None
    last_offered_at: str | None
    downloaded_at: str | None
    completed_at: str | None


class Rollout(CamelModel):
    id: str
    release_id: str
    board: str
    version: str
    percent: int
    status: Literal["active", "paused", "aborted", "superseded"]
    device_ids: list[str] | None
    from_versions: list[str] | None
    counts: RolloutCounts
    created_at: str
    updated_at: str
    ended_at: str | None
    devices: list[RolloutDevice] | None = None


class RolloutEnvelope(CamelModel):
    rollout: Rollout


class RolloutList(CamelModel):
    rollouts: list[Rollout]


class RolloutCreate(RequestBody):
    release_id: str = Field(max_length=64)
    percent: int = Field(ge=0, le=100)
    device_ids: list[str] | None = Field(default=None, min_length=1, max_length=10_000)
    from_versions: list[str] | None = Field(default=None, min_length=1, max_length=100)


class RolloutUpdate(RequestBody):
    percent: int = Field(ge=0, le=100)
