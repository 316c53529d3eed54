"""Payouts, disputes and collaborator splits: instant or standard payouts with their
fee and limit, a payout the bank returns given back in our books, a payout racing
purchases on PostgreSQL never overdrawing, disputes blocking and re-enabling a licence
with their money booked, and split sales paid by transfers that refunds reverse."""

from __future__ import annotations

import asyncio
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import (
    DAY,
    Market,
    market,
    market_services,
    onboarded_seller,
    stripe_world,
    who,
)

from business.marketplace import bookings
from business.marketplace.disputes import shares_taken
from business.marketplace.errors import CatalogueInvalid, InsufficientFunds
from business.marketplace.fees import MAX_BP, check_fee_bp
from business.marketplace.ledger import MIGRATIONS, Ledger
from business.marketplace.onboarding import label
from business.marketplace.payouts import Payouts
from business.marketplace.splits import Share, Splits, check_shares, split_amount
from business.marketplace.webhooks import Outcome, StripeEvent
from database import open_database

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]
M = "/api/marketplace"


async def bought(m: Market) -> tuple[str, dict[str, Any]]:
    """``buyer`` bought a lease of a beat of ``seller``: the seller's Stripe account and
    the buyer's licence."""
    account = await m.seller("seller")
    beat = await m.beat("seller")
    status, started = await m.checkout("buyer", "seller", beat["beat_id"], "wav_lease")
    assert status == 201, started
    m.pay(started)
    await m.order("buyer", started["order"]["order_id"], "paid")
    [licence] = await m.library("buyer")
    return account, licence


async def settled(m: Market) -> None:
    await m.fake.webhooks.settled()


async def test_shares_must_make_a_whole_and_split_every_cent() -> None:
    a, b, c = (Share(n, f"acct_{n}", bp) for n, bp in (("a", 3333), ("b", 3333),
                                                       ("c", 3334)))
    assert split_amount(100, [a, b, c]) == [33, 33, 34]
    assert split_amount(1, [a, b, c]) == [0, 0, 1]
    for amount in (0, 1, 7, 99, 10_001, 123_457):
        assert sum(split_amount(amount, [a, b, c])) == amount
    with pytest.raises(CatalogueInvalid, match="exactly 10000"):
        check_shares([a, b])
    with pytest.raises(CatalogueInvalid, match="twice"):
        check_shares([a, a, Share("d", "acct_d", 3334)])
    with pytest.raises(CatalogueInvalid, match="connected Stripe account"):
        check_shares([Share("x", "", 10_000)])


async def test_a_disputed_charge_is_spread_over_its_paid_lines() -> None:
    lines = [{"order_id": "a", "amount": 2999}, {"order_id": "b", "amount": 0},
             {"order_id": "c", "amount": 1000}]
    assert shares_taken(3999, lines) == [("a", 2999, 2999), ("c", 1000, 1000)]
    assert shares_taken(2000, lines) == [("a", 1499, 2999), ("c", 500, 1000)]
    assert shares_taken(500, [{"order_id": "a", "amount": 499}]) == [("a", 499, 499)]
    assert shares_taken(100, [{"order_id": "b", "amount": 0}]) == []


