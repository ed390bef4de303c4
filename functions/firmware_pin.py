"""`PUT /api/dot-devices/{id}` with `firmwarePin`: hold a Dot on one firmware version.

A pinned Dot is offered exactly that release of its board (older or newer than
what it runs) and never a rollout's. The pin must name something that can be
installed: a release of the Dot's board (any board while the Dot has not
reported one yet), or the version it already runs, which simply holds it there.
A typo would otherwise freeze the Dot silently.
"""

from __future__ import annotations

import asyncpg

from functions.errors import BadRequest
from shared.firmware.versions import RELEASE_VERSION_HINT, release_key


async def apply(conn: asyncpg.Connection, device: asyncpg.Record, pin: str | None) -> None:
    if pin is not None:
        pin = pin.strip()
        key = release_key(pin)
        if key is None:
            raise BadRequest(f"firmwarePin must be {RELEASE_VERSION_HINT}.")
        board = device["board"]
        if pin != device["firmware_version"]:
            found = await conn.fetchval(
                "select 1 from public.firmware_releases where version_key = $1"
                " and ($2::text is null or board = $2) limit 1",
                list(key),
                board,
            )
            if found is None:
                where = f"board {board}" if board else "any board"
                raise BadRequest(
                    f"There is no release {pin} for {where}; upload it before pinning a Dot to it."
                )
    await conn.execute(
        "update public.devices set firmware_pin = $2, updated_at = now() where id = $1",
        device["id"],
        pin,
    )
