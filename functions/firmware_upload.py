"""Reading a release upload: multipart/form-data with `board`, `version`, `notes`, `file`.

The body is read through a counting stream that stops at the size cap plus a
little room for the form fields, so an oversized or endless upload costs at
most that much (413 with a sentence), whatever Content-Length claimed.
Starlette's multipart parser (python-multipart) spools the file to a temporary
file (memory up to 1 MiB, then disk); the SHA-256 is computed off the event
loop while the first bytes are checked to be an ESP32 application image.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import BinaryIO

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from functions.errors import ApiError, BadRequest

FORM_ROOM = 64 * 1024  # board, version, notes and the multipart framing
_FORM_HINT = "Send the release as multipart/form-data with board, version, notes and file."


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


@dataclass
class Upload:
    board: str
    version: str
    notes: str
    file: BinaryIO
    size: int
    sha256: str
    head: bytes  # the first bytes of the file, for the image check


def _mib(limit: int) -> str:
    return f"{limit / (1024 * 1024):g} MiB"


async def _capped(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise PayloadTooLarge(
                f"The file is larger than the {_mib(limit - FORM_ROOM)} limit for a release."
            )
        yield chunk


def _digest(file: BinaryIO, head_bytes: int) -> tuple[int, str, bytes]:
    file.seek(0)
    digest = hashlib.sha256()
    size = 0
    head = b""
    while chunk := file.read(1 << 20):
        if len(head) < head_bytes:
            head += chunk[: head_bytes - len(head)]
        digest.update(chunk)
        size += len(chunk)
    file.seek(0)
    return size, digest.hexdigest(), head


def _text(value: object, name: str, *, required: bool = True) -> str:
    if value is None:
        if required:
            raise BadRequest(f"{name} is required.")
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a form field, not a file.")
    return value.strip()


async def read_upload(request: Request, max_bytes: int, head_bytes: int) -> Upload:
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType(_FORM_HINT)
    limit = max_bytes + FORM_ROOM
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The file is larger than the {_mib(max_bytes)} limit for a release.")
    parser = MultiPartParser(
        request.headers, _capped(request, limit), max_files=1, max_fields=4, max_part_size=8192
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise BadRequest(f"{exc.message} {_FORM_HINT}") from exc
    file = form.get("file")
    if not isinstance(file, UploadFile):
        for item in form.values():
            if isinstance(item, UploadFile):
                await item.close()
        raise BadRequest("file is required: the firmware .bin to release.")
    try:
        board = _text(form.get("board"), "board")
        version = _text(form.get("version"), "version")
        notes = _text(form.get("notes"), "notes", required=False)
        size, sha256, head = await asyncio.to_thread(_digest, file.file, head_bytes)
    except BaseException:
        await file.close()
        raise
    if size > max_bytes:
        await file.close()
        raise PayloadTooLarge(f"The file is larger than the {_mib(max_bytes)} limit for a release.")
    return Upload(board, version, notes, file.file, size, sha256, head)