async def test_instant_when_eligible_with_its_fee_standard_otherwise(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        account, _ = await bought(m)
        m.fake.advance(3 * DAY)  # the sale's funds become available
        m.fake.set_instant_eligible(account, False)
        ledger = market_services(m).ledger
        balance = await ledger.balance("seller", bookings.SELLER, "usd")
        status, options = await m.call("GET", f"{M}/payouts/options", who("seller"))
        assert status == 200, options
        assert options["available"] == balance > 0
        assert options["instant"]["eligible"] is False
        status, made = await m.call("POST", f"{M}/payouts", who("seller"),
                                    {"amount": 1000, "method": "instant"})
        assert status == 422 and "not eligible" in made["error"], made
        status, made = await m.call("POST", f"{M}/payouts", who("seller"), {"amount": 1000})
        assert status == 201 and made["method"] == "standard" and made["fee"] == 0, made

        m.fake.set_instant_eligible(account, True)
        status, options = await m.call("GET", f"{M}/payouts/options", who("seller"))
        assert options["instant"]["eligible"] is True
        assert options["instant"]["remaining_today"] == options["instant"]["daily_limit"]
        status, instant = await m.call("POST", f"{M}/payouts", who("seller"), {"amount": 1000})
        assert status == 201 and instant["method"] == "instant", instant
        assert instant["fee"] == 50  # 1.5 % of 10.00 is under the 0.50 minimum
        stripe_payout = m.fake.get(account, "payout", instant["stripe_payout"])
        assert stripe_payout["method"] == "instant" and stripe_payout["amount"] == 1000
        assert await ledger.balance("seller", bookings.SELLER, "usd") == balance - 2050
        status, options = await m.call("GET", f"{M}/payouts/options", who("seller"))
        assert options["instant"]["used_today"] == 1000

        status, too_much = await m.call("POST", f"{M}/payouts", who("seller"),
                                        {"amount": balance, "method": "standard"})
        assert status == 409 and "balance is" in too_much["error"], too_much
        assert await ledger.balance("seller", bookings.SELLER, "usd") == balance - 2050
        status, mine = await m.call("GET", f"{M}/payouts", who("seller"))
        assert {p["payout_id"] for p in mine} == {made["payout_id"], instant["payout_id"]}
        await m.seller("other")
        status, theirs = await m.call("GET", f"{M}/payouts", who("other"))
        assert status == 200 and theirs == []  # another seller's payouts are not listed


async def test_a_payout_the_bank_returns_is_given_back_in_our_books(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        account, _ = await bought(m)
        m.fake.advance(3 * DAY)
        ledger = market_services(m).ledger
        before = await ledger.balance("seller", bookings.SELLER, "usd")
        _, first = await m.call("POST", f"{M}/payouts", who("seller"),
                                {"amount": 2000, "method": "standard"})
        _, second = await m.call("POST", f"{M}/payouts", who("seller"),
                                 {"amount": 1500, "method": "standard"})
        assert await ledger.balance("seller", bookings.SELLER, "usd") == before - 3500
        m.fake.settle_payouts(account)
        await settled(m)
        m.fake.fail_payout(second["stripe_payout"], "account_closed")
        await settled(m)
        payouts = {p["payout_id"]: p for p in (await m.call(
            "GET", f"{M}/payouts", who("seller")))[1]}
        assert payouts[first["payout_id"]]["status"] == "paid"
        assert payouts[second["payout_id"]]["status"] == "failed"
        assert "closed" in payouts[second["payout_id"]]["note"]
        assert await ledger.balance("seller", bookings.SELLER, "usd") == before - 2000
        assert await ledger.audit("seller") == []
        # our books and Stripe's balance agree
        stripe_balance = m.fake.balances(account)["usd"]
        assert stripe_balance["available"] + stripe_balance["pending"] == before - 2000


async def test_a_dispute_blocks_downloads_books_its_money_and_a_win_restores_it(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        account, licence = await bought(m)
        ledger = market_services(m).ledger
        before = await ledger.balance("seller", bookings.SELLER, "usd")
        [charge] = [c for c in m.fake.all_of("charge") if m.fake.owner[c["id"]] == account]
        dispute = m.fake.create_dispute(charge["id"])
        await settled(m)
        assert (await m.library("buyer"))[0]["status"] == "disputed"
        link = next(x["url"] for x in licence["links"] if x["kind"] == "wav")
        answer = await m.client.get(link)
        assert answer.status == 403  # no downloads while the dispute is open
        fee = m.fake.dispute_fee
        after = await ledger.balance("seller", bookings.SELLER, "usd")
        assert after == before - charge["amount"] - fee
        kinds = [p["kind"] for p in await ledger.postings("seller")]
        assert kinds.count("dispute") == 1
        # a replayed delivery changes nothing
        event = StripeEvent.from_dict(m.fake.events_of("charge.dispute.created")[-1])
        money = market_services(m).fulfilment.money
        assert await money.handle(event) is Outcome.DUPLICATE
        assert [p["kind"] for p in await ledger.postings("seller")].count("dispute") == 1
        m.fake.resolve_dispute(dispute["id"], won=True)
        await settled(m)
        assert (await m.library("buyer"))[0]["status"] == "active"
        assert (await m.client.get(link)).status == 200
        assert await ledger.balance("seller", bookings.SELLER, "usd") == before - fee
        assert await ledger.audit("seller") == []


async def test_a_lost_dispute_revokes_the_licence(tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        account, _ = await bought(m)
        [charge] = [c for c in m.fake.all_of("charge") if m.fake.owner[c["id"]] == account]
        dispute = m.fake.create_dispute(charge["id"])
        await settled(m)
        m.fake.resolve_dispute(dispute["id"], won=False)
        await settled(m)
        assert (await m.library("buyer"))[0]["status"] == "revoked"
        kinds = [p["kind"] for p in await market_services(m).ledger.postings("seller")]
        assert "dispute_won" not in kinds
        # a dispute closed before we saw it opened is sent again later, not booked
        data = m.fake.events_of("charge.dispute.closed")[-1]
        early = StripeEvent.from_dict({**data, "id": "evt_early", "data": {"object": {
            **data["data"]["object"], "id": "dp_unseen", "status": "won"}}})
        money = market_services(m).fulfilment.money
        assert await money.handle(early) is Outcome.RETRY
        assert await money.handle(early) is Outcome.RETRY  # nothing was recorded
        kinds = [p["kind"] for p in await market_services(m).ledger.postings("seller")]
        assert "dispute_won" not in kinds


@pytest.mark.parametrize("deal", [None, {"buy": 1, "free": 1}])
async def test_a_dispute_of_a_carts_one_charge_blocks_every_line(
        tmp_path: Path, deal: dict[str, int] | None) -> None:
    """A cart paid with one charge on the seller's account: its dispute blocks every
    line's licence and a loss revokes them all, a free line of a bulk deal included, and
    no delivery of the events fails."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        account = await m.seller("seller")
        if deal is not None:
            status, made = await m.call("PUT", f"{M}/deals/b1g1", who("seller"), deal)
            assert status in (200, 201), made
        for n, tier in enumerate(("mp3_lease", "wav_lease")):
            beat = await m.beat("seller", title=f"Beat {n}")
            status, cart = await m.call("PUT", f"{M}/carts/seller/items/{beat['beat_id']}",
                                        who("buyer"), {"tier": tier})
            assert status == 200, cart
        status, started = await m.call("POST", f"{M}/carts/seller/checkout", who("buyer"),
                                       {})
        assert status == 201, started
        m.pay(started)
        for line in started["orders"]:
            await m.order("buyer", line["order_id"], "paid")
        amounts = sorted(line["amount"] for line in started["orders"])
        assert (amounts[0] == 0) is (deal is not None)  # the deal made one line free
        [charge] = [c for c in m.fake.all_of("charge") if m.fake.owner[c["id"]] == account]
        dispute = m.fake.create_dispute(charge["id"])
        await settled(m)
        assert [x["status"] for x in await m.library("buyer")] == ["disputed"] * 2
        m.fake.resolve_dispute(dispute["id"], won=False)
        await settled(m)
        assert [x["status"] for x in await m.library("buyer")] == ["revoked"] * 2
        failed = [a for a in m.fake.webhooks.attempts if a.status >= 500]
        assert failed == []  # (a 409 asks Stripe to send an early event again: allowed)
        assert await market_services(m).ledger.audit("seller") == []


@pytest.mark.parametrize("order", ["in_order", "reversed"])
async def test_a_lost_dispute_told_before_the_orders_payment_is_booked_once(
        tmp_path: Path, order: str) -> None:
    """A dispute of a single order's direct charge that comes before the payment's events
    is sent again until the order is paid, then booked and its licence revoked, once."""
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        account = await m.seller("seller")
        beat = await m.beat("seller")
        status, started = await m.checkout("buyer", "seller", beat["beat_id"], "wav_lease")
        assert status == 201, started
        m.fake.webhooks.hold()
        m.pay(started)
        [charge] = [c for c in m.fake.all_of("charge") if m.fake.owner[c["id"]] == account]
        dispute = m.fake.create_dispute(charge["id"])
        m.fake.resolve_dispute(dispute["id"], won=False)
        m.fake.webhooks.release(order)
        await settled(m)
        for kind in ("charge.dispute.created", "charge.dispute.closed"):
            for event in m.fake.events_of(kind):
                m.fake.webhooks.redeliver(event)
        await settled(m)
        assert (await m.library("buyer"))[0]["status"] == "revoked"
        ledger = market_services(m).ledger
        kinds = [p["kind"] for p in await ledger.postings("seller")]
        assert kinds.count("dispute") == 1 and "dispute_won" not in kinds
        assert await ledger.audit("seller") == []
        found = m.fake.balances(account)["usd"]
        assert await ledger.balance("seller", bookings.SELLER, "usd") == (
            found["available"] + found["pending"])


async def test_partial_refunds_of_one_sale_book_each_difference(
        db_url: str, tmp_path: Path) -> None:
    """Stripe's charge.refunded carries the charge's running total: the second partial
    refund books what the total grew by, not the total again."""
    async with market(tmp_path, db_url) as m:
        account, _ = await bought(m)
        services = market_services(m)
        ledger = services.ledger
        order = await services.store.order("seller", (await m.library("buyer"))[0][
            "order_id"])
        for n, (amount, total) in enumerate(((1000, 1000), (700, 1700), (999, 2699))):
            await services.gateway.refund(idempotency_key=f"partial-{n}",
                                          payment_intent=order.payment_intent,
                                          amount=amount, account=account)
            await settled(m)
            assert (await ledger.balances("seller"))[("external:refunds", "usd")] == total, n
            found = m.fake.balances(account)["usd"]
            assert await ledger.balance("seller", bookings.SELLER, "usd") == (
                found["available"] + found["pending"]), n
        for event in m.fake.events_of("charge.refunded"):  # delivered again: no change
            m.fake.webhooks.redeliver(event)
        await settled(m)
        assert (await ledger.balances("seller"))[("external:refunds", "usd")] == 2699
        assert await ledger.audit("seller") == []


async def test_split_sales_transfer_each_share_and_refunds_reverse_them(
        tmp_path: Path) -> None:
    async with stripe_world() as (fake, gateway), open_database(
            f"sqlite://{tmp_path / 's.sqlite3'}") as db:
        await db.migrate(MIGRATIONS)
        ledger = Ledger(db)
        shares = [Share(name, await onboarded_seller(fake, gateway, name), bp)
                  for name, bp in (("seller", 5000), ("amy", 3333), ("ben", 1667))]
        intent = await gateway.create_payment_intent(
            idempotency_key="pi-split", amount=10_000, currency="usd",
            payment_method="pm_card_visa", confirm=True, transfer_group="ord_1",
            expand=["latest_charge.balance_transaction"])
        charge = intent.latest_charge
        net = 10_000 - int(charge.balance_transaction.fee)
        await ledger.post("seller", bookings.sale("sale:ord_1", "usd", gross=10_000,
                                                  stripe_fee=10_000 - net,
                                                  mirror=bookings.CLEARING))
        splits = Splits(db, ledger, gateway)
        paid = await splits.pay("seller", "ord_1", charge=charge.id, amount=net,
                                currency="usd", shares=shares)
        again = await splits.pay("seller", "ord_1", charge=charge.id, amount=net,
                                 currency="usd", shares=shares)
        assert paid == again and len(fake.all_of("transfer")) == 3  # once per share
        for t in fake.all_of("transfer"):
            assert t["transfer_group"] == "ord_1" and t["source_transaction"] == charge.id
        assert sum(p["amount"] for p in paid) == net
        parts = {p["collaborator"]: p["amount"] for p in paid}
        for name in ("seller", "amy", "ben"):
            assert await ledger.balance(name, bookings.SELLER, "usd") == parts[name]
        assert await ledger.balance("seller", bookings.CLEARING, "usd") == 0

        # a quarter disputed: a quarter of every share back, once however often it runs
        first = await splits.reverse("seller", "ord_1", taken=2500, of=10_000,
                                     cause="dispute:dp_1")
        await splits.reverse("seller", "ord_1", taken=2500, of=10_000, cause="dispute:dp_1")
        back = {r["transfer"]: r["amount"] for r in first}
        for t in fake.all_of("transfer"):
            assert t["amount_reversed"] == back[t["id"]] == t["amount"] // 4
        # then refunded in full: the rest of every share comes back
        await splits.reverse("seller", "ord_1", taken=10_000, of=10_000, cause="refund:ord_1")
        assert all(t["reversed"] for t in fake.all_of("transfer"))
        for name in ("seller", "amy", "ben"):
            assert await ledger.balance(name, bookings.SELLER, "usd") == 0
            assert await ledger.audit(name) == []
        assert await ledger.balance("seller", bookings.CLEARING, "usd") == net


async def test_payouts_racing_purchases_never_overdraw(db_url: str) -> None:
    """Five sales reach Stripe; their postings race eight payouts of 90.00: at most as
    many payouts succeed as the booked balance allowed at each moment, none overdraws,
    and our books end equal to Stripe's balance."""
    async with stripe_world() as (fake, gateway), open_database(db_url) as db:
        await db.migrate(MIGRATIONS)
        ledger = Ledger(db)
        account = await onboarded_seller(fake, gateway, "seller")
        nets = []
        for n in range(5):
            intent = await gateway.create_payment_intent(
                idempotency_key=f"pi-{n}", amount=10_000, currency="usd",
                payment_method="pm_card_visa", confirm=True, account=account,
                expand=["latest_charge.balance_transaction"])
            nets.append(10_000 - int(intent.latest_charge.balance_transaction.fee))
        fake.advance(3 * DAY)
        await ledger.post("seller", bookings.sale("sale:0", "usd", gross=10_000,
                                                  stripe_fee=10_000 - nets[0]))
        payouts = Payouts(db, ledger, gateway)

        async def purchase(n: int) -> None:
            await ledger.post("seller", bookings.sale(f"sale:{n}", "usd", gross=10_000,
                                                      stripe_fee=10_000 - nets[n]))

        async def payout() -> str:
            try:
                made = await payouts.request("seller", account, amount=9_000,
                                             currency="usd", method="standard")
            except InsufficientFunds:
                return "refused"
            return str(made["status"])

        async with asyncio.timeout(60):
            results = await asyncio.gather(*[purchase(n) for n in range(1, 5)],
                                           *[payout() for _ in range(8)])
        outcomes = [r for r in results if r is not None]
        made = outcomes.count("pending")
        assert made + outcomes.count("refused") == 8
        assert 1 <= made <= sum(nets) // 9_000
        final = await ledger.balance("seller", bookings.SELLER, "usd")
        assert final == sum(nets) - 9_000 * made >= 0
        assert await ledger.audit("seller") == []
        assert len(fake.all_of("payout")) == made
        assert fake.balances(account)["usd"]["available"] == final


async def test_only_discovery_sales_carry_the_platform_fee(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="basis points"):
        check_fee_bp("10")
    with pytest.raises(ValueError, match="basis points"):
        check_fee_bp(MAX_BP + 1)
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}",
                      discovery_fee_bp=1000) as m:
        account = await m.seller("seller")
        beat = await m.beat("seller")
        ledger = market_services(m).ledger
        paid = {}
        for buyer, source in (("found", "marketplace"), ("direct", ""), ("social", "tiktok")):
            status, started = await m.checkout(buyer, "seller", beat["beat_id"], "wav_lease",
                                               utm_source=source)
            assert status == 201, started
            m.pay(started)
            paid[buyer] = await m.order(buyer, started["order"]["order_id"], "paid")
        price = paid["found"]["amount"]
        fee = int((Decimal(price) / 10).quantize(Decimal(1), ROUND_HALF_UP))  # 10 %
        fees = {i["metadata"]["buyer"]: i["application_fee_amount"]
                for i in m.fake.all_of("payment_intent") if m.fake.owner[i["id"]] == account}
        assert fees == {"found": fee, "direct": None, "social": None}
        assert await ledger.balance("seller", "platform:fees", "usd") == fee
        # the seller's books hold what Stripe's balance does: the fee went to the platform
        stripe = m.fake.balances(account)["usd"]
        assert await ledger.balance("seller", bookings.SELLER, "usd") == (
            stripe["available"] + stripe["pending"])
        assert await ledger.audit("seller") == []


async def test_the_onboarding_page_shows_capabilities_requirements_and_a_fresh_link(
        tmp_path: Path) -> None:
    assert label("individual.dob.day") == "Individual: dob day"
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        page = f"{M}/seller/onboarding"
        assert (await m.client.get(page, headers=who("seller"))).status == 409  # no account
        status, body = await m.call("POST", f"{M}/seller/stripe", who("seller"), {
            "return_url": "https://example.com/back", "refresh_url": "https://example.com/r"})
        assert status == 200, body
        account = body["stripe_account"]
        answer = await m.client.get(page, headers=who("seller"))
        html = await answer.text()
        assert answer.status == 200 and answer.content_type == "text/html"
        assert "Content-Security-Policy" in answer.headers
        assert account in html and "not ready yet" in html
        due = m.fake.objects[account]["requirements"]["currently_due"]
        assert due and all(label(r) in html for r in due)
        assert "inactive" in html
        token = html.split("/connect/onboarding/", 1)[1].split('"', 1)[0]
        link = m.fake.account_links[token]
        assert link["refresh_url"].endswith(f"{page}/refresh")
        assert link["return_url"].endswith(page)

        # the link expired: Stripe sends the browser to refresh, which makes a new one
        m.fake.advance(m.fake.account_link_lifetime + 1)
        answer = await m.client.get(f"{page}/refresh", headers=who("seller"),
                                    allow_redirects=False)
        assert answer.status == 303
        fresh = answer.headers["Location"].rsplit("/", 1)[1]
        assert fresh != token and m.fake.account_links[fresh]["expires_at"] > m.fake.now()

        m.fake.complete_onboarding(account)
        html = await (await m.client.get(page, headers=who("seller"))).text()
        assert "<strong>ready</strong>" in html and "Nothing is due now" in html
        assert "inactive" not in html and "/connect/onboarding/" not in html
        other = await m.client.get(page, headers=who("buyer"))
        assert other.status == 409  # another account sees nothing of this one


async def test_a_payout_stripe_refuses_gives_the_money_back(tmp_path: Path) -> None:
    async with stripe_world() as (fake, gateway), open_database(
            f"sqlite://{tmp_path / 'p.sqlite3'}") as db:
        await db.migrate(MIGRATIONS)
        ledger = Ledger(db)
        account = await onboarded_seller(fake, gateway, "seller")
        # our books hold a sale Stripe's balance does not (yet): Stripe refuses the payout
        await ledger.post("seller", bookings.sale("sale:x", "usd", gross=10_000,
                                                  stripe_fee=320))
        made = await Payouts(db, ledger, gateway).request(
            "seller", account, amount=5_000, currency="usd", method="standard")
        assert made["status"] == "refused" and "insufficient funds" in made["note"]
        assert made["stripe_payout"] is None and fake.all_of("payout") == []
        assert await ledger.balance("seller", bookings.SELLER, "usd") == 9_680
        assert await ledger.audit("seller") == []
        with pytest.raises(CatalogueInvalid, match="method"):
            await Payouts(db, ledger, gateway).request("seller", account, amount=1,
                                                       currency="usd", method="fast")


async def test_a_payout_stripe_did_not_answer_is_retried_with_the_same_key(
        tmp_path: Path) -> None:
    async with market(tmp_path, f"sqlite://{tmp_path / 'm.sqlite3'}") as m:
        account, _ = await bought(m)
        m.fake.advance(3 * DAY)
        ledger = market_services(m).ledger
        before = await ledger.balance("seller", bookings.SELLER, "usd")
        m.fake.fail_next(500, path="/v1/payouts")
        status, body = await m.call("POST", f"{M}/payouts", who("seller"),
                                    {"amount": 1000, "method": "standard"})
        assert status == 503, body
        [stuck] = (await m.call("GET", f"{M}/payouts", who("seller")))[1]
        assert stuck["status"] == "pending" and stuck["stripe_payout"] is None
        assert await ledger.balance("seller", bookings.SELLER, "usd") == before - 1000
        retry = f"{M}/payouts/{stuck['payout_id']}/retry"
        status, again = await m.call("POST", retry, who("seller"), {})
        assert status == 200 and again["stripe_payout"], again
        status, twice = await m.call("POST", retry, who("seller"), {})
        assert twice["stripe_payout"] == again["stripe_payout"]
        assert [p["amount"] for p in m.fake.all_of("payout")] == [1000]  # made once
        assert await ledger.balance("seller", bookings.SELLER, "usd") == before - 1000
        await m.seller("other")
        status, _ = await m.call("POST", retry, who("other"), {})
        assert status == 404  # another seller's payout answers like a missing one


async def test_refunds_booked_before_the_running_total_was_kept_are_counted(
        db_url: str) -> None:
    """Migration 26 fills each order's refunded_amount from the refunds already booked
    (a single sale's ``refund:<order>:<total>``, a cart line's ``refund:<order>``), so an
    older order's next partial refund books only its growth."""
    before = [m for m in MIGRATIONS if m.version < 26]
    async with open_database(db_url) as db:
        await db.migrate(before)
        ledger = Ledger(db)
        booked = {"o1": [("refund:o1:1000", 1000), ("refund:o1:1500", 500)],
                  "o2": [("refund:o2", 700)], "o10": [], "o1_": []}
        async with db.transaction() as tx:
            for order, refunds in booked.items():
                await tx.execute(
                    "INSERT INTO mkt_orders (account_id, order_id, beat_id, tier, "
                    "buyer_account, amount, currency, status, stripe_account, created_at) "
                    "VALUES ('seller', ?, 'b', 'wav_lease', 'buyer', 2000, 'usd', "
                    "'refunded', 'acct_s', 0)", order)
                for key, amount in refunds:
                    await ledger.record(tx, "seller", bookings.refund(
                        key, "usd", amount=amount, imposed=True))
        await db.migrate(MIGRATIONS)
        found = {r["order_id"]: r["refunded_amount"] for r in await db.fetch(
            "SELECT order_id, refunded_amount FROM mkt_orders")}
    assert found == {"o1": 1500, "o2": 700, "o10": 0, "o1_": 0}


async def test_cart_line_refunds_booked_under_the_old_key_are_counted(
        db_url: str) -> None:
    """Migration 27 counts a cart line's refunds booked after migration 26 under the old
    key (``refund:<order>``, refunded_amount left 0), so its next refund books only its
    growth; a refund booked against the cart (``refund:cart:...``) is no line's."""
    async with open_database(db_url) as db:
        await db.migrate([m for m in MIGRATIONS if m.version < 27])
        ledger = Ledger(db)
        async with db.transaction() as tx:
            for order in ("o3", "o4"):
                await tx.execute(
                    "INSERT INTO mkt_orders (account_id, order_id, beat_id, tier, "
                    "buyer_account, amount, currency, status, stripe_account, created_at, "
                    "cart_id) VALUES ('seller', ?, 'b', 'wav_lease', 'buyer', 2000, 'usd', "
                    "'refunded', 'acct_s', 0, 'c1')", order)
            for key, amount in (("refund:o3", 700), ("refund:cart:c1:re_1", 300)):
                await ledger.record(tx, "seller", bookings.refund(
                    key, "usd", amount=amount, imposed=True))
        await db.migrate(MIGRATIONS)
        found = {r["order_id"]: r["refunded_amount"] for r in await db.fetch(
            "SELECT order_id, refunded_amount FROM mkt_orders")}
    assert found == {"o3": 700, "o4": 0}
