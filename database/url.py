"""The one parser of database URLs (``--database``, ``config.database_url``).

``None``, ``""`` or ``sqlite://`` mean the embedded default, the SQLite file
``DATA/collab.sqlite3``; ``sqlite:///PATH`` names another file (``sqlite://PATH``
is relative to the working directory); ``postgresql://`` (or ``postgres://``)
URLs are handed to asyncpg unchanged, query parameters included, except ``pooler``:
``?pooler=transaction`` says the URL names a connection pooler in transaction pooling
mode (PgBouncer's ``pool_mode = transaction``), where a statement prepared on one
server connection may be run on another, so the pool prepares nothing it keeps
(:data:`POOLERS`; docs/scale-out.md).
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


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed database URL: its dialect and what to open (a file path or a DSN)."""

    dialect: str
    target: str
    pooler: str = SESSION_POOLING

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
        return DatabaseUrl(SQLITE, url.removeprefix("sqlite://"))
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
