"""Limits an attacker meets and cannot turn against the owner (issue 11, items 5 and 7).

Sign-ups per client address, wrong claims per user / address / code, sign-in
failures per (email, address) before per email, and the one definition of the
client address those limits count by (X-Forwarded-For only from a proxy the
operator trusts).
"""

from __future__ import annotations

import asyncpg
import httpx
import pytest

from functions.client_address import limit_key, parse_networks, resolve
from tests.functions.conftest import AppFactory, auth, signup
from tests.functions.test_devices import _mac, bootstrap

PASSWORD = "correct horse battery"


async def _wrong_claims(client: httpx.AsyncClient, user: dict[str, str], n: int) -> list[int]:
    statuses = []
    for k in range(n):
        response = await client.post(
            "/api/device-activations/claim", headers=auth(user), json={"code": f"10{k:04d}"}
        )
        statuses.append(response.status_code)
    return statuses


async def test_item5_signups_are_limited_per_client_address(make_client: AppFactory) -> None:
    client = await make_client(OPENDOT_SIGNUP_MAX_PER_ADDRESS=2)
    await signup(client)
    await signup(client)
    third = await client.post(
        "/api/auth/signup", json={"email": "third@example.test", "password": PASSWORD}
    )
    assert third.status_code == 429 and "Retry-After" in third.headers
    assert "from your network" in third.json()["error"]
    elsewhere = await make_client(OPENDOT_SIGNUP_MAX_PER_ADDRESS=2)
    await signup(elsewhere)  # another address is not affected


async def test_item5_wrong_claims_are_limited_per_address_too(make_client: AppFactory) -> None:
    # Four accounts from one address spend that address's 20 wrong claims...
    shared_address = await make_client()
    for _ in range(4):
        user = await signup(await make_client())
        assert await _wrong_claims(shared_address, user, 5) == [404] * 5
    # ...so a fifth account gains nothing there, while it still may claim elsewhere.
    fifth = await signup(await make_client())
    assert await _wrong_claims(shared_address, fifth, 1) == [429]
    assert await _wrong_claims(await make_client(), fifth, 1) == [404]


async def test_item5_a_code_stops_working_after_its_share_of_guesses(
    client: httpx.AsyncClient, database_url: str
) -> None:
    owner = await signup(client)
    mac = _mac()
    ota = (await bootstrap(client, mac)).json()
    conn = await asyncpg.connect(database_url)
    try:
        # Fifty wrong claims, from anyone anywhere, since the code was issued.
        await conn.execute(
            "insert into public.auth_throttle (scope, subject, created_at)"
            " select 'claim_code', '*', now() from generate_series(1, 50)"
        )
    finally:
        await conn.close()
    late = await client.post(
        "/api/device-activations/claim",
        headers=auth(owner),
        json={"code": ota["activation"]["code"]},
    )
    assert late.status_code == 404
    # The Dot's next bootstrap (with its pending token) gets a fresh code, which works.
    fresh = (await bootstrap(client, mac, token=ota["websocket"]["token"])).json()
    assert fresh["activation"]["challenge"] != ota["activation"]["challenge"]
    claimed = await client.post(
        "/api/device-activations/claim",
        headers=auth(owner),
        json={"code": fresh["activation"]["code"]},
    )
    assert claimed.status_code == 201, claimed.text


async def test_item7_a_strangers_failures_do_not_lock_the_owner_out(
    make_client: AppFactory,
) -> None:
    owner_client = await make_client()
    owner = await signup(owner_client)
    attacker = await make_client()
    for _ in range(6):
        response = await attacker.post(
            "/api/auth/login", json={"email": owner["email"], "password": "not the password"}
        )
    assert response.status_code == 429  # the attacker's own (email, address) is throttled
    again = await owner_client.post(
        "/api/auth/login", json={"email": owner["email"], "password": PASSWORD}
    )
    assert again.status_code == 200, "the owner's correct password from elsewhere still works"


