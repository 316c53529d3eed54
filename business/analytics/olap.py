"""Heavy aggregations in DuckDB over one account's rows only.

:func:`load` copies one account's points (and its catalogue links) out of the shared
database into a private in-memory DuckDB (``points`` and ``links`` tables; nothing else
is in it), then locks it down: no file system, no extensions, no configuration changes
(``enable_external_access = false``, ``lock_configuration = true``), bounded memory and
threads. :meth:`Olap.aggregate` runs the dashboard aggregation; :meth:`Olap.sql` runs a
user's read-only query (one ``SELECT``) with a time limit. Another account's rows are
never loaded, so no query can see them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import duckdb
import numpy as np

from business.analytics.store import epoch

MAX_ROWS = 10_000
#: The columns a user's SQL sees.
POINT_COLUMNS = ("source", "entity_kind", "entity_id", "metric", "grain", "dimensions", "at",
                 "value", "day")
LINK_COLUMNS = ("source", "platform_kind", "platform_id", "entity_id")


class QueryRefused(Exception):
    """A user's SQL that is not one read-only SELECT, or that failed or ran too long."""


@dataclass
class Result:
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


async def load(db: Any, account_id: str, *, start: date | None = None,
               end: date | None = None, memory_limit: str = "512MB",
               threads: int = 2) -> Olap:
    """A locked DuckDB holding ``account_id``'s points (in [start, end]) and links."""
    where, args = ["account_id = ?"], [account_id]
    if start is not None:
        where.append("at >= ?")
        args.append(epoch(start))
    if end is not None:
        where.append("at < ?")
        args.append(epoch(end) + 86400)
    points = await db.fetch(
        "SELECT source, entity_kind, entity_id, metric, grain, dimensions, at, value FROM "
        f"analytics_points WHERE {' AND '.join(where)}", *args)
    links = await db.fetch(
        "SELECT source, platform_kind, platform_id, entity_id FROM analytics_links "
        "WHERE account_id = ?", account_id)
    return await asyncio.to_thread(Olap, points, links, memory_limit, threads)


