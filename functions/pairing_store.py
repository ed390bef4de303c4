"""Pairing and device runtime in the database: OTA bootstrap, activation, claim, verify.

Thin calls of the `private.*` functions (20261125001200_pairing_functions.sql,
20261125001300_device_runtime_functions.sql), where the decisions live, plus
the few service-role reads the internal device endpoints need. The claim runs
as the signed-in user; everything else as `service_role`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class BootstrapFacts:
    """What one OTA request says about the device (already bounded by the router)."""

    identifier: str
    client_id: str | None
    serial_number: str | None
    bearer_hash: str | None
    user_agent: str | None
    ip_address: str | None
    firmware_version: str | None
    board: str | None
    system_info: dict[str, object]


@dataclass(frozen=True, slots=True)
class NewActivation:
    """The secrets of a fresh activation, should the bootstrap need one (hashes only)."""

    activation_id: uuid.UUID
    code_hash: str
    challenge_hash: str
    token_prefix: str
    token_hash: str
    ttl_s: int


async def bootstrap(
    conn: asyncpg.Connection,
    facts: BootstrapFacts,
    fresh: NewActivation,
    *,
    max_pending_per_address: int,
) -> asyncpg.Record:
    """kind known | connect | reuse | new | throttled, activation_id, device_id, token_kept."""
    row = await conn.fetchrow(
        "select * from private.device_bootstrap($1, $2, $3, $4, $5, $6, $7, $8, $9,"
        " $10, $11, $12, $13, $14, $15, $16)",
        facts.identifier,
        facts.client_id,
        facts.serial_number,
        facts.bearer_hash,
        facts.user_agent,
        facts.ip_address,
        facts.firmware_version,
        facts.board,
        facts.system_info,
        fresh.activation_id,
        fresh.code_hash,
        fresh.challenge_hash,
        fresh.token_prefix,
        fresh.token_hash,
        fresh.ttl_s,
        max_pending_per_address,
    )
    assert row is not None
    return row


async def activate(
    conn: asyncpg.Connection,
    challenge_hash: str | None,
    identifier: str,
    verified_serial: str | None,
) -> str:
    """The poll's status: pending | completed | not_found | gone."""
    status: str | None = await conn.fetchval(
        "select status from private.device_activate($1, $2, $3)",
        challenge_hash,
        identifier,
        verified_serial,
    )
    return status or "not_found"


async def activation_serial(conn: asyncpg.Connection, challenge_hash: str) -> str | None:
    """The serial number the device's bootstrap carried, for the activation with this challenge."""
    serial: str | None = await conn.fetchval(
        "select serial_number from public.device_activation_requests where challenge_hash = $1",
        challenge_hash,
    )
    return serial


async def factory_keys_registered(conn: asyncpg.Connection) -> bool:
    """Has the operator registered any factory key? Then every activation needs its HMAC."""
    found = await conn.fetchval(
        "select exists (select 1 from public.device_factory_keys where revoked_at is null)"
    )
    return bool(found)


async def factory_key(conn: asyncpg.Connection, serial: str) -> str | None:
    sealed: str | None = await conn.fetchval(
        "select key_ciphertext from public.device_factory_keys"
        " where serial_number = $1 and revoked_at is null",
        serial,
    )
    return sealed


async def claim(
    conn: asyncpg.Connection, code_hash: str, device_endpoint: str, address: str
) -> asyncpg.Record | None:
    """status claimed | not_found | conflict | throttled | unverified, and the device id."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "select status, device_id from private.claim_activation($1, $2, $3)",
        code_hash,
        device_endpoint,
        address,
    )
    return row


async def verify_device(
    conn: asyncpg.Connection, token_hash: str, identifier: str | None, ip_address: str | None
) -> asyncpg.Record | None:
    """reason ok | invalid | hardware_mismatch, with the device and its owner."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "select * from private.device_verify($1, $2, $3)", token_hash, identifier, ip_address
    )
    return row


async def device_exists(conn: asyncpg.Connection, device_id: uuid.UUID) -> bool:
    found = await conn.fetchval(
        "select 1 from public.devices where id = $1 and deleted_at is null", device_id
    )
    return found is not None


async def set_availability(
    conn: asyncpg.Connection, device_id: uuid.UUID, availability: str
) -> bool:
    updated = await conn.fetchval(
        "update public.device_state set availability = $2, last_seen_at = now(),"
        " updated_at = now() where device_id = $1 returning 1",
        device_id,
        availability,
    )
    return updated is not None
