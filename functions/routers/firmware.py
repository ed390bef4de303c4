"""Firmware releases and staged rollouts: `/api/firmware/...` (owner endpoints).

RLS scopes every row to the caller; progress rows are written only by the OTA
path (`private.firmware_offer`), never here. A release upload is read before
the request's transaction opens (`_upload` runs ahead of `UserDb`), so a slow
client never holds a database connection while it sends megabytes.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Request

from functions import firmware_store
from functions.agents_store import parse_uuid
from functions.deps import BearerIdentity, Ctx, UserDb, bearer_token, services
from functions.errors import ApiError, BadRequest, Conflict, NotFound, Unauthorized
from functions.firmware_models import (
    ReleaseEnvelope,
    ReleaseList,
    RolloutCreate,
    RolloutEnvelope,
    RolloutList,
    RolloutUpdate,
)
from functions.firmware_upload import Upload, read_upload
from shared.firmware.image import HEADER_BYTES, read_app_image
from shared.firmware.storage import FirmwareStorage, StorageError
from shared.firmware.versions import (
    BOARD,
    BOARD_HINT,
    RELEASE_VERSION_HINT,
    firmware_key,
    release_key,
)

log = logging.getLogger("opendot.api.firmware")
router = APIRouter(prefix="/api/firmware", tags=["firmware"])

_RELEASE_NOT_FOUND = "Release not found."
_ROLLOUT_NOT_FOUND = "Rollout not found."
_NOTES_MAX = 4000
_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["board", "version", "file"],
                    "properties": {
                        "board": {"type": "string", "maxLength": 128},
                        "version": {"type": "string", "maxLength": 80},
                        "notes": {"type": "string", "maxLength": _NOTES_MAX},
                        "file": {"type": "string", "format": "binary"},
                    },
                }
            }
        },
    }
}


class StorageUnavailable(ApiError):
    status = 503


def storage_of(request: Request) -> FirmwareStorage:
    storage: FirmwareStorage | None = services(request).firmware
    if storage is None:  # pragma: no cover - create_app always builds one
        raise StorageUnavailable("Firmware storage is not configured.")
    return storage


StorageDep = Annotated[FirmwareStorage, Depends(storage_of)]


async def _upload(request: Request, identity: BearerIdentity) -> Upload:
    """The release form, read before any transaction; refuses anonymous senders first."""
    settings = services(request).settings
    if identity is None and bearer_token(request) is None and settings.auth_required:
        raise Unauthorized("A bearer token is required.")
    return await read_upload(request, settings.firmware_max_bytes, HEADER_BYTES)


def _uuid(raw: str, message: str) -> uuid.UUID:
    parsed = parse_uuid(raw)
    if parsed is None:
        raise NotFound(message)
    return parsed


def _check_release_form(upload: Upload) -> tuple[int, ...]:
    if not BOARD.match(upload.board):
        raise BadRequest(f"board must be {BOARD_HINT}.")
    key = release_key(upload.version)
    if key is None:
        raise BadRequest(f"version must be {RELEASE_VERSION_HINT}.")
    if len(upload.notes) > _NOTES_MAX:
        raise BadRequest(f"notes may be at most {_NOTES_MAX} characters.")
    if upload.size == 0:
        raise BadRequest("The file is empty.")
    image = read_app_image(upload.head)
    if isinstance(image, str):
        raise BadRequest(image)
    if image.version != upload.version:
        raise BadRequest(
            f"The image says it is version {image.version or '(none)'}, not {upload.version}:"
            " a Dot reports the image's version after the update, so they must match."
        )
    return key


@router.post(
    "/releases", status_code=201, response_model=ReleaseEnvelope, openapi_extra=_UPLOAD_DOC
)
async def upload_release(
    upload: Annotated[Upload, Depends(_upload)], ctx: UserDb, storage: StorageDep
) -> ReleaseEnvelope:
    """Multipart `board`, `version`, `notes`, `file`: stores the .bin, records size + SHA-256."""
    try:
        key = _check_release_form(upload)
        existing = await firmware_store.release_exists(ctx.conn, upload.board, key)
        if existing is not None:
            same = (
                "" if existing == upload.version else f" (as {existing}, the same to the firmware)"
            )
            raise Conflict(f"Version {upload.version} of {upload.board} already exists{same}.")
        try:
            row = await firmware_store.insert_release(
                ctx.conn,
                release_id=uuid.uuid4(),
                user_id=ctx.user_id,
                board=upload.board,
                version=upload.version,
                key=key,
                notes=upload.notes,
                size=upload.size,
                sha256=upload.sha256,
            )
        except asyncpg.UniqueViolationError as exc:  # a concurrent upload of the same version
            raise Conflict(f"Version {upload.version} of {upload.board} already exists.") from exc
        try:
            await storage.put(row["storage_key"], upload.file, upload.size, upload.sha256)
        except StorageError as exc:
            log.warning("firmware upload failed: %s", exc)
            raise StorageUnavailable(str(exc)) from exc
    finally:
        upload.file.close()
    return ReleaseEnvelope.model_validate({"release": firmware_store.release_json(row)})


@router.get("/releases", response_model=ReleaseList)
async def list_releases(ctx: UserDb) -> ReleaseList:
    rows = await firmware_store.list_releases(ctx.conn)
    return ReleaseList.model_validate({"releases": [firmware_store.release_json(r) for r in rows]})


@router.delete("/releases/{release_id}", response_model=ReleaseEnvelope)
async def delete_release(release_id: str, ctx: UserDb, storage: StorageDep) -> ReleaseEnvelope:
    """Refused while an active or paused rollout uses it; ended rollouts go with it."""
    rid = _uuid(release_id, _RELEASE_NOT_FOUND)
    row = await firmware_store.get_release(ctx.conn, rid)
    if row is None:
        raise NotFound(_RELEASE_NOT_FOUND)
    if await firmware_store.live_rollout_of(ctx.conn, rid) is not None:
        raise Conflict(
            f"Release {row['version']} is being rolled out; abort that rollout before deleting it."
        )
    await firmware_store.delete_release(ctx.conn, rid)
    try:
        await storage.delete(row["storage_key"])
    except StorageError as exc:  # the row comes back with the rollback
        raise StorageUnavailable(str(exc)) from exc
    return ReleaseEnvelope.model_validate({"release": firmware_store.release_json(row)})


# --- rollouts ----------------------------------------------------------------------------


async def _rollout(ctx: Ctx, request: Request, rollout_id: uuid.UUID, *, devices: bool) -> Any:
    row = await firmware_store.get_rollout(ctx.conn, rollout_id)
    if row is None:
        raise NotFound(_ROLLOUT_NOT_FOUND)
    body = firmware_store.rollout_json(row, tracks_downloads=storage_of(request).tracks_downloads)
    if devices:
        body["devices"] = await firmware_store.rollout_devices(ctx.conn, rollout_id)
    return body


async def _device_ids(ctx: Ctx, raw: list[str] | None) -> list[uuid.UUID] | None:
    if raw is None:
        return None
    ids = []
    for item in raw:
        parsed = parse_uuid(item)
        if parsed is None:
            raise BadRequest(f"deviceIds: {item[:64]!r} is not a Dot id.")
        ids.append(parsed)
    unique = list(dict.fromkeys(ids))
    missing = set(unique) - await firmware_store.owned_devices(ctx.conn, unique)
    if missing:
        raise BadRequest(f"deviceIds: no Dot {sorted(map(str, missing))[0]} in your fleet.")
    return unique


def _from_versions(raw: list[str] | None) -> list[str] | None:
    if raw is None:
        return None
    versions = []
    for item in raw:
        text = item.strip()
        if len(text) > 64 or firmware_key(text) is None:
            raise BadRequest(f"fromVersions: {text[:64]!r} is not a version the firmware compares.")
        versions.append(text)
    return list(dict.fromkeys(versions))


@router.post("/rollouts", status_code=201, response_model=RolloutEnvelope)
async def create_rollout(body: RolloutCreate, ctx: UserDb, request: Request) -> RolloutEnvelope:
    """Offer a release to `percent` of its board's Dots; supersedes the board's live rollout."""
    rid = _uuid(body.release_id, _RELEASE_NOT_FOUND)
    release = await firmware_store.get_release(ctx.conn, rid)
    if release is None:
        raise NotFound(_RELEASE_NOT_FOUND)
    rollout_id = await firmware_store.create_rollout(
        ctx.conn,
        user_id=ctx.user_id,
        release=release,
        percent=body.percent,
        device_ids=await _device_ids(ctx, body.device_ids),
        from_versions=_from_versions(body.from_versions),
    )
    return RolloutEnvelope.model_validate(
        {"rollout": await _rollout(ctx, request, rollout_id, devices=False)}
    )


@router.get("/rollouts", response_model=RolloutList)
async def list_rollouts(ctx: UserDb, request: Request) -> RolloutList:
    tracks = storage_of(request).tracks_downloads
    rows = await firmware_store.list_rollouts(ctx.conn)
    return RolloutList.model_validate(
        {"rollouts": [firmware_store.rollout_json(r, tracks_downloads=tracks) for r in rows]}
    )


@router.get("/rollouts/{rollout_id}", response_model=RolloutEnvelope)
async def get_rollout(rollout_id: str, ctx: UserDb, request: Request) -> RolloutEnvelope:
    """Counts (offered, downloaded, updated, stuck) and every offered Dot's state."""
    rid = _uuid(rollout_id, _ROLLOUT_NOT_FOUND)
    return RolloutEnvelope.model_validate(
        {"rollout": await _rollout(ctx, request, rid, devices=True)}
    )


