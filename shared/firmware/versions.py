"""Firmware versions, compared exactly the way the Dot's firmware compares them.

The firmware (78/xiaozhi-esp32 `main/ota.cc`, `Ota::ParseVersion` and
`Ota::IsNewVersionAvailable`) splits a version on '.', reads each part with
`std::stoi` (leading blanks, an optional sign, digits, and whatever follows is
ignored), compares the integers part by part, and with equal parts calls the
longer list newer: 1.10 > 1.9, 1.0.0 > 1.0, and 1.2.3-rc1 equals 1.2.3.

`std::stoi` throws on a part with no digits ("v1", "", "1..2") or one out of
the int range, and nothing catches it: the firmware aborts and reboots. So a
Dot whose own version we cannot read this way is never offered an update (it
would crash comparing), and a release's version must be plain dotted numbers
(`RELEASE_VERSION`), so what the owner typed and what the Dot compares are the
same thing. PostgreSQL orders `integer[]` the same way as these tuples, which
is why the database stores `version_key` and compares with `>`.
"""

from __future__ import annotations

import re

# Up to 8 parts of up to 9 digits (always inside a C int); 31 characters fit the
# 32-byte version field of an ESP-IDF app description.
RELEASE_VERSION = re.compile(r"^[0-9]{1,9}(\.[0-9]{1,9}){0,7}$")
RELEASE_VERSION_HINT = (
    "numbers separated by dots, such as 1.2.3 (the firmware compares versions number by "
    "number, so letters or suffixes would be ignored or crash it)"
)
_STOI = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1

VersionKey = tuple[int, ...]


def firmware_key(version: str | None) -> VersionKey | None:
    """The integers the firmware reads from `version`, or None where it would fail."""
    if not version:
        return None
    parts = version.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # std::getline yields no empty part after a final '.'
    key: list[int] = []
    for part in parts:
        match = _STOI.match(part)
        if match is None:
            return None
        value = int(match.group(1))
        if not _INT_MIN <= value <= _INT_MAX:
            return None
        key.append(value)
    return tuple(key)


def is_newer(offered: str, current: str) -> bool:
    """`Ota::IsNewVersionAvailable(current, offered)`; False where the firmware would fail."""
    new, old = firmware_key(offered), firmware_key(current)
    return new is not None and old is not None and new > old


def release_key(version: str) -> VersionKey | None:
    """The key of a version an owner may release (plain dotted numbers), else None."""
    if not RELEASE_VERSION.match(version):
        return None
    return tuple(int(part) for part in version.split("."))


# The firmware reports BOARD_NAME (lowercase letters, digits, '.', '-' since 2.x;
# older boards send BOARD_TYPE, which may have '_' or capitals).
BOARD = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
BOARD_HINT = (
    "the board name as the firmware reports it (User-Agent `board/version`, such as "
    "bread-compact-wifi): letters, digits, '.', '_' or '-', at most 128"
)