async def test_item7_per_email_only_at_a_much_higher_count(make_client: AppFactory) -> None:
    settings = {"OPENDOT_LOGIN_MAX_FAILURES": 2, "OPENDOT_LOGIN_MAX_FAILURES_PER_EMAIL": 4}
    owner = await signup(await make_client(**settings))
    for _ in range(2):  # two addresses, two failures each: four for this email
        attacker = await make_client(**settings)
        for _ in range(2):
            wrong = await attacker.post(
                "/api/auth/login", json={"email": owner["email"], "password": "wrong password"}
            )
            assert wrong.status_code == 401
    blocked = await (await make_client(**settings)).post(
        "/api/auth/login", json={"email": owner["email"], "password": PASSWORD}
    )
    assert blocked.status_code == 429


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(make_client: AppFactory) -> None:
    # Without trusted proxies a client cannot dodge its address limit with the header.
    direct = await make_client(OPENDOT_SIGNUP_MAX_PER_ADDRESS=1)
    await signup(direct)
    spoofed = await direct.post(
        "/api/auth/signup",
        json={"email": "spoof@example.test", "password": PASSWORD},
        headers={"X-Forwarded-For": "192.0.2.200"},
    )
    assert spoofed.status_code == 429
    # Behind a trusted proxy the address is the last hop the proxy saw, whatever the
    # client wrote further left.
    proxy = await make_client(
        client_ip="10.1.2.3",
        OPENDOT_TRUSTED_PROXIES="10.0.0.0/8",
        OPENDOT_SIGNUP_MAX_PER_ADDRESS=1,
    )
    first = await proxy.post(
        "/api/auth/signup",
        json={"email": "a@proxied.test", "password": PASSWORD},
        headers={"X-Forwarded-For": "192.0.2.1, 198.51.100.20"},
    )
    assert first.status_code == 201
    dodge = await proxy.post(
        "/api/auth/signup",
        json={"email": "b@proxied.test", "password": PASSWORD},
        headers={"X-Forwarded-For": "192.0.2.99, 198.51.100.20"},
    )
    assert dodge.status_code == 429
    other = await proxy.post(
        "/api/auth/signup",
        json={"email": "c@proxied.test", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.21"},
    )
    assert other.status_code == 201


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "expected"),
    [
        ("198.51.100.1", ["203.0.113.9"], "", "198.51.100.1"),
        ("10.0.0.2", ["203.0.113.9"], "10.0.0.0/8", "203.0.113.9"),
        ("10.0.0.2", ["6.6.6.6, 203.0.113.9, 10.0.0.7"], "10.0.0.0/8", "203.0.113.9"),
        ("10.0.0.2", ["6.6.6.6", "203.0.113.9"], "10.0.0.0/8", "203.0.113.9"),
        ("10.0.0.2", [], "10.0.0.0/8", "10.0.0.2"),
        ("10.0.0.2", ["10.0.0.3"], "10.0.0.0/8", "10.0.0.3"),
        ("10.0.0.2", ["garbage, 203.0.113.9"], "10.0.0.0/8", "203.0.113.9"),
        ("::ffff:192.0.2.5", [], "", "192.0.2.5"),
        ("10.0.0.2", ["[2001:db8::1]:443"], "10.0.0.0/8", "2001:db8::1"),
        (None, ["203.0.113.9"], "10.0.0.0/8", "unknown"),
    ],
)
def test_client_address_rules(
    peer: str | None, forwarded: list[str], trusted: str, expected: str
) -> None:
    assert resolve(peer, forwarded, parse_networks(trusted.split(","))) == expected


def test_ipv6_callers_are_limited_by_their_64() -> None:
    assert limit_key("2001:db8:1:2:aaaa::1") == limit_key("2001:db8:1:2:bbbb::9")
    assert limit_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert limit_key("192.0.2.7") == "192.0.2.7"
    assert limit_key("") == "unknown"