async def _live(ctx: Ctx, rollout_id: str) -> tuple[uuid.UUID, Any]:
    rid = _uuid(rollout_id, _ROLLOUT_NOT_FOUND)
    row = await firmware_store.get_rollout(ctx.conn, rid)
    if row is None:
        raise NotFound(_ROLLOUT_NOT_FOUND)
    if row["status"] in ("aborted", "superseded"):
        raise Conflict(f"This rollout is {row['status']}; start a new one.")
    return rid, row


@router.put("/rollouts/{rollout_id}", response_model=RolloutEnvelope)
async def raise_percent(
    rollout_id: str, body: RolloutUpdate, ctx: UserDb, request: Request
) -> RolloutEnvelope:
    """Raise the share of Dots offered the release; the Dots already in stay in."""
    rid, row = await _live(ctx, rollout_id)
    if body.percent < row["percent"]:
        raise Conflict(
            f"A rollout's percentage can only be raised (it is {row['percent']}); "
            "pause or abort it instead."
        )
    await firmware_store.update_rollout(ctx.conn, rid, percent=body.percent)
    return RolloutEnvelope.model_validate(
        {"rollout": await _rollout(ctx, request, rid, devices=False)}
    )


async def _transition(
    ctx: Ctx, request: Request, rollout_id: str, allowed: tuple[str, ...], status: str, verb: str
) -> RolloutEnvelope:
    rid, row = await _live(ctx, rollout_id)
    if row["status"] not in allowed:
        raise Conflict(f"Only an {' or '.join(allowed)} rollout can be {verb}.")
    await firmware_store.update_rollout(ctx.conn, rid, status=status)
    return RolloutEnvelope.model_validate(
        {"rollout": await _rollout(ctx, request, rid, devices=False)}
    )


@router.post("/rollouts/{rollout_id}/pause", response_model=RolloutEnvelope)
async def pause(rollout_id: str, ctx: UserDb, request: Request) -> RolloutEnvelope:
    """Stop offering for now (Dots already updating finish); resume picks up again."""
    return await _transition(ctx, request, rollout_id, ("active",), "paused", "paused")


@router.post("/rollouts/{rollout_id}/resume", response_model=RolloutEnvelope)
async def resume(rollout_id: str, ctx: UserDb, request: Request) -> RolloutEnvelope:
    return await _transition(ctx, request, rollout_id, ("paused",), "active", "resumed")


@router.post("/rollouts/{rollout_id}/abort", response_model=RolloutEnvelope)
async def abort(rollout_id: str, ctx: UserDb, request: Request) -> RolloutEnvelope:
    """Stop for good: no Dot is offered this rollout again. Roll back by rolling out
    the previous release (with `fromVersions` naming this one)."""
    return await _transition(ctx, request, rollout_id, ("active", "paused"), "aborted", "aborted")
