"""The database layer's one exception, and how to tell an unreachable server."""

from __future__ import annotations

import os
import traceback


class DatabaseError(Exception):
    """A database could not be opened, migrated or queried; the message says which and why."""


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database server cannot be reached now:
    refused or dropped connections, a server shutting down or starting up.

    Such an error passes once the server is back (the pool opens new connections), so a
    caller may answer "try again shortly" rather than report a fault of its own.
    """
    for _ in range(8):  # a short chain: never loops on a cyclic context
        if exc is None:
            return False
        if _is_unreachable(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _is_unreachable(exc: BaseException) -> bool:
    try:
        from asyncpg import exceptions as pg
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    if isinstance(exc, pg.PostgresConnectionError | pg.CannotConnectNowError
                  | pg.AdminShutdownError | pg.CrashShutdownError):
        return True
    if isinstance(exc, ConnectionError | TimeoutError):  # raised inside asyncpg's connect
        frames = traceback.extract_tb(exc.__traceback__)
        return any(f"{os.sep}asyncpg{os.sep}" in frame.filename for frame in frames)
    return False
