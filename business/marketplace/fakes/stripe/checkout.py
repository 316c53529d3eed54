"""Checkout Sessions: ``payment`` and ``subscription`` mode, line items from prices or inline
``price_data``, expiry, and completion on command (:meth:`FakeStripe.complete_checkout`,
standing in for the buyer on Stripe's hosted page).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from business.marketplace.fakes.stripe.billing import subscribe
from business.marketplace.fakes.stripe.payments import ZERO_DECIMAL, confirm, new_price
from business.marketplace.fakes.stripe.protocol import (
    StripeFault,
    as_list,
    integer,
    metadata,
    required,
)
from business.marketplace.fakes.stripe.router import Router
from business.marketplace.fakes.stripe.state import DAY, Call

if TYPE_CHECKING:
    from business.marketplace.fakes.stripe.fake import FakeStripe

ROUTES = Router()


@ROUTES.post("/v1/checkout/sessions")
def create_session(fake: FakeStripe, call: Call) -> dict[str, Any]:
    p = call.params
    mode = required(p, "mode")
    if mode not in ("payment", "subscription"):
        raise StripeFault("Invalid mode: must be one of payment, setup, or subscription",
                          param="mode")
    required(p, "success_url")
    customer = p.get("customer")
    if customer:
        fake.get(call.scope, "customer", customer, "customer")
    items = as_list(p.get("line_items"))
    if not items:
        raise StripeFault("Missing required param: line_items.", code="parameter_missing",
                          param="line_items")
    lines = []
    for n, item in enumerate(items):
        param = f"line_items[{n}]"
        if "price_data" in item:
            price = new_price(fake, call, item["price_data"], f"{param}[price_data]")
        else:
            price = fake.get(call.scope, "price", required(item, "price"), f"{param}[price]")
        if not price["active"]:
            raise StripeFault(f"The price `{price['id']}` is not active.", param=f"{param}[price]")
        if mode == "payment" and price["recurring"]:
            raise StripeFault("You specified `payment` mode but passed a recurring price. "
                              "Either switch to `subscription` mode or use only one-time "
                              "prices.", param=f"{param}[price]")
        quantity = integer(item, "quantity", minimum=1, default=1) or 1
        lines.append({"id": f"li_{fake.new_id('price')[6:]}", "object": "item",
                      "price": price, "quantity": quantity, "currency": price["currency"],
                      "amount_subtotal": price["unit_amount"] * quantity,
                      "amount_total": price["unit_amount"] * quantity,
                      "description": fake.objects[price["product"]]["name"]})
    if mode == "subscription" and not any(line["price"]["recurring"] for line in lines):
        raise StripeFault("You must provide at least one recurring price in `subscription` "
                          "mode when using prices.", param="line_items")
    if len({line["currency"] for line in lines}) > 1:
        raise StripeFault("All line items must use the same currency; found "
                          f"{sorted({line['currency'] for line in lines})}.",
                          param="line_items")
    now = fake.now()
    expires = integer(p, "expires_at", minimum=now + 1800, maximum=now + DAY,
                      default=now + DAY)
    intent_data = p.get("payment_intent_data") or {}
    total = sum(line["amount_total"] for line in lines)
    if mode == "payment" and 0 < total < 50 and lines[0]["currency"] not in ZERO_DECIMAL:
        raise StripeFault("The Checkout Session's total amount due must add up to at least "
                          "$0.50 usd", code="amount_too_small", param="line_items")
    session = fake.create(call.scope, "checkout.session", {
        "mode": mode, "status": "open", "payment_status": "unpaid", "currency":
        lines[0]["currency"], "amount_subtotal": total, "amount_total": total,
        "customer": customer, "customer_email": p.get("customer_email"),
        "customer_details": None, "client_reference_id": p.get("client_reference_id"),
        "metadata": metadata(p), "success_url": p["success_url"],
        "cancel_url": p.get("cancel_url"), "expires_at": expires, "payment_intent": None,
        "subscription": None, "url": None, "consent": None,
        "consent_collection": p.get("consent_collection"),
        "payment_intent_data": {"metadata": metadata(intent_data),
                                "transfer_group": intent_data.get("transfer_group"),
                                "application_fee_amount": integer(
                                    intent_data, "application_fee_amount", minimum=0)},
        "subscription_data": {"metadata": metadata(p.get("subscription_data") or {})}})
    session["url"] = f"{fake.base_url}/checkout/pay/{session['id']}"
    fake.line_items[session["id"]] = lines
    return session


def public(session: dict[str, Any]) -> dict[str, Any]:
    """The session as Stripe answers it (without the fake's private fields)."""
    return {k: v for k, v in session.items()
            if k not in ("payment_intent_data", "subscription_data")}


@ROUTES.get("/v1/checkout/sessions/{sid}")
def get_session(fake: FakeStripe, call: Call, sid: str) -> dict[str, Any]:
    return public(expire_if_due(fake, fake.get(call.scope, "checkout.session", sid)))


@ROUTES.get("/v1/checkout/sessions")
def list_sessions(fake: FakeStripe, call: Call) -> dict[str, Any]:
    items = [public(expire_if_due(fake, s)) for s in fake.all(call.scope, "checkout.session")]
    for key in ("payment_intent", "customer", "status"):
        if call.params.get(key):
            items = [o for o in items if o[key] == call.params[key]]
    return fake.page(call, items, "/v1/checkout/sessions")


@ROUTES.get("/v1/checkout/sessions/{sid}/line_items")
def list_line_items(fake: FakeStripe, call: Call, sid: str) -> dict[str, Any]:
    fake.get(call.scope, "checkout.session", sid)
    items = list(reversed(fake.line_items[sid]))
    return fake.page(call, items, f"/v1/checkout/sessions/{sid}/line_items")


@ROUTES.post("/v1/checkout/sessions/{sid}/expire")
def expire_session(fake: FakeStripe, call: Call, sid: str) -> dict[str, Any]:
    session = fake.get(call.scope, "checkout.session", sid)
    if session["status"] != "open":
        raise StripeFault(f"Only Checkout Sessions with a status in [\"open\"] can be "
                          f"expired. This session has a status of \"{session['status']}\".",
                          code="checkout_session_unexpected_state")
    return public(expire(fake, session, call))


def expire(fake: FakeStripe, session: dict[str, Any], call: Call | None = None
           ) -> dict[str, Any]:
    session.update(status="expired", url=None)
    fake.emit(fake.owner[session["id"]], "checkout.session.expired", public(session), call=call)
    return session


def expire_if_due(fake: FakeStripe, session: dict[str, Any]) -> dict[str, Any]:
    if session["status"] == "open" and fake.now() >= session["expires_at"]:
        expire(fake, session)
    return session


def complete(fake: FakeStripe, session: dict[str, Any], pm: str, email: str,
             country: str, name: str | None = None,
             promotions: bool = False) -> dict[str, Any]:
    """The buyer pays on the hosted page: a PaymentIntent (or subscription) is made and
    ``checkout.session.completed`` sent; a decline raises the card error and leaves the
    session open, as the hosted page lets the buyer try another card."""
    scope = fake.owner[session["id"]]
    expire_if_due(fake, session)
    if session["status"] != "open":
        raise StripeFault(f"This Checkout Session is {session['status']}.",
                          code="checkout_session_unexpected_state")
    lines = fake.line_items[session["id"]]
    customer_id = session["customer"]
    if session["mode"] == "subscription" and not customer_id:
        from business.marketplace.fakes.stripe.payments import create_customer

        customer_id = create_customer(fake, Call("POST", "/v1/customers", scope,
                                                 {"email": email}))["id"]
        session["customer"] = customer_id
    if session["mode"] == "payment" and session["payment_intent"]:  # another card
        confirm(fake, None, fake.objects[session["payment_intent"]], pm, scope=scope)
    elif session["mode"] == "payment":
        data = session["payment_intent_data"]
        intent = fake.create(scope, "payment_intent", {
            "amount": session["amount_total"], "amount_received": 0,
            "currency": session["currency"], "customer": customer_id,
            "description": None, "metadata": dict(data["metadata"]), "payment_method": None,
            "status": "requires_payment_method", "latest_charge": None,
            "last_payment_error": None, "capture_method": "automatic",
            "transfer_group": data["transfer_group"],
            "application_fee_amount": data["application_fee_amount"],
            "receipt_email": email, "canceled_at": None, "invoice": None})
        session["payment_intent"] = intent["id"]
        confirm(fake, None, intent, pm, scope=scope)
    else:
        customer = fake.objects[customer_id]
        recurring = [line for line in lines if line["price"]["recurring"]]
        sub = subscribe(fake, Call("POST", "/v1/subscriptions", scope, {}), customer,
                        [line["price"] for line in recurring],
                        [line["quantity"] for line in recurring], pm=pm,
                        meta=dict(session["subscription_data"]["metadata"]),
                        behavior="error_if_incomplete")
        session["subscription"] = sub["id"]
    session.update(status="complete", payment_status="paid", url=None,
                   customer_details={"email": email, "address": {"country": country},
                                     "name": name},
                   consent={"promotions": "opt_in" if promotions else "opt_out"}
                   if (session.get("consent_collection") or {}).get("promotions") else None)
    fake.emit(scope, "checkout.session.completed", public(session))
    return session
