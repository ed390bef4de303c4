"""Opaque bearer tokens, activation codes and their hashes.

Only SHA-256 hashes and a short display prefix are ever stored; the full token
is shown once (API key creation) or handed to the device/browser. Formats follow
the original OpenDot so existing clients keep working:

- `od_sk_` + 48 hex chars: SDK API key
- `od_dt_` + base64url(32 bytes): device credential
- `od_vt_` + base64url(32 bytes): single-use voice-session token (60 s)
- 6 decimal digits: activation code (5 min)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Final

API_KEY_PREFIX: Final = "od_sk_"
DEVICE_TOKEN_PREFIX: Final = "od_dt_"  # noqa: S105 - a public prefix, not a secret
VOICE_TOKEN_PREFIX: Final = "od_vt_"  # noqa: S105 - a public prefix, not a secret
DISPLAY_PREFIX_CHARS: Final = 14
VOICE_TOKEN_TTL_S: Final = 60
ACTIVATION_CODE_TTL_S: Final = 300


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_hex(24)


def new_device_token() -> str:
    return DEVICE_TOKEN_PREFIX + _b64url(secrets.token_bytes(32))


def new_voice_token() -> str:
    return VOICE_TOKEN_PREFIX + _b64url(secrets.token_bytes(32))


def new_activation_code() -> str:
    """Six digits without a leading zero (100000..999999), as the firmware speaks them."""
    return str(100_000 + secrets.randbelow(900_000))


def new_challenge() -> str:
    return _b64url(secrets.token_bytes(24))


def normalize_code(code: str) -> str:
    """The digits a user typed or spoke, with spaces and dashes removed."""
    return "".join(ch for ch in code if ch.isdigit())


def token_hash(token: str) -> str:
    """Hex SHA-256 of the full token string (what the database stores)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def display_prefix(token: str) -> str:
    return token[:DISPLAY_PREFIX_CHARS]


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    left = a.encode("utf-8") if isinstance(a, str) else a
    right = b.encode("utf-8") if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


def has_prefix(token: str, prefix: str) -> bool:
    return token.startswith(prefix) and len(token) > len(prefix) + 16


def activation_hmac(key: bytes, challenge: str) -> str:
    """The v2 activation HMAC: hex HMAC-SHA256 of the challenge under the device key."""
    return hmac.new(key, challenge.encode("utf-8"), hashlib.sha256).hexdigest()


def verify_activation_hmac(key: bytes, challenge: str, received: str) -> bool:
    expected = activation_hmac(key, challenge)
    return constant_time_equals(expected, received.strip().lower())
