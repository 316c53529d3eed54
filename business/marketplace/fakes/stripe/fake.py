"""The fake Stripe: its settings, the request pipeline every API call goes through, and the
switches tests use to play Stripe's and the world's part.

The pipeline (:meth:`FakeStripe.handle`) checks the secret key, resolves the
``Stripe-Account`` header to a connected account, answers injected faults, replays or
refuses idempotent requests (keys remembered 24 h of the fake's clock, scoped per
account, compared on method, path and parameters), dispatches to the resource modules
and applies ``expand[]``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from business.marketplace.fakes.stripe import billing, checkout, connect, payments, payouts
from business.marketplace.fakes.stripe.delivery import WebhookDelivery
from business.marketplace.fakes.stripe.protocol import StripeFault, as_list
from business.marketplace.fakes.stripe.router import Router
from business.marketplace.fakes.stripe.state import DAY, PLATFORM, Call, StripeState

ROUTES = Router()
for _module in (payments, connect, payouts, billing, checkout):
    ROUTES.extend(_module.ROUTES)


@ROUTES.get("/v1/events/{eid}")
def _get_event(fake: FakeStripe, call: Call, eid: str) -> dict[str, Any]:
    return fake.get(call.scope, "event", eid)


@ROUTES.get("/v1/events")
def _list_events(fake: FakeStripe, call: Call) -> dict[str, Any]:
    items = fake.created_filter(call, fake.all(call.scope, "event"))
    if call.params.get("type"):
        items = [e for e in items if e["type"] == call.params["type"]]
    return fake.page(call, items, "/v1/events")


@dataclass
class Answer:
    """What the HTTP layer sends back."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class _Remembered:
    fingerprint: str
    at: int
    answer: Answer


@dataclass
class _Fault:
    status: int
    times: int
    path: str
    kind: str


