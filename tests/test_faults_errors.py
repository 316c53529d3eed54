"""How the server tells a full disk and an unreachable database from its own faults.

``dawserver.errors.disk_full`` and ``database.errors.unreachable`` decide whether a
failed route answers 507, 503 (try again) or 500; they look through an exception's
causes, and only errors that really say so count.
"""

from __future__ import annotations

import asyncio
import errno
import sqlite3

import asyncpg
import pytest
from loopback import free_port

from database.errors import DatabaseError, unreachable
from dawserver.errors import disk_full


def raised_from(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException as exc:
            raise outer from exc
    except Exception as caught:
        return caught


def test_a_full_disk_is_told_by_its_errno_or_sqlites_code() -> None:
    assert disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL
    assert disk_full(raised_from(DatabaseError("append failed"), full))
    assert not disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not disk_full(sqlite3.OperationalError("no such table: x"))
    assert not disk_full(ValueError("bad input"))


def test_a_refused_postgres_connection_is_unreachable_but_other_refusals_are_not() -> None:
    async def refused() -> BaseException:
        try:
            await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres",
                                  timeout=5)
        except BaseException as exc:  # noqa: BLE001 - the error is what is tested
            return exc
        raise AssertionError("nothing listens there, yet it connected")

    from_asyncpg = asyncio.run(refused())
    assert isinstance(from_asyncpg, OSError)
    assert unreachable(from_asyncpg)
    assert unreachable(raised_from(RuntimeError("route failed"), from_asyncpg))
    assert unreachable(asyncpg.exceptions.ConnectionDoesNotExistError("closed"))
    assert unreachable(asyncpg.exceptions.CannotConnectNowError("starting up"))
    assert unreachable(asyncpg.exceptions.AdminShutdownError("terminating"))
    # The same refusal from anything but the database driver is not the database.
    assert not unreachable(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert not unreachable(asyncpg.exceptions.UniqueViolationError("duplicate key"))
    assert not unreachable(DatabaseError("no such column"))


@pytest.mark.parametrize("error,full", [(OSError(errno.ENOSPC, "full"), True),
                                        (ValueError("x"), False)])
def test_a_cyclic_chain_of_causes_ends_with_an_answer(error: Exception, full: bool) -> None:
    other = RuntimeError("other")
    other.__context__ = error
    error.__context__ = other
    assert disk_full(other) is full
    assert unreachable(other) is False
