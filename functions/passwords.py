"""Password hashing for local auth: argon2id with `argon2.PasswordHasher()` defaults."""

from __future__ import annotations

import asyncio
import re
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher

MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1024
_EMAIL = re.compile(r"^[^\s@]+@[^\s@]+\.[^\s@]+$")
# A valid hash of a random password: verifying against it when the email is
# unknown makes "no such user" cost the same time as "wrong password".
_DUMMY_PASSWORD = "opendot-timing-equaliser"  # noqa: S105 - not a credential


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    from argon2 import PasswordHasher

    return PasswordHasher()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash(_DUMMY_PASSWORD)


def normalize_email(email: str) -> str:
    return email.strip().lower()


def valid_email(email: str) -> bool:
    return len(email) <= 320 and _EMAIL.match(email) is not None


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when the password matches; never raises on a malformed hash."""
    from argon2.exceptions import Argon2Error, InvalidHashError

    hasher = _hasher()
    try:
        return hasher.verify(stored_hash or _dummy_hash(), password) and stored_hash is not None
    except (Argon2Error, InvalidHashError):
        return False


async def hash_password_async(password: str) -> str:
    # argon2 takes tens of milliseconds of CPU: keep it off the event loop.
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(stored_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password, stored_hash, password)