def _columns(rows: Sequence[dict[str, Any]], names: Sequence[str],
             numeric: dict[str, Any]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in names:
        values = [row[name] for row in rows]
        out[name] = np.array(values, dtype=numeric.get(name, object))
    return out


class Olap:
    """One account's rows in a private, locked DuckDB (see the module docstring)."""

    def __init__(self, points: Sequence[dict[str, Any]], links: Sequence[dict[str, Any]],
                 memory_limit: str = "512MB", threads: int = 2) -> None:
        self.con = duckdb.connect(":memory:")
        self._lock = threading.Lock()
        con = self.con
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET threads = {int(threads)}")
        # ``day`` (and any TIMESTAMPTZ a user's query shows) is UTC, as points are stamped,
        # whatever the server's zone; locked below with the rest of the configuration
        con.execute("SET TimeZone = 'UTC'")
        con.register("_points", _columns(points, POINT_COLUMNS[:-1],
                                         {"at": np.int64, "value": np.float64}))
        con.execute("CREATE TABLE points AS SELECT *, CAST(to_timestamp(\"at\") AS DATE) AS day "
                    "FROM _points")
        con.unregister("_points")
        con.register("_links", _columns(links, LINK_COLUMNS, {}))
        con.execute("CREATE TABLE links AS SELECT * FROM _links")
        con.unregister("_links")
        con.execute("SET enable_external_access = false")
        con.execute("SET autoinstall_known_extensions = false")
        con.execute("SET autoload_known_extensions = false")
        con.execute("SET lock_configuration = true")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Olap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def aggregate(self, metric: str, start: date, end: date) -> list[tuple[Any, ...]]:
        """The dashboard query: per catalogue entity and 30-day bucket (``at`` // 30 days,
        as :data:`DASHBOARD_SQL`), the metric's total across sources, how many sources
        report it, and the entity's share of the account's total in that bucket."""
        with self._lock:
            return self.con.execute(DASHBOARD_DUCKDB, [metric, epoch(start),
                                                       epoch(end) + 86400]).fetchall()

    def sql(self, text: str, max_rows: int = MAX_ROWS, timeout_s: float = 10.0) -> Result:
        """A user's read-only query: one SELECT (or WITH ... SELECT), at most ``max_rows``
        rows back, interrupted after ``timeout_s``."""
        try:
            statements = self.con.extract_statements(text)
        except duckdb.Error as exc:
            raise QueryRefused(f"the query does not parse: {exc}") from None
        if len(statements) != 1:
            raise QueryRefused(f"send exactly one statement (got {len(statements)})")
        if statements[0].type != duckdb.StatementType.SELECT:
            raise QueryRefused(f"only SELECT queries run here (got "
                               f"{statements[0].type.name}); the data is read-only")
        timer = threading.Timer(timeout_s, self.con.interrupt)
        with self._lock:
            timer.start()
            try:
                cursor = self.con.execute(text)
                rows = cursor.fetchmany(max_rows + 1)
                columns = [d[0] for d in cursor.description or []]
            except duckdb.InterruptException:
                raise QueryRefused(f"the query ran over {timeout_s:.0f} s and was "
                                   "stopped; aggregate more or narrow the range") from None
            except duckdb.Error as exc:
                raise QueryRefused(f"the query failed: {exc}") from None
            finally:
                timer.cancel()
        return Result(columns, [list(_plain(v) for v in row) for row in rows[:max_rows]],
                      len(rows) > max_rows)


def _plain(value: Any) -> Any:
    """A value the JSON answer can carry: a date as ISO text, bytes (BLOB) as hex text,
    also inside lists, structs and maps."""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value


#: The dashboard aggregation in DuckDB (parameters: metric, from, to); 30-day buckets.
DASHBOARD_DUCKDB = """
WITH monthly AS (
    SELECT l.entity_id, p.at // 2592000 AS month, p.source, sum(p.value) AS value
    FROM points p JOIN links l ON l.source = p.source AND l.platform_kind = p.entity_kind
         AND l.platform_id = p.entity_id
    WHERE p.metric = ? AND p.grain = 'daily' AND p.dimensions = '' AND p.at >= ? AND p.at < ?
    GROUP BY ALL
), per_entity AS (
    SELECT entity_id, month, sum(value) AS total, count(DISTINCT source) AS sources
    FROM monthly GROUP BY ALL
)
SELECT entity_id, month, total, sources,
       total / sum(total) OVER (PARTITION BY month) AS share
FROM per_entity ORDER BY month, total DESC, entity_id
"""

#: The same aggregation in plain SQL on the shared database (SQLite and PostgreSQL);
#: 30-day buckets of epoch seconds, so every engine agrees (parameters: account,
#: metric, from, to).
DASHBOARD_SQL = """
WITH monthly AS (
    SELECT l.entity_id AS entity_id, (p.at / 2592000) AS month, p.source AS source,
           SUM(p.value) AS value
    FROM analytics_points p JOIN analytics_links l ON l.account_id = p.account_id
         AND l.source = p.source AND l.platform_kind = p.entity_kind
         AND l.platform_id = p.entity_id
    WHERE p.account_id = ? AND p.metric = ? AND p.grain = 'daily' AND p.dimensions = ''
          AND p.at >= ? AND p.at < ?
    GROUP BY l.entity_id, (p.at / 2592000), p.source
), per_entity AS (
    SELECT entity_id, month, SUM(value) AS total, COUNT(DISTINCT source) AS sources
    FROM monthly GROUP BY entity_id, month
)
SELECT entity_id, month, total, sources,
       total / SUM(total) OVER (PARTITION BY month) AS share
FROM per_entity ORDER BY month, total DESC, entity_id
"""
