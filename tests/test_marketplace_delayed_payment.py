"""A Checkout Session paid by a delayed method (a bank debit): ``checkout.session.completed``
comes with ``payment_status`` ``unpaid`` and grants nothing; the licence comes with
``checkout.session.async_payment_succeeded``, and ``async_payment_failed`` fails the order
and releases its exclusive hold."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import (
    WEBHOOK,
    WEBHOOK_SECRET,
    Market,
    market,
    market_services,
    who,
)

from business.marketplace import checkout
from business.marketplace.checkout import PROCESSING_S, SWEEP_GRACE_S
from business.marketplace.fakes.stripe.delivery import sign

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(60)]
M = "/api/marketplace"


async def post_event(m: Market, event: dict[str, Any], event_id: str, event_type: str,
                     payment_status: str) -> int:
    """Deliver ``event`` signed, as ``event_type`` with the session's ``payment_status``."""
    sent = json.loads(json.dumps(event))
    sent.update(id=event_id, type=event_type)
    sent["data"]["object"]["payment_status"] = payment_status
    body = json.dumps(sent).encode()
    answer = await m.client.post(WEBHOOK, data=body, headers={
        "Stripe-Signature": sign(body, WEBHOOK_SECRET), "Content-Type": "application/json"})
    return answer.status


async def paid_by_debit(m: Market, started: dict[str, Any], event_id: str = "evt_unpaid"
                        ) -> dict[str, Any]:
    """Pay ``started``'s session by a bank debit that has not cleared: its completed event
    (Stripe's own held back) delivered unpaid, and returned."""
    m.fake.webhooks.hold()
    m.pay(started)
    completed = m.fake.events_of("checkout.session.completed")[-1]
    assert await post_event(m, completed, event_id, "checkout.session.completed",
                            "unpaid") == 200
    return completed


