"""Which database failures mean the database cannot be reached, as `UnavailableError`.

A connection refused, lost or timed out, or a server shutting down or starting up, says
nothing about the request: the same request may succeed on another node, or here a moment
later (HTTP 503, and a timer delivery left to its claim's expiry instead of being dropped,
`runtime/scheduler.py`). Everything else a driver raises (a constraint, a deadlock, a bug) is
not this, and goes on as it was.

PostgreSQL (psycopg): an `OperationalError` raised by the client library itself has no SQLSTATE
(the server never answered); the server's own say so in SQLSTATE class 08 (connection
exception) or 57P0x (shutting down, starting up). SQLAlchemy's pool timing out counts too: every
connection is stuck on a database that does not answer. SQLite is a local file: its errors are
never this.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa

from runtime.errors import UnavailableError

_SERVER_SQLSTATES = ("08", "57P01", "57P02", "57P03")


def unavailable(error: BaseException) -> UnavailableError | None:
    """`error` as an UnavailableError if it says the database cannot be reached, else None."""
    if isinstance(error, sa.TimeoutError):
        return UnavailableError(f"no database connection came free in time: {error}")
    if isinstance(error, sa.DBAPIError):
        if error.connection_invalidated:
            return UnavailableError(f"the database connection was lost: {error.orig}")
        error = error.orig if error.orig is not None else error
    if not isinstance(error, psycopg.OperationalError):
        return None
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate is None or sqlstate.startswith(_SERVER_SQLSTATES):
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return UnavailableError(f"the database is unreachable: {first_line}")
    return None

