"""Disputes that race their payment, or name a sale that is not stored here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import market, market_services, refund_until_reversal_dead

from business.marketplace.webhooks import Outcome, StripeEvent

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


async def paid_order_with_dispute(m: Any) -> tuple[str, StripeEvent]:
    """A paid single order (direct charge) and the event of a dispute of its charge,
    held (not delivered)."""
    account = await m.seller("seller")
    beat = await m.beat("seller")
    status, started = await m.checkout("buyer", "seller", beat["beat_id"], "wav_lease")
    assert status == 201, started
    m.pay(started)
    await m.fake.webhooks.settled()
    [charge] = [c for c in m.fake.all_of("charge") if m.fake.owner[c["id"]] == account]
    m.fake.webhooks.hold()
    m.fake.create_dispute(charge["id"])
    [event] = m.fake.events_of("charge.dispute.created")
    return account, StripeEvent.from_dict(event)


async def test_a_dispute_whose_lookup_raced_its_payment_is_sent_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lookup by payment ran before the payment committed; by the time the
    PaymentIntent's metadata is read the order is paid by that very payment: the
    dispute is answered "send it again", not recorded as ignored."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        _, event = await paid_order_with_dispute(m)
        money = market_services(m).fulfilment.money
        assert await money.awaited(event) is True
        real = money.disputes.orders_of
        calls = []

        async def raced(db: Any, seller: str, dispute: dict[str, Any]) -> Any:
            calls.append(dispute["id"])
            return [] if len(calls) == 1 else await real(db, seller, dispute)

        monkeypatch.setattr(money.disputes, "orders_of", raced)
        assert await money.handle(event) is Outcome.RETRY
        db = market_services(m).store.db
        assert await db.fetchval("SELECT COUNT(*) FROM mkt_webhook_events WHERE "
                                 "event_id = ?", event.id) == 0
        assert await money.handle(event) is Outcome.PROCESSED


async def test_a_dispute_naming_an_order_not_stored_here_is_not_retried(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Metadata naming an order with no rows here: no payment will ever be stored, so
    the dispute is recorded as not ours at once (and a warning logged), not answered
    409 until Stripe gives up."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        _, event = await paid_order_with_dispute(m)
        money = market_services(m).fulfilment.money
        other = dict(event.object, payment_intent="pi_elsewhere")
        event = StripeEvent(id=event.id, type=event.type, created=event.created,
                            object=other, account=event.account)

        class Intent:
            def to_dict(self) -> dict[str, Any]:
                return {"id": "pi_elsewhere",
                        "metadata": {"seller": "seller", "order_id": "ord_gone"}}

        async def retrieve(intent_id: str, account: str | None = None) -> Intent:
            return Intent()

        monkeypatch.setattr(money.gateway, "retrieve_payment_intent", retrieve)
        with caplog.at_level(logging.WARNING, "business.marketplace.money_events"):
            assert await money.awaited(event) is False
            assert await money.handle(event) is Outcome.IGNORED
        assert any("ord_gone" in r.getMessage() and r.levelno == logging.WARNING
                   for r in caplog.records)
        assert await money.handle(event) is Outcome.DUPLICATE


async def test_a_reversal_run_again_for_its_cause_reverses_each_transfer_once(
        tmp_path: Path) -> None:
    """A partial reversal's job run twice for one cause (requeued after Stripe forgot
    its idempotency keys) takes each transfer back once, and the books still match."""
    from test_marketplace_split_sales import books_match_stripe, split_cart, transfers_made

    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}",
                      discovery_fee_bp=1000) as m:
        accounts, beats, started = await split_cart(m)
        m.pay(started)
        await transfers_made(m, started["cart_id"])
        [line] = [o for o in started["orders"] if o["beat_id"] == beats[0]["beat_id"]]
        sales = market_services(m).fulfilment.split_sales
        args = dict(taken=line["amount"] // 3, of=line["amount"], cause="refund:re_test")
        first = await sales.reverse("seller", line["order_id"], **args)
        assert len(first) == 3 and all(d["amount"] > 0 for d in first)
        after = {t["id"]: t["amount_reversed"] for t in m.fake.all_of("transfer")}
        m.fake._idempotency.clear()  # Stripe's 24 h memory of the keys is gone
        again = await sales.reverse("seller", line["order_id"], **args)
        assert {t["id"]: t["amount_reversed"] for t in m.fake.all_of("transfer")} == after
        assert sorted(again, key=lambda d: d["transfer"]) == sorted(
            first, key=lambda d: d["transfer"])
        [row] = await sales.reversals("seller", line["order_id"])
        assert row["reversed"] == sum(d["amount"] for d in first)
        await m.fake.webhooks.settled()
        await books_match_stripe(m, accounts)


async def dead_transfer_line(m: Any) -> tuple[dict[str, str], str, Any, Any]:
    """A split cart paid while ``ben`` cannot take transfers: its three-way line's
    transfer job spent its last attempt (amy paid, ben not, the line marked failed)."""
    import dataclasses

    from test_marketplace_split_sales import split_cart, stopped_pay_job

    from business.marketplace.errors import PaymentError
    from business.marketplace.schemas import SplitTransfersPayload
    from business.marketplace.services import run_split_transfers
    from dawserver.plugins import PLUGIN_CONTEXT_KEY
    from jobs import JobContext

    accounts, beats, started = await split_cart(m)
    m.fake.objects[accounts["ben"]]["capabilities"].update(
        transfers="inactive", card_payments="inactive")
    first = next(o["order_id"] for o in started["orders"]
                 if o["beat_id"] == beats[0]["beat_id"])
    context = m.app[PLUGIN_CONTEXT_KEY]
    m.pay(started)
    await m.order("buyer", first, "paid")
    queue = context.background.queue
    job = await stopped_pay_job(queue, first)
    payload = SplitTransfersPayload.model_validate(job.payload)
    with pytest.raises(PaymentError):
        await run_split_transfers(
            context, payload, JobContext(dataclasses.replace(job, attempts=job.max_attempts)))

    async def requeue() -> Any:
        return await run_split_transfers(
            context, payload, JobContext(dataclasses.replace(job, attempts=1)))

    return accounts, first, requeue, queue


async def test_a_requeued_transfer_job_pays_nothing_of_a_line_refunded_meanwhile(
        tmp_path: Path) -> None:
    """Transfer dies, the line is refunded (its reversal takes back only what was
    transferred and ends a dead letter), the seller requeues the transfer job as the
    mail says: no collaborator is paid any of the refunded money, and the books match
    Stripe's."""
    from test_marketplace_split_sales import books_match_stripe

    from business.marketplace.split_sales import REVERSED

    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        accounts, first, requeue, queue = await dead_transfer_line(m)
        await refund_until_reversal_dead(m, queue, first)
        m.fake.objects[accounts["ben"]]["capabilities"].update(
            transfers="active", card_payments="active")
        await requeue()
        made = [t for t in m.fake.all_of("transfer") if t["metadata"]["order_id"] == first]
        assert {t["metadata"]["collaborator"] for t in made} == {"amy"}
        assert sum(t["amount"] - t["amount_reversed"] for t in made) == 0
        db = market_services(m).store.db
        row = await db.fetchrow("SELECT transferred_at, transfer_failed FROM mkt_orders "
                                "WHERE account_id = ? AND order_id = ?", "seller", first)
        assert row["transferred_at"] is not None and row["transfer_failed"] is None
        [end] = await market_services(m).fulfilment.split_sales.reversals("seller", first)
        assert end["state"] == REVERSED
        await m.fake.webhooks.settled()
        await books_match_stripe(m, accounts)