class FakeStripe(StripeState):
    """Stripe's API in memory (serve it with :class:`~.server.FakeStripeServer`)."""

    def __init__(self, *, api_key: str = "sk_test_fake", webhook_secret: str | None = None,
                 clock: Callable[[], float] | None = None,
                 retry_delays: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.8)) -> None:
        super().__init__(**({"clock": clock} if clock else {}))
        self.api_key = api_key
        #: Stripe's fee on a card charge: basis points plus a fixed part (2.9 % + 30).
        self.fee_basis_points = 290
        self.fee_fixed = 30
        #: Days until a charge's funds are available (Stripe's standard US schedule: 2).
        self.availability_days = 2
        #: Instant payouts: the rolling 24 h limit per account and the fee (1.5 %, min 50).
        self.instant_daily_limit = 500_000
        self.instant_fee_basis_points = 150
        self.instant_fee_minimum = 50
        #: Dispute fee Stripe takes when a dispute opens.
        self.dispute_fee = 1_500
        #: Seconds an account link lives.
        self.account_link_lifetime = 300
        #: Days after each failed renewal attempt until the next (smart-retry-like).
        self.retry_schedule: tuple[float, ...] = (3, 5, 7)
        #: What a subscription becomes when its last retry fails.
        self.after_final_failure = "canceled"
        #: Where the fake is served (set by the server; used in link and checkout URLs).
        self.base_url = "http://127.0.0.1"
        self.instant_eligible: dict[str, bool] = {PLATFORM: True}
        self.account_links: dict[str, dict[str, Any]] = {}
        self.line_items: dict[str, list[dict[str, Any]]] = {}
        self.webhooks = WebhookDelivery(webhook_secret or "whsec_" + secrets.token_hex(16),
                                        retry_delays=retry_delays)
        self.listen(self.webhooks.on_event)
        #: Every API call: (method, path, scope, idempotency key or None).
        self.requests: list[tuple[str, str, str, str | None]] = []
        self._idempotency: dict[tuple[str, str], _Remembered] = {}
        self._faults: list[_Fault] = []
        self._entitled: dict[tuple[str, str], tuple[str, ...]] = {}

    # -- the pipeline ----------------------------------------------------------------------

    def handle(self, method: str, path: str, headers: dict[str, str],
               params: dict[str, Any]) -> Answer:
        """Answer one API request (called by the HTTP layer, any thread)."""
        with self.lock:
            request_id = "req_" + secrets.token_hex(7)
            base = {"Request-Id": request_id, "Stripe-Version": headers.get(
                "Stripe-Version", "")}
            try:
                scope = self._authorise(headers)
                call = Call(method, path, scope, params, headers.get("Idempotency-Key"),
                            request_id)
                self.requests.append((method, path, scope, call.idempotency_key))
                self._injected(path)
                return self._idempotent(call, base)
            except StripeFault as fault:
                body = fault.body()
                body["error"]["request_log_url"] = f"https://dashboard.stripe.com/test/" \
                    f"logs/{request_id}"
                return Answer(fault.status, body, {**base, **fault.headers})

    def _authorise(self, headers: dict[str, str]) -> str:
        auth = headers.get("Authorization", "")
        key = auth[7:] if auth.startswith("Bearer ") else ""
        if not key:
            raise StripeFault("You did not provide an API key. You need to provide your API "
                              "key in the Authorization header, using Bearer auth.",
                              status=401)
        if not secrets.compare_digest(key, self.api_key):
            raise StripeFault(f"Invalid API Key provided: {key[:8]}{'*' * 8}{key[-4:]}",
                              status=401)
        account = headers.get("Stripe-Account")
        if not account:
            return PLATFORM
        found = self.find(account)
        if found is None or found[1]["object"] != "account":
            raise StripeFault(f"The provided key '{key[:8]}****{key[-4:]}' does not have "
                              f"access to account '{account}' (or that account does not "
                              "exist). Application access may have been revoked.",
                              code="account_invalid", status=403)
        return account

    def _injected(self, path: str) -> None:
        for fault in self._faults:
            if fault.times > 0 and fault.path in path:
                fault.times -= 1
                if fault.kind == "rate_limit":
                    raise StripeFault("Too many requests hit the API too quickly. We "
                                      "recommend an exponential backoff of your requests.",
                                      type="rate_limit_error", code="rate_limit", status=429)
                if fault.kind == "lock_timeout":
                    raise StripeFault("This object cannot be accessed right now because "
                                      "another API request or Stripe process is currently "
                                      "accessing it.", type="invalid_request_error",
                                      code="lock_timeout", status=429,
                                      headers={"Stripe-Should-Retry": "true"})
                raise StripeFault("An unknown error occurred", type="api_error",
                                  status=fault.status)

    def _idempotent(self, call: Call, base: dict[str, str]) -> Answer:
        key = call.idempotency_key
        if call.method != "POST" or not key:
            return self._dispatch(call, base)
        if len(key) > 255:
            raise StripeFault("Idempotency-Key is too long (at most 255 characters).",
                              param="Idempotency-Key")
        fingerprint = json.dumps([call.method, call.path, call.params], sort_keys=True)
        remembered = self._idempotency.get((call.scope, key))
        if remembered is not None and self.now() - remembered.at < DAY:
            if remembered.fingerprint != fingerprint:
                raise StripeFault(
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with. Try using a key other than "
                    f"'{key}' if you meant to execute a different request.",
                    type="idempotency_error")
            replay = remembered.answer
            return Answer(replay.status, replay.body,
                          {**replay.headers, "Idempotent-Replayed": "true"})
        answer = self._dispatch(call, {**base, "Idempotency-Key": key})
        if answer.status < 400 or answer.status == 402:
            self._idempotency[(call.scope, key)] = _Remembered(fingerprint, self.now(), answer)
        return answer

    def _dispatch(self, call: Call, base: dict[str, str]) -> Answer:
        try:
            result = ROUTES.dispatch(self, call)
            body = self.render(call.scope, result, as_list(call.params.get("expand")))
            return Answer(200, body, base)
        except StripeFault as fault:
            body = fault.body()
            return Answer(fault.status, body, {**base, **fault.headers})

    # -- switches: faults ------------------------------------------------------------------

    def fail_next(self, status: int = 500, *, times: int = 1, path: str = "",
                  kind: str | None = None) -> None:
        """Answer the next ``times`` calls whose path contains ``path`` with an error:
        500 (``api_error``), 429 (``rate_limit``) or ``kind="lock_timeout"`` (429 that
        stripe-python retries)."""
        kind = kind or ("rate_limit" if status == 429 else "api_error")
        if kind not in ("rate_limit", "lock_timeout", "api_error"):
            raise ValueError("kind must be rate_limit, lock_timeout or api_error")
        with self.lock:
            self._faults.append(_Fault(status, times, path, kind))

    def clear_faults(self) -> None:
        """Drop every fault :meth:`fail_next` left to answer (the service works again)."""
        with self.lock:
            self._faults.clear()

    # -- switches: the world ---------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the fake's clock (a test clock): funds become available, subscriptions renew,
        failed invoices are retried on schedule, checkout sessions expire."""
        with self.lock:
            self.advance_clock(seconds)
            now = self.now()
            for sub in list(self.all_of("subscription")):
                scope = self.owner[sub["id"]]
                for _ in range(36):
                    if sub["status"] not in ("active", "trialing") or \
                            sub["current_period_end"] > now:
                        break
                    if sub["cancel_at_period_end"]:
                        previous = {"status": sub["status"]}
                        sub.update(status="canceled", canceled_at=now, ended_at=now)
                        self.emit(scope, "customer.subscription.deleted", sub, previous)
                        self.entitlements_changed(scope, sub["customer"])
                        break
                    billing.renew(self, scope, sub)
            for invoice in list(self.all_of("invoice")):
                due = invoice["next_payment_attempt"]
                if invoice["status"] == "open" and due is not None and due <= now:
                    self.retry_invoice(invoice["id"])
            for session in list(self.all_of("checkout.session")):
                checkout.expire_if_due(self, session)

    def all_of(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects.values() if o["object"] == kind]

    def renew(self, subscription_id: str) -> dict[str, Any]:
        """Renew a subscription now (its next period's invoice, charged); the invoice."""
        with self.lock:
            scope = self.owner[subscription_id]
            sub = self.get(scope, "subscription", subscription_id)
            sub["current_period_end"] = min(sub["current_period_end"], self.now())
            return billing.renew(self, scope, sub)

    def retry_invoice(self, invoice_id: str) -> dict[str, Any]:
        """The next smart retry of an open invoice, now; the invoice."""
        with self.lock:
            scope = self.owner[invoice_id]
            invoice = self.get(scope, "invoice", invoice_id)
            billing.attempt(self, None, scope, invoice)
            return invoice

    def set_default_card(self, customer_id: str, test_card: str) -> None:
        """The customer updates their card (as in the billing portal)."""
        with self.lock:
            scope = self.owner[customer_id]
            card = payments.payment_method(self, scope, test_card)
            self.objects[customer_id]["invoice_settings"]["default_payment_method"] = card["id"]
            for sub in self.all(scope, "subscription"):
                if sub["customer"] == customer_id:
                    sub["default_payment_method"] = None

    def complete_checkout(self, session_id: str, payment_method: str = "pm_card_visa", *,
                          email: str = "buyer@example.com", country: str = "US",
                          name: str | None = None, promotions: bool = False
                          ) -> dict[str, Any]:
        """The buyer pays a Checkout Session (``promotions``: ticks the promotional
        emails box when the session collects that consent); a decline raises the card's
        StripeFault."""
        with self.lock:
            session = self.objects.get(session_id)
            if session is None or session["object"] != "checkout.session":
                raise KeyError(f"no checkout session {session_id!r}")
            return checkout.complete(self, session, payment_method, email, country, name,
                                     promotions)

    def complete_onboarding(self, account_id: str) -> dict[str, Any]:
        """The seller finishes onboarding: requirements met, capabilities active."""
        with self.lock:
            account = self.get(PLATFORM, "account", account_id)
            connect.finish_onboarding(self, account)
            return account

    def create_dispute(self, charge_id: str, *, reason: str = "fraudulent",
                       amount: int | None = None) -> dict[str, Any]:
        """The cardholder disputes a charge: the amount and the dispute fee leave the balance."""
        with self.lock:
            scope = self.owner[charge_id]
            charge = self.get(scope, "charge", charge_id)
            amount = charge["amount"] - charge["amount_refunded"] if amount is None else amount
            txn = self.balance_transaction(scope, amount=-amount, currency=charge["currency"],
                                           type="adjustment", source=None, fee=self.dispute_fee,
                                           reporting_category="dispute")
            dispute = self.create(scope, "dispute", {
                "amount": amount, "currency": charge["currency"], "charge": charge_id,
                "payment_intent": charge["payment_intent"], "reason": reason,
                "status": "needs_response", "balance_transactions": [txn],
                "evidence_details": {"due_by": self.now() + 7 * DAY, "has_evidence": False},
                "is_charge_refundable": False, "metadata": {}})
            txn["source"] = dispute["id"]
            charge["disputed"] = True
            self.emit(scope, "charge.dispute.created", dispute)
            return dispute

    def resolve_dispute(self, dispute_id: str, *, won: bool) -> dict[str, Any]:
        """The bank decides: won gives the amount back (the fee stays with Stripe)."""
        with self.lock:
            scope = self.owner[dispute_id]
            dispute = self.get(scope, "dispute", dispute_id)
            if won:
                txn = self.balance_transaction(scope, amount=dispute["amount"],
                                               currency=dispute["currency"], type="adjustment",
                                               source=dispute_id,
                                               reporting_category="dispute_reversal")
                dispute["balance_transactions"].append(txn)
            dispute["status"] = "won" if won else "lost"
            self.emit(scope, "charge.dispute.closed", dispute)
            return dispute

    def settle_payouts(self, account_id: str | None = None) -> list[dict[str, Any]]:
        """Every pending payout (of one account, or all) arrives: ``paid``."""
        with self.lock:
            done = []
            for payout in self.all_of("payout"):
                scope = self.owner[payout["id"]]
                if payout["status"] == "pending" and account_id in (None, scope):
                    payout["status"] = "paid"
                    self.emit(scope, "payout.paid", payout, {"status": "pending"})
                    done.append(payout)
            return done

    def fail_payout(self, payout_id: str, code: str = "account_closed") -> dict[str, Any]:
        """The bank refuses a pending payout or returns a paid one (``payout.failed``)."""
        with self.lock:
            scope = self.owner[payout_id]
            return payouts.fail(self, scope, self.get(scope, "payout", payout_id), code)

    def set_instant_eligible(self, account_id: str, eligible: bool) -> None:
        with self.lock:
            self.instant_eligible[account_id] = eligible

    def entitlements_changed(self, scope: str, customer: str) -> None:
        """Send ``entitlements.active_entitlement_summary.updated`` if the set changed."""
        items = billing.active_entitlements(self, scope, customer)
        keys = tuple(e["lookup_key"] for e in items)
        before = self._entitled.get((scope, customer), ())
        if keys == before:
            return
        self._entitled[(scope, customer)] = keys
        summary = {"object": "entitlements.active_entitlement_summary", "customer": customer,
                   "livemode": False, "entitlements": {
                       "object": "list", "data": items, "has_more": False,
                       "url": "/v1/entitlements/active_entitlements"}}
        self.emit(scope, "entitlements.active_entitlement_summary.updated", summary,
                  {"entitlements": {"data": [{"lookup_key": k} for k in before]}})

    def event(self, event_id: str) -> dict[str, Any]:
        return self.objects[event_id]

    def events_of(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.event_log if e["type"] == type_]
