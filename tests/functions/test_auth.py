"""Auth: local accounts and sessions, Supabase JWTs (JWKS + legacy), SDK keys, dev user."""

from __future__ import annotations

import time
import uuid

import asyncpg
import httpx
import jwt
import pytest
import respx

from functions.tokens_jwt import peek_header
from tests.functions.conftest import AppFactory, auth, signup
from tests.functions.jwt_helpers import (
    JWKS_URL,
    SUPABASE_URL,
    es256_key,
    hs256_with_key_bytes,
    rs256_key,
    supabase_claims,
    tamper,
    unsigned_token,
)


async def test_auth_config(make_client: AppFactory) -> None:
    client = await make_client(SUPABASE_URL=SUPABASE_URL)
    assert (await client.get("/api/auth/config")).json() == {
        "localAuthEnabled": True,
        "supabaseConfigured": True,
    }


async def test_signup_login_session_and_errors(client: httpx.AsyncClient) -> None:
    user = await signup(client, "Mixed.Case@Example.test")
    session = await client.get("/api/auth/session", headers=auth(user))
    assert session.status_code == 200
    assert session.json()["user"]["authProvider"] == "local"
    duplicate = await client.post(
        "/api/auth/signup", json={"email": " mixed.case@example.TEST ", "password": "x" * 12}
    )
    assert duplicate.status_code == 409
    assert duplicate.json() == {"error": "An account already exists for this email."}
    bad_email = await client.post("/api/auth/signup", json={"email": "nope", "password": "x" * 12})
    assert bad_email.status_code == 400 and "email" in bad_email.json()["error"]
    short = await client.post("/api/auth/signup", json={"email": "a@b.test", "password": "short"})
    assert short.status_code == 400 and "8" in short.json()["error"]
    missing = await client.post("/api/auth/signup", json={"email": "a@b.test"})
    assert missing.status_code == 400 and missing.json() == {"error": "password is required."}

    login = await client.post(
        "/api/auth/login",
        json={"email": "mixed.case@example.test", "password": "correct horse battery"},
    )
    assert login.status_code == 200 and login.json()["user"]["id"] == user["id"]
    wrong = await client.post(
        "/api/auth/login", json={"email": user["email"], "password": "wrong password"}
    )
    assert wrong.status_code == 401 and wrong.json() == {"error": "Invalid email or password."}
    unknown = await client.post(
        "/api/auth/login", json={"email": "ghost@example.test", "password": "whatever12"}
    )
    assert unknown.status_code == 401
    assert (await client.get("/api/auth/session")).status_code == 401


