"""The Citus rule every table keeps, so the schema can be sharded unchanged.

A table carries its distribution column, ``account_id`` (plug-in data, kept per
account) or ``project_id`` (a project's document and jobs); a table with both
is distributed by ``account_id``.  A *lookup table*, whose rows are found by a
secret or an address and never by account (sessions by the hash of their id,
API keys by their hash, people by email), carries a ``lookup_key`` instead and
is distributed by it, whatever else it holds.  The column belongs to its primary key and to
every unique constraint, so each row and each uniqueness check lives on one
shard.  A small global table is instead declared a *reference table* (copied
to every node) with a comment line in the migration that creates it::

    -- reference table: currencies

:func:`sharding_problems` names every table that breaks the rule; a test walks
every migration of every component through it, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass

#: The distribution columns, in order of preference.
DISTRIBUTION_COLUMNS = ("lookup_key", "account_id", "project_id")


@dataclass(frozen=True)
class TableShape:
    """What the rule looks at: a table's columns, primary key and unique constraints."""

    name: str
    columns: tuple[str, ...]
    primary_key: tuple[str, ...]
    unique: tuple[tuple[str, ...], ...] = ()


def distribution_column(shape: TableShape) -> str | None:
    """The column ``shape`` is distributed by (None: it has none)."""
    return next((c for c in DISTRIBUTION_COLUMNS if c in shape.columns), None)


def sharding_problems(shapes: Iterable[TableShape], reference_tables: Set[str]) -> list[str]:
    """One line per table that breaks the rule (empty: every table keeps it)."""
    problems = []
    for shape in shapes:
        if shape.name in reference_tables:
            continue
        column = distribution_column(shape)
        if column is None:
            problems.append(
                f"table {shape.name!r} has no distribution column: add account_id or "
                f"project_id to it, or declare it '-- reference table: {shape.name}' in the "
                "migration that creates it")
            continue
        if column not in shape.primary_key:
            key = ", ".join(shape.primary_key) or "none"
            problems.append(f"table {shape.name!r}: its primary key ({key}) lacks its "
                            f"distribution column {column}")
        for unique in shape.unique:
            if column not in unique:
                problems.append(f"table {shape.name!r}: its unique constraint "
                                f"({', '.join(unique)}) lacks its distribution column {column}")
    return problems
