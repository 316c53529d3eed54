"""The double-entry ledger on SQLite and PostgreSQL: balanced postings or none, integer
minor units, idempotent keys, balances that never go negative under real concurrency,
its migration (the Citus rule), and the reconciliation report's differences."""

from __future__ import annotations

import asyncio
import random

import pytest

from business.marketplace import bookings
from business.marketplace.errors import InsufficientFunds, LedgerError, UnbalancedPosting
from business.marketplace.ledger import (
    MIGRATIONS,
    Entry,
    Ledger,
    Posting,
    entries,
    format_amount,
)
from business.marketplace.reconciliation import reconcile
from database import open_database, sharding_problems


def run(coro):  # noqa: ANN001, ANN201
    async def bounded():  # noqa: ANN202
        async with asyncio.timeout(90):
            return await coro
    return asyncio.run(bounded())


def test_a_posting_must_balance_in_each_currency_and_use_integer_minor_units() -> None:
    with pytest.raises(UnbalancedPosting, match=r"sum to 0\.01 USD"):
        Posting("k", "sale", entries(("external:buyers", -100), ("seller:balance", 101),
                                     currency="usd"))
    with pytest.raises(UnbalancedPosting, match="EUR"):  # balanced in total, not per currency
        Posting("k", "fx", (Entry("external:buyers", "usd", -100),
                            Entry("seller:balance", "eur", 100)))
    with pytest.raises(UnbalancedPosting, match="two entries"):
        Posting("k", "x", (Entry("seller:balance", "usd", 5),))
    for bad in (1.5, True, "100"):
        with pytest.raises(LedgerError, match="int of minor units"):
            Entry("seller:balance", "usd", bad)  # type: ignore[arg-type]
    for name, currency in (("Seller", "usd"), ("seller:balance", "USD"), ("x", "usd")):
        with pytest.raises(LedgerError):
            Entry(name, currency, 1)
    with pytest.raises(LedgerError, match="non-zero"):
        Entry("seller:balance", "usd", 0)
    two = Posting("k", "fx", (Entry("external:buyers", "usd", -100),
                              Entry("seller:balance", "usd", 100),
                              Entry("external:buyers", "jpy", -5),
                              Entry("seller:balance", "jpy", 5)))
    assert len(two.deltas()) == 4
    assert format_amount(123456, "usd") == "1234.56 USD"
    assert format_amount(-5, "eur") == "-0.05 EUR"
    assert format_amount(1500, "jpy") == "1500 JPY"


