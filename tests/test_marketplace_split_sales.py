"""Split beats sold through a cart's checkout (and refused on a single checkout, a direct
charge that would leave the collaborators unpaid): the cart is paid by a separate charge on
the platform's account, each line's payees are paid by transfers tied to the charge
(``source_transaction``, ``transfer_group``, a key per transfer), the books match every
Stripe balance, a refund of one line takes back only that line's transfers, and a crash
between Stripe's transfer and our record of it is finished once by the job's retry."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import (
    Market,
    market,
    market_services,
    refund_until_reversal_dead,
    who,
)
from prometheus_client import REGISTRY

from business.marketplace import bookings
from business.marketplace.errors import PaymentError, StripeUnavailable
from business.marketplace.fakes.stripe.state import PLATFORM
from business.marketplace.reconciliation import Difference, reconcile_transfers
from business.marketplace.schemas import SplitTransfersPayload
from business.marketplace.services import run_split_transfers
from business.marketplace.split_sales import PAY_JOB, TRANSFERS_FAILED, payees
from business.marketplace.splits import Share, apportion, split_amount
from dawserver.plugins import PLUGIN_CONTEXT_KEY
from jobs import JobContext

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]


def failures(stage: str) -> float:
    """``marketplace_split_failures_total{stage}`` as /metrics shows it now."""
    return REGISTRY.get_sample_value("marketplace_split_failures_total",
                                     {"stage": stage}) or 0.0
M = "/api/marketplace"


async def add(m: Market, buyer: str, beat: dict[str, Any], tier: str, source: str = ""
              ) -> None:
    status, cart = await m.call("PUT", f"{M}/carts/seller/items/{beat['beat_id']}",
                                who(buyer), {"tier": tier, "utm_source": source})
    assert status == 200, cart


async def transfers_made(m: Market, cart_id: str, timeout: float = 30.0) -> None:
    """Wait until every line of the cart has all its transfers made."""
    db = market_services(m).store.db
    async with asyncio.timeout(timeout):
        while await db.fetchval("SELECT COUNT(*) FROM mkt_orders WHERE account_id = ? AND "
                                "cart_id = ? AND transferred_at IS NULL", "seller", cart_id):
            await asyncio.sleep(0.05)
    await m.fake.webhooks.settled()


async def reversals_booked(m: Market) -> None:
    """Wait until the books hold every reversal Stripe made (the ledger's postings and
    ``mkt_transfers.reversed`` commit together, after Stripe answers)."""
    db = market_services(m).store.db
    async with asyncio.timeout(30):
        while True:
            booked = {r["transfer_id"]: r["reversed"] for r in await db.fetch(
                "SELECT transfer_id, reversed FROM mkt_transfers")}
            if all(booked.get(t["id"], 0) == t["amount_reversed"]
                   for t in m.fake.all_of("transfer")):
                return
            await asyncio.sleep(0.05)


async def books_match_stripe(m: Market, accounts: dict[str, str]) -> None:
    """Each payee's ``seller:balance`` is their connected account's Stripe balance; the
    platform's Stripe balance is the seller's clearing plus the platform's fees."""
    ledger = market_services(m).ledger

    def stripe(scope: str) -> int:
        found = m.fake.balances(scope).get("usd", {})
        return int(found.get("available", 0)) + int(found.get("pending", 0))

    for name, account in accounts.items():
        assert await ledger.balance(name, bookings.SELLER, "usd") == stripe(account), name
        assert await ledger.audit(name) == [], name
    assert (await ledger.balance("seller", bookings.CLEARING, "usd")
            + await ledger.balance("seller", "platform:fees", "usd")) == stripe(PLATFORM)


async def accept(m: Market, collaborator: str, beat_id: str) -> dict[str, Any]:
    """``collaborator`` agrees to their part of ``seller``'s split of the beat."""
    status, split = await m.call("POST", f"{M}/splits/seller/{beat_id}/accept",
                                 who(collaborator), {})
    assert status == 200, split
    return split


async def split_cart(m: Market) -> tuple[dict[str, str], list[dict[str, Any]], dict[str, Any]]:
    """Three sellers onboarded; a cart of ``buyer`` holding a beat split three ways
    (found by discovery: it carries the fee), one wholly ``amy``'s and one unsplit."""
    accounts = {name: await m.seller(name) for name in ("seller", "amy", "ben")}
    beats = [await m.beat("seller", title=f"Beat {n}") for n in range(3)]
    for beat, parts in ((beats[0], {"seller": 5000, "amy": 3333, "ben": 1667}),
                        (beats[1], {"amy": 10_000})):
        status, split = await m.call("PUT", f"{M}/beats/{beat['beat_id']}/split",
                                     who("seller"), {"shares": [
                                         {"collaborator": c, "basis_points": bp}
                                         for c, bp in parts.items()]})
        assert status == 200, split
        for collaborator in parts:
            if collaborator != "seller":
                await accept(m, collaborator, beat["beat_id"])
    await add(m, "buyer", beats[0], "wav_lease", "marketplace")
    await add(m, "buyer", beats[1], "mp3_lease")
    await add(m, "buyer", beats[2], "mp3_lease")
    status, started = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
    assert status == 201, started
    return accounts, beats, started


