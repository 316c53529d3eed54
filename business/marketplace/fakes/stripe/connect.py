"""Connect: connected accounts, account links, capabilities and requirements, transfers and
their reversals.

A new account has its requirements ``currently_due``, charges and payouts disabled and
its capabilities ``inactive``. An account link is single use and expires after
:attr:`FakeStripe.account_link_lifetime` seconds; opening its URL (the fake's onboarding
"page") finishes onboarding and redirects to ``return_url``, or redirects to
``refresh_url`` when the link has expired or was used, as Stripe does.
"""

from __future__ import annotations

import secrets
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
from business.marketplace.fakes.stripe.state import PLATFORM, Call

if TYPE_CHECKING:
    from business.marketplace.fakes.stripe.fake import FakeStripe

ROUTES = Router()

#: What a new account must provide before charges and payouts are enabled.
REQUIREMENTS = ["business_type", "external_account", "individual.first_name",
                "individual.last_name", "individual.dob.day", "tos_acceptance.date"]


def _requirements(due: list[str]) -> dict[str, Any]:
    return {"currently_due": list(due), "eventually_due": list(due), "past_due": [],
            "pending_verification": [], "errors": [], "current_deadline": None,
            "disabled_reason": "requirements.past_due" if due else None}


@ROUTES.post("/v1/accounts")
def create_account(fake: FakeStripe, call: Call) -> dict[str, Any]:
    if call.scope != PLATFORM:
        raise StripeFault("You cannot create connected accounts on behalf of a connected "
                          "account.", status=403, type="invalid_request_error")
    p = call.params
    kind = p.get("type", "express")
    if kind not in ("express", "standard", "custom"):
        raise StripeFault("Invalid type: must be one of custom, express, or standard",
                          param="type")
    capabilities = {name: "inactive" for name, spec in (p.get("capabilities") or {}).items()
                    if boolean(spec, "requested")}
    if kind == "standard":
        capabilities = {"card_payments": "inactive", "transfers": "inactive"}
    account = fake.create(PLATFORM, "account", {
        "type": kind, "country": p.get("country", "US"), "email": p.get("email"),
        "default_currency": "usd", "charges_enabled": False, "payouts_enabled": False,
        "details_submitted": False, "capabilities": capabilities,
        "requirements": _requirements(REQUIREMENTS), "metadata": metadata(p),
        "business_profile": p.get("business_profile") or {},
        "settings": {"payouts": {"schedule": {"interval": "daily", "delay_days": 2}}},
        "external_accounts": {"object": "list", "data": [], "has_more": False}})
    fake.instant_eligible[account["id"]] = False
    return account


def connected(fake: FakeStripe, account_id: str, param: str | None = None) -> dict[str, Any]:
    """A connected account of this platform, or Stripe's 404."""
    return fake.get(PLATFORM, "account", account_id, param)


@ROUTES.get("/v1/accounts/{aid}")
def get_account(fake: FakeStripe, call: Call, aid: str) -> dict[str, Any]:
    if call.scope != PLATFORM and aid != call.scope:
        raise StripeFault(f"No such account: '{aid}'", code="resource_missing", status=404)
    return connected(fake, aid)


@ROUTES.get("/v1/account")
def get_own_account(fake: FakeStripe, call: Call) -> dict[str, Any]:
    if call.scope == PLATFORM:
        return {"id": "acct_platform", "object": "account", "type": "standard",
                "charges_enabled": True, "payouts_enabled": True}
    return connected(fake, call.scope)


@ROUTES.post("/v1/accounts/{aid}")
def update_account(fake: FakeStripe, call: Call, aid: str) -> dict[str, Any]:
    account = connected(fake, aid)
    account["metadata"] = metadata(call.params, account["metadata"])
    for name, spec in (call.params.get("capabilities") or {}).items():
        if boolean(spec, "requested") and name not in account["capabilities"]:
            account["capabilities"][name] = ("active" if account["details_submitted"]
                                             else "inactive")
    fake.emit(PLATFORM, "account.updated", account, call=call)
    return account


