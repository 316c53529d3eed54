"""Disputes that race their payment, or name a sale that is not stored here."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import market, market_services

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
        real = money.disputes.order_of
        calls = []

        async def raced(db: Any, seller: str, dispute: dict[str, Any]) -> Any:
            calls.append(dispute["id"])
            return None if len(calls) == 1 else await real(db, seller, dispute)

        monkeypatch.setattr(money.disputes, "order_of", raced)
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