async def test_apportion_cuts_every_cent_by_weight() -> None:
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert apportion(7, [0, 2999, 4999]) == [0, 3, 4]
    for amount in (0, 1, 99, 12_345):
        assert sum(apportion(amount, [4999, 2999, 0, 1])) == amount
    with pytest.raises(ValueError, match="weights"):
        apportion(5, [0, 0])


async def test_a_cart_with_split_beats_pays_each_payee_by_transfer_and_refunds_one_line(
        tmp_path: Path, db_url: str) -> None:
    async with market(tmp_path, db_url, discovery_fee_bp=1000) as m:
        accounts, beats, started = await split_cart(m)
        cart_id = started["cart_id"]
        lines = {o["beat_id"]: o for o in started["orders"]}
        session_id = started["checkout_url"].rsplit("/", 1)[1]
        # a separate charge: on the platform's own account, grouped by the cart
        assert m.fake.owner[session_id] == PLATFORM
        intent_data = m.fake.objects[session_id]["payment_intent_data"]
        assert intent_data["transfer_group"] == cart_id
        assert not intent_data["application_fee_amount"]
        fee = 500  # 10 % of the discovered 49.99 line, rounded half up
        assert m.fake.objects[session_id]["metadata"]["discovery_fee"] == str(fee)

        m.fake.webhooks.duplicate_next(5)  # every event of the payment sent twice
        m.pay(started)
        for order in started["orders"]:
            await m.order("buyer", order["order_id"], "paid")
        await transfers_made(m, cart_id)

        [intent] = [i for i in m.fake.all_of("payment_intent")
                    if (i.get("metadata") or {}).get("cart_id") == cart_id]
        charge = m.fake.objects[intent["latest_charge"]]
        stripe_fee = m.fake.objects[charge["balance_transaction"]]["fee"]
        transfers = m.fake.all_of("transfer")
        assert len(transfers) == 5  # three payees, amy alone, the seller alone
        for t in transfers:
            assert t["source_transaction"] == charge["id"]
            assert t["transfer_group"] == cart_id
        keys = [e["request"]["idempotency_key"] for e in m.fake.events_of("transfer.created")]
        assert len(set(keys)) == 5 and all(keys)
        assert sum(t["amount"] for t in transfers) == 4999 + 2999 + 2999 - stripe_fee - fee

        # each line's net is cut among its own payees
        by_line: dict[str, dict[str, int]] = {}
        for t in transfers:
            by_line.setdefault(t["metadata"]["order_id"], {})[
                t["metadata"]["collaborator"]] = t["amount"]
        stripe_parts = apportion(stripe_fee, [4999, 2999, 2999])
        first = lines[beats[0]["beat_id"]]["order_id"]
        net = 4999 - stripe_parts[0] - fee
        assert by_line[first] == dict(zip(("seller", "amy", "ben"), split_amount(net, [
            Share("seller", "", 5000), Share("amy", "", 3333), Share("ben", "", 1667)]),
            strict=True))
        assert list(by_line[lines[beats[1]["beat_id"]]["order_id"]]) == ["amy"]
        assert list(by_line[lines[beats[2]["beat_id"]]["order_id"]]) == ["seller"]
        ledger = market_services(m).ledger
        assert await ledger.balance("seller", bookings.CLEARING, "usd") == 0
        assert await ledger.balance("seller", "platform:fees", "usd") == fee
        await books_match_stripe(m, accounts)

        # the seller refunds the split line alone: its three transfers come back in
        # full, the other lines' stay, the books still match every balance
        status, body = await m.call("POST", f"{M}/sales/{first}/refund", who("seller"), {})
        assert status == 202, body
        await m.order("buyer", first, "refunded")
        db = market_services(m).store.db
        async with asyncio.timeout(30):
            while sum(t["amount_reversed"] for t in m.fake.all_of("transfer")) < net:
                await asyncio.sleep(0.05)
        await reversals_booked(m)
        await m.fake.webhooks.settled()
        for t in m.fake.all_of("transfer"):
            mine = t["metadata"]["order_id"] == first
            assert t["amount_reversed"] == (t["amount"] if mine else 0), t
        stored = await db.fetch("SELECT order_id, amount, reversed FROM mkt_transfers WHERE "
                                "account_id = ?", "seller")
        assert {r["order_id"] for r in stored if r["reversed"]} == {first}
        assert await ledger.balance("seller", "external:refunds", "usd") == 4999
        await books_match_stripe(m, accounts)
        status_of = {lic["beat_id"]: lic["status"] for lic in await m.library("buyer")}
        assert status_of[beats[0]["beat_id"]] == "refunded"
        assert status_of[beats[1]["beat_id"]] == status_of[beats[2]["beat_id"]] == "active"