@ROUTES.delete("/v1/accounts/{aid}")
def delete_account(fake: FakeStripe, call: Call, aid: str) -> dict[str, Any]:
    account = connected(fake, aid)
    del fake.objects[account["id"]]
    return {"id": aid, "object": "account", "deleted": True}


@ROUTES.get("/v1/accounts")
def list_accounts(fake: FakeStripe, call: Call) -> dict[str, Any]:
    return fake.page(call, fake.all(PLATFORM, "account"), "/v1/accounts")


@ROUTES.post("/v1/account_links")
def create_account_link(fake: FakeStripe, call: Call) -> dict[str, Any]:
    p = call.params
    account = connected(fake, required(p, "account"), "account")
    for name in ("refresh_url", "return_url"):
        url = str(required(p, name))
        if not url.startswith(("http://", "https://")):
            raise StripeFault("Not a valid URL", param=name, code="url_invalid")
    if p.get("type", "account_onboarding") not in ("account_onboarding", "account_update"):
        raise StripeFault("Invalid type: must be one of account_onboarding or account_update",
                          param="type")
    token = secrets.token_urlsafe(16)
    now = fake.now()
    link = {"object": "account_link", "created": now,
            "expires_at": now + fake.account_link_lifetime,
            "url": f"{fake.base_url}/connect/onboarding/{token}"}
    fake.account_links[token] = {"account": account["id"], "refresh_url": p["refresh_url"],
                                 "return_url": p["return_url"], "expires_at": link["expires_at"],
                                 "used": False}
    return link


def open_account_link(fake: FakeStripe, token: str) -> str:
    """The fake's onboarding page: where the browser is sent (return or refresh URL)."""
    with fake.lock:
        link = fake.account_links.get(token)
        if link is None:
            raise StripeFault("This account link is invalid.", status=404)
        if link["used"] or fake.now() >= link["expires_at"]:
            return str(link["refresh_url"])
        link["used"] = True
        fake.complete_onboarding(link["account"])
        return str(link["return_url"])


def finish_onboarding(fake: FakeStripe, account: dict[str, Any]) -> None:
    previous = {"charges_enabled": account["charges_enabled"],
                "requirements": dict(account["requirements"])}
    account.update(details_submitted=True, charges_enabled=True, payouts_enabled=True,
                   requirements=_requirements([]))
    account["capabilities"] = {name: "active" for name in account["capabilities"]}
    account["external_accounts"]["data"] = [{
        "id": f"card_{account['id'][5:]}", "object": "card", "brand": "Visa", "last4": "4242",
        "currency": "usd", "available_payout_methods": ["standard", "instant"]}]
    fake.instant_eligible[account["id"]] = True
    fake.emit(PLATFORM, "account.updated", account, previous)
    for name in account["capabilities"]:
        fake.emit(PLATFORM, "capability.updated",
                  {"id": name, "object": "capability", "account": account["id"],
                   "status": "active", "requirements": _requirements([])})


# -- transfers ----------------------------------------------------------------------------


