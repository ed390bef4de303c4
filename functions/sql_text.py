"""SQL text for the one statement that opens each request, without parameters.

Why text at all: a request's transaction used to open with `BEGIN` and then a
parameterised statement (verify the session, set the claims, switch role):
two round trips, and three behind a transaction pooler, where asyncpg cannot
cache statements and prepares each one in a round trip of its own. Sent as
one simple-protocol message (`BEGIN; select ...`), it is one round trip in
both cases. The simple protocol has no parameters, so the few values it needs
are written as literals here, and only here.

`literal()` writes escape-string literals (`E'...'`): inside them only the
backslash and the quote are special, both are escaped, and their meaning does
not depend on `standard_conforming_strings`. asyncpg always talks UTF-8, in
which no byte of a multi-byte character can look like a quote or a backslash.
NUL cannot be stored in PostgreSQL text at all and is refused. A test sends
hostile strings through it to a real server under both string settings.
"""

from __future__ import annotations

import uuid


class LiteralError(ValueError):
    """A value that cannot be written as a PostgreSQL text literal (it holds NUL)."""


def literal(value: str | None) -> str:
    if value is None:
        return "NULL"
    if "\x00" in value:
        raise LiteralError("text values cannot contain NUL")
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def uuid_literal(value: str | None) -> str:
    """A uuid literal; the value is parsed first, so only hex digits and dashes get through."""
    if value is None:
        return "NULL::uuid"
    return f"'{uuid.UUID(str(value))}'::uuid"
