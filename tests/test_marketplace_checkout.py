"""Checkout over HTTP on SQLite and PostgreSQL: a Stripe Checkout Session per order, the
signed webhook that marks it paid, books the sale and grants the licence exactly once
(duplicates, a crash mid-fulfilment), the price the session said, and the exclusive:
off sale at once, no lease after it, one winner among racing buyers."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import (
    WEBHOOK,
    WEBHOOK_SECRET,
    market,
    market_services,
    who,
)

from business.marketplace.fakes.stripe.delivery import sign
from business.marketplace.reconciliation import reconcile
from business.marketplace.stripe_gateway import StripeGateway, StripeSettings

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(90)]


async def stripe_net(m: Any, stripe_account: str) -> list[Any]:
    """The seller's balance transactions as Stripe has them."""
    server_url = m.fake.base_url
    async with StripeGateway(StripeSettings(m.fake.api_key, api_base=server_url,
                                            max_network_retries=0)) as gateway:
        return [t async for t in gateway.balance_transactions(account=stripe_account)]


async def test_a_lease_is_paid_booked_and_licensed_once(db_url: str,
                                                        tmp_path: Path) -> None:
    async with market(tmp_path, db_url) as m:
        account = await m.seller("seller")
        beat = await m.beat("seller")
        status, started = await m.checkout("buyer", "seller", beat["beat_id"], "wav_lease",
                                           ref="Ab3dEf9hKz", utm_source="x")
        assert status == 201, started
        order = started["order"]
        assert (order["status"], order["amount"], order["currency"]) == ("open", 4999, "usd")
        assert started["checkout_url"].startswith(m.fake.base_url)
        session_id = started["checkout_url"].rsplit("/", 1)[1]
        session = m.fake.objects[session_id]
        assert session["amount_total"] == 4999 and m.fake.owner[session_id] == account
        status, _ = await m.call("GET", f"/api/marketplace/orders/{order['order_id']}",
                                 who("stranger"))
        assert status == 404

        m.fake.webhooks.duplicate_next(20)  # every event of the payment arrives twice
        m.pay(started)
        paid = await m.order("buyer", order["order_id"], "paid")
        assert paid["amount"] == 4999 and paid["paid_at"]
        await m.fake.webhooks.settled()
        [completed] = m.fake.events_of("checkout.session.completed")
        m.fake.webhooks.redeliver(completed)  # and once more, later
        await m.fake.webhooks.settled()
        answers = [a.status for a in m.fake.webhooks.attempts if a.event_id == completed["id"]]
        assert answers == [200, 200, 200]

        [licence] = await m.library("buyer")
        assert (licence["seller"], licence["beat_id"], licence["tier"]) == (
            "seller", beat["beat_id"], "wav_lease")
        assert sorted(link["kind"] for link in licence["links"]) == ["mp3", "wav"]
        assert licence["status"] == "active" and licence["download_limit"] == 3
        assert await m.library("seller") == [] and await m.library("stranger") == []

        module = market_services(m)
        # one sale event, in the payment's transaction: where the buyer came from, not who
        rows = await module.store.db.fetch(
            "SELECT account_id, payload FROM events_outbox WHERE name = 'marketplace.sale'")
        assert [r["account_id"] for r in rows] == ["seller"]
        sale = json.loads(rows[0]["payload"])
        assert (sale["order_id"], sale["amount_cents"], sale["currency"], sale["ref"],
                sale["utm_source"], sale["utm_campaign"]) == (
            order["order_id"], 4999, "usd", "Ab3dEf9hKz", "x", "")
        assert "buyer" not in json.dumps(sale)
        postings = await module.ledger.postings("seller")
        assert [p["kind"] for p in postings] == ["sale"]
        assert await module.ledger.audit("seller") == []
        report = await reconcile(module.ledger, "seller", await stripe_net(m, account))
        assert report.differences == [] and report.matched == 1
        balances = await module.ledger.balances("seller")
        assert balances[("external:buyers", "usd")] == -4999
        assert 0 < balances[("seller:balance", "usd")] < 4999  # less Stripe's fee


