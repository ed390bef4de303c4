"""AES-256-GCM sealing of user secrets (provider keys) under `OPENDOT_SECRETS_KEY`.

The sealed form is one base64 string: a 12-byte random nonce followed by the
ciphertext and tag. The associated data binds a ciphertext to its owner and name
(`f"{user_id}:{name}"`), so a row copied to another user or renamed does not
decrypt. The key is 32 bytes, configured as base64 (or 64 hex characters).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
KEY_BYTES = 32


class SecretBoxError(ValueError):
    """A key of the wrong size, or a sealed value that is corrupt or was moved."""


def parse_key(text: str) -> bytes:
    """A 32-byte key from its configured text form (base64, base64url or hex)."""
    cleaned = text.strip()
    candidates: list[bytes] = []
    if len(cleaned) == 2 * KEY_BYTES:
        with contextlib.suppress(ValueError):
            candidates.append(bytes.fromhex(cleaned))
    padded = cleaned + "=" * (-len(cleaned) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            candidates.append(decode(padded))
        except (binascii.Error, ValueError):
            continue
    for key in candidates:
        if len(key) == KEY_BYTES:
            return key
    raise SecretBoxError("OPENDOT_SECRETS_KEY must be 32 bytes, written as base64 or 64 hex chars.")


def new_key_text() -> str:
    return base64.b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def seal(key: bytes, plaintext: str, aad: str) -> str:
    if len(key) != KEY_BYTES:
        raise SecretBoxError("The secrets key must be 32 bytes.")
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode("utf-8"), aad.encode("utf-8"))
    return base64.b64encode(nonce + sealed).decode("ascii")


def open_(key: bytes, token: str, aad: str) -> str:
    if len(key) != KEY_BYTES:
        raise SecretBoxError("The secrets key must be 32 bytes.")
    try:
        raw = base64.b64decode(token, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SecretBoxError("Sealed secret is not valid base64.") from exc
    if len(raw) < NONCE_BYTES + 16:
        raise SecretBoxError("Sealed secret is too short.")
    try:
        plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad.encode("utf-8"))
    except InvalidTag as exc:
        raise SecretBoxError("Sealed secret does not open with this key and name.") from exc
    return plain.decode("utf-8")
