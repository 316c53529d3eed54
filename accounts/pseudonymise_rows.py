"""Erasure in tables: replace a person's mentions in kept rows, move rows to a pseudonym.

Used by the core and by plug-ins (re-exported by ``dawserver.plugin_api``) for the
records the law has them keep after a person is erased (money, audit). Table and
column names come from the caller's own constants, never from input.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from .pseudonyms import Pseudonymiser

#: Where kept rows may mention a person: (table, key columns, text columns, JSON columns).
Mentions = Iterable[tuple[str, Sequence[str], Sequence[str], Sequence[str]]]


async def pseudonymise_mentions(tx: Any, pz: Pseudonymiser, mentions: Mentions) -> int:
    """Replace ``pz``'s person in every row of ``mentions`` of every account; rows changed.

    Rows are found by a case-insensitive ``LIKE`` on each needle, then rewritten by
    the pseudonymiser's own rule (whole values, words in text, JSON values), so a
    longer word that merely contains a name is left alone.
    """
    changed = 0
    for table, key, texts, documents in mentions:
        columns = (*texts, *documents)
        where = " OR ".join(f"LOWER({c}) LIKE ?" for c in columns for _ in pz.needles)
        needles = [f"%{n}%" for _ in columns for n in pz.needles]
        found = await tx.fetch(f"SELECT {', '.join((*key, *columns))} FROM {table} "
                               f"WHERE {where}", *needles)
        for row in found:
            new = {c: pz.text(row[c]) for c in texts}
            new.update({c: json.dumps(pz.value(json.loads(row[c]))) for c in documents})
            if all(new[c] == row[c] for c in columns):
                continue  # a LIKE match that is no mention (a longer word)
            sets = ", ".join(f"{c} = ?" for c in columns)
            match = " AND ".join(f"{k} = ?" for k in key)
            changed += await tx.execute(f"UPDATE {table} SET {sets} WHERE {match}",
                                        *(new[c] for c in columns), *(row[k] for k in key))
    return changed


async def move_account_rows(tx: Any, table: str, old: str, new: str) -> int:
    """Move ``old``'s rows of ``table`` under the account id ``new``; how many.

    Insert-and-delete rather than an ``UPDATE`` of ``account_id``: the distribution
    column is never updated in place (Citus refuses it).
    """
    rows = await tx.fetch(f"SELECT * FROM {table} WHERE account_id = ?", old)
    for row in rows:
        values = {**dict(row), "account_id": new}
        await tx.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES "
                         f"({', '.join('?' * len(values))})", *values.values())
    await tx.execute(f"DELETE FROM {table} WHERE account_id = ?", old)
    return len(rows)
