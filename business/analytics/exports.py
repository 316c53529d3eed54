"""A widget's figures as files: CSV (formula-safe) and Parquet (DuckDB's ``COPY``).

CSV cells that a spreadsheet would run as a formula (text starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return: a name such as ``=HYPERLINK(...)`` coming from a
platform) are written with a leading ``'`` so they stay text (the OWASP advice for CSV
injection); numbers are written as numbers. Parquet is written by a private in-memory
DuckDB (nothing of the user's SQL runs there) into a temporary file read back as bytes;
``day`` is a DATE column, ``value`` a DOUBLE, the rest text.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` for a CSV cell: text that a spreadsheet would run as a formula is quoted
    with a leading ``'``; numbers and None (an empty cell) pass as they are."""
    if value is None or isinstance(value, int | float):
        return value
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text


def csv_bytes(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """UTF-8 CSV with a header row, formula-safe (see the module)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([safe_cell(c) for c in columns])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return out.getvalue().encode("utf-8")


def parquet_bytes(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> bytes:
    """A Parquet file of ``rows`` (``day`` as DATE, ``value`` as DOUBLE, others text).

    Blocking: run it in a thread.
    """
    types = {"day": "DATE", "value": "DOUBLE"}
    schema = ", ".join(f'"{c}" {types.get(c, "VARCHAR")}' for c in columns)
    with tempfile.TemporaryDirectory(prefix="analytics-export-") as folder:
        path = Path(folder) / "widget.parquet"
        with duckdb.connect(":memory:") as con:
            con.execute(f"CREATE TABLE widget ({schema})")
            if rows:
                marks = ", ".join("?" for _ in columns)
                con.executemany(f"INSERT INTO widget VALUES ({marks})",
                                [list(r) for r in rows])
            con.execute(f"COPY widget TO '{path}' (FORMAT parquet)")
        return path.read_bytes()
