"""Billing: subscriptions on recurring prices, their invoices and failed-renewal retries, and
the entitlements API (features, product features, a customer's active entitlements).

A subscription's first invoice is paid at creation (``incomplete`` when the card
declines, Stripe's default ``allow_incomplete``). A renewal (:meth:`FakeStripe.renew`, or
the clock passing ``current_period_end`` in :meth:`FakeStripe.advance`) opens an invoice
and charges the default payment method; a decline makes the subscription ``past_due``
and schedules retries after :attr:`FakeStripe.retry_schedule` (days, a smart-retry-like
schedule); when the last retry fails the subscription ends as
:attr:`FakeStripe.after_final_failure` says (``canceled``, ``unpaid`` or ``past_due``).
Active entitlements are the features of the products of a customer's subscriptions
that are ``active``, ``trialing`` or ``past_due``.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from business.marketplace.fakes.stripe.payments import charge_card, payment_method
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
_INTERVAL = {"day": DAY, "week": 7 * DAY, "month": 30 * DAY, "year": 365 * DAY}
#: Subscription statuses whose products' features are entitled.
ENTITLED = ("active", "trialing", "past_due")


def period(price: dict[str, Any]) -> int:
    """Seconds in one billing period of a recurring price (a month is 30 days here)."""
    recurring = price["recurring"]
    return _INTERVAL[recurring["interval"]] * recurring["interval_count"]


# -- subscriptions ------------------------------------------------------------------------


@ROUTES.post("/v1/subscriptions")
def create_subscription(fake: FakeStripe, call: Call) -> dict[str, Any]:
    p = call.params
    customer = fake.get(call.scope, "customer", required(p, "customer"), "customer")
    items = as_list(p.get("items"))
    if not items:
        raise StripeFault("Missing required param: items.", code="parameter_missing",
                          param="items")
    prices = [fake.get(call.scope, "price", required(i, "price"), f"items[{n}][price]")
              for n, i in enumerate(items)]
    return subscribe(fake, call, customer, prices,
                     [integer(i, "quantity", minimum=1, default=1) or 1 for i in items],
                     pm=p.get("default_payment_method"), meta=metadata(p),
                     trial_days=integer(p, "trial_period_days", minimum=0, default=0) or 0,
                     behavior=p.get("payment_behavior", "allow_incomplete"))


def subscribe(fake: FakeStripe, call: Call | None, customer: dict[str, Any],
              prices: list[dict[str, Any]], quantities: list[int], *, pm: str | None,
              meta: dict[str, str], trial_days: int = 0,
              behavior: str = "allow_incomplete") -> dict[str, Any]:
    """A new subscription and its first invoice (paid now unless in trial)."""
    scope = call.scope if call else fake.owner[customer["id"]]
    for n, price in enumerate(prices):
        if price["recurring"] is None:
            raise StripeFault("The price specified is set to `type=one_time` but this field "
                              "only accepts prices with `type=recurring`.",
                              param=f"items[{n}][price]")
    if len({p["currency"] for p in prices}) > 1:
        raise StripeFault("All prices on a subscription must have the same currency.",
                          param="items")
    if pm:
        pm = payment_method(fake, scope, pm, "default_payment_method")["id"]
    now = fake.now()
    end = now + (trial_days * DAY if trial_days else period(prices[0]))
    sub = fake.create(scope, "subscription", {
        "customer": customer["id"], "status": "incomplete", "metadata": meta,
        "default_payment_method": pm, "currency": prices[0]["currency"],
        "current_period_start": now, "current_period_end": end, "cancel_at_period_end": False,
        "canceled_at": None, "ended_at": None, "latest_invoice": None,
        "trial_end": end if trial_days else None, "collection_method": "charge_automatically"})
    sub["items"] = {"object": "list", "has_more": False, "url": "/v1/subscription_items",
                    "data": [fake.create(scope, "subscription_item", {
                        "price": price, "quantity": qty, "subscription": sub["id"],
                        "current_period_start": now, "current_period_end": end})
                             for price, qty in zip(prices, quantities, strict=True)]}
    invoice = new_invoice(fake, scope, sub, "subscription_create", zero=bool(trial_days))
    if trial_days:
        sub["status"] = "trialing"
    else:
        failure = attempt(fake, call, scope, invoice)
        if failure is not None and behavior == "error_if_incomplete":
            raise failure
    fake.emit(scope, "customer.subscription.created", sub, call=call)
    fake.entitlements_changed(scope, customer["id"])
    return sub


def new_invoice(fake: FakeStripe, scope: str, sub: dict[str, Any], reason: str,
                zero: bool = False) -> dict[str, Any]:
    lines = [{"id": f"il_{item['id'][3:]}", "object": "line_item", "price": item["price"],
              "quantity": item["quantity"], "currency": item["price"]["currency"],
              "amount": 0 if zero else item["price"]["unit_amount"] * item["quantity"],
              "period": {"start": sub["current_period_start"],
                         "end": sub["current_period_end"]}}
             for item in sub["items"]["data"]]
    total = sum(line["amount"] for line in lines)
    invoice = fake.create(scope, "invoice", {
        "customer": sub["customer"], "subscription": sub["id"], "billing_reason": reason,
        "currency": sub["currency"], "amount_due": total, "amount_paid": 0,
        "amount_remaining": total, "total": total, "status": "open", "paid": False,
        "attempt_count": 0, "attempted": False, "next_payment_attempt": None,
        "payment_intent": None, "charge": None, "metadata": {},
        "lines": {"object": "list", "data": lines, "has_more": False},
        "period_start": sub["current_period_start"], "period_end": sub["current_period_end"],
        "status_transitions": {"paid_at": None, "finalized_at": fake.now()}})
    sub["latest_invoice"] = invoice["id"]
    fake.emit(scope, "invoice.finalized", invoice)
    if total == 0:
        mark_paid(fake, None, scope, invoice)
    return invoice


def mark_paid(fake: FakeStripe, call: Call | None, scope: str, invoice: dict[str, Any]) -> None:
    invoice.update(status="paid", paid=True, amount_paid=invoice["amount_due"],
                   amount_remaining=0, next_payment_attempt=None)
    invoice["status_transitions"]["paid_at"] = fake.now()
    fake.emit(scope, "invoice.paid", invoice, call=call)
    fake.emit(scope, "invoice.payment_succeeded", invoice, call=call)


def attempt(fake: FakeStripe, call: Call | None, scope: str, invoice: dict[str, Any],
            pm_id: str | None = None) -> StripeFault | None:
    """Charge the invoice; update the invoice and its subscription; the decline, if any."""
    if invoice["status"] != "open":
        raise StripeFault(f"Invoice is already {invoice['status']}.",
                          code="invoice_not_open" if invoice["status"] != "paid"
                          else "invoice_already_paid")
    sub = fake.objects[invoice["subscription"]]
    customer = fake.objects[invoice["customer"]]
    pm = pm_id or sub["default_payment_method"] or \
        customer["invoice_settings"]["default_payment_method"]
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    previous = {"status": sub["status"]}
    failure: StripeFault | None = None
    if not pm:
        failure = StripeFault("This customer has no attached payment source or default "
                              "payment method.", code="resource_missing")
    else:
        card = payment_method(fake, scope, pm)
        try:
            charge = charge_card(fake, call, scope, amount=invoice["amount_due"],
                                 cur=invoice["currency"], pm=card, customer=customer["id"],
                                 intent=None, description=f"Invoice {invoice['id']}",
                                 invoice=invoice["id"])
            invoice["charge"] = charge["id"]
        except StripeFault as fault:
            failure = fault
    if failure is None:
        mark_paid(fake, call, scope, invoice)
        sub["status"] = "active"
    else:
        invoice["charge"] = failure.extra.get("charge")
        retries = fake.retry_schedule
        if invoice["billing_reason"] == "subscription_create":
            sub["status"] = "incomplete"
        elif invoice["attempt_count"] <= len(retries):
            invoice["next_payment_attempt"] = fake.now() + int(
                retries[invoice["attempt_count"] - 1] * DAY)
            sub["status"] = "past_due"
        else:
            invoice["next_payment_attempt"] = None
            final = fake.after_final_failure
            if final == "canceled":
                sub.update(status="canceled", canceled_at=fake.now(), ended_at=fake.now())
                invoice["status"] = "uncollectible"
            else:
                sub["status"] = final
        fake.emit(scope, "invoice.payment_failed", invoice, call=call)
    if sub["status"] != previous["status"]:
        kind = ("customer.subscription.deleted" if sub["status"] == "canceled"
                else "customer.subscription.updated")
        fake.emit(scope, kind, sub, previous, call=call)
        fake.entitlements_changed(scope, customer["id"])
    return failure


def renew(fake: FakeStripe, scope: str, sub: dict[str, Any]) -> dict[str, Any]:
    """Start the next period: a ``subscription_cycle`` invoice, charged now."""
    start = sub["current_period_end"]
    end = start + period(sub["items"]["data"][0]["price"])
    sub.update(current_period_start=start, current_period_end=end, trial_end=None)
    for item in sub["items"]["data"]:
        item.update(current_period_start=start, current_period_end=end)
    if sub["status"] == "trialing":
        sub["status"] = "active"
    invoice = new_invoice(fake, scope, sub, "subscription_cycle")
    if invoice["status"] == "open":
        attempt(fake, None, scope, invoice)
    return invoice


@ROUTES.get("/v1/subscriptions/{sid}")
def get_subscription(fake: FakeStripe, call: Call, sid: str) -> dict[str, Any]:
    return fake.get(call.scope, "subscription", sid)


@ROUTES.get("/v1/subscriptions")
def list_subscriptions(fake: FakeStripe, call: Call) -> dict[str, Any]:
    items = fake.all(call.scope, "subscription")
    status = call.params.get("status")
    if call.params.get("customer"):
        items = [o for o in items if o["customer"] == call.params["customer"]]
    if status and status != "all":
        items = [o for o in items if o["status"] == status]
    elif not status:
        items = [o for o in items if o["status"] != "canceled"]
    return fake.page(call, items, "/v1/subscriptions")


@ROUTES.post("/v1/subscriptions/{sid}")
def update_subscription(fake: FakeStripe, call: Call, sid: str) -> dict[str, Any]:
    sub = fake.get(call.scope, "subscription", sid)
    p = call.params
    previous: dict[str, Any] = {}
    if "cancel_at_period_end" in p:
        previous["cancel_at_period_end"] = sub["cancel_at_period_end"]
        sub["cancel_at_period_end"] = str(p["cancel_at_period_end"]).lower() == "true"
    if p.get("default_payment_method"):
        sub["default_payment_method"] = payment_method(
            fake, call.scope, p["default_payment_method"], "default_payment_method")["id"]
    sub["metadata"] = metadata(p, sub["metadata"])
    fake.emit(call.scope, "customer.subscription.updated", sub, previous, call=call)
    return sub


@ROUTES.delete("/v1/subscriptions/{sid}")
def cancel_subscription(fake: FakeStripe, call: Call, sid: str) -> dict[str, Any]:
    sub = fake.get(call.scope, "subscription", sid)
    if sub["status"] == "canceled":
        raise StripeFault(f"No such subscription: '{sid}'", code="resource_missing",
                          status=404)
    previous = {"status": sub["status"]}
    sub.update(status="canceled", canceled_at=fake.now(), ended_at=fake.now())
    fake.emit(call.scope, "customer.subscription.deleted", sub, previous, call=call)
    fake.entitlements_changed(call.scope, sub["customer"])
    return sub


# -- invoices -----------------------------------------------------------------------------


@ROUTES.get("/v1/invoices/{iid}")
def get_invoice(fake: FakeStripe, call: Call, iid: str) -> dict[str, Any]:
    return fake.get(call.scope, "invoice", iid)


@ROUTES.get("/v1/invoices")
def list_invoices(fake: FakeStripe, call: Call) -> dict[str, Any]:
    return fake.listing(call, "invoice", "/v1/invoices", ("customer", "subscription", "status"))


@ROUTES.post("/v1/invoices/{iid}/pay")
def pay_invoice(fake: FakeStripe, call: Call, iid: str) -> dict[str, Any]:
    invoice = fake.get(call.scope, "invoice", iid)
    failure = attempt(fake, call, call.scope, invoice, call.params.get("payment_method"))
    if failure is not None:
        raise failure
    return invoice


# -- entitlements -------------------------------------------------------------------------


@ROUTES.post("/v1/entitlements/features")
def create_feature(fake: FakeStripe, call: Call) -> dict[str, Any]:
    p = call.params
    key = str(required(p, "lookup_key"))
    if any(f["lookup_key"] == key for f in fake.all(call.scope, "entitlements.feature")):
        raise StripeFault(f"A feature with lookup_key '{key}' already exists.",
                          code="resource_already_exists", param="lookup_key")
    return fake.create(call.scope, "entitlements.feature", {
        "name": required(p, "name"), "lookup_key": key, "active": True,
        "metadata": metadata(p)})


@ROUTES.get("/v1/entitlements/features/{fid}")
def get_feature(fake: FakeStripe, call: Call, fid: str) -> dict[str, Any]:
    return fake.get(call.scope, "entitlements.feature", fid)


@ROUTES.get("/v1/entitlements/features")
def list_features(fake: FakeStripe, call: Call) -> dict[str, Any]:
    items = fake.all(call.scope, "entitlements.feature")
    if call.params.get("lookup_key"):
        items = [f for f in items if f["lookup_key"] == call.params["lookup_key"]]
    return fake.page(call, items, "/v1/entitlements/features")


@ROUTES.post("/v1/products/{pid}/features")
def attach_feature(fake: FakeStripe, call: Call, pid: str) -> dict[str, Any]:
    fake.get(call.scope, "product", pid)
    feature = fake.get(call.scope, "entitlements.feature",
                       required(call.params, "entitlement_feature"), "entitlement_feature")
    if any(pf["entitlement_feature"]["id"] == feature["id"]
           for pf in fake.all(call.scope, "product_feature") if pf["product"] == pid):
        raise StripeFault("This feature is already attached to the product.",
                          code="resource_already_exists", param="entitlement_feature")
    attached = fake.create(call.scope, "product_feature",
                           {"entitlement_feature": feature, "product": pid})
    for customer in {s["customer"] for s in fake.all(call.scope, "subscription")}:
        fake.entitlements_changed(call.scope, customer)
    return attached


@ROUTES.get("/v1/products/{pid}/features")
def list_product_features(fake: FakeStripe, call: Call, pid: str) -> dict[str, Any]:
    fake.get(call.scope, "product", pid)
    items = [pf for pf in fake.all(call.scope, "product_feature") if pf["product"] == pid]
    return fake.page(call, items, f"/v1/products/{pid}/features")


@ROUTES.delete("/v1/products/{pid}/features/{fid}")
def detach_feature(fake: FakeStripe, call: Call, pid: str, fid: str) -> dict[str, Any]:
    attached = fake.get(call.scope, "product_feature", fid)
    if attached["product"] != pid:
        raise StripeFault(f"No such product feature: '{fid}'", code="resource_missing",
                          status=404)
    del fake.objects[fid]
    for customer in {s["customer"] for s in fake.all(call.scope, "subscription")}:
        fake.entitlements_changed(call.scope, customer)
    return {"id": fid, "object": "product_feature", "deleted": True}


def active_entitlements(fake: FakeStripe, scope: str, customer: str) -> list[dict[str, Any]]:
    """The customer's entitlements now, one per feature, ordered by lookup key."""
    products = {item["price"]["product"] for sub in fake.all(scope, "subscription")
                if sub["customer"] == customer and sub["status"] in ENTITLED
                for item in sub["items"]["data"]}
    features = {pf["entitlement_feature"]["id"]: pf["entitlement_feature"]
                for pf in fake.all(scope, "product_feature") if pf["product"] in products}
    out = []
    for feature in sorted(features.values(), key=lambda f: f["lookup_key"]):
        digest = hashlib.sha256(f"{customer}:{feature['id']}".encode()).hexdigest()[:20]
        out.append({"id": f"ent_{digest}", "object": "entitlements.active_entitlement",
                    "feature": feature["id"], "lookup_key": feature["lookup_key"],
                    "livemode": False})
    return out


@ROUTES.get("/v1/entitlements/active_entitlements")
def list_active_entitlements(fake: FakeStripe, call: Call) -> dict[str, Any]:
    customer = fake.get(call.scope, "customer", required(call.params, "customer"), "customer")
    items = list(reversed(active_entitlements(fake, call.scope, customer["id"])))
    return fake.page(call, items, "/v1/entitlements/active_entitlements")
