"""Every call the marketplace makes to Stripe, through the official stripe-python client.

A thin wrapper over :class:`stripe.StripeClient` (async methods, aiohttp transport):

- every write takes an ``idempotency_key`` (required, keyword-only): derive it from what
  the operation is (:func:`idempotency_key`, e.g. ``("transfer", order_id, payee)``), so a
  retried job sends the same key and Stripe answers the first result instead of paying
  twice;
- Connect calls name the connected account (``account=``, sent as ``Stripe-Account``);
- Stripe's errors become ours (:mod:`business.marketplace.errors`): a decline is
  :class:`PaymentDeclined` with its ``decline_code``, a network failure, 5xx or 429 is
  :class:`StripeUnavailable` (retryable), a reused key with other parameters is
  :class:`IdempotencyMismatch`.

Production and tests share this path; only :class:`StripeSettings.api_base` differs (the
fake Stripe's loopback address in tests, Stripe's own when unset).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import stripe

from business.marketplace.errors import (
    IdempotencyMismatch,
    InstantPayoutRefused,
    InsufficientStripeBalance,
    PaymentDeclined,
    PaymentError,
    StripeMisconfigured,
    StripeObjectMissing,
    StripeRejected,
    StripeUnavailable,
)

T = TypeVar("T")
StripeObject = Any  # stripe-python's StripeObject subclasses (dict-like, attribute access)


@dataclass(frozen=True)
class StripeSettings:
    """How to reach Stripe.

    ``api_base``: None for Stripe itself, else a base URL (the fake, a proxy).
    ``max_network_retries``: stripe-python's own retries of connection errors, 409 and
    5xx (same idempotency key). ``timeout``: seconds per HTTP request.
    ``instant_fee_basis_points`` / ``instant_fee_minimum`` / ``instant_daily_limit``: the
    instant payout terms shown to sellers (Stripe's price list; the fee actually taken is
    read back from the payout's balance transaction).
    """

    api_key: str
    api_base: str | None = None
    max_network_retries: int = 2
    timeout: float = 30.0
    instant_fee_basis_points: int = 150
    instant_fee_minimum: int = 50
    instant_daily_limit: int = 500_000


@dataclass(frozen=True)
class InstantPayoutTerms:
    """What a seller sees before asking for an instant payout."""

    eligible: bool
    available: int
    currency: str
    fee_basis_points: int
    fee_minimum: int
    daily_limit: int

    def fee(self, amount: int) -> int:
        """The fee of an instant payout of ``amount`` minor units (rounded up)."""
        return max(self.fee_minimum, -(-amount * self.fee_basis_points // 10_000))


def idempotency_key(*parts: object) -> str:
    """A stable idempotency key for one operation, from what identifies it."""
    text = "\x1f".join(str(p) for p in parts)
    if not text:
        raise ValueError("an idempotency key needs the parts that identify the operation")
    return "mbs-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def map_error(exc: stripe.StripeError) -> PaymentError:
    """Our error for one of stripe-python's."""
    error = getattr(exc, "error", None)
    code = getattr(exc, "code", None) or (getattr(error, "code", None) if error else None)
    param = getattr(error, "param", None) if error else None
    status = exc.http_status
    message = getattr(error, "message", None) or exc.user_message or str(exc)
    common: dict[str, Any] = {"code": code, "param": param, "status": status,
                              "request_id": exc.request_id}
    if isinstance(exc, stripe.CardError):
        intent = getattr(error, "payment_intent", None)
        return PaymentDeclined(message, decline_code=(getattr(error, "decline_code", None)
                                                      or code or "generic_decline"),
                               charge_id=getattr(error, "charge", None),
                               payment_intent_id=getattr(intent, "id", None), **common)
    if isinstance(exc, stripe.IdempotencyError):
        return IdempotencyMismatch(message, **common)
    if isinstance(exc, stripe.APIConnectionError | stripe.RateLimitError | stripe.APIError):
        return StripeUnavailable(message, **common)
    if status == 429:  # lock_timeout arrives as an invalid request with status 429
        return StripeUnavailable(message, **common)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return StripeMisconfigured(message, **common)
    if code == "balance_insufficient":
        return InsufficientStripeBalance(message, **common)
    if code in ("instant_payouts_unsupported", "instant_payouts_limit_exceeded"):
        return InstantPayoutRefused(message, **common)
    if code == "resource_missing" or status == 404:
        return StripeObjectMissing(message, **common)
    if status is not None and status >= 500:
        return StripeUnavailable(message, **common)
    return StripeRejected(message, **common)


def _options(key: str | None, account: str | None, write: bool) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if write:
        if not key:
            raise ValueError("every write to Stripe needs an idempotency key "
                             "(idempotency_key(...) of what identifies the operation)")
        options["idempotency_key"] = key
    if account:
        options["stripe_account"] = account
    return options


def _clean(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


class StripeGateway:
    """The marketplace's Stripe client (an async context manager; one per process)."""

    def __init__(self, settings: StripeSettings) -> None:
        self.settings = settings
        self._http = stripe.AIOHTTPClient(timeout=settings.timeout)
        bases = ({"api": settings.api_base, "connect": settings.api_base,
                  "files": settings.api_base} if settings.api_base else None)
        self.client = stripe.StripeClient(settings.api_key, base_addresses=bases,
                                          http_client=self._http,
                                          max_network_retries=settings.max_network_retries)
        self.v1 = self.client.v1

    async def __aenter__(self) -> StripeGateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session (if one was opened)."""
        if self._http._cached_session is not None:
            await self._http.close_async()

    async def call(self, method: Callable[..., Awaitable[T]], params: dict[str, Any] | None,
                   *, key: str | None = None, account: str | None = None,
                   write: bool = False) -> T:
        """Run one stripe-python async method, mapping its errors to ours."""
        try:
            return await method(_clean(params or {}), _options(key, account, write))
        except stripe.StripeError as exc:
            raise map_error(exc) from exc

    async def _write(self, method: Callable[..., Awaitable[T]], params: dict[str, Any],
                     key: str, account: str | None = None) -> T:
        return await self.call(method, params, key=key, account=account, write=True)

    # -- customers, products, prices -------------------------------------------------------

    async def create_customer(self, *, idempotency_key: str, email: str | None = None,
                              name: str | None = None, metadata: dict[str, str] | None = None,
                              account: str | None = None) -> StripeObject:
        return await self._write(self.v1.customers.create_async,
                                 {"email": email, "name": name, "metadata": metadata},
                                 idempotency_key, account)

    async def create_product(self, *, idempotency_key: str, name: str,
                             metadata: dict[str, str] | None = None,
                             account: str | None = None) -> StripeObject:
        return await self._write(self.v1.products.create_async,
                                 {"name": name, "metadata": metadata}, idempotency_key, account)

    async def create_price(self, *, idempotency_key: str, product: str, unit_amount: int,
                           currency: str, interval: str | None = None,
                           lookup_key: str | None = None,
                           account: str | None = None) -> StripeObject:
        """A one-time price, or a recurring one when ``interval`` (``month``, ``year``)."""
        return await self._write(self.v1.prices.create_async, {
            "product": product, "unit_amount": unit_amount, "currency": currency,
            "recurring": {"interval": interval} if interval else None,
            "lookup_key": lookup_key}, idempotency_key, account)

    # -- payments --------------------------------------------------------------------------

    async def create_payment_intent(
            self, *, idempotency_key: str, amount: int, currency: str,
            customer: str | None = None, payment_method: str | None = None,
            confirm: bool = False, metadata: dict[str, str] | None = None,
            transfer_group: str | None = None, application_fee_amount: int | None = None,
            expand: list[str] | None = None, account: str | None = None) -> StripeObject:
        """A PaymentIntent (confirmed at once with ``confirm``: a decline raises
        :class:`PaymentDeclined`)."""
        return await self._write(self.v1.payment_intents.create_async, {
            "amount": amount, "currency": currency, "customer": customer,
            "payment_method": payment_method, "confirm": confirm or None,
            "metadata": metadata, "transfer_group": transfer_group,
            "application_fee_amount": application_fee_amount, "expand": expand},
            idempotency_key, account)

    async def confirm_payment_intent(self, intent_id: str, *, idempotency_key: str,
                                     payment_method: str | None = None,
                                     account: str | None = None) -> StripeObject:
        return await self._write(
            lambda p, o: self.v1.payment_intents.confirm_async(intent_id, p, o),
            {"payment_method": payment_method}, idempotency_key, account)

    async def retrieve_payment_intent(self, intent_id: str, *, expand: list[str] | None = None,
                                      account: str | None = None) -> StripeObject:
        return await self.call(
            lambda p, o: self.v1.payment_intents.retrieve_async(intent_id, p, o),
            {"expand": expand}, account=account)

    async def create_checkout_session(
            self, *, idempotency_key: str, mode: str, line_items: list[dict[str, Any]],
            success_url: str, cancel_url: str | None = None, customer: str | None = None,
            customer_email: str | None = None, metadata: dict[str, str] | None = None,
            payment_intent_data: dict[str, Any] | None = None,
            client_reference_id: str | None = None, expires_at: int | None = None,
            account: str | None = None,
            consent_collection: dict[str, str] | None = None,
            subscription_data: dict[str, Any] | None = None) -> StripeObject:
        """A Checkout Session (``mode``: ``payment``, or ``subscription`` with
        ``subscription_data``'s metadata copied onto the subscription it makes)."""
        return await self._write(self.v1.checkout.sessions.create_async, {
            **({"consent_collection": consent_collection} if consent_collection else {}),
            **({"subscription_data": subscription_data} if subscription_data else {}),
            "mode": mode, "line_items": line_items, "success_url": success_url,
            "cancel_url": cancel_url, "customer": customer, "customer_email": customer_email,
            "metadata": metadata, "payment_intent_data": payment_intent_data,
            "client_reference_id": client_reference_id, "expires_at": expires_at},
            idempotency_key, account)

    async def retrieve_checkout_session(self, session_id: str, *,
                                        expand: list[str] | None = None,
                                        account: str | None = None) -> StripeObject:
        return await self.call(
            lambda p, o: self.v1.checkout.sessions.retrieve_async(session_id, p, o),
            {"expand": expand}, account=account)

    async def expire_checkout_session(self, session_id: str, *, idempotency_key: str,
                                      account: str | None = None) -> StripeObject:
        """Close an open Checkout Session: it can no longer be paid."""
        return await self.call(
            lambda p, o: self.v1.checkout.sessions.expire_async(session_id, p, o), None,
            key=idempotency_key, account=account, write=True)

    async def refund(self, *, idempotency_key: str, payment_intent: str | None = None,
                     charge: str | None = None, amount: int | None = None,
                     reason: str | None = None, metadata: dict[str, str] | None = None,
                     account: str | None = None) -> StripeObject:
        """Refund all (or ``amount``) of a payment."""
        if not payment_intent and not charge:
            raise ValueError("refund needs payment_intent or charge")
        return await self._write(self.v1.refunds.create_async, {
            "payment_intent": payment_intent, "charge": charge, "amount": amount,
            "reason": reason, "metadata": metadata}, idempotency_key, account)

    async def list_refunds(self, *, payment_intent: str, account: str | None = None
                           ) -> list[dict[str, Any]]:
        """The refunds of a payment (newest first; a payment has few)."""
        page = await self.call(self.v1.refunds.list_async, {
            "payment_intent": payment_intent, "limit": 100}, account=account)
        return [r.to_dict() for r in page.data]

    async def retrieve_charge(self, charge_id: str, *, expand: list[str] | None = None,
                              account: str | None = None) -> StripeObject:
        return await self.call(lambda p, o: self.v1.charges.retrieve_async(charge_id, p, o),
                               {"expand": expand}, account=account)

    # -- Connect ---------------------------------------------------------------------------

    async def create_connected_account(self, *, idempotency_key: str, type: str = "express",  # noqa: A002
                                       country: str = "US", email: str | None = None,
                                       metadata: dict[str, str] | None = None) -> StripeObject:
        """A connected account for a seller (``express`` or ``standard``), asking for the
        ``card_payments`` and ``transfers`` capabilities."""
        if type not in ("express", "standard"):
            raise ValueError("a seller's account type is 'express' or 'standard'")
        caps = ({"card_payments": {"requested": True}, "transfers": {"requested": True}}
                if type == "express" else None)
        return await self._write(self.v1.accounts.create_async, {
            "type": type, "country": country, "email": email, "metadata": metadata,
            "capabilities": caps}, idempotency_key)

    async def retrieve_account(self, account_id: str) -> StripeObject:
        return await self.call(lambda p, o: self.v1.accounts.retrieve_async(account_id, p, o),
                               None)

    async def create_account_link(self, *, idempotency_key: str, account: str,
                                  refresh_url: str, return_url: str,
                                  type: str = "account_onboarding") -> StripeObject:  # noqa: A002
        """A single-use onboarding link that expires within minutes: send the seller to
        ``url``; when they come back through ``refresh_url``, make a new one."""
        return await self._write(self.v1.account_links.create_async, {
            "account": account, "refresh_url": refresh_url, "return_url": return_url,
            "type": type}, idempotency_key)

    async def transfer(self, *, idempotency_key: str, amount: int, currency: str,
                       destination: str, transfer_group: str | None = None,
                       source_transaction: str | None = None,
                       metadata: dict[str, str] | None = None) -> StripeObject:
        """Move ``amount`` from the platform to a connected account (a collaborator's
        share of a sale: separate charges and transfers, tied by ``source_transaction``)."""
        return await self._write(self.v1.transfers.create_async, {
            "amount": amount, "currency": currency, "destination": destination,
            "transfer_group": transfer_group, "source_transaction": source_transaction,
            "metadata": metadata}, idempotency_key)

    async def reverse_transfer(self, transfer_id: str, *, idempotency_key: str,
                               amount: int | None = None,
                               metadata: dict[str, str] | None = None) -> StripeObject:
        """Take a transfer (or ``amount`` of it) back from the connected account."""
        return await self._write(
            lambda p, o: self.v1.transfers.reversals.create_async(transfer_id, p, o),
            {"amount": amount, "metadata": metadata}, idempotency_key)

    # -- balance and payouts ---------------------------------------------------------------

    async def balance(self, *, account: str | None = None) -> StripeObject:
        return await self.call(self.v1.balance.retrieve_async, None, account=account)

    async def balance_transactions(self, *, account: str | None = None,
                                   created_gte: int | None = None, type: str | None = None,  # noqa: A002
                                   page_size: int = 100) -> AsyncIterator[StripeObject]:
        """Every balance transaction (newest first), page by page."""
        page = await self.call(self.v1.balance_transactions.list_async, {
            "limit": page_size, "type": type,
            "created": {"gte": created_gte} if created_gte is not None else None},
            account=account)
        try:
            async for txn in page.auto_paging_iter():
                yield txn
        except stripe.StripeError as exc:
            raise map_error(exc) from exc

    async def transfers(self, *, transfer_group: str | None = None, page_size: int = 100
                        ) -> AsyncIterator[StripeObject]:
        """Every transfer the platform made (of ``transfer_group``), page by page."""
        page = await self.call(self.v1.transfers.list_async, {
            "limit": page_size, "transfer_group": transfer_group})
        try:
            async for transfer in page.auto_paging_iter():
                yield transfer
        except stripe.StripeError as exc:
            raise map_error(exc) from exc

    async def instant_payout_terms(self, *, account: str, currency: str
                                   ) -> InstantPayoutTerms:
        """Whether the seller can be paid instantly now, how much, and at what fee."""
        balance = await self.balance(account=account)
        instant = balance.to_dict().get("instant_available") or []  # no .get on StripeObject
        rows = [r for r in instant if r["currency"] == currency]
        s = self.settings
        return InstantPayoutTerms(bool(rows), rows[0]["amount"] if rows else 0, currency,
                                  s.instant_fee_basis_points, s.instant_fee_minimum,
                                  s.instant_daily_limit)

    async def create_payout(self, *, idempotency_key: str, account: str, amount: int,
                            currency: str, method: str = "standard",
                            metadata: dict[str, str] | None = None,
                            expand: list[str] | None = None) -> StripeObject:
        """Pay a seller's Stripe balance out to their bank (``standard``) or card
        (``instant``: :class:`InstantPayoutRefused` when not eligible or over the limit)."""
        if method not in ("standard", "instant"):
            raise ValueError("method is 'standard' or 'instant'")
        return await self._write(self.v1.payouts.create_async, {
            "amount": amount, "currency": currency, "method": method, "metadata": metadata,
            "expand": expand}, idempotency_key, account)

    async def retrieve_payout(self, payout_id: str, *, account: str,
                              expand: list[str] | None = None) -> StripeObject:
        return await self.call(lambda p, o: self.v1.payouts.retrieve_async(payout_id, p, o),
                               {"expand": expand}, account=account)

    # -- memberships (Billing) and entitlements -------------------------------------------

    async def create_subscription(self, *, idempotency_key: str, customer: str, price: str,
                                  default_payment_method: str | None = None,
                                  metadata: dict[str, str] | None = None,
                                  account: str | None = None) -> StripeObject:
        return await self._write(self.v1.subscriptions.create_async, {
            "customer": customer, "items": [{"price": price}],
            "default_payment_method": default_payment_method, "metadata": metadata,
            "expand": ["latest_invoice"]}, idempotency_key, account)

    async def retrieve_subscription(self, subscription_id: str, *,
                                    expand: list[str] | None = None,
                                    account: str | None = None) -> StripeObject:
        return await self.call(
            lambda p, o: self.v1.subscriptions.retrieve_async(subscription_id, p, o),
            {"expand": expand}, account=account)

    async def update_subscription(self, subscription_id: str, *, idempotency_key: str,
                                  cancel_at_period_end: bool | None = None,
                                  account: str | None = None) -> StripeObject:
        """Cancel a subscription at its period's end (``True``) or resume it (``False``)."""
        return await self._write(
            lambda p, o: self.v1.subscriptions.update_async(subscription_id, p, o),
            {"cancel_at_period_end": cancel_at_period_end}, idempotency_key, account)

    async def retrieve_invoice(self, invoice_id: str, *, account: str | None = None
                               ) -> StripeObject:
        return await self.call(lambda p, o: self.v1.invoices.retrieve_async(invoice_id, p, o),
                               None, account=account)

    async def cancel_subscription(self, subscription_id: str, *, idempotency_key: str,
                                  account: str | None = None) -> StripeObject:
        return await self.call(
            lambda p, o: self.v1.subscriptions.cancel_async(subscription_id, p, o), None,
            key=idempotency_key, account=account, write=True)

    async def create_feature(self, *, idempotency_key: str, name: str, lookup_key: str,
                             account: str | None = None) -> StripeObject:
        """An entitlement feature (``lookup_key`` is what our server checks)."""
        return await self._write(self.v1.entitlements.features.create_async,
                                 {"name": name, "lookup_key": lookup_key},
                                 idempotency_key, account)

    async def attach_feature(self, *, idempotency_key: str, product: str, feature: str,
                             account: str | None = None) -> StripeObject:
        return await self._write(
            lambda p, o: self.v1.products.features.create_async(product, p, o),
            {"entitlement_feature": feature}, idempotency_key, account)

    async def active_entitlements(self, customer: str, *, account: str | None = None
                                  ) -> set[str]:
        """The lookup keys of the features the customer is entitled to now."""
        page = await self.call(self.v1.entitlements.active_entitlements.list_async,
                               {"customer": customer, "limit": 100}, account=account)
        try:
            return {e["lookup_key"] async for e in page.auto_paging_iter()}
        except stripe.StripeError as exc:
            raise map_error(exc) from exc

    async def retrieve_event(self, event_id: str, *, account: str | None = None
                             ) -> StripeObject:
        return await self.call(lambda p, o: self.v1.events.retrieve_async(event_id, p, o),
                               None, account=account)
