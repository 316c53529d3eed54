"""A person's distribution data: their export, and what erasing them keeps and forgets.

The plug-in's ``account_export`` and ``account_erased`` hooks call these.

Export (:func:`export_account`): the releases, pre-save campaigns, royalty splits,
payees, statements and ledger lines of the person's own account, the ledger
lines and payee records that pay them in other accounts, and the royalty
changes they made anywhere.

Erasure (:func:`erase_account`): what is the person's alone and holds no money
(releases, renders, gate snapshots, pre-save campaigns and their fans) is
deleted, and deliveries still waiting are cancelled; so are the files of its
distribution folder (:func:`erase_files`). Money records the law
requires to keep (payees, splits and their history, statements, the ledger,
the royalty audit, delivery records) are kept: every mention of the person
(their id as payee or author, their name, their address) becomes their
pseudonym, in every account, and the rows of their own account move under the
pseudonym, so nothing left is keyed by them.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

from dawserver.plugin_api import (
    JobQueue,
    Pseudonymiser,
    move_account_rows,
    pseudonymise_mentions,
)

#: Tables holding the person's own data that no law makes us keep.
FORGOTTEN = ("dist_releases", "dist_renders", "dist_snapshots", "dist_presaves",
             "dist_presave_campaigns")
#: Tables kept (money and delivery records), moved under the pseudonym.
KEPT = ("dist_payees", "dist_splits", "dist_split_history", "dist_statements", "dist_ledger",
        "dist_audit", "dist_royalty_locks", "dist_jobs", "dist_job_events")
#: Where a kept row may mention a person: (table, key, text columns, JSON columns).
MENTIONS = (
    ("dist_payees", ("account_id", "payee_id"), ("payee_id", "name"), ()),
    ("dist_ledger", ("account_id", "entry_id"), ("payee_id",), ()),
    ("dist_splits", ("account_id", "isrc"), (), ("data",)),
    ("dist_split_history", ("account_id", "isrc", "revision"), ("changed_by",), ("data",)),
    ("dist_audit", ("account_id", "seq"), ("changed_by", "subject"), ("detail",)),
    ("dist_statements", ("account_id", "statement_id"), ("source",), ()),
)


def _json(row: dict[str, Any], *columns: str) -> dict[str, Any]:
    return {**row, **{c: json.loads(row[c]) for c in columns if row.get(c)}}


async def export_account(db: Any, account_id: str) -> dict[str, Any]:
    """The distribution parts of ``account_id``'s export (JSON-able)."""
    async def rows(sql: str, *json_columns: str) -> list[dict[str, Any]]:
        return [_json(dict(row), *json_columns) for row in await db.fetch(sql, account_id)]

    own = "WHERE account_id = ?"
    return {
        "releases": await rows("SELECT release_id, data, status, created_at, updated_at "
                               f"FROM dist_releases {own} ORDER BY created_at", "data"),
        "presave_campaigns": await rows(
            "SELECT campaign_id, release_id, slug, title, artist, release_date, services, "
            f"created_at, fired_at FROM dist_presave_campaigns {own} ORDER BY created_at",
            "services"),
        "splits": await rows("SELECT isrc, data, revision, recouped_cents, updated_at FROM "
                             f"dist_splits {own} ORDER BY isrc", "data"),
        "payees": await rows(f"SELECT payee_id, name, joined, joined_at FROM dist_payees {own} "
                             "ORDER BY payee_id"),
        "statements": await rows("SELECT statement_id, source, imported_at, line_count, totals "
                                 f"FROM dist_statements {own} ORDER BY imported_at", "totals"),
        "ledger": await rows("SELECT entry_id, statement_id, isrc, payee_id, currency, "
                             f"amount_cents, kind, status, created_at FROM dist_ledger {own} "
                             "ORDER BY created_at, entry_id"),
        "paid_elsewhere": {
            "payee_of": await rows("SELECT account_id, payee_id, name, joined, joined_at FROM "
                                   "dist_payees WHERE payee_id = ? AND account_id <> payee_id "
                                   "ORDER BY account_id"),
            "ledger": await rows("SELECT account_id, entry_id, statement_id, isrc, currency, "
                                 "amount_cents, kind, status, created_at FROM dist_ledger "
                                 "WHERE payee_id = ? AND account_id <> payee_id "
                                 "ORDER BY created_at, entry_id"),
        },
        "royalty_changes": await rows("SELECT account_id, at, subject, event, detail FROM "
                                      "dist_audit WHERE changed_by = ? ORDER BY at", "detail"),
    }




async def erase_account(db: Any, queue: JobQueue, delivery_queue: str, pz: Pseudonymiser
                        ) -> dict[str, int]:
    """Forget ``pz``'s person in the distribution tables (idempotent); rows, by table."""
    person_id = pz.account_id
    for job in await queue.find(account_id=person_id, queue=delivery_queue,
                                states=("queued", "retrying", "running")):
        await queue.cancel(person_id, job.id)
    changed: dict[str, int] = {}
    async with db.transaction() as tx:
        changed["mentions"] = await pseudonymise_mentions(tx, pz, MENTIONS)
        for table in FORGOTTEN:
            changed[table] = await tx.execute(f"DELETE FROM {table} WHERE account_id = ?",
                                              person_id)
        for table in KEPT:
            changed[table] = await move_account_rows(tx, table, person_id, pz.pseudonym)
    return changed


async def erase_files(folder: Path | None) -> None:
    """Delete the person's distribution folder (their uploaded art and audio); idempotent."""
    if folder is not None:
        await asyncio.to_thread(shutil.rmtree, folder, ignore_errors=True)
