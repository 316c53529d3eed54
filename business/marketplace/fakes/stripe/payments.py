"""Customers, products, prices, test cards, PaymentIntents, charges, refunds and disputes.

Test cards are Stripe's test PaymentMethod ids (:data:`TEST_CARDS`): ``pm_card_visa``
succeeds; the ``pm_card_chargeDeclined*`` family declines with Stripe's code and
``decline_code``; ``pm_card_bypassPending`` makes the funds available at once;
``pm_card_createDispute`` succeeds and is disputed right after. A successful charge books
a ``charge`` balance transaction with Stripe's fee, pending until ``available_on``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from business.marketplace.fakes.stripe.protocol import (
    StripeFault,
    boolean,
    currency,
    integer,
    metadata,
    required,
)
from business.marketplace.fakes.stripe.router import Router
from business.marketplace.fakes.stripe.state import DAY, PLATFORM, Call

if TYPE_CHECKING:
    from business.marketplace.fakes.stripe.fake import FakeStripe

ROUTES = Router()

_DECLINED = "Your card was declined."
#: Test PaymentMethod -> (error code, decline code, message); None succeeds.
TEST_CARDS: dict[str, tuple[str, str | None, str] | None] = {
    "pm_card_visa": None, "pm_card_visa_debit": None, "pm_card_mastercard": None,
    "pm_card_amex": None, "pm_card_bypassPending": None, "pm_card_createDispute": None,
    "pm_card_chargeDeclined": ("card_declined", "generic_decline", _DECLINED),
    "pm_card_chargeDeclinedInsufficientFunds": (
        "card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "pm_card_chargeDeclinedLostCard": ("card_declined", "lost_card", _DECLINED),
    "pm_card_chargeDeclinedStolenCard": ("card_declined", "stolen_card", _DECLINED),
    "pm_card_chargeDeclinedFraudulent": ("card_declined", "fraudulent", _DECLINED),
    "pm_card_chargeDeclinedExpiredCard": ("expired_card", None, "Your card has expired."),
    "pm_card_chargeDeclinedIncorrectCvc": (
        "incorrect_cvc", None, "Your card's security code is incorrect."),
    "pm_card_chargeDeclinedProcessingError": (
        "processing_error", None, "An error occurred while processing your card. "
        "Try again in a little bit."),
}
#: Currencies without minor units (an amount is in whole units).
ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp", "isk", "ugx", "xaf", "xof"}


def amount_param(params: dict[str, Any], name: str = "amount", *, cur: str) -> int:
    """A charge amount: a positive integer, at least 50 minor units (Stripe's minimum)."""
    value = integer(params, name, required=True, minimum=1, maximum=99_999_999)
    assert value is not None
    if cur not in ZERO_DECIMAL and value < 50:
        raise StripeFault("Amount must be at least $0.50 usd", code="amount_too_small",
                          param=name)
    return value


def stripe_fee(fake: FakeStripe, amount: int) -> int:
    """Stripe's processing fee on a charge (percentage in basis points plus a fixed part)."""
    return (amount * fake.fee_basis_points + 5_000) // 10_000 + fake.fee_fixed


def payment_method(fake: FakeStripe, scope: str, pm_id: Any, param: str = "payment_method"
                   ) -> dict[str, Any]:
    """The PaymentMethod ``pm_id`` (a test card is stored on first use)."""
    pm_id = str(pm_id)
    found = fake.find(pm_id)
    if found is not None and found[1]["object"] == "payment_method":
        return found[1]
    if pm_id not in TEST_CARDS:
        raise StripeFault(f"No such PaymentMethod: '{pm_id}'", code="resource_missing",
                          param=param, status=400)
    brand = "mastercard" if "mastercard" in pm_id else "amex" if "amex" in pm_id else "visa"
    return fake.create(scope, "payment_method", {
        "type": "card", "customer": None, "card": {
            "brand": brand, "last4": "4242", "exp_month": 12, "exp_year": 2034,
            "funding": "debit" if "debit" in pm_id else "credit", "country": "US"},
        "test_card": pm_id})


# -- customers --------------------------------------------------------------------------


@ROUTES.post("/v1/customers")
def create_customer(fake: FakeStripe, call: Call) -> dict[str, Any]:
    p = call.params
    customer = fake.create(call.scope, "customer", {
        "email": p.get("email"), "name": p.get("name"), "description": p.get("description"),
        "metadata": metadata(p), "invoice_settings": {"default_payment_method": None},
        "balance": 0, "currency": None, "delinquent": False})
    pm = p.get("payment_method") or p.get("invoice_settings", {}).get("default_payment_method")
    if pm:
        card = payment_method(fake, call.scope, pm)
        card["customer"] = customer["id"]
        customer["invoice_settings"]["default_payment_method"] = card["id"]
    fake.emit(call.scope, "customer.created", customer, call=call)
    return customer


@ROUTES.get("/v1/customers/{cid}")
def get_customer(fake: FakeStripe, call: Call, cid: str) -> dict[str, Any]:
    return fake.get(call.scope, "customer", cid)


@ROUTES.post("/v1/customers/{cid}")
def update_customer(fake: FakeStripe, call: Call, cid: str) -> dict[str, Any]:
    customer = fake.get(call.scope, "customer", cid)
    p = call.params
    for key in ("email", "name", "description"):
        if key in p:
            customer[key] = p[key] or None
    customer["metadata"] = metadata(p, customer["metadata"])
    pm = p.get("invoice_settings", {}).get("default_payment_method")
    if pm:
        card = payment_method(fake, call.scope, pm,
                              "invoice_settings[default_payment_method]")
        card["customer"] = cid
        customer["invoice_settings"]["default_payment_method"] = card["id"]
    fake.emit(call.scope, "customer.updated", customer, call=call)
    return customer


@ROUTES.get("/v1/customers")
def list_customers(fake: FakeStripe, call: Call) -> dict[str, Any]:
    items = fake.created_filter(call, fake.all(call.scope, "customer"))
    if call.params.get("email"):
        items = [c for c in items if c["email"] == call.params["email"]]
    return fake.page(call, items, "/v1/customers")


# -- products and prices ----------------------------------------------------------------


def new_product(fake: FakeStripe, call: Call, p: dict[str, Any]) -> dict[str, Any]:
    product = fake.create(call.scope, "product", {
        "name": required(p, "name"), "active": boolean(p, "active", True),
        "description": p.get("description"), "metadata": metadata(p),
        "default_price": None, "marketing_features": []})
    fake.emit(call.scope, "product.created", product, call=call)
    return product


@ROUTES.post("/v1/products")
def create_product(fake: FakeStripe, call: Call) -> dict[str, Any]:
    return new_product(fake, call, call.params)


@ROUTES.get("/v1/products/{pid}")
def get_product(fake: FakeStripe, call: Call, pid: str) -> dict[str, Any]:
    return fake.get(call.scope, "product", pid)


@ROUTES.get("/v1/products")
def list_products(fake: FakeStripe, call: Call) -> dict[str, Any]:
    items = fake.all(call.scope, "product")
    if "active" in call.params:
        items = [o for o in items if o["active"] == boolean(call.params, "active")]
    return fake.page(call, items, "/v1/products")


def new_price(fake: FakeStripe, call: Call, p: dict[str, Any], param: str = "") -> dict[str, Any]:
    cur = currency(p, "currency")
    amount = integer(p, "unit_amount", required=True, minimum=0)
    if "product_data" in p:
        product = new_product(fake, call, p["product_data"])
    else:
        product = fake.get(call.scope, "product", required(p, "product"), f"{param}product")
    recurring = None
    if p.get("recurring"):
        interval = p["recurring"].get("interval")
        if interval not in ("day", "week", "month", "year"):
            raise StripeFault("Invalid recurring[interval]: must be one of day, week, month, "
                              "or year", param=f"{param}recurring[interval]")
        recurring = {"interval": interval, "usage_type": "licensed",
                     "interval_count": integer(p["recurring"], "interval_count", minimum=1,
                                               default=1)}
    price = fake.create(call.scope, "price", {
        "currency": cur, "unit_amount": amount, "product": product["id"],
        "active": boolean(p, "active", True), "recurring": recurring,
        "type": "recurring" if recurring else "one_time", "metadata": metadata(p),
        "lookup_key": p.get("lookup_key"), "nickname": p.get("nickname")})
    fake.emit(call.scope, "price.created", price, call=call)
    return price


@ROUTES.post("/v1/prices")
def create_price(fake: FakeStripe, call: Call) -> dict[str, Any]:
    return new_price(fake, call, call.params)


@ROUTES.get("/v1/prices/{pid}")
def get_price(fake: FakeStripe, call: Call, pid: str) -> dict[str, Any]:
    return fake.get(call.scope, "price", pid)


@ROUTES.post("/v1/prices/{pid}")
def update_price(fake: FakeStripe, call: Call, pid: str) -> dict[str, Any]:
    price = fake.get(call.scope, "price", pid)
    if "unit_amount" in call.params:
        raise StripeFault("Received unknown parameter: unit_amount (a price's amount cannot "
                          "change: create a new price)", param="unit_amount")
    if "active" in call.params:
        price["active"] = boolean(call.params, "active")
    price["metadata"] = metadata(call.params, price["metadata"])
    fake.emit(call.scope, "price.updated", price, call=call)
    return price


@ROUTES.get("/v1/prices")
def list_prices(fake: FakeStripe, call: Call) -> dict[str, Any]:
    items = fake.all(call.scope, "price")
    if call.params.get("product"):
        items = [o for o in items if o["product"] == call.params["product"]]
    return fake.page(call, items, "/v1/prices")


# -- charging a card ----------------------------------------------------------------------


def charge_card(fake: FakeStripe, call: Call | None, scope: str, *, amount: int, cur: str,
                pm: dict[str, Any], customer: str | None, intent: dict[str, Any] | None,
                description: str | None = None, application_fee: int = 0,
                invoice: str | None = None) -> dict[str, Any]:
    """Charge a test card: a ``charge`` object, and on success its balance transaction.

    A decline leaves a failed charge and raises Stripe's ``card_error`` (402) naming it.
    """
    outcome = TEST_CARDS.get(pm.get("test_card", ""))
    charge = fake.create(scope, "charge", {
        "amount": amount, "amount_captured": 0, "amount_refunded": 0, "currency": cur,
        "customer": customer, "payment_intent": intent["id"] if intent else None,
        "payment_method": pm["id"], "description": description, "invoice": invoice,
        "metadata": dict(intent["metadata"]) if intent else {},
        "transfer_group": intent.get("transfer_group") if intent else None,
        "status": "pending", "paid": False, "captured": False, "refunded": False,
        "disputed": False, "balance_transaction": None, "failure_code": None,
        "failure_message": None, "application_fee_amount": application_fee or None,
        "outcome": None, "payment_method_details": {"type": "card", "card": pm["card"]},
        "billing_details": {"address": {"country": pm["card"]["country"]}}})
    if outcome is not None:
        code, decline, message = outcome
        charge.update(status="failed", failure_code=code, failure_message=message,
                      outcome={"type": "issuer_declined", "network_status":
                               "declined_by_network", "reason": decline or code})
        fake.emit(scope, "charge.failed", charge, call=call)
        raise StripeFault(message, type="card_error", code=code, decline_code=decline,
                          extra={"charge": charge["id"]})
    fee = stripe_fee(fake, amount) + application_fee
    bypass = pm.get("test_card") == "pm_card_bypassPending"
    available_on = fake.now() + (0 if bypass else fake.availability_days * DAY)
    txn = fake.balance_transaction(scope, amount=amount, currency=cur, type="charge",
                                   source=charge["id"], fee=fee, available_on=available_on,
                                   description=description)
    if application_fee:
        txn["fee_details"].append({"amount": application_fee, "currency": cur,
                                   "type": "application_fee", "description": None,
                                   "application": "ca_fake_platform"})
        txn["fee_details"][0]["amount"] = fee - application_fee
        fake.balance_transaction(PLATFORM, amount=application_fee, currency=cur,
                                 type="application_fee", source=charge["id"],
                                 available_on=available_on)
    charge.update(status="succeeded", paid=True, captured=True, amount_captured=amount,
                  balance_transaction=txn["id"],
                  outcome={"type": "authorized", "network_status": "approved_by_network",
                           "reason": None})
    fake.emit(scope, "charge.succeeded", charge, call=call)
    if pm.get("test_card") == "pm_card_createDispute":
        fake.create_dispute(charge["id"])
    return charge


# -- payment intents ----------------------------------------------------------------------


@ROUTES.post("/v1/payment_intents")
def create_payment_intent(fake: FakeStripe, call: Call) -> dict[str, Any]:
    p = call.params
    cur = currency(p)
    amount = amount_param(p, cur=cur)
    customer = p.get("customer")
    if customer:
        fake.get(call.scope, "customer", customer, "customer")
    fee = integer(p, "application_fee_amount", minimum=0, default=0) or 0
    if fee and call.scope == PLATFORM:
        raise StripeFault("Can only apply an application_fee_amount when the PaymentIntent "
                          "is attempting a direct payment (using an OAuth key or "
                          "Stripe-Account header) or destination payment (using "
                          "`transfer_data[destination]`).", param="application_fee_amount")
    if fee > amount:
        raise StripeFault("application_fee_amount cannot exceed the amount.",
                          param="application_fee_amount")
    intent = fake.create(call.scope, "payment_intent", {
        "amount": amount, "amount_received": 0, "currency": cur, "customer": customer,
        "description": p.get("description"), "metadata": metadata(p),
        "payment_method": None, "status": "requires_payment_method",
        "latest_charge": None, "last_payment_error": None, "capture_method": "automatic",
        "transfer_group": p.get("transfer_group"), "application_fee_amount": fee or None,
        "receipt_email": p.get("receipt_email"), "canceled_at": None, "invoice": None})
    intent["client_secret"] = f"{intent['id']}_secret_fake"
    if p.get("payment_method"):
        intent["payment_method"] = payment_method(fake, call.scope, p["payment_method"])["id"]
        intent["status"] = "requires_confirmation"
    fake.emit(call.scope, "payment_intent.created", intent, call=call)
    if boolean(p, "confirm"):
        confirm(fake, call, intent)
    return intent


def confirm(fake: FakeStripe, call: Call | None, intent: dict[str, Any],
            pm_id: str | None = None, scope: str | None = None) -> dict[str, Any]:
    """Confirm ``intent``: charge its card; a decline answers 402 with the intent in it."""
    scope = scope or (call.scope if call else PLATFORM)
    if intent["status"] in ("succeeded", "canceled"):
        raise StripeFault(f"This PaymentIntent's payment_method could not be updated because "
                          f"it has a status of {intent['status']}. You may only update the "
                          "payment_method of a PaymentIntent with one of the following "
                          "statuses: requires_payment_method, requires_confirmation, "
                          "requires_action.", code="payment_intent_unexpected_state")
    if pm_id:
        intent["payment_method"] = payment_method(fake, scope, pm_id)["id"]
    if not intent["payment_method"]:
        raise StripeFault("You cannot confirm this PaymentIntent because it's missing a "
                          "payment method.", code="payment_intent_unexpected_state")
    pm = fake.objects[intent["payment_method"]]
    try:
        charge = charge_card(fake, call, scope, amount=intent["amount"], cur=intent["currency"],
                             pm=pm, customer=intent["customer"], intent=intent,
                             description=intent["description"],
                             application_fee=intent["application_fee_amount"] or 0,
                             invoice=intent.get("invoice"))
    except StripeFault as fault:
        intent.update(status="requires_payment_method",
                      latest_charge=fault.extra.get("charge"),
                      last_payment_error={"type": fault.type, "code": fault.code,
                                          "decline_code": fault.decline_code,
                                          "message": fault.message,
                                          "charge": fault.extra.get("charge")})
        fake.emit(scope, "payment_intent.payment_failed", intent, call=call)
        fault.extra["payment_intent"] = dict(intent)
        raise
    intent.update(status="succeeded", latest_charge=charge["id"], amount_received=charge["amount"],
                  last_payment_error=None)
    fake.emit(scope, "payment_intent.succeeded", intent, call=call)
    return intent


@ROUTES.post("/v1/payment_intents/{pid}/confirm")
def confirm_payment_intent(fake: FakeStripe, call: Call, pid: str) -> dict[str, Any]:
    intent = fake.get(call.scope, "payment_intent", pid)
    return confirm(fake, call, intent, call.params.get("payment_method"))


@ROUTES.post("/v1/payment_intents/{pid}/cancel")
def cancel_payment_intent(fake: FakeStripe, call: Call, pid: str) -> dict[str, Any]:
    intent = fake.get(call.scope, "payment_intent", pid)
    if intent["status"] == "succeeded":
        raise StripeFault("You cannot cancel this PaymentIntent because it has a status of "
                          "succeeded. Only a PaymentIntent with one of the following statuses "
                          "may be canceled: requires_payment_method, requires_capture, "
                          "requires_confirmation, requires_action, processing.",
                          code="payment_intent_unexpected_state")
    intent.update(status="canceled", canceled_at=fake.now(),
                  cancellation_reason=call.params.get("cancellation_reason"))
    fake.emit(call.scope, "payment_intent.canceled", intent, call=call)
    return intent


@ROUTES.post("/v1/payment_intents/{pid}")
def update_payment_intent(fake: FakeStripe, call: Call, pid: str) -> dict[str, Any]:
    intent = fake.get(call.scope, "payment_intent", pid)
    if intent["status"] in ("succeeded", "canceled"):
        raise StripeFault(f"You cannot update this PaymentIntent because it has a status of "
                          f"{intent['status']}.", code="payment_intent_unexpected_state")
    p = call.params
    if "amount" in p:
        intent["amount"] = amount_param(p, cur=intent["currency"])
    if p.get("payment_method"):
        intent["payment_method"] = payment_method(fake, call.scope, p["payment_method"])["id"]
        intent["status"] = "requires_confirmation"
    intent["metadata"] = metadata(p, intent["metadata"])
    return intent


@ROUTES.get("/v1/payment_intents/{pid}")
def get_payment_intent(fake: FakeStripe, call: Call, pid: str) -> dict[str, Any]:
    return fake.get(call.scope, "payment_intent", pid)


@ROUTES.get("/v1/payment_intents")
def list_payment_intents(fake: FakeStripe, call: Call) -> dict[str, Any]:
    items = fake.created_filter(call, fake.all(call.scope, "payment_intent"))
    if call.params.get("customer"):
        items = [o for o in items if o["customer"] == call.params["customer"]]
    return fake.page(call, items, "/v1/payment_intents")


@ROUTES.get("/v1/charges/{cid}")
def get_charge(fake: FakeStripe, call: Call, cid: str) -> dict[str, Any]:
    return fake.get(call.scope, "charge", cid)


@ROUTES.get("/v1/charges")
def list_charges(fake: FakeStripe, call: Call) -> dict[str, Any]:
    items = fake.created_filter(call, fake.all(call.scope, "charge"))
    for key in ("customer", "payment_intent", "transfer_group"):
        if call.params.get(key):
            items = [o for o in items if o[key] == call.params[key]]
    return fake.page(call, items, "/v1/charges")


# -- refunds ------------------------------------------------------------------------------


@ROUTES.post("/v1/refunds")
def create_refund(fake: FakeStripe, call: Call) -> dict[str, Any]:
    p = call.params
    if p.get("payment_intent"):
        intent = fake.get(call.scope, "payment_intent", p["payment_intent"], "payment_intent")
        if intent["status"] != "succeeded":
            raise StripeFault(f"This PaymentIntent ({intent['id']}) does not have a successful "
                              "charge to refund.", code="charge_not_refundable",
                              param="payment_intent")
        charge = fake.objects[intent["latest_charge"]]
    elif p.get("charge"):
        charge = fake.get(call.scope, "charge", p["charge"], "charge")
    else:
        raise StripeFault("One of the following params should be provided for this request: "
                          "payment_intent or charge.", code="parameter_missing", param="charge")
    if charge["disputed"]:
        raise StripeFault(f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                          code="charge_disputed", param="charge")
    remaining = charge["amount"] - charge["amount_refunded"]
    if remaining <= 0:
        raise StripeFault(f"Charge {charge['id']} has already been refunded.",
                          code="charge_already_refunded", param="charge")
    amount = integer(p, "amount", minimum=1, default=remaining)
    assert amount is not None
    if amount > remaining:
        raise StripeFault(f"Refund amount ({amount}) is greater than unrefunded amount on "
                          f"charge ({remaining})", code="amount_too_large", param="amount")
    return refund(fake, call, call.scope, charge, amount, p.get("reason"), metadata(p))


def refund(fake: FakeStripe, call: Call | None, scope: str, charge: dict[str, Any],
           amount: int, reason: str | None, meta: dict[str, str]) -> dict[str, Any]:
    """Refund ``amount`` of ``charge`` (Stripe keeps its fee)."""
    txn = fake.balance_transaction(scope, amount=-amount, currency=charge["currency"],
                                   type="refund", source=None)
    item = fake.create(scope, "refund", {
        "amount": amount, "currency": charge["currency"], "charge": charge["id"],
        "payment_intent": charge["payment_intent"], "reason": reason, "metadata": meta,
        "status": "succeeded", "balance_transaction": txn["id"]})
    txn["source"] = item["id"]
    previous = {"amount_refunded": charge["amount_refunded"], "refunded": charge["refunded"]}
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount"]
    fake.emit(scope, "refund.created", item, call=call)
    fake.emit(scope, "charge.refunded", charge, previous, call=call)
    return item


@ROUTES.get("/v1/refunds/{rid}")
def get_refund(fake: FakeStripe, call: Call, rid: str) -> dict[str, Any]:
    return fake.get(call.scope, "refund", rid)


@ROUTES.get("/v1/refunds")
def list_refunds(fake: FakeStripe, call: Call) -> dict[str, Any]:
    return fake.listing(call, "refund", "/v1/refunds", ("charge", "payment_intent"))


# -- disputes -----------------------------------------------------------------------------


@ROUTES.get("/v1/disputes/{did}")
def get_dispute(fake: FakeStripe, call: Call, did: str) -> dict[str, Any]:
    return fake.get(call.scope, "dispute", did)


@ROUTES.get("/v1/disputes")
def list_disputes(fake: FakeStripe, call: Call) -> dict[str, Any]:
    return fake.page(call, fake.all(call.scope, "dispute"), "/v1/disputes")


@ROUTES.post("/v1/disputes/{did}/close")
def close_dispute(fake: FakeStripe, call: Call, did: str) -> dict[str, Any]:
    dispute = fake.get(call.scope, "dispute", did)
    if dispute["status"] in ("won", "lost"):
        raise StripeFault(f"This dispute is already closed ({dispute['status']}).",
                          code="dispute_already_closed")
    dispute["status"] = "lost"
    fake.emit(call.scope, "charge.dispute.closed", dispute, call=call)
    return dispute
