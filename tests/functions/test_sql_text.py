"""Literals for the request-opening statement (simple protocol, no parameters)."""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import jwt
import pytest

from functions.sql_text import LiteralError, literal, uuid_literal
from tests.functions.conftest import AppFactory, auth
from tests.functions.jwt_helpers import supabase_claims

HOSTILE = [
    "",
    "plain",
    "it's",
    "''",
    "\\",
    "\\'",
    "\\\\''\\",
    "'; drop table public.app_users; --",
    "E'\\x41'",
    "$$ dollar $$ $tag$",
    "line\nbreak\r\ttab\b\f",
    "\x01\x1f\x7f",
    "Ünïcødé ☎ 日本語 🙂",
    "\\u0041 \\x41 \\101",
    "%s %(x)s {0} ?",
]


@pytest.mark.parametrize("conforming", ["on", "off"])
async def test_literals_round_trip_whatever_the_string_setting(
    database_url: str, conforming: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"set standard_conforming_strings = {conforming}")
        await conn.execute("set escape_string_warning = off")
        for value in HOSTILE:
            # The simple protocol, as the request-opening statement uses it.
            await conn.execute(f"select set_config('opendot.probe', {literal(value)}, false)")
            assert await conn.fetchval("select current_setting('opendot.probe')") == value
        assert await conn.fetchval(f"select {literal(None)}::text") is None
    finally:
        await conn.close()


def test_nul_and_bad_uuids_are_refused() -> None:
    with pytest.raises(LiteralError):
        literal("a\x00b")
    with pytest.raises(ValueError):
        uuid_literal("00000000-0000-4000-8000-000000000001'; select 1; --")
    assert uuid_literal(None) == "NULL::uuid"
    same = uuid.uuid4()
    assert uuid_literal(str(same).upper()) == f"'{same}'::uuid"


async def test_hostile_names_from_a_token_are_stored_verbatim(make_client: AppFactory) -> None:
    """A Supabase user controls their metadata; it reaches SQL as literals."""
    secret = "legacy-supabase-jwt-secret-with-32-chars!"
    client: httpx.AsyncClient = await make_client(SUPABASE_JWT_SECRET=secret)
    for name in HOSTILE[2:11]:
        claims = supabase_claims(
            email=f"x'\\{uuid.uuid4().hex[:6]}@example.test",
            user_metadata={"full_name": f"{name} ok", "avatar_url": f"https://a.test/{name}"},
        )
        del claims["iss"]
        headers = {"Authorization": f"Bearer {jwt.encode(claims, secret, algorithm='HS256')}"}
        answer = await client.get("/api/settings", headers=headers)
        assert answer.status_code == 200, (name, answer.text)
        assert answer.json()["settings"]["displayName"] == f"{name} ok"
        assert answer.json()["settings"]["email"] == claims["email"]
    nul = supabase_claims(user_metadata={"full_name": "a\x00b"})
    del nul["iss"]
    token = jwt.encode(nul, secret, algorithm="HS256")
    refused = await client.get("/api/settings", headers=auth({"Authorization": f"Bearer {token}"}))
    assert refused.status_code == 401
