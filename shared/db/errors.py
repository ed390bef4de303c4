"""The one exception tree of `shared.db`.

Every message is a single sentence a person can act on; the command-line layer
prints it as is and exits non-zero.
"""

from __future__ import annotations


class DatabaseError(Exception):
    """Base class for every error raised by `shared.db`."""


class ConnectError(DatabaseError):
    """The URL is malformed, the server cannot be reached, or it is not PostgreSQL."""


class MissingDatabase(ConnectError):
    """The server answered, but the named database does not exist (each command
    says how to create it: only `db migrate` has --create)."""


class MigrationError(DatabaseError):
    """A migration failed; it was rolled back and the ledger is unchanged."""


class UnsafeTargetError(DatabaseError):
    """A destructive command was pointed at a database it must not touch."""