async def test_login_is_throttled_per_email(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    for _ in range(5):
        response = await client.post(
            "/api/auth/login", json={"email": user["email"], "password": "not the password"}
        )
        assert response.status_code == 401
    blocked = await client.post(
        "/api/auth/login", json={"email": user["email"], "password": "correct horse battery"}
    )
    assert blocked.status_code == 429
    assert "Retry-After" in blocked.headers


async def test_login_is_throttled_per_client_address(make_client: AppFactory) -> None:
    client = await make_client(OPENDOT_LOGIN_MAX_FAILURES=1)
    for n in range(4):
        response = await client.post(
            "/api/auth/login", json={"email": f"nobody{n}@example.test", "password": "whatever12"}
        )
        assert response.status_code == 401
    other = await client.post(
        "/api/auth/login", json={"email": "fresh@example.test", "password": "whatever12"}
    )
    assert other.status_code == 429


async def test_logout_revokes_and_refresh_rotates(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    renewed = await client.post("/api/auth/refresh", json={"refreshToken": user["refresh"]})
    assert renewed.status_code == 200
    second = renewed.json()
    assert second["refreshToken"] != user["refresh"]
    by_bearer = await client.post(
        "/api/auth/refresh", headers={"Authorization": f"Bearer {second['accessToken']}"}
    )
    assert by_bearer.status_code == 200
    assert (await client.get("/api/platform-state", headers=auth(user))).status_code == 200
    assert (await client.post("/api/auth/logout", headers=auth(user))).json() == {"ok": True}
    # Every token of that session stops working at once, refresh included.
    for token in (user["Authorization"], f"Bearer {second['accessToken']}"):
        response = await client.get("/api/platform-state", headers={"Authorization": token})
        assert response.status_code == 401
    again = await client.post("/api/auth/refresh", json={"refreshToken": second["refreshToken"]})
    assert again.status_code == 401


async def test_a_reused_refresh_token_revokes_the_whole_session(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    stolen = user["refresh"]
    owner = (await client.post("/api/auth/refresh", json={"refreshToken": stolen})).json()
    # The thief presents the token the owner already rotated away from.
    reused = await client.post("/api/auth/refresh", json={"refreshToken": stolen})
    assert reused.status_code == 401
    assert "already used" in reused.json()["error"]
    # Theft signal: the session is revoked, so nobody holding any of its tokens goes on.
    after = await client.post("/api/auth/refresh", json={"refreshToken": owner["refreshToken"]})
    assert after.status_code == 401
    for token in (user["Authorization"], f"Bearer {owner['accessToken']}"):
        response = await client.get("/api/platform-state", headers={"Authorization": token})
        assert response.status_code == 401
    # A new sign-in is a new session, untouched by the old one's revocation.
    login = await client.post(
        "/api/auth/login", json={"email": user["email"], "password": "correct horse battery"}
    )
    assert login.status_code == 200


async def test_refresh_by_access_token_mints_no_refresh_token(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    by_bearer = await client.post("/api/auth/refresh", headers=auth(user))
    assert by_bearer.status_code == 200
    body = by_bearer.json()
    assert body["refreshToken"] is None and body["accessToken"]
    # The session's own refresh token is untouched: its holder still renews with it.
    renewed = await client.post("/api/auth/refresh", json={"refreshToken": user["refresh"]})
    assert renewed.status_code == 200 and renewed.json()["refreshToken"]


async def test_local_auth_disabled(make_client: AppFactory) -> None:
    client = await make_client(OPENDOT_LOCAL_AUTH_DISABLED=True)
    body = {"email": "a@b.test", "password": "long enough"}
    assert (await client.post("/api/auth/signup", json=body)).status_code == 403
    assert (await client.post("/api/auth/login", json=body)).status_code == 403
    assert (await client.get("/api/auth/config")).json()["localAuthEnabled"] is False


async def test_local_token_is_refused_when_local_auth_is_off(make_client: AppFactory) -> None:
    on = await make_client()
    user = await signup(on)
    off = await make_client(OPENDOT_LOCAL_AUTH_DISABLED=True)
    assert (await off.get("/api/platform-state", headers=auth(user))).status_code == 401


async def test_dev_user_only_when_auth_not_required(make_client: AppFactory) -> None:
    required = await make_client()
    response = await required.get("/api/platform-state")
    assert response.status_code == 401 and "error" in response.json()
    open_client = await make_client(PLATFORM_AUTH_REQUIRED=False, OPENDOT_DEV_USER_NAME="Dev")
    state = await open_client.get("/api/platform-state")
    assert state.status_code == 200
    assert state.json()["userSettings"]["displayName"] == "Dev"


async def test_display_name_edit_survives_later_requests(client: httpx.AsyncClient) -> None:
    user = await signup(client)
    put = await client.put("/api/settings", headers=auth(user), json={"displayName": "Renamed"})
    assert put.status_code == 200 and put.json()["settings"]["displayName"] == "Renamed"
    for _ in range(2):
        state = await client.get("/api/platform-state", headers=auth(user))
        assert state.json()["userSettings"]["displayName"] == "Renamed"


async def test_api_keys_authenticate_until_revoked_or_expired(
    client: httpx.AsyncClient, database_url: str
) -> None:
    user = await signup(client)
    created = await client.post("/api/api-keys", headers=auth(user), json={"name": "ci"})
    assert created.status_code == 201
    key = created.json()["apiKey"]
    assert key["token"].startswith("od_sk_") and key["prefix"] == key["token"][:14]
    sdk = {"Authorization": f"Bearer {key['token']}"}
    state = await client.get("/api/platform-state", headers=sdk)
    assert state.status_code == 200
    listed = state.json()["apiKeys"]
    assert [k["id"] for k in listed] == [key["id"]] and listed[0]["token"] is None
    assert listed[0]["lastUsedAt"] is not None

    second = (await client.post("/api/api-keys", headers=auth(user), json={"name": "old"})).json()[
        "apiKey"
    ]
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "update public.api_keys set expires_at = now() - interval '1 minute' where id = $1",
            uuid.UUID(second["id"]),
        )
    finally:
        await conn.close()
    expired = await client.get(
        "/api/platform-state", headers={"Authorization": f"Bearer {second['token']}"}
    )
    assert expired.status_code == 401

    revoked = await client.post(f"/api/api-keys/{key['id']}/revoke", headers=auth(user))
    assert revoked.json()["apiKey"]["status"] == "revoked"
    assert (await client.get("/api/platform-state", headers=sdk)).status_code == 401
    bogus = {"Authorization": "Bearer od_sk_" + "0" * 48}
    assert (await client.get("/api/platform-state", headers=bogus)).status_code == 401


# --- Supabase ------------------------------------------------------------------------------


@pytest.fixture
def jwks() -> respx.MockRouter:
    with respx.mock(assert_all_called=False) as router:
        yield router


def _serve(router: respx.MockRouter, *keys: object) -> respx.Route:
    return router.get(JWKS_URL).mock(
        return_value=httpx.Response(200, json={"keys": [k.jwk() for k in keys]})  # type: ignore[attr-defined]
    )


async def test_supabase_es256_and_rs256_tokens(
    make_client: AppFactory, jwks: respx.MockRouter, database_url: str
) -> None:
    es, rs = es256_key(), rs256_key()
    _serve(jwks, es, rs)
    client = await make_client(SUPABASE_URL=SUPABASE_URL)
    for key in (es, rs):
        claims = supabase_claims()
        response = await client.get(
            "/api/platform-state", headers={"Authorization": f"Bearer {key.sign(claims)}"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["userSettings"]["displayName"] == "Supa Base"
    conn = await asyncpg.connect(database_url)
    try:
        provider = await conn.fetchval(
            "select auth_provider from public.app_users where id = $1", uuid.UUID(claims["sub"])
        )
    finally:
        await conn.close()
    assert provider == "supabase"


async def test_bad_supabase_tokens_are_401(make_client: AppFactory, jwks: respx.MockRouter) -> None:
    key, stranger = es256_key(), es256_key()
    _serve(jwks, key)
    client = await make_client(SUPABASE_URL=SUPABASE_URL, OPENDOT_JWKS_COOLDOWN_S=0)
    now = int(time.time())
    bad = {
        "expired": key.sign(supabase_claims(exp=now - 10, iat=now - 100)),
        "wrong audience": key.sign(supabase_claims(aud="anon")),
        "wrong issuer": key.sign(supabase_claims(iss="https://evil.test/auth/v1")),
        "alg none": unsigned_token(supabase_claims(), key.kid),
        "hs256 with public key": hs256_with_key_bytes(supabase_claims(), key.public_pem(), key.kid),
        "unknown kid": stranger.sign(supabase_claims()),
        "tampered": tamper(key.sign(supabase_claims())),
        "sub not a uuid": key.sign(supabase_claims(sub="admin")),
        "garbage": "not.a.jwt",
    }
    for label, token in bad.items():
        response = await client.get(
            "/api/platform-state", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, label
        assert list(response.json()) == ["error"], label


async def test_jwks_rotation_needs_one_refetch(
    make_client: AppFactory, jwks: respx.MockRouter
) -> None:
    old, new = es256_key(), es256_key()
    route = _serve(jwks, old)
    client = await make_client(SUPABASE_URL=SUPABASE_URL, OPENDOT_JWKS_COOLDOWN_S=0)
    headers = {"Authorization": f"Bearer {old.sign(supabase_claims())}"}
    assert (await client.get("/api/platform-state", headers=headers)).status_code == 200
    assert (await client.get("/api/platform-state", headers=headers)).status_code == 200
    assert route.call_count == 1  # cached
    route.mock(return_value=httpx.Response(200, json={"keys": [old.jwk(), new.jwk()]}))
    rotated = {"Authorization": f"Bearer {new.sign(supabase_claims())}"}
    assert (await client.get("/api/platform-state", headers=rotated)).status_code == 200
    assert route.call_count == 2
    assert (await client.get("/api/platform-state", headers=rotated)).status_code == 200
    assert route.call_count == 2


async def test_unknown_kid_refetch_respects_cooldown(
    make_client: AppFactory, jwks: respx.MockRouter
) -> None:
    key, stranger = es256_key(), es256_key()
    route = _serve(jwks, key)
    client = await make_client(SUPABASE_URL=SUPABASE_URL, OPENDOT_JWKS_COOLDOWN_S=3600)
    good = {"Authorization": f"Bearer {key.sign(supabase_claims())}"}
    assert (await client.get("/api/platform-state", headers=good)).status_code == 200
    for _ in range(5):
        token = stranger.sign(supabase_claims())
        response = await client.get(
            "/api/platform-state", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401
    assert route.call_count == 1


async def test_jwks_down_keeps_serving_cached_keys(
    make_client: AppFactory, jwks: respx.MockRouter
) -> None:
    key = es256_key()
    route = _serve(jwks, key)
    # A zero TTL makes every request try to refresh: the worst case for an outage.
    client = await make_client(
        SUPABASE_URL=SUPABASE_URL, OPENDOT_JWKS_CACHE_S=0, OPENDOT_JWKS_COOLDOWN_S=0
    )
    headers = {"Authorization": f"Bearer {key.sign(supabase_claims())}"}
    assert (await client.get("/api/platform-state", headers=headers)).status_code == 200
    route.mock(side_effect=httpx.ConnectError("JWKS endpoint is down"))
    assert (await client.get("/api/platform-state", headers=headers)).status_code == 200
    route.mock(return_value=httpx.Response(503))
    assert (await client.get("/api/platform-state", headers=headers)).status_code == 200
    assert route.call_count >= 3


async def test_legacy_hs256_secret(make_client: AppFactory) -> None:
    secret = "legacy-supabase-jwt-secret-with-32-chars!"
    client = await make_client(SUPABASE_JWT_SECRET=secret)
    claims = supabase_claims()
    del claims["iss"]
    token = jwt.encode(claims, secret, algorithm="HS256")
    response = await client.get("/api/platform-state", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    # The service_role key is an HS256 JWT with no sub/aud: never a user.
    service = jwt.encode(
        {"role": "service_role", "iss": "supabase", "exp": int(time.time()) + 60},
        secret,
        algorithm="HS256",
    )
    refused = await client.get(
        "/api/platform-state", headers={"Authorization": f"Bearer {service}"}
    )
    assert refused.status_code == 401
    wrong = jwt.encode(claims, "another-secret-another-secret-1234", algorithm="HS256")
    denied = await client.get("/api/platform-state", headers={"Authorization": f"Bearer {wrong}"})
    assert denied.status_code == 401


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.e30.sig", {"alg": "ES256", "kid": "k1"}),
        ("eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0", None),  # no dot
        ("W10.e30.sig", None),  # a JSON list, not an object
        ("!!!.e30.sig", None),
        ("bm90IGpzb24.e30.sig", None),  # "not json"
        ("", None),
        ("a" * 4096 + ".e30.sig", None),
    ],
)
def test_header_peek_only_routes(token: str, expected: dict[str, str] | None) -> None:
    assert peek_header(token) == expected
