"""Collaborator splits: a beat's sale shared between connected accounts.

A split beat is sold as a *separate charge* on the platform's Stripe account (its
``transfer_group`` the order id); :meth:`Splits.pay` then sends each collaborator their
share with a Stripe transfer tied to the charge (``source_transaction``: the transfer
waits for the charge's funds), booked in the seller's books (``transfer_out`` from
``platform:clearing``) and the collaborator's (``transfer_in`` to their
``seller:balance``). :meth:`Splits.reverse` takes the shares back in proportion to a
refund or dispute (Stripe transfer reversals), booked as the transfers' negation. The
seller's side of each names the platform's balance transaction (``stripe_txn``), which
:func:`~business.marketplace.reconciliation.reconcile_transfers` matches.

Shares are basis points (10 000 = the whole) summing to exactly 10 000; amounts are
split by the largest remainder, so the shares always add up to the amount.

A collaborator **agrees** to their part (:meth:`Splits.accept`, with their own connected
account) before they are paid: until then their part is *pending* and paid to the seller
(:func:`~business.marketplace.split_sales.payees`). Setting a split never looks up
another account's Stripe state, so its answer tells nothing of it; a collaborator whose
part is unchanged keeps their acceptance, one whose part changes agrees again.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any

from business.marketplace import bookings
from business.marketplace.errors import CatalogueInvalid
from business.marketplace.ledger import Ledger
from business.marketplace.stripe_gateway import StripeGateway, idempotency_key

logger = logging.getLogger(__name__)

WHOLE = 10_000
MAX_SHARES = 20
#: ``mkt_transfer_reversals.reversal_id`` of a part a cause took before the transfer
#: was made (cut from it, never paid): no Stripe reversal
WITHHELD = "withheld"


@dataclass(frozen=True)
class Share:
    """One collaborator's part: their account, their connected Stripe account, and
    ``basis_points`` of every sale (10 000 = all of it)."""

    collaborator: str
    stripe_account: str
    basis_points: int


@dataclass(frozen=True)
class Part:
    """One collaborator's part as the seller set it, and whether they agreed to it."""

    collaborator: str
    basis_points: int
    accepted: bool


def check_shares(shares: list[Share], *, connected: bool = True) -> list[Share]:
    """``shares`` if they make a whole (and, ``connected``, each names a connected
    account), else :class:`CatalogueInvalid` saying why."""
    if not shares or len(shares) > MAX_SHARES:
        raise CatalogueInvalid(f"a split names 1 to {MAX_SHARES} collaborators")
    if len({s.collaborator for s in shares}) != len(shares):
        raise CatalogueInvalid("a collaborator appears twice in the split: merge their shares")
    for s in shares:
        if type(s.basis_points) is not int or not 0 < s.basis_points <= WHOLE:
            raise CatalogueInvalid(f"{s.collaborator}'s share must be 1 to {WHOLE} basis "
                                   "points (100 = 1 %)")
        if connected and not s.stripe_account.startswith("acct_"):
            raise CatalogueInvalid(f"{s.collaborator} has no connected Stripe account "
                                   "(acct_...): they finish onboarding first")
    total = sum(s.basis_points for s in shares)
    if total != WHOLE:
        raise CatalogueInvalid(f"the shares add up to {total} basis points; they must add up "
                               f"to exactly {WHOLE} (100 %)")
    return shares


def apportion(amount: int, weights: list[int]) -> list[int]:
    """``amount`` minor units cut in proportion to ``weights`` (non-negative, not all
    zero; largest remainder, ties to the earlier weight): the parts always sum to
    ``amount``."""
    whole = sum(weights)
    if whole <= 0 or min(weights) < 0:
        raise ValueError(f"apportion needs non-negative weights summing above 0, not "
                         f"{weights!r}")
    exact = [amount * w for w in weights]
    parts = [e // whole for e in exact]
    left = amount - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] % whole), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def split_amount(amount: int, shares: list[Share]) -> list[int]:
    """``amount`` minor units cut by ``shares`` (largest remainder, ties to the earlier
    share): the parts always sum to ``amount``."""
    return apportion(amount, [s.basis_points for s in shares])


