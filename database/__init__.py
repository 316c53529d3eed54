"""The one database layer of the process: SQLite by default, PostgreSQL by URL.

The collaboration store (:mod:`collab.store`), the one job queue (:mod:`jobs`,
which runs bounces, transcription and the plug-ins' jobs), the event bus
(:mod:`events`) and every plug-in share one :class:`Database`,
opened once by the server (``create_app``) from ``config.database_url``:

- :func:`open_database` and :func:`parse_url`: the one URL parser and the one
  place a connection pool (PostgreSQL) or the writer and reader connections
  (SQLite) are made;
- :mod:`database.migrations`: the one migration runner, over versioned ``.sql``
  files kept beside the component that owns them;
- :mod:`database.group`: group commit (many small write transactions of the process
  share one commit, each unit under a savepoint of its own);
- :mod:`database.sharding`: the Citus rule every table keeps (its distribution
  column in its primary key and unique constraints).

This package imports nothing of the server or of the business plug-ins, so
``collab``, ``transcription``, ``dawserver`` and ``business`` may all use it.
"""

from __future__ import annotations

from pathlib import Path

from .errors import DatabaseError
from .group import GroupCommit, group_commit
from .migrations import Migration, load_migrations
from .session import Database, Row, Session, to_dollar_params
from .sharding import TableShape, distribution_column, sharding_problems
from .url import (
    DEFAULT_SQLITE_FILE,
    FULL_SYNC,
    NORMAL_SYNC,
    POOLERS,
    POSTGRESQL,
    SQLITE,
    TRANSACTION_POOLING,
    DatabaseUrl,
    parse_url,
)

__all__ = [
    "DEFAULT_SQLITE_FILE", "FULL_SYNC", "NORMAL_SYNC", "POOLERS", "POSTGRESQL", "SQLITE",
    "TRANSACTION_POOLING", "Database", "DatabaseError", "DatabaseUrl",
    "GroupCommit", "Migration", "Row", "Session", "TableShape", "distribution_column",
    "group_commit", "load_migrations", "open_database", "parse_url", "sharding_problems",
    "to_dollar_params",
]


def open_database(url: str | None = None, data_dir: str | Path = ".") -> Database:
    """The database ``url`` names (:func:`parse_url`), not started yet.

    Use ``async with open_database(url, data_dir) as db``; a server opens one
    for the whole process and hands it to every component.
    """
    parsed = parse_url(url, data_dir)
    if parsed.dialect == POSTGRESQL:
        from .postgres import PostgresDatabase

        return PostgresDatabase(parsed.target, pooler=parsed.pooler)
    from .sqlite import SqliteDatabase

    return SqliteDatabase(parsed.path, synchronous=parsed.synchronous)