async def test_a_price_changed_during_checkout_charges_what_the_session_said(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        await m.seller("seller")
        beat = await m.beat("seller")
        status, started = await m.checkout("buyer", "seller", beat["beat_id"], "mp3_lease")
        assert status == 201 and started["order"]["amount"] == 2999
        status, _ = await m.call(
            "PATCH", f"/api/marketplace/beats/{beat['beat_id']}/tiers/mp3_lease",
            who("seller"), {"price": 5000})
        assert status == 200
        m.pay(started)
        paid = await m.order("buyer", started["order"]["order_id"], "paid")
        assert paid["amount"] == 2999
        balances = await market_services(m).ledger.balances("seller")
        assert balances[("external:buyers", "usd")] == -2999
        status, again = await m.checkout("buyer2", "seller", beat["beat_id"], "mp3_lease")
        assert status == 201 and again["order"]["amount"] == 5000


async def test_checkout_refusals(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        beat = await m.beat("seller")
        status, answer = await m.checkout("buyer", "seller", beat["beat_id"], "mp3_lease")
        assert status == 409 and "not connected a Stripe account" in answer["error"]
        await m.seller("seller")
        status, answer = await m.checkout("seller", "seller", beat["beat_id"], "mp3_lease")
        assert status == 409 and "your own beat" in answer["error"]
        status, _ = await m.checkout("buyer", "other", beat["beat_id"], "mp3_lease")
        assert status == 404
        status, _ = await m.checkout("buyer", "seller", "beat_nope", "mp3_lease")
        assert status == 404
        status, _ = await m.call("POST", "/api/marketplace/checkout",
                                 who("buyer", "vi", "viewer"),
                                 {"seller": "seller", "beat_id": beat["beat_id"],
                                  "tier": "mp3_lease"})
        assert status == 403
        await m.call("PATCH", f"/api/marketplace/beats/{beat['beat_id']}/tiers/mp3_lease",
                     who("seller"), {"active": False})
        status, _ = await m.checkout("buyer", "seller", beat["beat_id"], "mp3_lease")
        assert status == 404


async def test_webhooks_are_verified_and_unknown_orders_retried(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        event = {"object": "event", "id": "evt_manual", "type": "checkout.session.completed",
                 "created": int(time.time()), "data": {"object": {
                     "id": "cs_x", "object": "checkout.session", "amount_total": 100,
                     "currency": "usd", "payment_intent": None,
                     "metadata": {"order_id": "ord_later", "seller": "seller"}}}}
        payload = json.dumps(event).encode()

        async def post(signature: str | None) -> tuple[int, Any]:
            headers = {"Content-Type": "application/json"}
            if signature:
                headers["Stripe-Signature"] = signature
            answer = await m.client.post(WEBHOOK, data=payload, headers=headers)
            return answer.status, await answer.json()

        status, answer = await post(None)
        assert status == 400 and answer["reason"] == "missing"
        status, answer = await post(sign(payload, "whsec_wrong"))
        assert status == 400 and answer["reason"] == "forged"
        status, answer = await post(sign(payload, WEBHOOK_SECRET, int(time.time()) - 3600))
        assert status == 400 and answer["reason"] == "stale"
        status, answer = await post(sign(payload, WEBHOOK_SECRET))
        assert status == 409 and answer["outcome"] == "retry"  # not stored yet: sent again
        assert await market_services(m).store.event_outcome("seller", "evt_manual") is None


@pytest.mark.parametrize("buyers", [4])
async def test_racing_buyers_get_one_exclusive_and_no_lease_after_it(
        db_url: str, tmp_path: Path, buyers: int) -> None:
    async with market(tmp_path, db_url) as m:
        await m.seller("seller")
        beat = await m.beat("seller")
        beat_id = beat["beat_id"]
        status, early_lease = await m.checkout("early", "seller", beat_id, "mp3_lease")
        assert status == 201  # began before anyone held the exclusive

        answers = await asyncio.gather(*(
            m.checkout(f"buyer{n}", "seller", beat_id, "exclusive") for n in range(buyers)))
        won = [body for status, body in answers if status == 201]
        lost = [body for status, body in answers if status != 201]
        assert len(won) == 1, answers
        assert [s for s, _ in answers].count(409) == buyers - 1
        assert all("exclusive" in body["error"] for body in lost)
        status, held = await m.checkout("late", "seller", beat_id, "mp3_lease")
        assert status == 409 and "paused" in held["error"]

        winner = won[0]["order"]
        buyer = next(f"buyer{n}" for n, (s, _) in enumerate(answers) if s == 201)
        m.pay(won[0])
        await m.order(buyer, winner["order_id"], "paid")
        status, page = await m.call("GET", "/api/marketplace/catalogue")
        assert beat_id not in [b["beat_id"] for b in page["items"]]
        status, mine = await m.call("GET", f"/api/marketplace/beats/{beat_id}", who("seller"))
        assert mine["status"] == "sold_exclusive"
        status, after = await m.checkout("late", "seller", beat_id, "mp3_lease")
        assert status == 409 and "sold with exclusive rights" in after["error"]
        status, after = await m.checkout("late", "seller", beat_id, "exclusive")
        assert status == 409

        m.pay(early_lease)  # paid after the exclusive sale: refunded, never licensed
        refunded = await m.order("early", early_lease["order"]["order_id"], "refunded")
        assert "exclusive" in refunded["note"]
        assert await m.library("early") == []
        [exclusive] = await m.library(buyer)
        assert exclusive["exclusive"] and exclusive["tier"] == "exclusive"
        licences = await market_services(m).store.licences_of_beat("seller", beat_id)
        assert [(lic.buyer_account, lic.exclusive) for lic in licences] == [(buyer, True)]
        intent = m.fake.objects[refunded_intent(m, early_lease)]
        assert intent["status"] == "succeeded"
        assert m.fake.objects[intent["latest_charge"]]["refunded"] is True
        kinds = sorted(p["kind"] for p in await market_services(m).ledger.postings("seller"))
        assert kinds == ["refund", "sale", "sale"]


def refunded_intent(m: Any, started: dict[str, Any]) -> str:
    return str(m.fake.objects[started["checkout_url"].rsplit("/", 1)[1]]["payment_intent"])


async def test_payments_racing_at_the_webhook_leave_one_exclusive(db_url: str,
                                                                  tmp_path: Path) -> None:
    async with market(tmp_path, db_url) as m:
        await m.seller("seller")
        beat = await m.beat("seller")
        leases = [(await m.checkout(f"lease{n}", "seller", beat["beat_id"], "wav_lease"))[1]
                  for n in range(3)]
        status, exclusive = await m.checkout("ex", "seller", beat["beat_id"], "exclusive")
        assert status == 201
        m.fake.webhooks.hold()
        for started in [*leases, exclusive]:
            m.pay(started)
        m.fake.webhooks.release("shuffled", seed=7)  # all at once, in any order
        await m.order("ex", exclusive["order"]["order_id"], "paid")
        outcomes = [await m.order(f"lease{n}", s["order"]["order_id"], "paid", "refunded")
                    for n, s in enumerate(leases)]
        await m.fake.webhooks.settled()
        store = market_services(m).store
        licences = await store.licences_of_beat("seller", beat["beat_id"])
        assert [lic.buyer_account for lic in licences if lic.exclusive] == ["ex"]
        sold_at = next(lic.granted_at for lic in licences if lic.exclusive)
        for n, order in enumerate(outcomes):
            mine = [lic for lic in licences if lic.buyer_account == f"lease{n}"]
            if order["status"] == "paid":
                assert len(mine) == 1 and mine[0].granted_at <= sold_at
            else:
                assert mine == [] and "exclusive" in order["note"]


@pytest.mark.parametrize(("death", "first_answer"), [
    (RuntimeError("worker killed"), 500),       # an error: Stripe gets a 500
    (asyncio.CancelledError(), 0),              # the task dies: Stripe gets no answer
])
async def test_a_worker_killed_mid_fulfilment_still_delivers_exactly_once(
        db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        death: BaseException, first_answer: int) -> None:
    async with market(tmp_path, db_url) as m:
        await m.seller("seller")
        beat = await m.beat("seller")
        store = market_services(m).store
        real = store.insert_licence
        crashes = []

        async def dies_once(tx: Any, licence: Any) -> None:
            await real(tx, licence)  # the licence, the order and the sale are written ...
            if not crashes:
                crashes.append(licence.order_id)
                raise death  # ... and die before the commit

        monkeypatch.setattr(store, "insert_licence", dies_once)
        status, started = await m.checkout("buyer", "seller", beat["beat_id"], "mp3_lease")
        m.pay(started)
        await m.order("buyer", started["order"]["order_id"], "paid")
        await m.fake.webhooks.settled()
        [completed] = m.fake.events_of("checkout.session.completed")
        answers = [a.status for a in m.fake.webhooks.attempts if a.event_id == completed["id"]]
        assert answers == [first_answer, 200] and crashes == [started["order"]["order_id"]]
        assert len(await m.library("buyer")) == 1
        postings = await market_services(m).ledger.postings("seller")
        assert [p["kind"] for p in postings] == ["sale"]


async def test_an_expired_exclusive_checkout_frees_the_beat(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        await m.seller("seller")
        beat = await m.beat("seller")
        status, first = await m.checkout("one", "seller", beat["beat_id"], "exclusive")
        assert status == 201
        assert (await m.checkout("two", "seller", beat["beat_id"], "exclusive"))[0] == 409
        session_id = first["checkout_url"].rsplit("/", 1)[1]
        async with StripeGateway(StripeSettings(m.fake.api_key, api_base=m.fake.base_url,
                                                max_network_retries=0)) as gateway:
            await gateway.call(  # the buyer walks away: Stripe expires the session
                lambda p, o: gateway.v1.checkout.sessions.expire_async(session_id, p, o),
                None, key="expire-1", account=m.fake.owner[session_id], write=True)
        await m.order("one", first["order"]["order_id"], "expired")
        status, second = await m.checkout("two", "seller", beat["beat_id"], "exclusive")
        assert status == 201, second


async def test_an_event_of_another_account_or_price_fulfils_nothing(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        account = await m.seller("seller")
        beat = await m.beat("seller")
        _, started = await m.checkout("buyer", "seller", beat["beat_id"], "wav_lease")
        order = started["order"]

        async def completed(event_id: str, *, account_id: str | None, amount: int) -> int:
            event = {"object": "event", "id": event_id, "type": "checkout.session.completed",
                     "created": int(time.time()), "account": account_id,
                     "data": {"object": {
                         "id": "cs_forged", "object": "checkout.session",
                         "amount_total": amount, "currency": "usd", "payment_intent": None,
                         "metadata": {"order_id": order["order_id"], "seller": "seller",
                                      "beat_id": beat["beat_id"], "tier": "wav_lease",
                                      "buyer": "buyer"}}}}
            payload = json.dumps(event).encode()
            answer = await m.client.post(WEBHOOK, data=payload, headers={
                "Content-Type": "application/json",
                "Stripe-Signature": sign(payload, WEBHOOK_SECRET)})
            return answer.status

        # another connected account's session with this order's metadata copied in
        assert await completed("evt_other_account", account_id="acct_someone_else",
                               amount=order["amount"]) == 200
        assert (await m.order("buyer", order["order_id"], "open"))["status"] == "open"
        # the seller's own account, but a price the order never said: refunded, no licence
        assert await completed("evt_wrong_price", account_id=account, amount=1) == 200
        refunding = await m.order("buyer", order["order_id"], "refunding", "refunded")
        assert "not the order's 4999 usd" in refunding["note"]
        assert await m.library("buyer") == []


async def coupon_uses(m: Any, code: str) -> int:
    status, body = await m.call("GET", "/api/marketplace/coupons", who("seller"))
    assert status == 200, body
    return next(c["uses"] for c in body if c["code"] == code)


async def test_an_expired_checkout_gives_its_coupon_use_and_hold_back(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        await m.seller("seller")
        beat = await m.beat("seller")
        status, body = await m.call("PUT", "/api/marketplace/coupons/ONCE", who("seller"),
                                    {"kind": "percent", "value": 10, "max_uses": 1})
        assert status == 200, body
        status, first = await m.checkout("one", "seller", beat["beat_id"], "exclusive",
                                         coupon="ONCE")
        assert status == 201, first
        assert await coupon_uses(m, "ONCE") == 1
        status, body = await m.checkout("two", "seller", beat["beat_id"], "mp3_lease",
                                        coupon="ONCE")
        assert status == 409
        session_id = first["checkout_url"].rsplit("/", 1)[1]
        async with StripeGateway(StripeSettings(m.fake.api_key, api_base=m.fake.base_url,
                                                max_network_retries=0)) as gateway:
            await gateway.call(  # the buyer walks away: Stripe expires the session
                lambda p, o: gateway.v1.checkout.sessions.expire_async(session_id, p, o),
                None, key="expire-1", account=m.fake.owner[session_id], write=True)
        await m.order("one", first["order"]["order_id"], "expired")
        await m.fake.webhooks.settled()
        assert await coupon_uses(m, "ONCE") == 0
        # a second sweep or a redelivered event gives nothing back twice
        [expired] = m.fake.events_of("checkout.session.expired")
        m.fake.webhooks.redeliver(expired)
        await m.fake.webhooks.settled()
        assert await market_services(m).checkout.sweep(time.time() + 10**6) == 0
        assert await coupon_uses(m, "ONCE") == 0
        status, second = await m.checkout("two", "seller", beat["beat_id"], "exclusive",
                                          coupon="ONCE")
        assert status == 201, second


async def test_the_sweep_expires_lost_checkouts_and_a_late_payment_still_counts(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        await m.seller("seller")
        free, taken = await m.beat("seller"), await m.beat("seller", title="Taken")
        status, body = await m.call("PUT", "/api/marketplace/coupons/LAUNCH", who("seller"),
                                    {"kind": "percent", "value": 10, "max_uses": 5})
        assert status == 200, body
        started = {}
        for beat in (free, taken):
            status, started[beat["beat_id"]] = await m.checkout(
                "late", "seller", beat["beat_id"], "exclusive", coupon="LAUNCH")
            assert status == 201
        assert await coupon_uses(m, "LAUNCH") == 2
        module = market_services(m)
        # Stripe's expired events never came: past the sessions' life the sweep ends both
        assert await module.checkout.sweep(time.time() + 1) == 0  # not yet due
        later = time.time() + module.checkout.expiry_s + 301
        assert await module.checkout.sweep(later) == 2
        assert await module.checkout.sweep(later) == 0
        assert await coupon_uses(m, "LAUNCH") == 0
        for beat in (free, taken):
            order = await m.order("late", started[beat["beat_id"]]["order"]["order_id"],
                                  "expired")
            assert "expired" in order["note"]
        # the hold is free: another buyer holds the second beat now
        status, _ = await m.checkout("other", "seller", taken["beat_id"], "exclusive")
        assert status == 201

        # the first buyer's payments arrive after all (a late completed event)
        for beat in (free, taken):
            m.pay(started[beat["beat_id"]])
        won = await m.order("late", started[free["beat_id"]]["order"]["order_id"], "paid")
        lost = await m.order("late", started[taken["beat_id"]]["order"]["order_id"],
                             "refunding", "refunded")
        assert won["status"] == "paid" and "sold with exclusive rights" in lost["note"]
        [licence] = await m.library("late")
        assert licence["beat_id"] == free["beat_id"]
        # the paid order's coupon use is counted again; the refunded one's is not
        assert await coupon_uses(m, "LAUNCH") == 1


async def test_a_buyer_cannot_open_checkouts_in_a_loop(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}",
                      max_open_checkouts=2) as m:
        await m.seller("seller")
        beats = [await m.beat("seller", title=f"Beat {n}") for n in range(3)]
        opened = []
        for beat in beats[:2]:
            status, started = await m.checkout("greedy", "seller", beat["beat_id"],
                                               "exclusive")
            assert status == 201, started
            opened.append(started)
        status, body = await m.checkout("greedy", "seller", beats[2]["beat_id"], "exclusive")
        assert status == 409 and "2 checkouts open" in body["error"]
        # the beat was not held: another buyer takes its exclusive checkout
        status, _ = await m.checkout("patient", "seller", beats[2]["beat_id"], "exclusive")
        assert status == 201
        # once one of the greedy buyer's checkouts expires, they may open another
        module = market_services(m)
        session_id = opened[0]["checkout_url"].rsplit("/", 1)[1]
        async with StripeGateway(StripeSettings(m.fake.api_key, api_base=m.fake.base_url,
                                                max_network_retries=0)) as gateway:
            await gateway.call(
                lambda p, o: gateway.v1.checkout.sessions.expire_async(session_id, p, o),
                None, key="expire-greedy", account=m.fake.owner[session_id], write=True)
        await m.order("greedy", opened[0]["order"]["order_id"], "expired")
        status, _ = await m.checkout("greedy", "seller", beats[0]["beat_id"], "mp3_lease")
        assert status == 201
        assert module.checkout.max_open == 2


async def test_racing_checkouts_of_one_buyer_stay_within_max_open(
        db_url: str, tmp_path: Path) -> None:
    async with market(tmp_path, db_url, max_open_checkouts=1) as m:
        await m.seller("seller")
        beats = [await m.beat("seller", title=f"Beat {n}") for n in range(4)]
        answers = await asyncio.gather(*(
            m.checkout("greedy", "seller", beat["beat_id"], "mp3_lease") for beat in beats))
        assert sorted(status for status, _ in answers) == [201, 409, 409, 409], answers
