"""The one migration runner: versioned ``.sql`` files beside the component that owns them.

A component (``collab``, ``transcription``, each plug-in) keeps its schema in a
``migrations/`` folder next to its code and loads it with
:func:`load_migrations`::

    collab/migrations/0001_collab_tables.sqlite.sql
    collab/migrations/0001_collab_tables.postgresql.sql
    business/distribution/migrations/0002_royalties.sql

``NNNN_name.sql`` is portable SQL, run on both dialects (``?`` placeholders are
not used in DDL; write portable types: ``TEXT``, ``BIGINT``, ``DOUBLE
PRECISION``).  When the dialects differ (``BLOB`` and ``BYTEA``), the version
comes as two files, ``NNNN_name.sqlite.sql`` and ``NNNN_name.postgresql.sql``.
Statements are separated by ``;`` (quotes and comments are respected).

:func:`apply_migrations` applies, in ``(component, version)`` order, each
migration not yet recorded in ``schema_migrations``, each in its own
transaction together with its record; concurrent migrators (several server
processes) are serialised (PostgreSQL advisory lock, SQLite write lock). A
failed migration is rolled back, not recorded, and named in the error.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import DatabaseError
from .url import POSTGRESQL, SQLITE

if TYPE_CHECKING:
    from .session import Database, Session

logger = logging.getLogger(__name__)

DIALECTS = (SQLITE, POSTGRESQL)
#: Where the runner records what it applied; a reference table (global, small).
BOOKKEEPING_TABLE = "schema_migrations"
_BOOKKEEPING = f"""
-- reference table: {BOOKKEEPING_TABLE}
CREATE TABLE IF NOT EXISTS {BOOKKEEPING_TABLE} (component TEXT NOT NULL,
  version INTEGER NOT NULL, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (component, version))