async def unpaid_exclusive(m: Market) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A beat, its exclusive's checkout and the session's completed event, delivered as a
    delayed payment not settled yet (Stripe's own events held back)."""
    await m.seller("seller")
    beat = await m.beat("seller")
    status, started = await m.checkout("buyer", "seller", beat["beat_id"], "exclusive")
    assert status == 201, started
    return beat, started, await paid_by_debit(m, started)


async def settled_exclusive(m: Market, completed: dict[str, Any]) -> None:
    """Deliver the debit's success: the buyer then holds the exclusive's licence."""
    assert await post_event(m, completed, "evt_settled",
                            "checkout.session.async_payment_succeeded", "paid") == 200
    [licence] = await m.library("buyer")
    assert licence["tier"] == "exclusive" and licence["status"] == "active"


async def test_an_unpaid_completion_grants_nothing_until_the_payment_settles(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        beat, started, completed = await unpaid_exclusive(m)
        order_id = started["order"]["order_id"]
        status, order = await m.call("GET", f"/api/marketplace/orders/{order_id}", who("buyer"))
        assert status == 200 and order["status"] == "processing"
        assert await m.library("buyer") == []
        status, found = await m.call("GET", f"/api/marketplace/beats/{beat['beat_id']}",
                                     who("seller"))
        assert found["status"] == "on_sale"

        await settled_exclusive(m, completed)
        assert (await m.order("buyer", order_id, "paid"))["amount"] == 49999


async def test_a_failed_delayed_payment_fails_the_order_and_frees_the_exclusive(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        beat, started, completed = await unpaid_exclusive(m)
        assert await post_event(m, completed, "evt_failed",
                                "checkout.session.async_payment_failed", "unpaid") == 200
        await m.order("buyer", started["order"]["order_id"], "failed")
        assert await m.library("buyer") == []
        status, body = await m.checkout("other", "seller", beat["beat_id"], "exclusive")
        assert status == 201, body


async def test_a_processing_order_keeps_its_exclusive_past_the_session_s_life(
        tmp_path: Path) -> None:
    """The debit takes days: the sweep past the session's life neither expires the order
    nor frees the exclusive for another buyer (whose purchase would make the debit a
    refund); only :data:`PROCESSING_S` without an answer from Stripe does."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        beat, started, completed = await unpaid_exclusive(m)
        order_id = started["order"]["order_id"]
        checkout = market_services(m).checkout
        assert await checkout.sweep(time.time() + 2 * 86_400) == 0
        await m.order("buyer", order_id, "processing")
        status, body = await m.checkout("other", "seller", beat["beat_id"], "exclusive")
        assert status == 409 and "exclusive" in body["error"], body
        await settled_exclusive(m, completed)


async def test_a_processing_order_without_an_answer_expires_after_three_weeks(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        beat, started, _ = await unpaid_exclusive(m)
        checkout = market_services(m).checkout
        assert await checkout.sweep(time.time() + PROCESSING_S + SWEEP_GRACE_S + 60) == 1
        await m.order("buyer", started["order"]["order_id"], "expired")
        status, body = await m.checkout("other", "seller", beat["beat_id"], "exclusive")
        assert status == 201, body


async def test_what_a_clearing_debit_pays_for_cannot_be_checked_out_again(
        tmp_path: Path) -> None:
    """A processing order's lines, alone or in a cart, answer 409 "still clearing" rather
    than a second session the buyer would pay on top of the debit."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        await m.seller("seller")
        beat = await m.beat("seller")
        status, cart = await m.call("PUT", f"{M}/carts/seller/items/{beat['beat_id']}",
                                    who("buyer"), {"tier": "mp3_lease"})
        assert status == 200, cart
        status, started = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
        assert status == 201, started
        await paid_by_debit(m, started)
        [order] = started["orders"]
        await m.order("buyer", order["order_id"], "processing")
        status, body = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
        assert status == 409 and "still clearing" in body["error"], body
        status, body = await m.checkout("buyer", "seller", beat["beat_id"], "mp3_lease")
        assert status == 409 and "still clearing" in body["error"], body
        status, body = await m.checkout("other", "seller", beat["beat_id"], "mp3_lease")
        assert status == 201, body  # another buyer's lease is theirs to buy


async def test_clearing_debits_count_among_the_buyer_s_open_checkouts(
        tmp_path: Path) -> None:
    """A buyer cannot hold a store's exclusives for weeks with debits that will fail:
    processing orders count toward the open checkouts one buyer may have."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        await m.seller("seller")
        limit = market_services(m).checkout.max_open
        beats = [await m.beat("seller", title=f"Beat {n}") for n in range(limit + 1)]
        for n, beat in enumerate(beats[:limit]):
            status, started = await m.checkout("buyer", "seller", beat["beat_id"], "exclusive")
            assert status == 201, started
            await paid_by_debit(m, started, f"evt_unpaid{n}")
            await m.order("buyer", started["order"]["order_id"], "processing")
        status, body = await m.checkout("buyer", "seller", beats[-1]["beat_id"], "exclusive")
        assert status == 409 and "checkouts open" in body["error"], body


async def test_the_sweep_leaves_an_order_a_delayed_payment_moved_meanwhile(
        tmp_path: Path) -> None:
    """The sweep picked the order as due, then, before it closed it, the unpaid
    completion made it processing (21 days on): it is left as it is now."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        await m.seller("seller")
        beat = await m.beat("seller")
        status, started = await m.checkout("buyer", "seller", beat["beat_id"], "exclusive")
        assert status == 201, started
        order_id = started["order"]["order_id"]
        services = market_services(m)
        store, read = services.checkout.store, services.checkout.store.order

        async def moved_meanwhile(account_id: str, wanted: str, **kwargs: Any) -> Any:
            await kwargs["tx"].execute(  # what Fulfilment.processing writes meanwhile
                "UPDATE mkt_orders SET status = 'processing', expires_at = ? WHERE "
                "account_id = ? AND order_id = ?", time.time() + PROCESSING_S, account_id,
                wanted)
            return await read(account_id, wanted, **kwargs)

        store.order = moved_meanwhile
        try:
            assert await services.checkout.sweep(time.time() + 86_400) == 0
        finally:
            store.order = read
        await m.order("buyer", order_id, "processing")


async def test_the_sweep_leaves_an_order_a_payment_moved_just_before_it_closed(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL reads committed rows: the unpaid completion commits (processing, 21
    days on) after the sweep read the order as due but before it closed it. The close
    sees the new expiry and leaves the order processing, its exclusive held."""
    async with market(tmp_path, pg_url) as m:
        await m.seller("seller")
        beat = await m.beat("seller")
        status, started = await m.checkout("buyer", "seller", beat["beat_id"], "exclusive")
        assert status == 201, started
        order_id = started["order"]["order_id"]
        close = checkout.close_order

        async def moved_just_before(tx: Any, store: Any, order: Any, *args: Any,
                                    **kwargs: Any) -> bool:
            async with store.db.transaction() as other:  # another connection commits
                await other.execute(  # what Fulfilment.processing writes
                    "UPDATE mkt_orders SET status = 'processing', expires_at = ? WHERE "
                    "account_id = ? AND order_id = ?", time.time() + PROCESSING_S,
                    order.account_id, order.order_id)
            return await close(tx, store, order, *args, **kwargs)

        monkeypatch.setattr(checkout, "close_order", moved_just_before)
        assert await market_services(m).checkout.sweep(time.time() + 86_400) == 0
        monkeypatch.setattr(checkout, "close_order", close)
        await m.order("buyer", order_id, "processing")
        status, body = await m.checkout("other", "seller", beat["beat_id"], "exclusive")
        assert status == 409, body  # still held for the buyer whose debit clears
