"""The Stripe gateway (the production path, pointed at the fake by configuration): error
mapping, idempotency keys on every write, Connect transfers and their reversal on a
refund, instant payouts, a returned payout reversed in our books, memberships whose
renewal fails, and entitlements."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from marketplace_helpers import DAY, onboarded_seller, stripe_world

from business.marketplace import bookings
from business.marketplace.errors import (
    IdempotencyMismatch,
    InstantPayoutRefused,
    InsufficientFunds,
    InsufficientStripeBalance,
    PaymentDeclined,
    StripeMisconfigured,
    StripeObjectMissing,
    StripeRejected,
    StripeUnavailable,
)
from business.marketplace.fakes.stripe import FakeStripe
from business.marketplace.ledger import MIGRATIONS, Ledger, Posting, entries
from business.marketplace.reconciliation import reconcile
from business.marketplace.stripe_gateway import (
    StripeGateway,
    StripeSettings,
    idempotency_key,
)
from database import open_database


def run(coro):  # noqa: ANN001, ANN201 - a test's coroutine, under a timeout
    async def bounded():  # noqa: ANN202
        async with asyncio.timeout(60):
            return await coro
    return asyncio.run(bounded())


@pytest.mark.parametrize(("card", "decline"), [
    ("pm_card_chargeDeclined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc"),
])
def test_a_decline_is_payment_declined_with_its_reason(card: str, decline: str) -> None:
    async def go() -> None:
        async with stripe_world() as (_, gateway):
            with pytest.raises(PaymentDeclined) as caught:
                await gateway.create_payment_intent(
                    idempotency_key=idempotency_key("pay", card), amount=2000,
                    currency="usd", payment_method=card, confirm=True)
            error = caught.value
            assert error.decline_code == decline and not error.retryable
            assert error.payment_intent_id and error.charge_id and error.status == 402
            intent = await gateway.retrieve_payment_intent(error.payment_intent_id)
            assert intent.last_payment_error.charge == error.charge_id
    run(go())


def test_every_write_carries_an_idempotency_key_and_a_retry_pays_once() -> None:
    async def go() -> None:
        async with stripe_world() as (fake, gateway):
            with pytest.raises(ValueError, match="idempotency key"):
                await gateway.create_customer(idempotency_key="", email="a@example.com")
            key = idempotency_key("order", "o-1")
            customer = await gateway.create_customer(idempotency_key=idempotency_key(
                "customer", "u-1"), email="buyer@example.com")
            first = await gateway.create_payment_intent(
                idempotency_key=key, amount=5000, currency="usd", customer=customer.id,
                payment_method="pm_card_visa", confirm=True)
            # the job that sent it crashed before storing the answer, and runs again
            again = await gateway.create_payment_intent(
                idempotency_key=key, amount=5000, currency="usd", customer=customer.id,
                payment_method="pm_card_visa", confirm=True)
            assert again.id == first.id
            assert len(fake.all("platform", "charge")) == 1
            with pytest.raises(IdempotencyMismatch):
                await gateway.create_payment_intent(
                    idempotency_key=key, amount=5001, currency="usd",
                    payment_method="pm_card_visa", confirm=True)
            await gateway.refund(idempotency_key=idempotency_key("refund", "o-1"),
                                 payment_intent=first.id, amount=1000)
            posts = [r for r in fake.requests if r[0] in ("POST", "DELETE")]
            assert posts and all(r[3] and r[3].startswith("mbs-") for r in posts)
    run(go())


def test_stripe_faults_are_retryable_and_bad_requests_are_not() -> None:
    async def go() -> None:
        async with stripe_world() as (fake, gateway):
            fake.fail_next(500, path="/v1/customers")
            with pytest.raises(StripeUnavailable) as caught:
                await gateway.create_customer(idempotency_key="mbs-c1", name="x")
            assert caught.value.retryable
            fake.fail_next(429)
            with pytest.raises(StripeUnavailable):
                await gateway.balance()
            with pytest.raises(StripeObjectMissing):
                await gateway.retrieve_payment_intent("pi_missing")
            with pytest.raises(StripeRejected) as refused:
                await gateway.create_payment_intent(idempotency_key="mbs-p0", amount=0,
                                                    currency="usd")
            assert refused.value.param == "amount" and not refused.value.retryable
            with pytest.raises(StripeMisconfigured):
                await gateway.balance(account="acct_someone_elses")
        async with stripe_world(retries=1) as (fake, gateway):
            fake.fail_next(500, path="/v1/customers")  # stripe-python retries, same key
            customer = await gateway.create_customer(idempotency_key="mbs-c2", name="y")
            assert [r[3] for r in fake.requests if r[1] == "/v1/customers"] == [
                "mbs-c2", "mbs-c2"] and customer.name == "y"
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        async with StripeGateway(StripeSettings("sk_test_fake", api_base=f"http://127.0.0.1:"
                                                f"{port}", max_network_retries=0)) as gone:
            with pytest.raises(StripeUnavailable):
                await gone.balance()
    run(go())


def test_a_refund_reverses_the_collaborators_transfer_in_both_books(tmp_path: Path) -> None:
    async def go() -> None:
        async with stripe_world() as (fake, gateway), \
                open_database(f"sqlite://{tmp_path / 'l.sqlite3'}") as db:
            await db.migrate(MIGRATIONS)
            ledger = Ledger(db)
            collaborator = await onboarded_seller(fake, gateway, "bo")
            pending = await gateway.create_connected_account(idempotency_key="mbs-a-new")
            intent = await gateway.create_payment_intent(
                idempotency_key="mbs-o7", amount=10_000, currency="usd",
                payment_method="pm_card_visa", confirm=True, transfer_group="o-7",
                expand=["latest_charge.balance_transaction"])
            charge = intent.latest_charge
            txn = charge.balance_transaction
            await ledger.post("seller-ada", bookings.sale(
                "charge:" + charge.id, "usd", gross=txn.amount, stripe_fee=txn.fee,
                stripe_txn=txn.id, mirror=bookings.CLEARING))
            with pytest.raises(StripeRejected) as caught:  # not onboarded yet
                await gateway.transfer(idempotency_key="mbs-t0", amount=3000,
                                       currency="usd", destination=pending.id,
                                       source_transaction=charge.id)
            assert caught.value.code == "insufficient_capabilities_for_transfer"
            transfer = await gateway.transfer(
                idempotency_key=idempotency_key("transfer", "o-7", "bo"), amount=3000,
                currency="usd", destination=collaborator, source_transaction=charge.id,
                transfer_group="o-7")
            arrived = fake.get(collaborator, "charge", transfer.destination_payment)
            await ledger.post("seller-ada", bookings.transfer_out(
                "transfer:" + transfer.id, "usd", amount=3000))
            await ledger.post("seller-bo", bookings.transfer_in(
                "transfer:" + transfer.id, "usd", amount=3000,
                stripe_txn=arrived["balance_transaction"]))

            refund = await gateway.refund(idempotency_key="mbs-r-o7", payment_intent=intent.id)
            reversal = await gateway.reverse_transfer(transfer.id,
                                                      idempotency_key="mbs-rev-o7")
            assert reversal.amount == 3000
            assert fake.balances(collaborator)["usd"]["available"] == 0
            await ledger.post("seller-bo", bookings.transfer_reversed_in(
                "reversal:" + reversal.id, "usd", amount=3000,
                stripe_txn=fake.all(collaborator, "balance_transaction")[-1]["id"]))
            await ledger.post("seller-ada", bookings.transfer_reversed_out(
                "reversal:" + reversal.id, "usd", amount=3000))
            refund_posting = bookings.refund("refund:" + refund.id, "usd", amount=10_000,
                                             mirror=bookings.CLEARING,
                                             stripe_txn=refund.balance_transaction)
            with pytest.raises(InsufficientFunds) as short:  # Stripe kept its fee
                await ledger.post("seller-ada", refund_posting)
            assert short.value.balance == 10_000 - txn.fee and short.value.change == -10_000
            assert await ledger.balance("seller-ada", "platform:clearing", "usd") == \
                10_000 - txn.fee  # refused whole: nothing moved
            await ledger.post("seller-ada", Posting(
                "refund:" + refund.id, "refund", entries(
                    ("platform:clearing", -(10_000 - txn.fee)),
                    ("external:platform_absorbed", -txn.fee),
                    ("external:refunds", 10_000), currency="usd"),
                stripe_txn=refund.balance_transaction))
            assert await ledger.balance("seller-bo", "seller:balance", "usd") == 0
            assert await ledger.audit("seller-ada") == await ledger.audit("seller-bo") == []
            report = await reconcile(ledger, "seller-bo", gateway.balance_transactions(
                account=collaborator))
            assert report.clean and report.matched == 2
    run(go())


def test_instant_payouts_need_eligibility_stay_under_the_limit_and_cost_a_fee(
        tmp_path: Path) -> None:
    async def go() -> None:
        fake = FakeStripe()
        fake.instant_daily_limit = 30_000
        async with stripe_world(fake) as (fake, gateway), \
                open_database(f"sqlite://{tmp_path / 'l.sqlite3'}") as db:
            await db.migrate(MIGRATIONS)
            ledger = Ledger(db)
            fresh = await gateway.create_connected_account(idempotency_key="mbs-fresh")
            with pytest.raises(StripeRejected) as caught:
                await gateway.create_payout(idempotency_key="mbs-po0", account=fresh.id,
                                            amount=100, currency="usd")
            assert caught.value.code == "payouts_not_allowed"
            seller = await onboarded_seller(fake, gateway, "ada")
            sale = await gateway.create_payment_intent(
                idempotency_key="mbs-s1", amount=100_000, currency="usd",
                payment_method="pm_card_bypassPending", confirm=True, account=seller,
                application_fee_amount=5_000, expand=["latest_charge.balance_transaction"])
            txn = sale.latest_charge.balance_transaction
            stripe_fee = sum(f.amount for f in txn.fee_details if f.type == "stripe_fee")
            await ledger.post("ada", bookings.sale(
                "charge:" + sale.latest_charge.id, "usd", gross=txn.amount,
                stripe_fee=stripe_fee, platform_fee=5_000, stripe_txn=txn.id))
            terms = await gateway.instant_payout_terms(account=seller, currency="usd")
            assert terms.eligible and terms.available == txn.net
            assert terms.daily_limit == 500_000 and terms.fee(20_000) == 300

            payout = await gateway.create_payout(
                idempotency_key="mbs-po1", account=seller, amount=20_000, currency="usd",
                method="instant", expand=["balance_transaction"])
            assert payout.balance_transaction.fee == terms.fee(20_000)
            await ledger.post("ada", bookings.payout(
                "payout:" + payout.id, "usd", amount=20_000,
                fee=payout.balance_transaction.fee, stripe_txn=payout.balance_transaction.id))
            with pytest.raises(InstantPayoutRefused) as over:
                await gateway.create_payout(idempotency_key="mbs-po2", account=seller,
                                            amount=20_000, currency="usd", method="instant")
            assert over.value.code == "instant_payouts_limit_exceeded"
            fake.set_instant_eligible(seller, False)
            with pytest.raises(InstantPayoutRefused) as unsupported:
                await gateway.create_payout(idempotency_key="mbs-po3", account=seller,
                                            amount=1_000, currency="usd", method="instant")
            assert unsupported.value.code == "instant_payouts_unsupported"
            with pytest.raises(InsufficientStripeBalance):
                await gateway.create_payout(idempotency_key="mbs-po4", account=seller,
                                            amount=10_000_000, currency="usd")
            report = await reconcile(ledger, "ada", gateway.balance_transactions(
                account=seller))
            assert report.clean and report.matched == 2, report.differences
            assert report.stripe_totals == report.ledger_totals == {
                "usd": txn.net - 20_300}
    run(go())


def test_a_returned_payout_is_reversed_in_our_books(tmp_path: Path) -> None:
    async def go() -> None:
        async with stripe_world() as (fake, gateway), \
                open_database(f"sqlite://{tmp_path / 'l.sqlite3'}") as db:
            await db.migrate(MIGRATIONS)
            ledger = Ledger(db)
            seller = await onboarded_seller(fake, gateway, "cy")
            sale = await gateway.create_payment_intent(
                idempotency_key="mbs-s", amount=50_000, currency="eur",
                payment_method="pm_card_visa", confirm=True, account=seller,
                expand=["latest_charge.balance_transaction"])
            txn = sale.latest_charge.balance_transaction
            await ledger.post("cy", bookings.sale("charge:" + sale.latest_charge.id, "eur",
                                                  gross=txn.amount, stripe_fee=txn.fee,
                                                  stripe_txn=txn.id))
            with pytest.raises(InsufficientStripeBalance):  # still pending at Stripe
                await gateway.create_payout(idempotency_key="mbs-p0", account=seller,
                                            amount=10_000, currency="eur")
            fake.advance(2 * DAY)
            payout = await gateway.create_payout(idempotency_key="mbs-p1", account=seller,
                                                 amount=30_000, currency="eur")
            await ledger.post("cy", bookings.payout("payout:" + payout.id, "eur",
                                                    amount=30_000,
                                                    stripe_txn=payout.balance_transaction))
            fake.settle_payouts(seller)
            fake.fail_payout(payout.id, "account_closed")  # the bank sends it back
            returned = await gateway.retrieve_payout(payout.id, account=seller,
                                                     expand=["failure_balance_transaction"])
            assert returned.status == "failed" and returned.failure_code == "account_closed"
            back = returned.failure_balance_transaction
            await ledger.post("cy", bookings.payout_failed(
                "payout_failed:" + payout.id, "eur", amount=back.amount, stripe_txn=back.id))
            assert await ledger.balance("cy", "seller:balance", "eur") == txn.net
            assert await ledger.balance("cy", "external:bank", "eur") == 0
            report = await reconcile(ledger, "cy", gateway.balance_transactions(account=seller))
            assert report.clean and report.matched == 3
            assert await ledger.audit("cy") == []
    run(go())


def test_a_failed_renewal_retries_goes_past_due_then_ends_and_loses_entitlements() -> None:
    async def go() -> None:
        fake = FakeStripe()
        fake.retry_schedule = (3, 5)
        async with stripe_world(fake) as (fake, gateway):
            product = await gateway.create_product(idempotency_key="mbs-prod", name="Gold")
            price = await gateway.create_price(idempotency_key="mbs-price", product=product.id,
                                               unit_amount=999, currency="usd",
                                               interval="month")
            for key in ("download_credits", "early_access"):
                feature = await gateway.create_feature(idempotency_key=f"mbs-f-{key}",
                                                       name=key, lookup_key=key)
                await gateway.attach_feature(idempotency_key=f"mbs-pf-{key}",
                                             product=product.id, feature=feature.id)
            customer = await gateway.create_customer(idempotency_key="mbs-cus",
                                                     email="fan@example.com")
            sub = await gateway.create_subscription(
                idempotency_key="mbs-sub", customer=customer.id, price=price.id,
                default_payment_method="pm_card_visa")
            assert sub.status == "active" and sub.latest_invoice.status == "paid"
            assert await gateway.active_entitlements(customer.id) == {
                "download_credits", "early_access"}

            fake.set_default_card(customer.id, "pm_card_chargeDeclinedInsufficientFunds")
            fake.advance(30 * DAY)
            sub = await gateway.retrieve_subscription(sub.id, expand=["latest_invoice"])
            invoice = sub.latest_invoice
            assert sub.status == "past_due" and invoice.attempt_count == 1
            assert invoice.next_payment_attempt == fake.now() + 3 * DAY
            assert await gateway.active_entitlements(customer.id)  # still, while retrying
            fake.advance(3 * DAY)
            sub = await gateway.retrieve_subscription(sub.id, expand=["latest_invoice"])
            assert sub.status == "past_due" and sub.latest_invoice.attempt_count == 2
            fake.advance(5 * DAY)
            sub = await gateway.retrieve_subscription(sub.id, expand=["latest_invoice"])
            assert sub.status == "canceled" and sub.latest_invoice.status == "uncollectible"
            assert await gateway.active_entitlements(customer.id) == set()
            kinds = [e["type"] for e in fake.event_log]
            assert kinds.count("invoice.payment_failed") == 3
            assert "customer.subscription.deleted" in kinds
    run(go())


def test_a_card_update_during_retries_recovers_the_membership() -> None:
    async def go() -> None:
        async with stripe_world() as (fake, gateway):
            product = await gateway.create_product(idempotency_key="mbs-prod", name="Silver")
            price = await gateway.create_price(idempotency_key="mbs-price", product=product.id,
                                               unit_amount=500, currency="usd",
                                               interval="month")
            customer = await gateway.create_customer(idempotency_key="mbs-cus")
            sub = await gateway.create_subscription(
                idempotency_key="mbs-sub", customer=customer.id, price=price.id,
                default_payment_method="pm_card_visa")
            fake.set_default_card(customer.id, "pm_card_chargeDeclined")
            invoice = fake.renew(sub.id)
            assert invoice["status"] == "open"
            assert (await gateway.retrieve_subscription(sub.id)).status == "past_due"
            fake.set_default_card(customer.id, "pm_card_visa")
            fake.retry_invoice(invoice["id"])
            assert (await gateway.retrieve_subscription(sub.id)).status == "active"
            cancelled = await gateway.cancel_subscription(sub.id, idempotency_key="mbs-x")
            assert cancelled.status == "canceled"
    run(go())


def test_a_dispute_takes_the_amount_and_fee_and_a_won_one_gives_the_amount_back(
        tmp_path: Path) -> None:
    async def go() -> None:
        async with stripe_world() as (fake, gateway), \
                open_database(f"sqlite://{tmp_path / 'l.sqlite3'}") as db:
            await db.migrate(MIGRATIONS)
            ledger = Ledger(db)
            seller = await onboarded_seller(fake, gateway, "di")
            sale = await gateway.create_payment_intent(
                idempotency_key="mbs-s", amount=20_000, currency="usd",
                payment_method="pm_card_createDispute", confirm=True, account=seller,
                expand=["latest_charge.balance_transaction"])
            txn = sale.latest_charge.balance_transaction
            await ledger.post("di", bookings.sale("charge:" + sale.latest_charge.id, "usd",
                                                  gross=txn.amount, stripe_fee=txn.fee,
                                                  stripe_txn=txn.id))
            with pytest.raises(StripeRejected) as caught:
                await gateway.refund(idempotency_key="mbs-r", payment_intent=sale.id,
                                     account=seller)
            assert caught.value.code == "charge_disputed"
            dispute = fake.all(seller, "dispute")[0]
            opened = dispute["balance_transactions"][0]
            assert (opened["amount"], opened["fee"]) == (-20_000, fake.dispute_fee)
            await ledger.post("di", bookings.dispute_opened(
                "dispute:" + dispute["id"], "usd", amount=20_000, fee=opened["fee"],
                stripe_txn=opened["id"]))
            shortfall = txn.net - 20_000 - fake.dispute_fee
            assert shortfall < 0  # the dispute and its fee take more than the sale left
            assert await ledger.balance("di", "seller:balance", "usd") == shortfall
            at_stripe = await gateway.balance(account=seller)
            assert at_stripe.available[0].amount + at_stripe.pending[0].amount == shortfall
            with pytest.raises(InsufficientFunds):  # nothing more leaves meanwhile
                await ledger.post("di", bookings.payout("payout:x", "usd", amount=1))
            fake.resolve_dispute(dispute["id"], won=True)
            back = fake.get(seller, "dispute", dispute["id"])["balance_transactions"][1]
            await ledger.post("di", bookings.dispute_won(
                "dispute_won:" + dispute["id"], "usd", amount=back["amount"],
                stripe_txn=back["id"]))
            assert await ledger.balance("di", "seller:balance", "usd") == \
                txn.net - fake.dispute_fee
            report = await reconcile(ledger, "di", gateway.balance_transactions(account=seller))
            assert report.clean and report.matched == 3
            kinds = [e["type"] for e in fake.event_log]
            assert kinds.index("charge.dispute.created") < kinds.index("charge.dispute.closed")
    run(go())