"""
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+?)(?:\.(sqlite|postgresql))?\.sql$")
_REFERENCE = re.compile(r"^\s*--\s*reference table:\s*([A-Za-z_]\w*)\s*$",
                        re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Migration:
    """One schema change of one component, applied once in version order.

    ``sql`` is portable SQL, or a mapping of dialect (``sqlite``, ``postgresql``) to SQL.
    """

    component: str
    version: int
    name: str
    sql: str | Mapping[str, str]

    def text(self, dialect: str) -> str:
        """The SQL of this migration for ``dialect``."""
        if isinstance(self.sql, str):
            return self.sql
        if dialect not in self.sql:
            raise DatabaseError(
                f"migration {self.component}/{self.version} has no SQL for {dialect!r}; "
                f"give one of {sorted(self.sql)} or a portable string")
        return self.sql[dialect]

    def statements(self, dialect: str) -> list[str]:
        """The SQL statements of this migration for ``dialect``."""
        return split_statements(self.text(dialect))

    @property
    def reference_tables(self) -> frozenset[str]:
        """Tables this migration declares reference tables (``-- reference table: NAME``)."""
        texts = [self.sql] if isinstance(self.sql, str) else list(self.sql.values())
        return frozenset(name for text in texts for name in _REFERENCE.findall(text))


def split_statements(sql: str) -> list[str]:
    """``sql`` cut at each ``;`` outside quotes and comments; comment-only parts dropped."""
    statements, current, i, n = [], [], 0, len(sql)
    while i < n:
        char = sql[i]
        if char in "'\"":
            end = i + 1
            while end < n and not (sql[end] == char and sql[end + 1:end + 2] != char):
                end += 2 if sql[end] == char else 1
            current.append(sql[i:end + 1])
            i = end + 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif char == ";":
            statements.append("".join(current))
            current, i = [], i + 1
        else:
            current.append(char)
            i += 1
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


def load_migrations(component: str, directory: str | Path) -> list[Migration]:
    """The migrations of ``component`` kept as ``.sql`` files in ``directory``, by version."""
    directory = Path(directory)
    found: dict[int, dict[str | None, tuple[str, str]]] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.match(path.name)
        if match is None:
            raise DatabaseError(
                f"migration file {path} is misnamed: use NNNN_name.sql (portable) or "
                "NNNN_name.sqlite.sql and NNNN_name.postgresql.sql (lower-case name)")
        version, name, dialect = int(match[1]), match[2], match[3]
        files = found.setdefault(version, {})
        if files and (dialect in files or None in files or dialect is None
                      or any(other != name for other, _ in files.values())):
            raise DatabaseError(
                f"migration version {version} of {component} is given twice in {directory}: "
                "give each version one portable file or one file per dialect, one name")
        files[dialect] = (name, path.read_text())
    migrations = []
    for version, files in sorted(found.items()):
        if None in files:
            name, sql = files[None]
            migrations.append(Migration(component, version, name.replace("_", " "), sql))
            continue
        missing = [d for d in DIALECTS if d not in files]
        if missing:
            raise DatabaseError(f"migration {component}/{version} in {directory} has no file "
                                f"for {', '.join(missing)}; add it or make the file portable")
        name = next(iter(files.values()))[0]
        migrations.append(Migration(component, version, name.replace("_", " "),
                                    {d: files[d][1] for d in DIALECTS}))
    return migrations


async def apply_migrations(db: Database, migrations: Iterable[Migration]) -> list[Migration]:
    """Apply to ``db`` the ``migrations`` not applied yet; the list of those applied now."""
    ordered = sorted(migrations, key=lambda m: (m.component, m.version))
    seen: set[tuple[str, int]] = set()
    for migration in ordered:
        key = (migration.component, migration.version)
        if key in seen:
            raise DatabaseError(f"{migration.component!r} declares migration version "
                                f"{migration.version} twice; give each its own version")
        seen.add(key)
    async with db.transaction() as tx:
        await db.lock_migrations(tx)
        await tx.execute(_BOOKKEEPING)
        await _rename_legacy_column(db, tx)
        done = {(r["component"], r["version"]) for r in await tx.fetch(
            f"SELECT component, version FROM {BOOKKEEPING_TABLE}")}
    applied: list[Migration] = []
    for migration in ordered:
        if (migration.component, migration.version) in done:
            continue
        async with db.transaction() as tx:
            await db.lock_migrations(tx)
            if await tx.fetchval(f"SELECT COUNT(*) FROM {BOOKKEEPING_TABLE} "
                                 "WHERE component = ? AND version = ?",
                                 migration.component, migration.version):
                continue  # another process applied it meanwhile
            for statement in migration.statements(db.dialect):
                try:
                    await tx.execute(statement)
                except DatabaseError as exc:
                    raise DatabaseError(f"migration {migration.component}/{migration.version} "
                                        f"({migration.name}) failed: {exc}") from exc
            await tx.execute(f"INSERT INTO {BOOKKEEPING_TABLE} (component, version, name, "
                             "applied_at) VALUES (?, ?, ?, ?)", migration.component,
                             migration.version, migration.name, time.time())
        applied.append(migration)
        logger.info("applied migration %s/%s (%s)", migration.component, migration.version,
                    migration.name)
    if applied:
        reference = {BOOKKEEPING_TABLE}.union(*(m.reference_tables for m in ordered))
        await db.distribute_tables(reference)
    return applied


async def _rename_legacy_column(db: Database, tx: Session) -> None:
    """Databases written before the shared layer named the component column ``plugin``."""
    if db.dialect == SQLITE:
        query = f"SELECT name FROM pragma_table_info('{BOOKKEEPING_TABLE}')"
    else:
        query = ("SELECT column_name AS name FROM information_schema.columns WHERE "
                 f"table_schema = current_schema() AND table_name = '{BOOKKEEPING_TABLE}'")
    columns = {row["name"] for row in await tx.fetch(query)}
    if "plugin" in columns:
        await tx.execute(
            f"ALTER TABLE {BOOKKEEPING_TABLE} RENAME COLUMN plugin TO component")
