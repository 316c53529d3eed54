"""Royalty persistence on SQLite and PostgreSQL: audit history, held money, statements."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from distribution_helpers import postgres_schema_url

from business.distribution.errors import NotFoundError, SplitError
from business.distribution.ledger import Royalties
from business.distribution.plugin import MIGRATIONS
from dawserver.database import Migration, open_database

ISRC = "QZABC2600001"
STATEMENT = ("store,territory,isrc,units,amount,currency\n"
             "Spotify,US,QZABC2600001,1000,3.3333,USD\n"
             "Apple,DE,QZABC2600001,10,7.00,EUR\n"
             "Deezer,FR,QZABC2600009,5,0.10,EUR\n")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'l.sqlite3'}"
    else:
        yield postgres_schema_url(request.getfixturevalue("postgres_url"),
                                  f"l{abs(hash(request.node.name)) % 10**8}")


def test_statement_import_splits_holds_recoups_and_reconciles(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await db.migrate([Migration(*m) for m in MIGRATIONS])
            royalties = Royalties(db)
            await royalties.set_split("acc", ISRC, {"payees": [
                {"payee_id": "ada", "share": "60"}, {"payee_id": "bob", "share": "40"}]},
                changed_by="ada")
            await royalties.set_split("acc", ISRC, {
                "payees": [{"payee_id": "ada", "share": "50"},
                           {"payee_id": "cy", "share": "50", "joined": False}],
                "recoup_cents": 100, "recoup_payee": "ada"}, changed_by="ada")
            history = await royalties.history("acc", ISRC)
            assert [h["revision"] for h in history] == [1, 2]
            assert history[0]["data"]["payees"][1]["payee_id"] == "bob"

            result = await royalties.import_statement("acc", STATEMENT, "nov.csv")
            assert result["totals"] == {"EUR": 710, "USD": 333}
            again = await royalties.import_statement("acc", STATEMENT, "nov.csv")
            assert again["duplicate"] and again["statement_id"] == result["statement_id"]
            assert await royalties.reconcile("acc", result["statement_id"]) == {
                "EUR": {"statement": 710, "ledger": 710},
                "USD": {"statement": 333, "ledger": 333}}
            balances = {(b["payee_id"], b["currency"], b["status"]): b["cents"]
                        for b in await royalties.balances("acc")}
            # USD: 100 recouped by ada, 233 split 50/50 -> 117 ada (tie to first), 116 cy held
            assert balances == {("ada", "USD", "available"): 217,
                                ("cy", "USD", "held"): 116,
                                ("ada", "EUR", "available"): 350,
                                ("cy", "EUR", "held"): 350,
                                ("unallocated", "EUR", "held"): 10}
            assert (await royalties.get_split("acc", ISRC)).recouped_cents == 100
            assert await royalties.join_payee("acc", "cy", changed_by="ada") == 2
            statuses = {b["status"] for b in await royalties.balances("acc")
                        if b["payee_id"] == "cy"}
            assert statuses == {"available"}
            assert await royalties.join_payee("acc", "cy", changed_by="ada") == 0  # no-op
            events = [(e["subject"], e["event"], e["detail"])
                      for e in await royalties.audit("acc")]
            assert events == [
                ("payee:ada", "payee.added", {"name": "", "joined": True}),
                ("payee:bob", "payee.added", {"name": "", "joined": True}),
                ("payee:cy", "payee.added", {"name": "", "joined": False}),
                ("payee:cy", "payee.joined", {"released_entries": 2,
                                              "released": {"EUR": 350, "USD": 116}}),
            ]

            with pytest.raises(SplitError, match="total 90%"):
                await royalties.set_split("acc", ISRC, {"payees": [
                    {"payee_id": "ada", "share": "90"}]})
            with pytest.raises(NotFoundError):
                await royalties.join_payee("acc", "nobody")
            with pytest.raises(NotFoundError):
                await royalties.get_split("other-account", ISRC)

    asyncio.run(go())


def test_a_later_split_renames_and_joins_a_payee_and_releases_their_held_money(
        db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await db.migrate([Migration(*m) for m in MIGRATIONS])
            royalties = Royalties(db)
            await royalties.set_split("acc", ISRC, {"payees": [
                {"payee_id": "ada", "share": "50", "name": "Ada"},
                {"payee_id": "cy", "share": "50", "joined": False}]}, changed_by="ada")
            await royalties.import_statement("acc", HEADER + f"S,US,{ISRC},1,10.00,USD\n")
            assert await _balances(royalties) == {("ada", "available"): 500,
                                                  ("cy", "held"): 500}
            await royalties.set_split("acc", ISRC, {"payees": [
                {"payee_id": "ada", "share": "40", "joined": False},  # joined stays joined
                {"payee_id": "cy", "share": "60", "name": "Cy Young", "joined": True}]},
                changed_by="ada")
            assert await _balances(royalties) == {("ada", "available"): 500,
                                                  ("cy", "available"): 500}
            split = await royalties.get_split("acc", ISRC)
            assert [(p.payee_id, p.joined) for p in split.payees] == [("ada", True),
                                                                      ("cy", True)]
            cy = [(e["event"], e["detail"]) for e in await royalties.audit("acc", "payee:cy")]
            assert cy == [("payee.added", {"name": "", "joined": False}),
                          ("payee.renamed", {"from": "", "to": "Cy Young"}),
                          ("payee.joined", {"released_entries": 1,
                                            "released": {"USD": 500}})]
            assert [e["event"] for e in await royalties.audit("acc", "payee:ada")] == [
                "payee.added"]

    asyncio.run(go())


def test_concurrent_imports_never_recoup_twice(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await db.migrate([Migration(*m) for m in MIGRATIONS])
            royalties = Royalties(db)
            await royalties.set_split("acc", ISRC, {
                "payees": [{"payee_id": "ada", "share": "50"},
                           {"payee_id": "bob", "share": "50"}],
                "recoup_cents": 1000, "recoup_payee": "ada"})
            statements = [HEADER + f"S{n},US,{ISRC},1,8.00,USD\n" for n in range(4)]
            results = await asyncio.gather(*(royalties.import_statement("acc", text)
                                             for text in [*statements, statements[0]]))
            assert [r["duplicate"] for r in results].count(True) == 1
            assert (await royalties.get_split("acc", ISRC)).recouped_cents == 1000
            recouped = await db.fetchval(
                "SELECT SUM(amount_cents) FROM dist_ledger WHERE account_id = ? AND "
                "kind = 'recoup'", "acc")
            assert int(recouped) == 1000
            # 4 x 800 earned: 1000 recouped by ada, the other 2200 split 50/50
            assert await _balances(royalties) == {("ada", "available"): 2100,
                                                  ("bob", "available"): 1100}

    asyncio.run(go())


HEADER = "store,territory,isrc,units,amount,currency\n"


async def _balances(royalties: Royalties) -> dict[tuple[str, str], int]:
    return {(b["payee_id"], b["status"]): b["cents"] for b in await royalties.balances("acc")
            if b["currency"] == "USD"}
