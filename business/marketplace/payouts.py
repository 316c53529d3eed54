"""Payouts: a seller's balance paid to their bank (standard) or card (instant, T+0).

A payout is **booked before Stripe is asked**: one ledger posting takes ``amount + fee``
from ``seller:balance`` (refused whole with :class:`InsufficientFunds` if it would go
below zero, however many purchases and payouts race it), then Stripe creates the
payout with an idempotency key of our payout id. If Stripe refuses it, a compensating
posting gives the money back and the payout is ``refused``; if Stripe does not answer,
it stays ``pending`` and :meth:`Payouts.retry` asks again with the same key.
``payout.paid`` marks it paid; ``payout.failed`` (the bank refused or returned it) gives
the amount back in our books, as Stripe does (the instant fee is not returned).

``method="auto"`` is instant when the connected account is eligible, the amount is
within today's limit, and the balance covers amount plus fee; standard otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from business.marketplace import bookings
from business.marketplace.errors import (
    CatalogueInvalid,
    InsufficientFunds,
    NotFoundHere,
    StripeRejected,
)
from business.marketplace.ledger import Ledger
from business.marketplace.store import new_id
from business.marketplace.stripe_gateway import StripeGateway, idempotency_key
from business.marketplace.webhooks import Outcome, StripeEvent

METHODS = ("auto", "standard", "instant")
DAY = 86_400


@dataclass(frozen=True)
class PayoutOptions:
    """What a seller sees before asking: the balance, and instant's terms today."""

    currency: str
    available: int
    instant_eligible: bool
    instant_available: int
    instant_fee_basis_points: int
    instant_fee_minimum: int
    instant_daily_limit: int
    instant_used_today: int

    def instant_fee(self, amount: int) -> int:
        return max(self.instant_fee_minimum, -(-amount * self.instant_fee_basis_points
                                               // 10_000))

    def instant_allowed(self, amount: int) -> bool:
        """Whether ``amount`` can go instantly now (eligible, in the limit, covered)."""
        return (self.instant_eligible
                and self.instant_used_today + amount <= self.instant_daily_limit
                and amount <= self.instant_available
                and amount + self.instant_fee(amount) <= self.available)

    def as_dict(self) -> dict[str, Any]:
        return {"currency": self.currency, "available": self.available, "instant": {
            "eligible": self.instant_eligible, "available": self.instant_available,
            "fee_basis_points": self.instant_fee_basis_points,
            "fee_minimum": self.instant_fee_minimum, "daily_limit": self.instant_daily_limit,
            "used_today": self.instant_used_today,
            "remaining_today": max(0, self.instant_daily_limit - self.instant_used_today)}}


class Payouts:
    """Pays sellers out of their ledger balance through Stripe."""

    def __init__(self, db: Any, ledger: Ledger, gateway: StripeGateway) -> None:
        self.db = db
        self.ledger = ledger
        self.gateway = gateway

    async def options(self, seller: str, stripe_account: str, currency: str
                      ) -> PayoutOptions:
        terms = await self.gateway.instant_payout_terms(account=stripe_account,
                                                        currency=currency)
        used = await self.db.fetchval(
            "SELECT SUM(amount) FROM mkt_payouts WHERE account_id = ? AND method = 'instant' "
            "AND currency = ? AND created_at > ? AND status IN ('pending', 'paid')",
            seller, currency, time.time() - DAY)
        available = await self.ledger.balance(seller, bookings.SELLER, currency)
        return PayoutOptions(currency, available, terms.eligible, terms.available,
                             terms.fee_basis_points, terms.fee_minimum, terms.daily_limit,
                             int(used or 0))

    async def request(self, seller: str, stripe_account: str, *, amount: int, currency: str,
                      method: str = "auto") -> dict[str, Any]:
        """Pay ``amount`` out; the payout as stored (``status``: ``pending`` or
        ``refused`` with a ``note``). :class:`InsufficientFunds` when the balance cannot
        cover it (nothing booked)."""
        if method not in METHODS:
            raise CatalogueInvalid(f"method must be one of {', '.join(METHODS)}")
        if type(amount) is not int or amount <= 0:
            raise CatalogueInvalid("amount is a positive whole number of minor units (cents)")
        fee = 0
        if method != "standard":
            opts = await self.options(seller, stripe_account, currency)
            if opts.instant_allowed(amount):
                method, fee = "instant", opts.instant_fee(amount)
            elif method == "instant":
                raise CatalogueInvalid(
                    "no instant payout of this amount now: "
                    + ("the account's card is not eligible" if not opts.instant_eligible else
                       f"{max(0, opts.instant_daily_limit - opts.instant_used_today)} remains "
                       "of today's limit and the balance must cover the fee "
                       f"({opts.instant_fee(amount)}); ask for a standard payout"))
            else:
                method = "standard"
        payout_id = new_id("po")
        async with self.db.transaction() as tx:
            await self.ledger.record(tx, seller, bookings.payout(
                f"payout:{payout_id}", currency, amount=amount, fee=fee))
            await tx.execute(
                "INSERT INTO mkt_payouts (account_id, payout_id, amount, fee, currency, "
                "method, status, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
                seller, payout_id, amount, fee, currency, method, time.time())
        return await self._send(seller, stripe_account, payout_id)

    async def retry(self, seller: str, stripe_account: str, payout_id: str
                    ) -> dict[str, Any]:
        """Ask Stripe again for a payout whose call got no answer (``pending`` without a
        Stripe id): the same idempotency key, so Stripe makes it at most once."""
        found = await self.get(seller, payout_id)
        if found["status"] != "pending" or found["stripe_payout"]:
            return found
        return await self._send(seller, stripe_account, payout_id)

    async def _send(self, seller: str, stripe_account: str, payout_id: str
                    ) -> dict[str, Any]:
        row = await self.get(seller, payout_id)
        amount, fee, currency = int(row["amount"]), int(row["fee"]), str(row["currency"])
        try:
            made = await self.gateway.create_payout(
                idempotency_key=idempotency_key("payout", seller, payout_id),
                account=stripe_account, amount=amount, currency=currency,
                method=str(row["method"]),
                metadata={"seller": seller, "payout_id": payout_id})
        except StripeRejected as exc:
            async with self.db.transaction() as tx:
                await self.ledger.record(tx, seller, bookings.payout_failed(
                    f"payout-refused:{payout_id}", currency, amount=amount + fee))
                await tx.execute(
                    "UPDATE mkt_payouts SET status = 'refused', note = ? WHERE "
                    "account_id = ? AND payout_id = ?", str(exc), seller, payout_id)
            return await self.get(seller, payout_id)
        await self.db.execute(
            "UPDATE mkt_payouts SET stripe_payout = ? WHERE account_id = ? AND payout_id = ?",
            str(made.id), seller, payout_id)
        return await self.get(seller, payout_id)

    async def get(self, seller: str, payout_id: str) -> dict[str, Any]:
        row = await self.db.fetchrow(
            "SELECT payout_id, stripe_payout, amount, fee, currency, method, status, note, "
            "created_at FROM mkt_payouts WHERE account_id = ? AND payout_id = ?",
            seller, payout_id)
        if row is None:
            raise NotFoundHere(f"no payout {payout_id!r} in this account")
        return dict(row)

    async def list(self, seller: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            "SELECT payout_id, stripe_payout, amount, fee, currency, method, status, note, "
            "created_at FROM mkt_payouts WHERE account_id = ? ORDER BY created_at DESC",
            seller)
        return [dict(r) for r in rows]

    async def on_event(self, tx: Any, seller: str, event: StripeEvent) -> Outcome:
        """``payout.paid`` / ``payout.failed`` of one of ours, inside the event's ``tx``."""
        payout = event.object
        payout_id = (payout.get("metadata") or {}).get("payout_id", "")
        row = await tx.fetchrow(
            "SELECT amount, currency, status FROM mkt_payouts WHERE account_id = ? AND "
            "payout_id = ?", seller, payout_id)
        if row is None:
            return Outcome.IGNORED  # a payout made elsewhere (the dashboard): not ours
        if event.type == "payout.paid" and row["status"] == "pending":
            await tx.execute("UPDATE mkt_payouts SET status = 'paid' WHERE account_id = ? "
                             "AND payout_id = ?", seller, payout_id)
        elif event.type == "payout.failed" and row["status"] in ("pending", "paid"):
            await self.ledger.record(tx, seller, bookings.payout_failed(
                f"payout-failed:{payout_id}", row["currency"], amount=int(row["amount"]),
                stripe_txn=payout.get("failure_balance_transaction")))
            await tx.execute(
                "UPDATE mkt_payouts SET status = 'failed', note = ? WHERE account_id = ? AND "
                "payout_id = ?", str(payout.get("failure_message") or "the bank refused it"),
                seller, payout_id)
        return Outcome.PROCESSED


__all__ = ["InsufficientFunds", "PayoutOptions", "Payouts"]
