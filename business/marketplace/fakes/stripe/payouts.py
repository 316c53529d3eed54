"""Balance, balance transactions and payouts (standard and instant).

A balance is the sum of an account's balance transactions, ``pending`` until their
``available_on``. A standard payout draws on ``available``; an instant payout needs an
eligible external account (a debit card: onboarding adds one), stays under the rolling
24 h :attr:`FakeStripe.instant_daily_limit` and costs
:attr:`FakeStripe.instant_fee_basis_points` (at least :attr:`FakeStripe.instant_fee_minimum`),
booked as the fee of the payout's balance transaction. A payout is ``pending`` until
:meth:`FakeStripe.settle_payouts`; :meth:`FakeStripe.fail_payout` fails it (or returns a
paid one) and books the money back with a ``payout_failure`` transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from business.marketplace.fakes.stripe.protocol import (
    StripeFault,
    currency,
    integer,
    metadata,
)
from business.marketplace.fakes.stripe.router import Router
from business.marketplace.fakes.stripe.state import DAY, PLATFORM, Call

if TYPE_CHECKING:
    from business.marketplace.fakes.stripe.fake import FakeStripe

ROUTES = Router()

#: Why a bank sends a payout back (Stripe's failure codes).
FAILURES = {
    "account_closed": "The bank account has been closed.",
    "no_account": "The bank account details on file are probably incorrect.",
    "could_not_process": "The bank could not process this payout.",
    "debit_not_authorized": "Debit transactions are not approved on the bank account.",
}


@ROUTES.get("/v1/balance")
def get_balance(fake: FakeStripe, call: Call) -> dict[str, Any]:
    sums = fake.balances(call.scope)
    rows = sorted(sums.items())
    instant = [{"amount": max(0, s["available"]), "currency": c,
                "net_available": [{"amount": max(0, s["available"] - instant_fee(
                    fake, s["available"])), "destination": "card"}]}
               for c, s in rows] if fake.instant_eligible.get(call.scope) else []
    return {"object": "balance", "livemode": False,
            "available": [{"amount": s["available"], "currency": c,
                           "source_types": {"card": s["available"]}} for c, s in rows],
            "pending": [{"amount": s["pending"], "currency": c,
                         "source_types": {"card": s["pending"]}} for c, s in rows],
            "instant_available": instant}


@ROUTES.get("/v1/balance_transactions/{tid}")
def get_balance_transaction(fake: FakeStripe, call: Call, tid: str) -> dict[str, Any]:
    fake.refresh_statuses()
    return fake.get(call.scope, "balance_transaction", tid)


@ROUTES.get("/v1/balance_transactions")
def list_balance_transactions(fake: FakeStripe, call: Call) -> dict[str, Any]:
    fake.refresh_statuses()
    items = fake.created_filter(call, fake.all(call.scope, "balance_transaction"))
    for key in ("type", "source", "currency"):
        if call.params.get(key):
            items = [o for o in items if o[key] == call.params[key]]
    return fake.page(call, items, "/v1/balance_transactions")


def instant_fee(fake: FakeStripe, amount: int) -> int:
    """The fee of an instant payout of ``amount``."""
    return max(fake.instant_fee_minimum, (amount * fake.instant_fee_basis_points + 9_999)
               // 10_000)


@ROUTES.post("/v1/payouts")
def create_payout(fake: FakeStripe, call: Call) -> dict[str, Any]:
    p = call.params
    cur = currency(p)
    amount = integer(p, "amount", required=True, minimum=1)
    assert amount is not None
    method = p.get("method", "standard")
    if method not in ("standard", "instant"):
        raise StripeFault("Invalid method: must be one of standard or instant", param="method")
    if call.scope != PLATFORM and not fake.get(PLATFORM, "account", call.scope)[
            "payouts_enabled"]:
        raise StripeFault("Your account cannot currently make payouts. Provide the "
                          "information in requirements.currently_due first.",
                          code="payouts_not_allowed")
    available = fake.balances(call.scope).get(cur, {}).get("available", 0)
    fee = 0
    if method == "instant":
        if not fake.instant_eligible.get(call.scope):
            raise StripeFault("This account's external account is not eligible for Instant "
                              "Payouts. Try a debit card from a supported bank.",
                              code="instant_payouts_unsupported", param="method")
        since = fake.now() - DAY
        today = sum(o["amount"] for o in fake.all(call.scope, "payout")
                    if o["method"] == "instant" and o["created"] > since
                    and o["status"] not in ("failed", "canceled"))
        if today + amount > fake.instant_daily_limit:
            raise StripeFault(f"This payout would exceed the daily limit for Instant Payouts "
                              f"({fake.instant_daily_limit}); {fake.instant_daily_limit - today}"
                              " remains today.", code="instant_payouts_limit_exceeded",
                              param="amount")
        fee = instant_fee(fake, amount)
    if amount + fee > available:
        raise StripeFault("You have insufficient funds in your Stripe account for this "
                          "transfer. Your card balance is too low. You can use the "
                          "/v1/balance endpoint to view your Stripe balance.",
                          code="balance_insufficient", param="amount")
    txn = fake.balance_transaction(call.scope, amount=-amount, currency=cur, type="payout",
                                   source=None, fee=fee)
    if fee:
        txn["fee_details"][0].update(type="stripe_fee", description="Instant Payout fee")
    arrival = fake.now() + (0 if method == "instant" else 2 * DAY)
    payout = fake.create(call.scope, "payout", {
        "amount": amount, "currency": cur, "method": method, "type": "card"
        if method == "instant" else "bank_account", "status": "pending",
        "arrival_date": arrival, "automatic": False, "balance_transaction": txn["id"],
        "description": p.get("description"), "metadata": metadata(p),
        "failure_code": None, "failure_message": None, "failure_balance_transaction": None,
        "destination": p.get("destination"), "reversed_by": None})
    txn["source"] = payout["id"]
    fake.emit(call.scope, "payout.created", payout, call=call)
    return payout


@ROUTES.get("/v1/payouts/{pid}")
def get_payout(fake: FakeStripe, call: Call, pid: str) -> dict[str, Any]:
    return fake.get(call.scope, "payout", pid)


@ROUTES.get("/v1/payouts")
def list_payouts(fake: FakeStripe, call: Call) -> dict[str, Any]:
    items = fake.created_filter(call, fake.all(call.scope, "payout"))
    if call.params.get("status"):
        items = [o for o in items if o["status"] == call.params["status"]]
    return fake.page(call, items, "/v1/payouts")


@ROUTES.post("/v1/payouts/{pid}/cancel")
def cancel_payout(fake: FakeStripe, call: Call, pid: str) -> dict[str, Any]:
    payout = fake.get(call.scope, "payout", pid)
    if payout["status"] != "pending" or payout["method"] == "instant":
        raise StripeFault("Payouts can only be canceled while they are pending, and instant "
                          "payouts cannot be canceled.", code="payout_not_cancelable")
    back = fake.balance_transaction(call.scope, amount=payout["amount"],
                                    currency=payout["currency"], type="payout_cancel",
                                    source=payout["id"])
    payout.update(status="canceled", failure_balance_transaction=back["id"])
    fake.emit(call.scope, "payout.canceled", payout, call=call)
    return payout


def fail(fake: FakeStripe, scope: str, payout: dict[str, Any], code: str) -> dict[str, Any]:
    """The bank refused (pending) or returned (paid) the payout: money back on the balance."""
    if code not in FAILURES:
        raise ValueError(f"unknown payout failure code {code!r}; use one of {sorted(FAILURES)}")
    if payout["status"] in ("failed", "canceled"):
        raise ValueError(f"payout {payout['id']} is {payout['status']} already")
    back = fake.balance_transaction(scope, amount=payout["amount"], currency=payout["currency"],
                                    type="payout_failure", source=payout["id"],
                                    reporting_category="payout_reversal")
    previous = {"status": payout["status"]}
    payout.update(status="failed", failure_code=code, failure_message=FAILURES[code],
                  failure_balance_transaction=back["id"])
    fake.emit(scope, "payout.failed", payout, previous)
    return payout