async def test_a_requeued_transfer_job_withholds_what_a_partial_cause_took(
        tmp_path: Path) -> None:
    """A cause that took a third of the line while ben was unpaid: ben's transfer made
    on requeue is cut by his third, and that cause run again takes nothing more."""
    from business.marketplace.split_sales import TRANSFERS_FAILED

    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        accounts, first, requeue, _ = await dead_transfer_line(m)
        sales = market_services(m).fulfilment.split_sales
        line = await market_services(m).store.db.fetchval(
            "SELECT amount FROM mkt_orders WHERE account_id = ? AND order_id = ?",
            "seller", first)
        await sales.record("seller", first, "dispute:dp_x", taken=line // 3, of=line,
                           reversed_=0, state=TRANSFERS_FAILED)
        m.fake.objects[accounts["ben"]]["capabilities"].update(
            transfers="active", card_payments="active")
        result = await requeue()
        [ben] = [t for t in result["transfers"] if t["collaborator"] == "ben"]
        stored = {t["collaborator"]: t for t in await sales.splits.transfers("seller", first)}
        cut = await market_services(m).store.db.fetchval(
            "SELECT amount FROM mkt_transfer_reversals WHERE cause = ? AND transfer_id = ?",
            "dispute:dp_x", stored["ben"]["transfer_id"])
        full = ben["amount"] + cut
        assert cut == full * (line // 3) // line > 0
        assert int(stored["ben"]["amount"]) == full - cut
        before = {t["id"]: t["amount_reversed"] for t in m.fake.all_of("transfer")}
        await sales.reverse("seller", first, taken=line // 3, of=line, cause="dispute:dp_x")
        assert {t["id"]: t["amount_reversed"] for t in m.fake.all_of("transfer")} == before


async def test_a_cause_run_again_while_a_requeue_commits_takes_each_part_once(
        tmp_path: Path) -> None:
    """A cause's reversal job runs again and the requeued transfer job commits its cut
    transfers (and their withheld rows) in the middle of it: the cause takes each
    collaborator's part once (the cut transfers are not reversed again), every transfer
    has the cause's row, and the books match Stripe's."""
    from test_marketplace_split_sales import books_match_stripe

    from business.marketplace.split_sales import TRANSFERS_FAILED
    from business.marketplace.splits import WITHHELD

    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        accounts, first, requeue, _ = await dead_transfer_line(m)
        sales = market_services(m).fulfilment.split_sales
        splits = sales.splits
        db = market_services(m).store.db
        line = await db.fetchval("SELECT amount FROM mkt_orders WHERE account_id = ? AND "
                                 "order_id = ?", "seller", first)
        await sales.record("seller", first, "dispute:dp_x", taken=line // 3, of=line,
                           reversed_=0, state=TRANSFERS_FAILED)
        m.fake.objects[accounts["ben"]]["capabilities"].update(
            transfers="active", card_payments="active")
        fetch, fired = db.fetch, []

        async def racing_fetch(sql: str, *args: Any) -> Any:
            # the requeued job commits right after reverse's first read
            rows = await fetch(sql, *args)
            if not fired:
                fired.append(sql)
                await requeue()
            return rows

        db.fetch = racing_fetch
        try:
            await splits.reverse("seller", first, taken=line // 3, of=line,
                                 cause="dispute:dp_x")
        finally:
            db.fetch = fetch
        assert fired
        made = {t["id"]: t for t in m.fake.all_of("transfer")
                if t["metadata"]["order_id"] == first}
        rows = {r["transfer_id"]: r for r in await db.fetch(
            "SELECT transfer_id, reversal_id, amount FROM mkt_transfer_reversals WHERE "
            "cause = ? AND order_id = ?", "dispute:dp_x", first)}
        assert set(rows) == set(made)
        for tid, t in made.items():
            r = rows[tid]
            if r["reversal_id"] == WITHHELD:  # cut before it was paid: not reversed again
                assert t["amount_reversed"] == 0, t
                full = t["amount"] + int(r["amount"])
            else:
                assert t["amount_reversed"] == int(r["amount"]), t
                full = t["amount"]
            assert int(r["amount"]) == full * (line // 3) // line > 0
        await m.fake.webhooks.settled()
        await books_match_stripe(m, accounts)


async def test_a_cut_transfer_does_not_reuse_the_full_transfers_key(
        tmp_path: Path) -> None:
    """Stripe refuses a key used within 24 h with other parameters: ben's transfer cut
    on requeue is asked for with a key of its own, not the one his full (refused)
    transfer was asked for with."""
    from business.marketplace.split_sales import TRANSFERS_FAILED
    from business.marketplace.stripe_gateway import idempotency_key

    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        accounts, first, requeue, _ = await dead_transfer_line(m)
        sales = market_services(m).fulfilment.split_sales
        line = await market_services(m).store.db.fetchval(
            "SELECT amount FROM mkt_orders WHERE account_id = ? AND order_id = ?",
            "seller", first)
        full_key = idempotency_key("split", "seller", first, "ben")
        assert full_key in {r[3] for r in m.fake.requests}  # his refused first attempts
        await sales.record("seller", first, "dispute:dp_x", taken=line // 3, of=line,
                           reversed_=0, state=TRANSFERS_FAILED)
        m.fake.objects[accounts["ben"]]["capabilities"].update(
            transfers="active", card_payments="active")
        result = await requeue()
        [ben] = [t for t in result["transfers"] if t["collaborator"] == "ben"]
        [made] = [e for e in m.fake.event_log if e["type"] == "transfer.created"
                  and e["data"]["object"]["id"] == ben["transfer"]]
        assert made["request"]["idempotency_key"] not in (None, full_key)