def test_the_migration_keeps_the_citus_rule_on_both_databases(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            applied = await db.migrate(MIGRATIONS)
            assert [(m.component, m.version) for m in applied] == [
                ("marketplace", n) for n in range(1, len(MIGRATIONS) + 1)]
            shapes = await db.describe()
            assert {"mkt_ledger_postings", "mkt_ledger_entries", "mkt_ledger_balances",
                    "mkt_beats", "mkt_orders", "mkt_licences"} <= set(shapes)
            reference = {"schema_migrations"}.union(*(m.reference_tables for m in MIGRATIONS))
            assert reference == {"schema_migrations", "mkt_store_names"}  # handles, domains
            assert sharding_problems(shapes.values(), reference) == []
            assert all(shapes[t].primary_key[0] == "account_id" for t in shapes
                       if t.startswith("mkt_") and t not in reference)
            assert await db.migrate(MIGRATIONS) == []
    run(go())


def test_postings_move_balances_once_per_key_and_never_below_zero(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await db.migrate(MIGRATIONS)
            ledger = Ledger(db)
            sale = bookings.sale("charge:ch_1", "usd", gross=10_000, stripe_fee=320,
                                 platform_fee=1_000, stripe_txn="txn_1")
            first = await ledger.post("ada", sale)
            again = await ledger.post("ada", sale)
            assert again == type(first)(first.posting_id, True)
            assert await ledger.balances("ada") == {
                ("external:buyers", "usd"): -10_000, ("external:stripe_fees", "usd"): 320,
                ("platform:fees", "usd"): 1_000, ("seller:balance", "usd"): 8_680}
            with pytest.raises(LedgerError, match="used before for other entries"):
                await ledger.post("ada", bookings.sale("charge:ch_1", "usd", gross=1,
                                                       stripe_fee=0))
            with pytest.raises(InsufficientFunds) as caught:
                await ledger.post("ada", bookings.payout("payout:po_1", "usd", amount=8_600,
                                                         fee=100))
            assert caught.value.account == "seller:balance" and caught.value.balance == 8_680
            assert await ledger.balance("ada", "seller:balance", "usd") == 8_680
            assert len(await ledger.postings("ada")) == 1  # the refused one left nothing
            await ledger.post("ada", bookings.payout("payout:po_2", "usd", amount=8_580,
                                                     fee=100))
            assert await ledger.balance("ada", "seller:balance", "usd") == 0
            assert await ledger.balance("bo", "seller:balance", "usd") == 0  # other books
            assert await ledger.postings("bo") == []
            assert await ledger.audit("ada") == []
    run(go())


def test_concurrent_purchases_and_payouts_never_overdraw_a_seller(db_url: str) -> None:
    """50 purchases and payouts at once against one seller balance, each in its own
    transaction (on PostgreSQL: up to 10 at a time on their own connections). Far more
    payouts are asked for than the balance can cover; a check-then-write ledger pays
    several of them out of the same money."""
    async def go() -> None:
        async with open_database(db_url) as db:
            await db.migrate(MIGRATIONS)
            ledger = Ledger(db)
            await ledger.post("ada", bookings.sale("seed", "usd", gross=9_000, stripe_fee=0))
            jobs = [("sale", 1_000)] * 10 + [("payout", 1_800)] * 40
            random.Random(7).shuffle(jobs)

            async def one(n: int, kind: str, amount: int) -> bool:
                if kind == "sale":
                    await ledger.post("ada", bookings.sale(f"c{n}", "usd", gross=amount,
                                                           stripe_fee=59))
                    return True
                try:
                    await ledger.post("ada", bookings.payout(f"p{n}", "usd", amount=amount))
                except InsufficientFunds:
                    return False
                return True

            done = await asyncio.gather(*(one(n, k, a) for n, (k, a) in enumerate(jobs)))
            paid = sum(ok for ok, (kind, _) in zip(done, jobs, strict=True)
                       if kind == "payout")
            final = await ledger.balance("ada", "seller:balance", "usd")
            assert final == 9_000 + 10 * (1_000 - 59) - paid * 1_800
            assert final >= 0 and 5 <= paid <= (9_000 + 10 * 941) // 1_800
            assert await ledger.balance("ada", "external:bank", "usd") == paid * 1_800
            assert await ledger.audit("ada") == []
    run(go())


def test_the_reconciliation_report_lists_every_difference(db_url: str) -> None:
    async def go() -> None:
        async with open_database(db_url) as db:
            await db.migrate(MIGRATIONS)
            ledger = Ledger(db)
            await ledger.post("ada", bookings.sale("c1", "usd", gross=1_000, stripe_fee=59,
                                                   stripe_txn="txn_a"))
            await ledger.post("ada", bookings.sale("c2", "usd", gross=2_000, stripe_fee=88,
                                                   stripe_txn="txn_b"))
            await ledger.post("ada", bookings.refund("r1", "usd", amount=500,
                                                     stripe_txn="txn_ours_only"))
            stripe_side = [
                {"id": "txn_a", "currency": "usd", "net": 941, "type": "charge"},
                {"id": "txn_b", "currency": "usd", "net": 1_900, "type": "charge"},
                {"id": "txn_c", "currency": "usd", "net": -300, "type": "payout"},
            ]
            report = await reconcile(ledger, "ada", stripe_side)
            assert not report.clean and report.matched == 1
            found = {(d.kind, d.stripe_txn, d.stripe_net, d.ledger_amount)
                     for d in report.differences}
            assert found == {("amount", "txn_b", 1_900, 1_912),
                             ("missing_in_ledger", "txn_c", -300, None),
                             ("missing_at_stripe", "txn_ours_only", None, -500)}
            assert report.stripe_totals == {"usd": 941 + 1_900 - 300}
            assert report.ledger_totals == {"usd": 941 + 1_912 - 500}
    run(go())
