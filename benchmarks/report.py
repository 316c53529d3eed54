"""Print the figures of the last benchmark run as markdown tables (for docs/).

Usage: ``python -m pytest benchmarks/bench_mix.py benchmarks/bench_effects.py
--benchmark-enable`` then ``python -m benchmarks.report``.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path


def _table(rows: list[dict]) -> str:
    keys = [k for k in rows[0] if k != "name"]
    lines = ["| case | " + " | ".join(keys) + " |", "|" + " --- |" * (len(keys) + 1)]
    for row in rows:
        case = re.sub(r"^test_", "", row["name"])
        cells = [f"{row[k]:.3g}" if isinstance(row.get(k), float) else str(row.get(k, ""))
                 for k in keys]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(path: str = ".benchmarks/figures.json") -> None:
    """Group the rows by benchmark function and print one table each."""
    rows = json.loads(Path(path).read_text())
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["name"].split("[")[0], []).append(row)
    for name, group in groups.items():
        print(f"### {name}\n\n{_table(group)}\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
