"""The one parser of database URLs (``--database``, ``config.database_url``).

``None``, ``""`` or ``sqlite://`` mean the embedded default, the SQLite file
``DATA/collab.sqlite3``; ``sqlite:///PATH`` names another file (``sqlite://PATH``
is relative to the working directory); ``postgresql://`` (or ``postgres://``)
URLs are handed to asyncpg unchanged, query parameters included, except ``pooler``:
``?pooler=transaction`` says the URL names a connection pooler in transaction pooling
mode (PgBouncer's ``pool_mode = transaction``), where a statement prepared on one
server connection may be run on another, so the pool prepares nothing it keeps
(:data:`POOLERS`; docs/scale-out.md).

A SQLite URL may say ``?synchronous=normal`` (``sqlite://?synchronous=normal`` for the
default file): commits are then not fsynced, so a crash of the server process still
loses nothing (the WAL is in the operating system's cache) but a crash of the operating
system or a power cut may lose the last commits; the default ``full`` fsyncs every
commit (docs/collab-protocol.md, Durability).  A PostgreSQL URL says the same with
``?synchronous_commit=off``, which asyncpg sends to the server as a setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import DatabaseError

SQLITE, POSTGRESQL = "sqlite", "postgresql"
#: The SQLite file in the data directory (its name predates the shared layer; kept so
#: existing data directories open unchanged).
DEFAULT_SQLITE_FILE = "collab.sqlite3"
ACCEPTED = "postgresql://USER@HOST:PORT/DB or sqlite:///PATH"
#: What ``?pooler=`` may say: ``session`` (the default: a direct server or a pooler in
#: session mode) or ``transaction`` (each transaction may get another server connection).
SESSION_POOLING, TRANSACTION_POOLING = "session", "transaction"
POOLERS = (SESSION_POOLING, TRANSACTION_POOLING)
#: What ``?synchronous=`` may say on a SQLite URL: ``full`` (the default: every commit is
#: fsynced) or ``normal`` (durable across a crash of the process, not of the machine).
FULL_SYNC, NORMAL_SYNC = "full", "normal"
SYNCHRONOUS = (FULL_SYNC, NORMAL_SYNC)


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed database URL: its dialect and what to open (a file path or a DSN)."""

    dialect: str
    target: str
    pooler: str = SESSION_POOLING
    synchronous: str = FULL_SYNC

    @property
    def path(self) -> Path:
        """The SQLite file (only for ``dialect == "sqlite"``)."""
        return Path(self.target)

    def redacted(self) -> str:
        """The URL with its password (if any) replaced by ``***``, for messages and logs."""
        return redact(self.target if self.dialect == POSTGRESQL else f"sqlite://{self.target}")


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", url)


def parse_url(url: str | None, data_dir: str | Path = ".") -> DatabaseUrl:
    """The database ``url`` names; SQLite in ``data_dir`` when it names none."""
    if not url or url == "sqlite://":
        return DatabaseUrl(SQLITE, str(Path(data_dir) / DEFAULT_SQLITE_FILE))
    if url.startswith(("postgresql://", "postgres://")):
        target, pooler = _take_pooler(url)
        return DatabaseUrl(POSTGRESQL, target, pooler)
    if url.startswith("sqlite://"):
        path, _, query = url.removeprefix("sqlite://").partition("?")
        return DatabaseUrl(SQLITE, path or str(Path(data_dir) / DEFAULT_SQLITE_FILE),
                           synchronous=_sqlite_synchronous(url, query))
    raise DatabaseError(f"unsupported database URL {redact(url)!r}; use {ACCEPTED}")


def _take_pooler(url: str) -> tuple[str, str]:
    """``url`` without its ``pooler`` parameter (asyncpg would send it to the server as a
    setting), and what that parameter said."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    said = [value for name, value in query if name == "pooler"]
    if not said:
        return url, SESSION_POOLING
    if len(said) > 1 or said[0] not in POOLERS:
        raise DatabaseError(f"unsupported pooler={','.join(said)!r} in {redact(url)!r}; use "
                            f"?pooler=transaction behind PgBouncer's transaction pooling, or "
                            f"leave it out")
    rest = urlencode([(name, value) for name, value in query if name != "pooler"])
    return urlunsplit(parts._replace(query=rest)), said[0]


def _sqlite_synchronous(url: str, query: str) -> str:
    """What a SQLite URL's query asks of its commits (``synchronous``, the one parameter)."""
    said = parse_qsl(query, keep_blank_values=True)
    unknown = sorted({name for name, _ in said} - {"synchronous"})
    values = [value for name, value in said if name == "synchronous"]
    if unknown or len(values) > 1 or (values and values[0] not in SYNCHRONOUS):
        raise DatabaseError(f"unsupported SQLite URL {url!r}: the only parameter is "
                            f"?synchronous=full (the default) or ?synchronous=normal")
    return values[0] if values else FULL_SYNC
