"""The one parser of database URLs (``--database``, ``config.database_url``).

``None``, ``""`` or ``sqlite://`` mean the embedded default, the SQLite file
``DATA/collab.sqlite3``; ``sqlite:///PATH`` names another file (``sqlite://PATH``
is relative to the working directory); ``postgresql://`` (or ``postgres://``)
URLs are handed to asyncpg unchanged, query parameters included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import DatabaseError

SQLITE, POSTGRESQL = "sqlite", "postgresql"
#: The SQLite file in the data directory (its name predates the shared layer; kept so
#: existing data directories open unchanged).
DEFAULT_SQLITE_FILE = "collab.sqlite3"
ACCEPTED = "postgresql://USER@HOST:PORT/DB or sqlite:///PATH"


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed database URL: its dialect and what to open (a file path or a DSN)."""

    dialect: str
    target: str

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
        return DatabaseUrl(POSTGRESQL, url)
    if url.startswith("sqlite://"):
        return DatabaseUrl(SQLITE, url.removeprefix("sqlite://"))
    raise DatabaseError(f"unsupported database URL {redact(url)!r}; use {ACCEPTED}")
