"""Pure helpers for the OTA answer: derived codes, firmware facts, URLs.

The 6-digit code and the challenge of an activation are derived from its id
with a server-side key, so a device that re-bootstraps while its code is still
pending hears the *same* code again (the firmware re-bootstraps every ~30-40 s
while unclaimed) without the code being stored in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from typing import Any

ACTIVATION_MESSAGE = "Enter this code in OpenDot to pair your Dot device."


def derivation_key(internal_secret: str) -> bytes:
    return hashlib.sha256(b"opendot-activation\x00" + internal_secret.encode("utf-8")).digest()


def activation_code(key: bytes, activation_id: uuid.UUID) -> str:
    digest = hmac.new(key, b"code:" + activation_id.bytes, hashlib.sha256).digest()
    return str(100_000 + int.from_bytes(digest[:8], "big") % 900_000)


def activation_challenge(key: bytes, activation_id: uuid.UUID) -> str:
    digest = hmac.new(key, b"challenge:" + activation_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).rstrip(b"=").decode("ascii")


def firmware_facts(system_info: Any, user_agent: str | None) -> tuple[str | None, str | None]:
    """(firmware version, board) from the OTA body, falling back to `board/version` UA."""
    version: str | None = None
    board: str | None = None
    if isinstance(system_info, dict):
        app = system_info.get("application")
        if isinstance(app, dict) and isinstance(app.get("version"), str):
            version = app["version"]
        raw_board = system_info.get("board")
        if isinstance(raw_board, dict):
            name = raw_board.get("name") or raw_board.get("type")
            board = name if isinstance(name, str) else None
        elif isinstance(raw_board, str):
            board = raw_board
    if user_agent and "/" in user_agent:
        ua_board, _, ua_version = user_agent.partition("/")
        board = board or (ua_board.strip() or None)
        version = version or (ua_version.strip().split(" ")[0] or None)
    return (version[:64] if version else None, board[:128] if board else None)


def websocket_url(given: str | None, public_http_url: str) -> str:
    """The device WebSocket URL; wss:// whenever the runtime is public over TLS."""
    tls = public_http_url.lower().startswith("https://")
    url = (given or "").strip()
    if not url:
        base = public_http_url.rstrip("/")
        url = ("wss://" + base[8:] if tls else "ws://" + base.split("://", 1)[-1]) + "/ws"
    if tls and url.lower().startswith("ws://"):
        url = "wss://" + url[5:]
    return url


def server_time() -> dict[str, int]:
    return {"timestamp": int(time.time() * 1000), "timezone_offset": 0}


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None
