"""Royalty persistence on SQLite and PostgreSQL: audit history, held money, statements."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from decimal import Decimal

import pytest
from distribution_helpers import migrate
from hypothesis import given, settings
from hypothesis import strategies as st

from business.distribution.errors import NotFoundError, SplitError, StatementError
from business.distribution.ledger import Royalties
from database import open_database

ISRC = "QZABC2600001"
STATEMENT = ("store,territory,isrc,units,amount,currency\n"
             "Spotify,US,QZABC2600001,1000,3.3333,USD\n"
             "Apple,DE,QZABC2600001,10,7.00,EUR\n"
             "Deezer,FR,QZABC2600009,5,0.10,EUR\n")


def test_statement_import_splits_holds_recoups_and_reconciles(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await migrate(db)
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
            await migrate(db)
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
            await migrate(db)
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


OTHER = "QZABC2600009"
EARLY = [HEADER + ("Spotify,US,QZABC2600001,1000,3.3401,USD\n"
                   "Apple,DE,QZABC2600001,10,7.00,EUR\n"
                   "Deezer,FR,QZABC2600009,5,0.10,EUR\n"),
         HEADER + f"S,US,{ISRC},1,5.01,USD\n"]
RECOUPING_SPLIT = {"payees": [{"payee_id": "ada", "share": "50"},
                              {"payee_id": "cy", "share": "50", "joined": False}],
                   "recoup_cents": 101, "recoup_payee": "ada"}


async def _all_balances(royalties: Royalties, account: str) -> dict[tuple, int]:
    return {(b["payee_id"], b["currency"], b["status"]): b["cents"]
            for b in await royalties.balances(account) if b["cents"]}


async def _entries(db: object, account: str) -> int:
    return int(await db.fetchval(  # type: ignore[attr-defined]
        "SELECT COUNT(*) FROM dist_ledger WHERE account_id = ?", account))


def test_money_imported_before_a_split_is_allocated_once_when_the_split_is_set(
        db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await migrate(db)
            royalties = Royalties(db)
            ids = [(await royalties.import_statement("acc", text))["statement_id"]
                   for text in EARLY]
            assert await royalties.unallocated("acc") == [
                {"isrc": ISRC, "currency": "EUR", "cents": 700, "statements": 1},
                {"isrc": ISRC, "currency": "USD", "cents": 835, "statements": 2},
                {"isrc": OTHER, "currency": "EUR", "cents": 10, "statements": 1}]

            await royalties.set_split("acc", ISRC, RECOUPING_SPLIT, changed_by="ada")
            # In import order: S1 EUR 700 -> 350/350; S1 USD 334 -> 101 recouped by ada,
            # 233 -> 117/116; S2 USD 501 -> 251/250 (the other order would give ada 468).
            # cy has not joined: held.
            balances = await _all_balances(royalties, "acc")
            assert balances == {("ada", "EUR", "available"): 350,
                                ("cy", "EUR", "held"): 350,
                                ("ada", "USD", "available"): 469,
                                ("cy", "USD", "held"): 366,
                                ("unallocated", "EUR", "held"): 10}
            assert await royalties.unallocated("acc") == [
                {"isrc": OTHER, "currency": "EUR", "cents": 10, "statements": 1}]
            assert await royalties.unallocated("acc", ISRC) == []
            assert (await royalties.get_split("acc", ISRC)).recouped_cents == 101
            assert await royalties.reconcile("acc", ids[0]) == {
                "EUR": {"statement": 710, "ledger": 710},
                "USD": {"statement": 334, "ledger": 334}}
            assert await royalties.reconcile("acc", ids[1]) == {
                "USD": {"statement": 501, "ledger": 501}}
            held = await db.fetch(
                "SELECT currency, SUM(amount_cents) AS cents FROM dist_ledger WHERE "
                "account_id = ? AND payee_id = 'unallocated' AND isrc = ? GROUP BY currency",
                "acc", ISRC)
            assert {r["currency"]: int(r["cents"]) for r in held} == {"EUR": 0, "USD": 0}
            allocated = [e for e in await royalties.audit("acc", f"split:{ISRC}")]
            assert [(e["event"], e["changed_by"], e["detail"]) for e in allocated] == [
                ("unallocated.allocated", "ada", {
                    "revision": 1, "allocated": {"EUR": 700, "USD": 835}, "statements": 2,
                    "entries": 10, "recouped": 101,
                    "payees": {"ada": {"EUR": 350, "USD": 469},
                               "cy": {"EUR": 350, "USD": 366}}})]

            # The same as if the split had been set before the imports.
            await royalties.set_split("first", ISRC, RECOUPING_SPLIT)
            for text in EARLY:
                await royalties.import_statement("first", text)
            assert await _all_balances(royalties, "first") == balances

            # Setting or changing the split again allocates nothing twice; a changed
            # split applies to money imported after it.
            count = await _entries(db, "acc")
            await royalties.set_split("acc", ISRC, RECOUPING_SPLIT, changed_by="ada")
            await royalties.set_split("acc", ISRC, {"payees": [
                {"payee_id": "ada", "share": "70"},
                {"payee_id": "cy", "share": "30", "joined": False}]}, changed_by="ada")
            assert await _entries(db, "acc") == count
            assert await _all_balances(royalties, "acc") == balances
            assert len(await royalties.audit("acc", f"split:{ISRC}")) == 1
            await royalties.import_statement("acc", HEADER + f"S,US,{ISRC},1,1.00,USD\n")
            after = await _all_balances(royalties, "acc")
            assert (after[("ada", "USD", "available")], after[("cy", "USD", "held")]) == (
                469 + 70, 366 + 30)

            with pytest.raises(SplitError, match="reserved"):
                await royalties.set_split("acc", OTHER, {"payees": [
                    {"payee_id": "unallocated", "share": "100"}]})
            assert await royalties.unallocated("acc", OTHER) != []

    asyncio.run(go())


def test_concurrent_imports_and_split_allocate_every_cent_once(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await migrate(db)
            royalties = Royalties(db)
            statements = [HEADER + f"S{n},US,{ISRC},1,8.00,USD\n" for n in range(6)]
            for text in statements[:2]:
                await royalties.import_statement("acc", text)
            split = {"payees": [{"payee_id": "ada", "share": "50"},
                                {"payee_id": "bob", "share": "50"}],
                     "recoup_cents": 1000, "recoup_payee": "ada"}
            await asyncio.gather(
                *(royalties.import_statement("acc", text) for text in statements[2:4]),
                royalties.set_split("acc", ISRC, split),
                *(royalties.import_statement("acc", text) for text in statements[4:]),
                royalties.set_split("acc", ISRC, split))
            assert await royalties.unallocated("acc") == []
            assert (await royalties.get_split("acc", ISRC)).recouped_cents == 1000
            # 6 x 800 earned: 1000 recouped by ada, the other 3800 split 50/50
            assert await _balances(royalties) == {("ada", "available"): 2900,
                                                  ("bob", "available"): 1900,
                                                  ("unallocated", "held"): 0}
            assert len(await royalties.audit("acc", f"split:{ISRC}")) == 1

    asyncio.run(go())


PROPERTY_ISRCS = [ISRC, OTHER, "QZABC2600005"]
#: Minor-unit decimals of the currencies drawn.
DECIMALS = {"USD": 2, "EUR": 2, "JPY": 0, "KWD": 3, "CLF": 4}

statement_lines = st.lists(
    st.tuples(st.sampled_from(PROPERTY_ISRCS),
              st.decimals(min_value=Decimal("-20"), max_value=Decimal("900"), places=5,
                          allow_nan=False, allow_infinity=False),
              st.sampled_from(sorted(DECIMALS))),
    min_size=1, max_size=12)


@st.composite
def splits(draw: st.DrawFn) -> dict:
    """A split over 1-4 payees (some not joined), maybe with recoupment."""
    count = draw(st.integers(1, 4))
    cuts = sorted(draw(st.lists(st.integers(1, 9999), min_size=count - 1,
                                max_size=count - 1, unique=True)))
    bounds = [0, *cuts, 10000]
    payees = [{"payee_id": f"p{i}", "share": str(Decimal(b - a) / 100),
               "joined": draw(st.booleans())}
              for i, (a, b) in enumerate(zip(bounds, bounds[1:], strict=False))]
    recoup = draw(st.sampled_from([0, 0, 1, 101, 250, 10**6]))
    return {"payees": payees, "recoup_cents": recoup, "recoup_payee": "p0",
            "recoup_currency": draw(st.sampled_from(sorted(DECIMALS)))}


def test_held_money_allocated_later_reconciles_exactly_like_an_import(db_url: str) -> None:
    examples = 300 if db_url.startswith("sqlite") else 100

    @settings(max_examples=examples, deadline=None)
    @given(statements=st.lists(statement_lines, min_size=1, max_size=3), split=splits())
    def check(statements: list[list[tuple]], split: dict) -> None:
        texts = [HEADER + "".join(f"S,US,{i},1,{a},{c}\n" for i, a, c in rows)
                 for rows in statements]
        later, first = f"later-{uuid.uuid4().hex}", f"first-{uuid.uuid4().hex}"

        async def go() -> None:
            async with open_database(db_url) as db:
                royalties = Royalties(db)
                ids = [(await royalties.import_statement(later, t))["statement_id"]
                       for t in texts]
                held_before = await royalties.unallocated(later)
                await royalties.set_split(later, ISRC, split)
                await royalties.set_split(first, ISRC, split)
                for text in texts:
                    await royalties.import_statement(first, text)

                totals: dict[str, int] = {}
                for statement_id in dict.fromkeys(ids):
                    for currency, pair in (await royalties.reconcile(
                            later, statement_id)).items():
                        assert pair["ledger"] == pair["statement"]
                        totals[currency] = totals.get(currency, 0) + pair["statement"]
                ledger = await db.fetch(
                    "SELECT currency, SUM(amount_cents) AS cents FROM dist_ledger "
                    "WHERE account_id = ? GROUP BY currency", later)
                assert {r["currency"]: int(r["cents"]) for r in ledger if int(r["cents"])} == {
                    c: t for c, t in totals.items() if t}
                held = await db.fetch(
                    "SELECT SUM(amount_cents) AS cents FROM dist_ledger WHERE account_id = ? "
                    "AND payee_id = 'unallocated' AND isrc = ? GROUP BY currency", later, ISRC)
                assert all(int(r["cents"]) == 0 for r in held)
                assert await royalties.unallocated(later, ISRC) == []
                assert await royalties.unallocated(later) == [
                    h for h in held_before if h["isrc"] != ISRC]
                assert await _all_balances(royalties, later) == await _all_balances(
                    royalties, first)
                assert (await royalties.get_split(later, ISRC)).recouped_cents == (
                    await royalties.get_split(first, ISRC)).recouped_cents
                count = await _entries(db, later)
                await royalties.set_split(later, ISRC, split)
                assert await _entries(db, later) == count

        asyncio.run(go())

    async def prepare() -> None:
        async with open_database(db_url) as db:
            await migrate(db)

    asyncio.run(prepare())
    check()


def test_a_re_exported_statement_is_the_same_statement(db_url: str) -> None:
    """A store's second export of one statement (CRLF line endings, another column order,
    rows reordered, 7.0 for 7.00, a lower-case currency) is not imported again: its money
    would be paid twice. A statement imported before fingerprints (its checksum the
    CSV's bytes) is still found by its bytes."""
    re_exported = ("currency,amount,units,isrc,territory,store\r\n"
                   "eur,0.1,5,QZABC2600009,FR,Deezer\r\n"
                   "EUR,7.0,10,QZABC2600001,de,Apple\r\n"
                   "USD,3.33330,1000,QZABC2600001,US,Spotify\r\n")
    earlier = HEADER + f"Tidal,US,{ISRC},3,1.25,USD\n"

    async def go() -> None:
        async with open_database(db_url) as db:
            await migrate(db)
            royalties = Royalties(db)
            first = await royalties.import_statement("acc", STATEMENT, "nov.csv")
            again = await royalties.import_statement("acc", re_exported, "nov-again.csv")
            assert again["duplicate"] and again["statement_id"] == first["statement_id"]
            other = await royalties.import_statement("acc", STATEMENT.replace("7.00", "7.01"))
            assert not other["duplicate"]
            await db.execute(
                "INSERT INTO dist_statements (account_id, statement_id, checksum, source, "
                "imported_at, line_count, totals) VALUES (?, ?, ?, ?, ?, ?, ?)", "acc",
                "before", hashlib.sha256(earlier.encode()).hexdigest(), "", 0.0, 1, "{}")
            old = await royalties.import_statement("acc", earlier)
            assert old["duplicate"] and old["statement_id"] == "before"

    asyncio.run(go())


def test_two_months_that_differ_only_in_a_sale_month_column_are_both_imported(
        db_url: str) -> None:
    """Extra columns are part of what a statement says: October and November with the
    same rows but their sale month are two statements (each paid), while a re-export of
    November (columns reordered, a blank extra column) is still November. A statement
    imported when only the six standard columns counted is still found by them."""
    def month(sale_month: str) -> str:
        return ("sale_month,store,territory,isrc,units,amount,currency\n"
                f"{sale_month},spotify,US,{ISRC},250,1.00,USD\n")
    re_exported = ("currency,amount,units,isrc,territory,store,notes,sale_month\r\n"
                   f"usd,1.0,250,{ISRC},us,spotify,,2026-11\r\n")
    earlier = HEADER + f"Tidal,US,{ISRC},3,1.25,USD\n"
    six_columns = [["Tidal", "US", ISRC, "3", "1.25", "USD"]]  # as fingerprinted then
    legacy = hashlib.sha256(json.dumps(six_columns, separators=(",", ":")).encode()).hexdigest()

    async def go() -> None:
        async with open_database(db_url) as db:
            await migrate(db)
            royalties = Royalties(db)
            october = await royalties.import_statement("acc", month("2026-10"), "oct.csv")
            november = await royalties.import_statement("acc", month("2026-11"), "nov.csv")
            assert not october["duplicate"] and not november["duplicate"]
            assert sum(b["cents"] for b in await royalties.balances("acc")) == 200
            again = await royalties.import_statement("acc", re_exported, "nov-again.csv")
            assert again["duplicate"] and again["statement_id"] == november["statement_id"]
            await db.execute(
                "INSERT INTO dist_statements (account_id, statement_id, checksum, source, "
                "imported_at, line_count, totals) VALUES (?, ?, ?, ?, ?, ?, ?)", "acc",
                "six-columns", legacy, "", 0.0, 1, "{}")
            old = await royalties.import_statement("acc", earlier)
            assert old["duplicate"] and old["statement_id"] == "six-columns"
            assert sum(b["cents"] for b in await royalties.balances("acc")) == 200

    asyncio.run(go())


def test_a_split_edit_that_leaves_joined_out_keeps_each_payees_state(db_url: str) -> None:
    """Changing only the shares does not join a payee who has not joined (their money
    stays held, no ``payee.joined``); a new payee without ``joined`` has joined; only
    ``joined: true`` joins a known payee."""
    async def go() -> None:
        async with open_database(db_url) as db:
            await migrate(db)
            royalties = Royalties(db)
            await royalties.set_split("acc", ISRC, {"payees": [
                {"payee_id": "ada", "share": "70"},
                {"payee_id": "bo", "share": "30", "joined": False}]})
            await royalties.import_statement("acc", HEADER + f"S,US,{ISRC},1,100.00,USD\n")
            await royalties.set_split("acc", ISRC, {"payees": [
                {"payee_id": "ada", "share": "50"}, {"payee_id": "bo", "share": "40"},
                {"payee_id": "new", "share": "10"}]})
            assert await _balances(royalties) == {("ada", "available"): 7000,
                                                  ("bo", "held"): 3000}
            split = await royalties.get_split("acc", ISRC)
            assert [(p.payee_id, p.joined) for p in split.payees] == [
                ("ada", True), ("bo", False), ("new", True)]
            assert [e["event"] for e in await royalties.audit("acc", "payee:bo")] == [
                "payee.added"]
            await royalties.import_statement("acc", HEADER + f"T,US,{ISRC},1,10.00,USD\n")
            assert await _balances(royalties) == {("ada", "available"): 7500,
                                                  ("bo", "held"): 3400,
                                                  ("new", "available"): 100}
            await royalties.set_split("acc", ISRC, {"payees": [
                {"payee_id": "ada", "share": "50"},
                {"payee_id": "bo", "share": "50", "joined": True}]})
            assert await _balances(royalties) == {("ada", "available"): 7500,
                                                  ("bo", "available"): 3400,
                                                  ("new", "available"): 100}

    asyncio.run(go())


@pytest.mark.parametrize("amount", ["1E+30", "123456789012345678901234567890.5",
                                    "100000000000000000.00"])
def test_an_out_of_range_amount_is_a_statement_error_and_nothing_is_imported(
        db_url: str, amount: str) -> None:
    text = HEADER + f"S,US,{ISRC},1,1.00,USD\nS,US,{ISRC},1,{amount},USD\n"

    async def go() -> None:
        async with open_database(db_url) as db:
            await migrate(db)
            royalties = Royalties(db)
            with pytest.raises(StatementError, match=r"line 3: amount .* out of range"):
                await royalties.import_statement("acc", text)
            assert await royalties.statements("acc") == []
            assert await royalties.balances("acc") == []

    asyncio.run(go())