async def test_a_crash_after_stripe_made_a_transfer_is_finished_once_by_the_retry(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        gateway = market_services(m).gateway
        real = gateway.transfer
        lost: list[str] = []

        async def answer_lost_once(**kwargs: Any) -> Any:
            """Stripe makes the transfer; the answer never reaches us (a crash, a cut)."""
            made = await real(**kwargs)
            if not lost:
                lost.append(str(made.id))
                raise StripeUnavailable("the connection was cut after the request was sent")
            return made

        gateway.transfer = answer_lost_once
        accounts, beats, started = await split_cart(m)
        # a split beat bought alone would be a direct charge: sent to the cart instead
        status, body = await m.checkout("buyer", "seller", beats[0]["beat_id"], "mp3_lease")
        assert status == 409 and "sold through the cart" in str(body), body
        m.pay(started)
        await transfers_made(m, started["cart_id"])
        assert lost, "the first transfer's answer was not lost"
        transfers = m.fake.all_of("transfer")
        assert len(transfers) == 5  # the retry asked with the same key: no second transfer
        assert lost[0] in {t["id"] for t in transfers}
        db = market_services(m).store.db
        assert await db.fetchval("SELECT COUNT(*) FROM mkt_transfers WHERE account_id = ?",
                                 "seller") == 5
        postings = await market_services(m).ledger.postings("seller")
        assert sum(p["kind"] == "transfer_out" for p in postings) == 5
        await books_match_stripe(m, accounts)


async def test_a_split_is_set_by_its_seller_and_agreed_to_by_each_collaborator(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        accounts = {name: await m.seller(name) for name in ("seller", "amy")}
        beat = await m.beat("seller")
        path = f"{M}/beats/{beat['beat_id']}/split"
        assert await m.call("GET", path, who("seller")) == (
            200, {"beat_id": beat["beat_id"], "shares": []})
        shares = [{"collaborator": "amy", "basis_points": 4000},
                  {"collaborator": "seller", "basis_points": 6000}]
        status, split = await m.call("PUT", path, who("seller"), {"shares": shares})
        assert status == 200, split
        # the seller's own part is agreed; amy's waits for her, held for her meanwhile
        # (no Stripe account named: see test_marketplace_split_holds.py)
        assert split["shares"] == [{**shares[0], "status": "pending"},
                                   {**shares[1], "status": "accepted"}]
        db = market_services(m).store.db
        assert await payees(db, "seller", beat["beat_id"], accounts["seller"]) == [
            Share("amy", "", 4000), Share("seller", accounts["seller"], 6000)]
        # a collaborator with Stripe and one without get the same answer: the seller
        # learns nothing of another account's Stripe
        answers = []
        for other in ("amy", "nobody"):
            status, body = await m.call("PUT", path, who("seller"), {"shares": [
                {"collaborator": "seller", "basis_points": 5000},
                {"collaborator": other, "basis_points": 5000}]})
            assert status == 200, body
            answers.append([{k: v for k, v in p.items() if k != "collaborator"}
                            for p in body["shares"] if p["collaborator"] == other])
        assert answers[0] == answers[1] == [{"basis_points": 5000, "status": "pending"}]
        # nobody accepts without Stripe; someone not named cannot accept; amy does
        status, body = await m.call("POST", f"{M}/splits/seller/{beat['beat_id']}/accept",
                                    who("nobody"), {})
        assert status == 422 and "connect your Stripe" in str(body), body
        status, body = await m.call("POST", f"{M}/splits/seller/{beat['beat_id']}/accept",
                                    who("amy"), {})
        assert status == 404, body
        status, split = await m.call("PUT", path, who("seller"), {"shares": shares})
        assert status == 200, split
        split = await accept(m, "amy", beat["beat_id"])
        assert [p["status"] for p in split["shares"]] == ["accepted", "accepted"]
        assert await payees(db, "seller", beat["beat_id"], accounts["seller"]) == [
            Share("amy", accounts["amy"], 4000), Share("seller", accounts["seller"], 6000)]
        # the same part set again keeps her agreement; a changed part asks for it again
        status, split = await m.call("PUT", path, who("seller"), {"shares": shares})
        assert [p["status"] for p in split["shares"]] == ["accepted", "accepted"]
        changed = [{"collaborator": "amy", "basis_points": 4500},
                   {"collaborator": "seller", "basis_points": 5500}]
        status, split = await m.call("PUT", path, who("seller"), {"shares": changed})
        assert [p["status"] for p in split["shares"]] == ["pending", "accepted"]
        # parts that are not a whole: 422 saying so
        status, body = await m.call("PUT", path, who("seller"), {"shares": shares[:1]})
        assert status == 422 and "10000" in str(body), body
        # another account's beat is not found; an empty split ends it
        status, _ = await m.call("PUT", path, who("amy"), {"shares": shares})
        assert status == 404
        status, _ = await m.call("GET", path, who("amy"))
        assert status == 404
        status, split = await m.call("PUT", path, who("seller"), {"shares": []})
        assert status == 200 and split["shares"] == []
        assert await market_services(m).splits.of("seller", beat["beat_id"]) == []


async def test_a_collaborator_who_has_not_agreed_is_not_paid_their_part_is_held(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        accounts = {name: await m.seller(name) for name in ("seller", "amy", "ben")}
        beat = await m.beat("seller")
        status, _ = await m.call("PUT", f"{M}/beats/{beat['beat_id']}/split", who("seller"),
                                 {"shares": [{"collaborator": "amy", "basis_points": 3000},
                                             {"collaborator": "ben", "basis_points": 2000},
                                             {"collaborator": "seller", "basis_points": 5000}]})
        assert status == 200
        await accept(m, "amy", beat["beat_id"])  # ben never answers
        await add(m, "buyer", beat, "mp3_lease")
        status, started = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
        assert status == 201, started
        m.pay(started)
        await transfers_made(m, started["cart_id"])
        paid = {t["metadata"]["collaborator"]: t["amount"] for t in m.fake.all_of("transfer")}
        assert set(paid) == {"amy", "seller"}  # ben's part is neither his nor the seller's
        db = market_services(m).store.db
        held = await db.fetchval("SELECT amount FROM mkt_split_holds WHERE account_id = ? "
                                 "AND collaborator = ?", "seller", "ben")
        assert [paid["amy"], held, paid["seller"]] == split_amount(
            sum(paid.values()) + held, [Share("amy", "", 3000), Share("ben", "", 2000),
                                        Share("seller", "", 5000)])
        assert await market_services(m).ledger.balance(
            "seller", bookings.CLEARING, "usd") == held
        await books_match_stripe(m, accounts)


async def test_a_split_line_sold_exclusively_meanwhile_is_refunded_with_no_transfer(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        accounts = {name: await m.seller(name) for name in ("seller", "amy")}
        beats = [await m.beat("seller", title=f"Beat {n}") for n in range(2)]
        status, _ = await m.call("PUT", f"{M}/beats/{beats[0]['beat_id']}/split",
                                 who("seller"), {"shares": [
                                     {"collaborator": "seller", "basis_points": 5000},
                                     {"collaborator": "amy", "basis_points": 5000}]})
        assert status == 200
        await accept(m, "amy", beats[0]["beat_id"])
        await add(m, "buyer", beats[0], "mp3_lease")
        await add(m, "buyer", beats[1], "mp3_lease")
        status, leases = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"), {})
        assert status == 201, leases
        # a rival buys the split beat's exclusive rights (a lease holds nothing) first
        await add(m, "rival", beats[0], "exclusive")
        status, rival = await m.call("POST", f"{M}/carts/seller/checkout", who("rival"), {})
        assert status == 201, rival
        m.pay(rival)
        await transfers_made(m, rival["cart_id"])
        m.pay(leases)
        lines = {o["beat_id"]: o["order_id"] for o in leases["orders"]}
        await m.order("buyer", lines[beats[0]["beat_id"]], "refunded")
        await m.order("buyer", lines[beats[1]["beat_id"]], "paid")
        await transfers_made(m, leases["cart_id"])
        # the refunded line paid nobody; the other line paid the seller alone
        paid = {t["metadata"]["order_id"] for t in m.fake.all_of("transfer")}
        assert lines[beats[0]["beat_id"]] not in paid and lines[beats[1]["beat_id"]] in paid
        assert await market_services(m).ledger.balance(
            "seller", "external:refunds", "usd") == 2999
        await books_match_stripe(m, accounts)


async def test_split_transfers_and_reversals_reconcile_with_stripe_and_mismatches_show(
        tmp_path: Path, db_url: str) -> None:
    """Every transfer and reversal of a split cart matches the platform's balance
    transactions and Stripe's transfers; a reversal made outside our books and a
    transfer booked at another amount are reported."""
    async with market(tmp_path, db_url) as m:
        _, beats, started = await split_cart(m)
        m.pay(started)
        await transfers_made(m, started["cart_id"])
        lines = {o["beat_id"]: o["order_id"] for o in started["orders"]}
        first = lines[beats[0]["beat_id"]]
        status, body = await m.call("POST", f"{M}/sales/{first}/refund", who("seller"), {})
        assert status == 202, body
        module = market_services(m)
        async with asyncio.timeout(60):  # the reversal's end is recorded once it is booked
            while await module.store.db.fetchval(
                    "SELECT state FROM mkt_split_reversals WHERE account_id = ? AND "
                    "order_id = ?", "seller", first) != "reversed":
                await asyncio.sleep(0.05)
        assert all(t["reversed"] for t in m.fake.all_of("transfer")
                   if t["metadata"]["order_id"] == first)
        await m.fake.webhooks.settled()

        async def report() -> Any:
            return await reconcile_transfers(module.ledger, "seller",
                                             module.gateway.transfers(),
                                             module.gateway.balance_transactions())

        transfers = m.fake.all_of("transfer")
        reversals = m.fake.all_of("transfer_reversal")
        assert len(transfers) == 5 and len(reversals) == 3
        clean = await report()
        assert clean.differences == []
        # each transfer's and reversal's balance transaction, and each transfer itself
        assert clean.matched == 2 * len(transfers) + len(reversals)

        by_line = {t["metadata"]["order_id"]: t for t in transfers}
        amy = by_line[lines[beats[1]["beat_id"]]]  # the line wholly amy's
        alone = by_line[lines[beats[2]["beat_id"]]]  # the seller's unsplit line
        outside = await module.gateway.reverse_transfer(amy["id"], amount=100,
                                                        idempotency_key="dashboard-reversal")
        await module.store.db.execute(
            "UPDATE mkt_transfers SET amount = amount + 1 WHERE account_id = ? AND "
            "transfer_id = ?", "seller", alone["id"])
        found = await report()
        assert sorted(found.differences, key=lambda d: d.kind) == sorted([
            Difference("missing_in_ledger", str(outside.balance_transaction), "usd", 100,
                       None, "transfer_refund"),
            Difference("transfer_amount", alone["id"], "usd", alone["amount"],
                       alone["amount"] + 1, "transfer"),
            Difference("transfer_reversed", amy["id"], "usd", 100, 0, "transfer"),
        ], key=lambda d: d.kind)
        assert found.matched == clean.matched - 2


def platform_charge(m: Market, cart_id: str) -> dict[str, Any]:
    """The cart's separate charge, on the platform's own Stripe account."""
    [intent] = [i for i in m.fake.all_of("payment_intent")
                if (i.get("metadata") or {}).get("cart_id") == cart_id]
    charge = m.fake.objects[intent["latest_charge"]]
    assert m.fake.owner[charge["id"]] == PLATFORM
    return charge


async def statuses(m: Market) -> dict[str, str]:
    return {lic["beat_id"]: lic["status"] for lic in await m.library("buyer")}


async def test_a_lost_dispute_of_a_split_cart_takes_back_each_lines_transfers_in_part(
        tmp_path: Path, db_url: str) -> None:
    async with market(tmp_path, db_url, discovery_fee_bp=1000) as m:
        accounts, beats, started = await split_cart(m)
        cart_id = started["cart_id"]
        m.pay(started)
        await transfers_made(m, cart_id)
        charge = platform_charge(m, cart_id)
        ledger = market_services(m).ledger
        clearing = await ledger.balance("seller", bookings.CLEARING, "usd")
        link = next(lic["links"][0]["url"] for lic in await m.library("buyer")
                    if lic["beat_id"] == beats[0]["beat_id"])
        assert (await m.client.get(link)).status == 200

        disputed = 5997  # part of the 109.97 charge: every line loses its share of it
        m.fake.webhooks.duplicate_next(1)  # the dispute's opening delivered twice
        dispute = m.fake.create_dispute(charge["id"], amount=disputed)
        await m.fake.webhooks.settled()
        assert set((await statuses(m)).values()) == {"disputed"}
        assert (await m.client.get(link)).status == 403  # no downloads while it is open
        assert await ledger.balance("seller", bookings.CLEARING, "usd") == (
            clearing - disputed - m.fake.dispute_fee)
        assert not any(t["amount_reversed"] for t in m.fake.all_of("transfer"))
        await books_match_stripe(m, accounts)

        m.fake.webhooks.duplicate_next(1)
        m.fake.resolve_dispute(dispute["id"], won=False)
        lines = sorted(started["orders"], key=lambda o: o["order_id"])
        parts = dict(zip((o["order_id"] for o in lines),
                         apportion(disputed, [o["amount"] for o in lines]), strict=True))
        amounts = {o["order_id"]: o["amount"] for o in lines}
        want = {t["id"]: t["amount"] * parts[t["metadata"]["order_id"]]
                // amounts[t["metadata"]["order_id"]] for t in m.fake.all_of("transfer")}
        async with asyncio.timeout(30):
            while sum(t["amount_reversed"] for t in m.fake.all_of("transfer")) < sum(
                    want.values()):
                await asyncio.sleep(0.05)
        await m.fake.webhooks.settled()
        # every dispute event sent again: nothing more is booked or taken back
        for kind in ("charge.dispute.created", "charge.dispute.closed"):
            for event in m.fake.events_of(kind):
                m.fake.webhooks.redeliver(event)
        await m.fake.webhooks.settled()
        assert {t["id"]: t["amount_reversed"] for t in m.fake.all_of("transfer")} == want
        postings = await ledger.postings("seller")
        assert sum(p["kind"] == "dispute" for p in postings) == 1
        assert not any(p["kind"] == "dispute_won" for p in postings)
        assert set((await statuses(m)).values()) == {"revoked"}
        assert (await m.client.get(link)).status == 403
        await books_match_stripe(m, accounts)


def reversals_wanted(m: Market, lines: list[dict[str, Any]], disputed: int) -> dict[str, int]:
    """What a lost dispute of ``disputed`` takes back of each transfer: the amount cut
    across the lines by amount, each line's part taken from its transfers in proportion."""
    lines = sorted(lines, key=lambda o: o["order_id"])
    parts = dict(zip((o["order_id"] for o in lines),
                     apportion(disputed, [o["amount"] for o in lines]), strict=True))
    amounts = {o["order_id"]: o["amount"] for o in lines}
    return {t["id"]: t["amount"] * parts[t["metadata"]["order_id"]]
            // amounts[t["metadata"]["order_id"]] for t in m.fake.all_of("transfer")}


@pytest.mark.parametrize("order", ["in_order", "reversed"])
async def test_a_lost_dispute_told_before_the_split_carts_payment_reverses_once(
        tmp_path: Path, db_url: str, order: str) -> None:
    """The dispute's events (opened, lost) may come before the payment's: they are sent
    again until the payment is stored, then every line's transfers are taken back in
    part, once."""
    async with market(tmp_path, db_url, discovery_fee_bp=1000) as m:
        accounts, _, started = await split_cart(m)
        cart_id = started["cart_id"]
        m.fake.webhooks.hold()
        m.pay(started)
        disputed = 5997
        dispute = m.fake.create_dispute(platform_charge(m, cart_id)["id"], amount=disputed)
        m.fake.resolve_dispute(dispute["id"], won=False)
        m.fake.webhooks.release(order)
        await transfers_made(m, cart_id)
        want = reversals_wanted(m, started["orders"], disputed)
        async with asyncio.timeout(60):
            while sum(t["amount_reversed"] for t in m.fake.all_of("transfer")) < sum(
                    want.values()):
                await asyncio.sleep(0.05)
        await m.fake.webhooks.settled()
        if order == "reversed":  # the dispute was answered "send it again" at first
            retried = {a.event_id for a in m.fake.webhooks.attempts
                       if a.type.startswith("charge.dispute") and a.status == 409}
            assert len(retried) == 2
        for kind in ("charge.dispute.created", "charge.dispute.closed"):
            for event in m.fake.events_of(kind):
                m.fake.webhooks.redeliver(event)
        await m.fake.webhooks.settled()
        assert {t["id"]: t["amount_reversed"] for t in m.fake.all_of("transfer")} == want
        ledger = market_services(m).ledger
        postings = await ledger.postings("seller")
        assert sum(p["kind"] == "dispute" for p in postings) == 1
        assert set((await statuses(m)).values()) == {"revoked"}
        await books_match_stripe(m, accounts)


async def test_a_won_dispute_of_a_split_cart_told_out_of_order_restores_its_licences(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        accounts, beats, started = await split_cart(m)
        cart_id = started["cart_id"]
        m.pay(started)
        await transfers_made(m, cart_id)
        charge = platform_charge(m, cart_id)
        ledger = market_services(m).ledger
        clearing = await ledger.balance("seller", bookings.CLEARING, "usd")
        # the bank's decision arrives before the dispute's opening: it is sent again
        m.fake.webhooks.hold()
        dispute = m.fake.create_dispute(charge["id"])
        m.fake.resolve_dispute(dispute["id"], won=True)
        m.fake.webhooks.release("reversed")
        await m.fake.webhooks.settled()
        assert set((await statuses(m)).values()) == {"active"}
        store = market_services(m).store
        assert await store.db.fetchval(
            "SELECT status FROM mkt_disputes WHERE account_id = ? AND dispute_id = ?",
            "seller", dispute["id"]) == "won"
        # the platform keeps only Stripe's dispute fee off; nobody's transfer comes back
        assert await ledger.balance("seller", bookings.CLEARING, "usd") == (
            clearing - m.fake.dispute_fee)
        assert not any(t["amount_reversed"] for t in m.fake.all_of("transfer"))
        assert not await store.db.fetchval(
            "SELECT COUNT(*) FROM mkt_transfers WHERE account_id = ? AND reversed > 0",
            "seller")
        await books_match_stripe(m, accounts)


def capture_mail(sales: Any, addresses: list[str]) -> list[tuple[str, str, str]]:
    """Have the seller's alerts go to ``addresses`` (the seller's owners and admins) and
    be recorded: the list of (to, subject, mail id) sent, as it fills."""
    sent: list[tuple[str, str, str]] = []
    mail = sales.alerts.send_mail

    async def recipients(account_id: str) -> list[str]:
        return addresses if account_id == "seller" else []

    async def send_mail(to: str, subject: str, paragraphs: list[str], **more: Any) -> None:
        sent.append((to, subject, more["mail_id"]))
        await mail(to, subject, paragraphs, **more)

    sales.alerts.recipients, sales.alerts.send_mail = recipients, send_mail
    return sent


async def stopped_pay_job(queue: Any, order_id: str, name: str = PAY_JOB) -> Any:
    """The seller's queued transfer job (or job ``name``) of ``order_id``, cancelled (and
    waited for, if running), so it does not retry beside the test's own runs of it."""
    async with asyncio.timeout(30):
        while not (jobs := [j for j in await queue.find(account_id="seller", queue=name)
                            if j.payload["order_id"] == order_id]):
            await asyncio.sleep(0.05)
    [job] = jobs
    async with asyncio.timeout(60):
        while not (await queue.cancel("seller", job.id)).finished:
            await asyncio.sleep(0.05)
    return job


async def test_a_split_line_whose_transfers_fail_for_good_is_marked_told_and_reversed(
        tmp_path: Path, db_url: str) -> None:
    """The transfer job's last attempt marks the line failed with the reason, counts it
    and mails the seller's owners and admins once; the line's refund then takes back
    only what was transferred and its reversal ends recorded, a dead letter, not a
    silent wait."""
    async with market(tmp_path, db_url) as m:
        accounts, beats, started = await split_cart(m)
        # ben can no longer take transfers: Stripe refuses every attempt to pay him
        m.fake.objects[accounts["ben"]]["capabilities"].update(
            transfers="inactive", card_payments="inactive")
        first = next(o["order_id"] for o in started["orders"]
                     if o["beat_id"] == beats[0]["beat_id"])
        context = m.app[PLUGIN_CONTEXT_KEY]
        sales = market_services(m).fulfilment.split_sales
        sent = capture_mail(sales, ["Owner@example.com", "admin@example.com"])
        m.pay(started)
        await m.order("buyer", first, "paid")
        queue = context.background.queue
        job = await stopped_pay_job(queue, first)
        before = failures("transfer"), failures("reversal")
        last = JobContext(dataclasses.replace(job, attempts=job.max_attempts))
        payload = SplitTransfersPayload.model_validate(job.payload)
        for _ in range(2):  # the queue's last attempt, run twice: told once
            with pytest.raises(PaymentError):
                await run_split_transfers(context, payload, last)
        db = market_services(m).store.db
        row = await db.fetchrow("SELECT transferred_at, transfer_failed FROM mkt_orders "
                                "WHERE account_id = ? AND order_id = ?", "seller", first)
        assert row["transferred_at"] is None
        assert "transfers" in row["transfer_failed"], row["transfer_failed"]  # Stripe's words
        assert sorted(to for to, _, _ in sent) == ["admin@example.com", "owner@example.com"]
        assert all(first in subject for _, subject, _ in sent)
        assert failures("transfer") == before[0] + 1

        made = [t for t in m.fake.all_of("transfer") if t["metadata"]["order_id"] == first]
        assert {t["metadata"]["collaborator"] for t in made} == {"amy"}  # ben refused first
        await refund_until_reversal_dead(m, queue, first)
        [end] = await sales.reversals("seller", first)
        assert end["state"] == TRANSFERS_FAILED and "never paid out" in end["note"]
        made = [t for t in m.fake.all_of("transfer") if t["metadata"]["order_id"] == first]
        assert [t["amount_reversed"] for t in made] == [t["amount"] for t in made]
        assert int(end["reversed"]) == sum(t["amount"] for t in made)
        assert failures("reversal") == before[1] + 1
        assert len(sent) == 2
        await m.fake.webhooks.settled()
        await books_match_stripe(m, accounts)


async def test_a_reversal_giving_up_on_a_line_whose_transfer_job_died_tells_the_seller(
        tmp_path: Path, db_url: str) -> None:
    """A line's transfer job that never finishes (here cancelled while stuck, so no
    dead-letter notice marks the line or mails anyone). Its refund's reversal waits out
    its own attempts, records `timed_out` and mails the seller's owners and admins (one
    mail id each, however often it ends), not a dead letter nobody hears of."""
    from business.marketplace.schemas import SplitReversalPayload
    from business.marketplace.services import run_split_reversal
    from business.marketplace.split_sales import REVERSAL_JOB, TIMED_OUT
    from dawserver.plugin_api import Permanent

    async with market(tmp_path, db_url) as m:
        accounts, beats, started = await split_cart(m)
        # Stripe refuses ben's transfer, so the line's job retries until it is stopped
        m.fake.objects[accounts["ben"]]["capabilities"].update(
            transfers="inactive", card_payments="inactive")
        first = next(o["order_id"] for o in started["orders"]
                     if o["beat_id"] == beats[0]["beat_id"])
        context = m.app[PLUGIN_CONTEXT_KEY]
        sales = market_services(m).fulfilment.split_sales
        sent = capture_mail(sales, ["Owner@example.com", "admin@example.com"])
        m.pay(started)
        await m.order("buyer", first, "paid")
        queue = context.background.queue
        await stopped_pay_job(queue, first)  # stopped before it ended: nobody told
        status, body = await m.call("POST", f"{M}/sales/{first}/refund", who("seller"), {})
        assert status == 202, body
        await m.order("buyer", first, "refunded")
        job = await stopped_pay_job(queue, first, REVERSAL_JOB)
        assert sent == []
        last = JobContext(dataclasses.replace(job, attempts=job.max_attempts))
        payload = SplitReversalPayload.model_validate(job.payload)
        for _ in range(2):  # the reversal's last attempt, run twice: one mail id each
            with pytest.raises(Permanent, match="gave up waiting"):
                await run_split_reversal(context, payload, last)
        [end] = await sales.reversals("seller", first)
        assert end["state"] == TIMED_OUT
        assert sorted(to for to, _, _ in sent) == [
            "admin@example.com", "admin@example.com", "owner@example.com",
            "owner@example.com"]
        assert len({mail_id for _, _, mail_id in sent}) == 2
        assert all(first in subject and "refund" in subject for _, subject, _ in sent)


async def test_a_reversal_waits_for_its_lines_transfers_in_growing_steps(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """While the line's transfers are still being made, the reversal job asks to be tried
    again later each time, up to the transfer job's own backoff cap (not every second)."""
    from business.marketplace import services as market_services
    from business.marketplace.split_sales import TransfersPending
    from dawserver.plugin_api import Retry

    class Pending:
        async def reverse(self, *_: Any, **__: Any) -> list[dict[str, Any]]:
            raise TransfersPending("not yet")

    class Attempt:
        def __init__(self, attempt: int) -> None:
            self.attempt = attempt
            self.job = type("J", (), {"max_attempts": 30})()

    payload = type("P", (), {"seller": "s", "order_id": "o", "taken": 1, "of": 2,
                             "cause": "refund"})()
    monkeypatch.setattr(market_services, "services", lambda _context: type(
        "S", (), {"fulfilment": type("F", (), {"split_sales": Pending()})()})())
    waits = []
    for attempt in (1, 5, 10, 29):
        with pytest.raises(Retry) as retried:
            await market_services.run_split_reversal(None, payload, Attempt(attempt))
        waits.append(retried.value.after)
    assert waits == [2.0, 32.0, 900.0, 900.0]


async def test_a_split_line_whose_transfer_job_dies_by_worker_kills_is_marked_and_told(
        tmp_path: Path, db_url: str) -> None:
    """Workers killed on every attempt leave the line's transfer job to die at its next
    claim, without its handler's last attempt running: the job's dead-letter notice
    marks the line failed (the queue's words) and mails the seller's owners and admins,
    once, so the refund that follows is not its first news."""
    async with market(tmp_path, db_url) as m:
        accounts, beats, started = await split_cart(m)
        m.fake.objects[accounts["ben"]]["capabilities"].update(
            transfers="inactive", card_payments="inactive")
        first = next(o["order_id"] for o in started["orders"]
                     if o["beat_id"] == beats[0]["beat_id"])
        context = m.app[PLUGIN_CONTEXT_KEY]
        sales = market_services(m).fulfilment.split_sales
        sent = capture_mail(sales, ["owner@example.com"])
        m.pay(started)
        await m.order("buyer", first, "paid")
        queue = context.background.queue
        job = await stopped_pay_job(queue, first)
        # what killed workers leave: its last attempt claimed, its lease run out
        await queue.db.execute(
            "UPDATE jobs SET state = 'running', attempts = max_attempts, lease_until = 0, "
            "lease_token = 'killed', finished_at = NULL WHERE account_id = ? AND id = ?",
            "seller", job.id)
        queue.wake(PAY_JOB)
        db = market_services(m).store.db
        async with asyncio.timeout(30):
            while (failed := await db.fetchval(
                    "SELECT transfer_failed FROM mkt_orders WHERE account_id = ? AND "
                    "order_id = ?", "seller", first)) is None or not sent:
                await asyncio.sleep(0.05)
        assert "workers stopped before finishing" in failed
        assert (await queue.get("seller", job.id)).state == "dead"
        assert len(sent) == 1 and first in sent[0][1]


async def test_a_reversal_whose_job_dies_is_recorded_told_and_a_requeue_finishes_it(
        tmp_path: Path, db_url: str) -> None:
    """A refund's reversal that Stripe keeps refusing until its job dies (here its last
    claim after killed workers) ends recorded ``died`` with the queue's words, counted and
    mailed to the seller's owners and admins once; requeued once Stripe takes it, it
    takes each transfer back and ends ``reversed``."""
    from business.marketplace.split_sales import DIED, REVERSAL_JOB, REVERSED

    async with market(tmp_path, db_url) as m:
        accounts, beats, started = await split_cart(m)
        first = next(o["order_id"] for o in started["orders"]
                     if o["beat_id"] == beats[0]["beat_id"])
        context = m.app[PLUGIN_CONTEXT_KEY]
        sales = market_services(m).fulfilment.split_sales
        sent = capture_mail(sales, ["owner@example.com"])
        m.pay(started)
        await m.order("buyer", first, "paid")
        await transfers_made(m, started["cart_id"])
        queue = context.background.queue
        before = failures("reversal")
        m.fake.fail_next(500, times=10_000, path="/reversals")  # Stripe refuses them
        status, body = await m.call("POST", f"{M}/sales/{first}/refund", who("seller"), {})
        assert status == 202, body
        await m.order("buyer", first, "refunded")
        job = await stopped_pay_job(queue, first, REVERSAL_JOB)
        await queue.db.execute(  # what killed workers leave: its last claim's lease ran out
            "UPDATE jobs SET state = 'running', attempts = max_attempts, lease_until = 0, "
            "lease_token = 'killed', finished_at = NULL WHERE account_id = ? AND id = ?",
            "seller", job.id)
        queue.wake(REVERSAL_JOB)
        async with asyncio.timeout(30):
            while not (ends := await sales.reversals("seller", first)) or not sent:
                await asyncio.sleep(0.05)
        [end] = ends
        assert end["state"] == DIED and "workers stopped" in end["note"]
        assert int(end["reversed"]) == 0
        assert len(sent) == 1 and first in sent[0][1] and "not taken back" in sent[0][1]
        assert failures("reversal") == before + 1
        made = [t for t in m.fake.all_of("transfer") if t["metadata"]["order_id"] == first]
        assert all(t["amount_reversed"] == 0 for t in made)

        m.fake.clear_faults()  # Stripe takes reversals again
        await queue.requeue("seller", job.id)
        async with asyncio.timeout(30):
            while (await sales.reversals("seller", first))[0]["state"] != REVERSED:
                await asyncio.sleep(0.05)
        made = [t for t in m.fake.all_of("transfer") if t["metadata"]["order_id"] == first]
        assert [t["amount_reversed"] for t in made] == [t["amount"] for t in made]
        # a notice of the first death arriving late overwrites no end an attempt recorded
        assert not await sales.reversal_died("seller", first, end["cause"], taken=1, of=1,
                                             reason="late")
        assert (await sales.reversals("seller", first))[0]["state"] == REVERSED
        assert len(sent) == 1
        await m.fake.webhooks.settled()
        await books_match_stripe(m, accounts)
