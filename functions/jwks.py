"""A small async JWKS cache for Supabase signing keys.

Why not `jwt.PyJWKClient`: it fetches with blocking urllib (stalling the event
loop), its per-kid cache has no TTL, and its unknown-kid cooldown is fixed at
30 s from the last *successful* fetch. Here:

- the key set is trusted for `ttl_s` (≤ 10 min, Supabase's own edge cache);
- an unknown `kid` triggers one refetch, at most once per `cooldown_s`;
- a failed fetch keeps serving the keys already held (stale-if-error), and
  waits `cooldown_s` before trying the network again;
- only ES256 (P-256) and RS256 keys for signature verification are accepted.

Fetching is serialised by an asyncio lock so a burst of requests after expiry
makes one request, not hundreds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from jwt.exceptions import PyJWKError

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("ES256", "RS256")
_KTY_FOR_ALG = {"ES256": "EC", "RS256": "RSA"}


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    algorithm: str
    key: Any  # a cryptography public key object


@dataclass
class _State:
    keys: dict[str, SigningKey] = field(default_factory=dict)
    fetched_at: float | None = None  # last successful fetch
    attempted_at: float | None = None  # last attempt, successful or not


def parse_jwks(document: Any) -> dict[str, SigningKey]:
    """The usable verification keys of a JWKS document; malformed entries are skipped."""
    keys: dict[str, SigningKey] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError("JWKS document has no 'keys' list")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        alg = entry.get("alg")
        kty = entry.get("kty")
        if alg is None:
            alg = {"EC": "ES256", "RSA": "RS256"}.get(str(kty))
        if alg not in ALLOWED_ALGORITHMS or kty != _KTY_FOR_ALG[alg]:
            continue
        if entry.get("use") not in (None, "sig"):
            continue
        ops = entry.get("key_ops")
        if isinstance(ops, list) and "verify" not in ops:
            continue
        try:
            parsed = jwt.PyJWK(entry, algorithm=alg)
        except (PyJWKError, ValueError, TypeError):
            continue
        keys[entry["kid"]] = SigningKey(kid=entry["kid"], algorithm=alg, key=parsed.key)
    return keys


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        ttl_s: float = 600.0,
        timeout_s: float = 3.0,
        cooldown_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.ttl_s = min(ttl_s, 600.0)
        self.timeout_s = timeout_s
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._state = _State()
        self._lock: asyncio.Lock | None = None
        self.fetch_count = 0

    def install(self, keys: dict[str, SigningKey]) -> None:
        """Hold these keys as if just fetched (warm starts, tests and benchmarks)."""
        now = self._clock()
        self._state = _State(keys=dict(keys), fetched_at=now, attempted_at=now)

    def fresh(self, kid: str) -> SigningKey | None:
        """The key for `kid` when the key set is fresh; None means "ask `get`".

        The hot path of every Supabase request: a dict lookup, no coroutine.
        """
        if not self._fresh(self._clock()):
            return None
        return self._state.keys.get(kid)

    def purge(self) -> None:
        """Forget every key (an operator's lever after revoking a key)."""
        self._state = _State()

    def _fresh(self, now: float) -> bool:
        fetched = self._state.fetched_at
        return fetched is not None and now - fetched < self.ttl_s

    def _may_attempt(self, now: float) -> bool:
        attempted = self._state.attempted_at
        return attempted is None or now - attempted >= self.cooldown_s

    async def get(self, kid: str) -> SigningKey | None:
        """The key for `kid`, refreshing when stale or when the kid is unknown."""
        now = self._clock()
        known = self._state.keys.get(kid)
        if known is not None and self._fresh(now):
            return known
        stale = not self._fresh(now)
        if stale or self._may_attempt(now):
            await self._refresh(force=not stale)
        return self._state.keys.get(kid)

    async def _refresh(self, *, force: bool) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            now = self._clock()
            # Another waiter may have refreshed while this one queued.
            if not force and self._fresh(now):
                return
            if force and not self._may_attempt(now):
                return
            if not force and self._state.attempted_at is not None and not self._may_attempt(now):
                # The endpoint failed recently: keep serving what we hold.
                return
            self._state.attempted_at = now
            try:
                keys = await self._fetch()
            except Exception as exc:  # network, HTTP status, JSON: all mean "keep the old keys"
                log.warning("JWKS fetch from %s failed (%s); using cached keys", self.url, exc)
                return
            self._state.keys = keys
            self._state.fetched_at = self._clock()

    async def _fetch(self) -> dict[str, SigningKey]:
        import httpx  # only paid for when a Supabase key set is actually fetched

        self.fetch_count += 1
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False) as client:
            response = await client.get(self.url, headers={"Accept": "application/json"})
            response.raise_for_status()
            return parse_jwks(response.json())