@ROUTES.post("/v1/transfers")
def create_transfer(fake: FakeStripe, call: Call) -> dict[str, Any]:
    if call.scope != PLATFORM:
        raise StripeFault("Transfers can only be created by the platform.", status=403)
    p = call.params
    cur = currency(p)
    amount = integer(p, "amount", required=True, minimum=1)
    assert amount is not None
    destination = connected(fake, required(p, "destination"), "destination")
    if destination["capabilities"].get("transfers") != "active" and \
            destination["capabilities"].get("card_payments") != "active":
        raise StripeFault("Your destination account needs to have at least one of the "
                          "following capabilities enabled: transfers, crypto_transfers, "
                          "legacy_payments", code="insufficient_capabilities_for_transfer",
                          param="destination")
    source = p.get("source_transaction")
    if source:
        charge = fake.get(PLATFORM, "charge", source, "source_transaction")
        used = sum(t["amount"] for t in fake.all(PLATFORM, "transfer")
                   if t["source_transaction"] == source)
        if charge["currency"] != cur:
            raise StripeFault("The currency of source_transaction's balance transaction "
                              f"({charge['currency']}) must be the same as the transfer "
                              f"currency ({cur})", param="currency")
        if used + amount > charge["amount"]:
            raise StripeFault("Transfers using source_transaction cannot exceed the source "
                              "charge's amount.", code="transfer_source_balance_parameters_"
                              "mismatch", param="amount")
    else:
        available = fake.balances(PLATFORM).get(cur, {}).get("available", 0)
        if amount > available:
            raise StripeFault("You have insufficient available funds in your Stripe account. "
                              "Try adding funds directly to your available balance by "
                              "creating Charges using the 4000000000000077 test card.",
                              code="balance_insufficient", param="amount")
    transfer = fake.create(PLATFORM, "transfer", {
        "amount": amount, "amount_reversed": 0, "currency": cur,
        "destination": destination["id"], "metadata": metadata(p), "reversed": False,
        "reversals": {"object": "list", "data": [], "has_more": False},
        "transfer_group": p.get("transfer_group"), "source_transaction": source,
        "description": p.get("description"), "balance_transaction": None,
        "destination_payment": None})
    out = fake.balance_transaction(PLATFORM, amount=-amount, currency=cur, type="transfer",
                                   source=transfer["id"])
    payment = fake.create(destination["id"], "charge", {
        "amount": amount, "amount_refunded": 0, "currency": cur, "status": "succeeded",
        "paid": True, "refunded": False, "disputed": False, "source_transfer": transfer["id"],
        "payment_intent": None, "customer": None, "metadata": {}, "balance_transaction": None},
        object_id=f"py_{transfer['id'][3:]}")
    into = fake.balance_transaction(destination["id"], amount=amount, currency=cur,
                                    type="payment", source=payment["id"])
    payment["balance_transaction"] = into["id"]
    transfer.update(balance_transaction=out["id"], destination_payment=payment["id"])
    fake.emit(PLATFORM, "transfer.created", transfer, call=call)
    return transfer


@ROUTES.get("/v1/transfers/{tid}")
def get_transfer(fake: FakeStripe, call: Call, tid: str) -> dict[str, Any]:
    return fake.get(call.scope, "transfer", tid)


@ROUTES.get("/v1/transfers")
def list_transfers(fake: FakeStripe, call: Call) -> dict[str, Any]:
    return fake.listing(call, "transfer", "/v1/transfers", ("destination", "transfer_group"))


@ROUTES.post("/v1/transfers/{tid}/reversals")
def create_reversal(fake: FakeStripe, call: Call, tid: str) -> dict[str, Any]:
    transfer = fake.get(call.scope, "transfer", tid)
    remaining = transfer["amount"] - transfer["amount_reversed"]
    if remaining <= 0:
        raise StripeFault(f"Transfer {tid} has already been fully reversed.",
                          code="transfer_already_reversed")
    amount = integer(call.params, "amount", minimum=1, default=remaining)
    assert amount is not None
    if amount > remaining:
        raise StripeFault(f"Reversal amount ({amount}) is greater than the transfer's "
                          f"unreversed amount ({remaining}).", param="amount")
    cur = transfer["currency"]
    back = fake.balance_transaction(PLATFORM, amount=amount, currency=cur,
                                     type="transfer_refund", source=None)
    reversal = fake.create(PLATFORM, "transfer_reversal", {
        "amount": amount, "currency": cur, "transfer": tid, "metadata": metadata(call.params),
        "balance_transaction": back["id"], "destination_payment_refund": None})
    back["source"] = reversal["id"]
    fake.balance_transaction(transfer["destination"], amount=-amount, currency=cur,
                             type="payment_refund", source=reversal["id"])
    previous = {"amount_reversed": transfer["amount_reversed"]}
    transfer["amount_reversed"] += amount
    transfer["reversed"] = transfer["amount_reversed"] == transfer["amount"]
    transfer["reversals"]["data"].insert(0, reversal)
    fake.emit(PLATFORM, "transfer.reversed", transfer, previous, call=call)
    return reversal


@ROUTES.get("/v1/transfers/{tid}/reversals")
def list_reversals(fake: FakeStripe, call: Call, tid: str) -> dict[str, Any]:
    fake.get(call.scope, "transfer", tid)
    items = [o for o in fake.all(call.scope, "transfer_reversal") if o["transfer"] == tid]
    return fake.page(call, items, f"/v1/transfers/{tid}/reversals")
