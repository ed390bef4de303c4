"""Signed download links for firmware kept in the local directory.

The runtime serves `/ota/firmware/<token>` only when the token carries a valid
HMAC from a key both the API and the runtime derive from the internal secret.
A token names one release file, the rollout and Dot it was offered to (so the
runtime can report the download), and an expiry; it lets its holder fetch that
one file until then, and nothing else. Nothing in it is secret; it cannot be
forged or stretched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import uuid
from dataclasses import dataclass

_LAYOUT = struct.Struct(">16s16s16sQ")  # release, rollout, device, expiry (unix s)
_MAC_BYTES = 20
_NIL = uuid.UUID(int=0)


def link_key(internal_secret: str) -> bytes:
    return hashlib.sha256(b"opendot-firmware-link\x00" + internal_secret.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class DownloadGrant:
    release_id: uuid.UUID
    rollout_id: uuid.UUID | None
    device_id: uuid.UUID | None
    expires_at: int

    @property
    def storage_key(self) -> str:
        return f"firmware/{self.release_id}.bin"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(key: bytes, grant: DownloadGrant) -> str:
    body = _LAYOUT.pack(
        grant.release_id.bytes,
        (grant.rollout_id or _NIL).bytes,
        (grant.device_id or _NIL).bytes,
        grant.expires_at,
    )
    mac = hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]
    return _b64(body + mac)


def verify(key: bytes, token: str, now: float) -> DownloadGrant | None:
    """The grant of a genuine, unexpired token; None for anything else."""
    if len(token) > 200:
        return None
    try:
        raw = _unb64(token)
    except ValueError:
        return None
    if len(raw) != _LAYOUT.size + _MAC_BYTES:
        return None
    body, mac = raw[: _LAYOUT.size], raw[_LAYOUT.size :]
    if not hmac.compare_digest(mac, hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]):
        return None
    release, rollout, device, expires = _LAYOUT.unpack(body)
    if expires <= now:
        return None
    rollout_id, device_id = uuid.UUID(bytes=rollout), uuid.UUID(bytes=device)
    return DownloadGrant(
        release_id=uuid.UUID(bytes=release),
        rollout_id=None if rollout_id == _NIL else rollout_id,
        device_id=None if device_id == _NIL else device_id,
        expires_at=expires,
    )