class Splits:
    """The splits of a seller's beats and the transfers that pay them."""

    def __init__(self, db: Any, ledger: Ledger, gateway: StripeGateway) -> None:
        self.db = db
        self.ledger = ledger
        self.gateway = gateway

    async def save(self, seller: str, beat_id: str, shares: list[Share]) -> list[Share]:
        """Replace the split of ``beat_id`` (checked first), every part agreed (a split
        the platform sets itself; sellers' splits go through :meth:`propose`)."""
        check_shares(shares)
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM mkt_splits WHERE account_id = ? AND beat_id = ?",
                             seller, beat_id)
            await tx.executemany(
                "INSERT INTO mkt_splits (account_id, beat_id, collaborator, stripe_account, "
                "basis_points, accepted_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(seller, beat_id, s.collaborator, s.stripe_account, s.basis_points,
                  time.time()) for s in shares])
        return shares

    async def propose(self, seller: str, beat_id: str, parts: list[tuple[str, int]], *,
                      seller_account: str | None) -> list[Part]:
        """Replace the split of ``beat_id`` with ``parts`` (collaborator, basis points;
        checked first): the seller's own part is agreed at once when they have connected
        Stripe (``seller_account``), a collaborator whose part is unchanged keeps their
        agreement, every other part is pending until its collaborator accepts."""
        check_shares([Share(c, "", bp) for c, bp in parts], connected=False)
        async with self.db.transaction() as tx:
            kept = {(r["collaborator"], int(r["basis_points"])): r for r in await tx.fetch(
                "SELECT collaborator, stripe_account, basis_points, accepted_at FROM "
                "mkt_splits WHERE account_id = ? AND beat_id = ? AND accepted_at IS NOT NULL",
                seller, beat_id)}
            await tx.execute("DELETE FROM mkt_splits WHERE account_id = ? AND beat_id = ?",
                             seller, beat_id)
            rows = []
            for collaborator, bp in parts:
                old = kept.get((collaborator, bp))
                if collaborator == seller and seller_account:
                    rows.append((collaborator, seller_account, bp, time.time()))
                elif old is not None:
                    rows.append((collaborator, old["stripe_account"], bp, old["accepted_at"]))
                else:
                    rows.append((collaborator, "", bp, None))
            await tx.executemany(
                "INSERT INTO mkt_splits (account_id, beat_id, collaborator, stripe_account, "
                "basis_points, accepted_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(seller, beat_id, *row) for row in rows])
        return await self.parts(seller, beat_id)

    async def parts(self, seller: str, beat_id: str) -> list[Part]:
        """The split of ``beat_id`` as set, each part agreed or pending."""
        rows = await self.db.fetch(
            "SELECT collaborator, basis_points, accepted_at FROM mkt_splits WHERE "
            "account_id = ? AND beat_id = ? ORDER BY collaborator", seller, beat_id)
        return [Part(r["collaborator"], int(r["basis_points"]), r["accepted_at"] is not None)
                for r in rows]

    async def accept(self, seller: str, beat_id: str, collaborator: str,
                     stripe_account: str) -> bool:
        """``collaborator`` agrees to their part of ``seller``'s split of ``beat_id``,
        paid to ``stripe_account`` (their own); False when no such part is theirs."""
        async with self.db.transaction() as tx:
            found = await tx.fetchval(
                "SELECT COUNT(*) FROM mkt_splits WHERE account_id = ? AND beat_id = ? AND "
                "collaborator = ?", seller, beat_id, collaborator)
            if not found:
                return False
            await tx.execute(
                "UPDATE mkt_splits SET stripe_account = ?, accepted_at = ? WHERE "
                "account_id = ? AND beat_id = ? AND collaborator = ? AND accepted_at IS NULL",
                stripe_account, time.time(), seller, beat_id, collaborator)
        return True

    async def clear(self, seller: str, beat_id: str) -> None:
        """End the split of ``beat_id``: the seller is paid alone again."""
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM mkt_splits WHERE account_id = ? AND beat_id = ?",
                             seller, beat_id)

    async def of(self, seller: str, beat_id: str) -> list[Share]:
        rows = await self.db.fetch(
            "SELECT collaborator, stripe_account, basis_points FROM mkt_splits WHERE "
            "account_id = ? AND beat_id = ? ORDER BY collaborator", seller, beat_id)
        return [Share(r["collaborator"], r["stripe_account"], int(r["basis_points"]))
                for r in rows]

    async def pay(self, seller: str, order_id: str, *, charge: str, amount: int,
                  currency: str, shares: list[Share],
                  transfer_group: str | None = None,
                  withheld: list[tuple[str, int, int]] = ()) -> list[dict[str, Any]]:
        """Transfer each share of ``amount`` (what the platform holds of the sale after
        fees, booked to ``platform:clearing``), grouped by ``transfer_group`` (the
        charge's; default the order id). Idempotent per order and collaborator: run again
        after a crash, it pays no share twice (a share already stored is not asked for
        again; one Stripe made but we did not store is answered again by its key).
        ``withheld``: (cause, taken, of) of refunds or lost disputes whose reversal
        could not take their part of a share not transferred yet: each new transfer is
        cut by ``part * taken // of`` per cause (as :meth:`reverse` would take it back),
        the cut recorded as that cause's reversal of the transfer (``withheld``), and a
        share cut to nothing is not paid."""
        check_shares(shares)
        stored = {t["collaborator"]: t for t in await self.transfers(seller, order_id)}
        paid = []
        for share, part in zip(shares, split_amount(amount, shares), strict=True):
            if part <= 0:
                continue
            if share.collaborator in stored:
                t = stored[share.collaborator]
                paid.append({"transfer": t["transfer_id"], "collaborator": share.collaborator,
                             "amount": int(t["amount"])})
                continue
            cuts = [(cause, part * taken // of) for cause, taken, of in withheld if of > 0]
            full, part = part, max(0, part - sum(c for _, c in cuts))
            if part <= 0:
                continue
            # a cut transfer is a new request (Stripe refuses a key used within 24 h with
            # other parameters): its key names the amount; an uncut one keeps the key its
            # first attempts used, so one Stripe made but we did not store is answered again
            key = idempotency_key("split", seller, order_id, share.collaborator,
                                  *([f"cut:{part}"] if part != full else []))
            transfer = await self.gateway.transfer(
                idempotency_key=key,
                amount=part, currency=currency, destination=share.stripe_account,
                transfer_group=transfer_group or order_id, source_transaction=charge,
                metadata={"seller": seller, "order_id": order_id,
                          "collaborator": share.collaborator})
            tid = str(transfer.id)
            async with self.db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO mkt_transfers (account_id, transfer_id, order_id, "
                    "collaborator, stripe_account, amount, currency) VALUES "
                    "(?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, transfer_id) DO NOTHING",
                    seller, tid, order_id, share.collaborator, share.stripe_account, part,
                    currency)
                # Stripe has made it: booked as the fact it is, even where a refund of
                # another line of the charge took the clearing balance below zero first
                await self.ledger.record(tx, seller, dataclasses.replace(
                    bookings.transfer_out(f"transfer-out:{tid}", currency, amount=part,
                                          stripe_txn=str(transfer.balance_transaction)),
                    imposed=True))
                await self.ledger.record(tx, share.collaborator, bookings.transfer_in(
                    f"transfer-in:{tid}", currency, amount=part))
                for cause, cut in cuts:  # taken by the cause before it was paid
                    await tx.execute(
                        "INSERT INTO mkt_transfer_reversals (account_id, cause, "
                        "transfer_id, order_id, reversal_id, amount, at) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, cause, transfer_id) "
                        "DO NOTHING", seller, cause, tid, order_id, WITHHELD,
                        min(cut, full), time.time())
            paid.append({"transfer": tid, "collaborator": share.collaborator, "amount": part})
        return paid

    async def transfers(self, seller: str, order_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            "SELECT transfer_id, collaborator, stripe_account, amount, reversed, currency "
            "FROM mkt_transfers WHERE account_id = ? AND order_id = ? ORDER BY transfer_id",
            seller, order_id)
        return [dict(r) for r in rows]

    async def reverse(self, seller: str, order_id: str, *, taken: int, of: int,
                      cause: str) -> list[dict[str, Any]]:
        """Take back ``taken/of`` of every share of the order (a refund or dispute of
        ``taken`` out of the sale's ``of``); ``cause`` (e.g. ``dispute:dp_1``) keys the
        reversals and each one is recorded per cause and transfer
        (``mkt_transfer_reversals``), so a cause reverses a transfer once: run again (a
        requeued job, a dispute sent again, long after Stripe forgot the key), it asks
        Stripe for nothing it took back before and answers what it took."""
        if of <= 0 or not 0 < taken <= of:
            raise ValueError("reverse taken/of with 0 < taken <= of")
        done = []
        # the transfers first: a transfer and its withheld rows commit in one
        # transaction, so every transfer read here has its rows in the reads below (read
        # the other way round, a requeued pay job committing between them shows a cut
        # transfer without its cut, and this cause would take it twice or too little)
        transfers = await self.transfers(seller, order_id)
        before = {r["transfer_id"]: r for r in await self.db.fetch(
            "SELECT transfer_id, reversal_id, amount FROM mkt_transfer_reversals WHERE "
            "account_id = ? AND cause = ? AND order_id = ?", seller, cause, order_id)}
        cut = {r["transfer_id"]: int(r["total"]) for r in await self.db.fetch(
            "SELECT transfer_id, SUM(amount) AS total FROM mkt_transfer_reversals WHERE "
            "account_id = ? AND order_id = ? AND reversal_id = ? GROUP BY transfer_id",
            seller, order_id, WITHHELD)}
        for t in transfers:
            if t["transfer_id"] in before:
                r = before[t["transfer_id"]]
                done.append({"reversal": str(r["reversal_id"]), "transfer": t["transfer_id"],
                             "amount": int(r["amount"])})
                continue
            share = int(t["amount"]) + cut.get(t["transfer_id"], 0)  # before any cut
            want = min(share * taken // of, int(t["amount"]) - int(t["reversed"]))
            if want <= 0:
                continue
            reversal = await self.gateway.reverse_transfer(
                t["transfer_id"], amount=want,
                idempotency_key=idempotency_key("reverse", seller, cause, t["transfer_id"]),
                metadata={"seller": seller, "order_id": order_id, "cause": cause})
            key = f"reversal:{reversal.id}"  # -out / -in: the seller may be a collaborator
            async with self.db.transaction() as tx:
                # Stripe has made the reversal: both sides are facts, imposed (a refund
                # booked first may hold the clearing balance below zero until it lands)
                posted = await self.ledger.record(tx, seller, dataclasses.replace(
                    bookings.transfer_reversed_out(
                        f"{key}-out", t["currency"], amount=want,
                        stripe_txn=str(reversal.balance_transaction)), imposed=True))
                await self.ledger.record(tx, t["collaborator"], dataclasses.replace(
                    bookings.transfer_reversed_in(f"{key}-in", t["currency"], amount=want),
                    imposed=True))
                if not posted.duplicate:
                    await tx.execute(
                        "UPDATE mkt_transfers SET reversed = reversed + ? WHERE "
                        "account_id = ? AND transfer_id = ?", want, seller, t["transfer_id"])
                await tx.execute(
                    "INSERT INTO mkt_transfer_reversals (account_id, cause, transfer_id, "
                    "order_id, reversal_id, amount, at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (account_id, cause, transfer_id) DO NOTHING", seller, cause,
                    t["transfer_id"], order_id, str(reversal.id), want, time.time())
                kept = await tx.fetchval(
                    "SELECT reversal_id FROM mkt_transfer_reversals WHERE account_id = ? "
                    "AND cause = ? AND transfer_id = ?", seller, cause, t["transfer_id"])
            if kept != str(reversal.id):
                # another reversal (or cut) of this cause was recorded meanwhile: Stripe
                # took this one too and the books say so, but the cause's row names the
                # other; never silent, someone has to give the extra back
                logger.error("split line %s of %s: cause %s reversed transfer %s twice "
                             "(%s recorded, %s of %s also taken)", order_id, seller, cause,
                             t["transfer_id"], kept, reversal.id, want)
            done.append({"reversal": str(reversal.id), "transfer": t["transfer_id"],
                         "amount": want})
        return done
