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
account) before they are paid: until then their part is *pending* and each sale's part
of theirs is held for them (:mod:`~business.marketplace.split_holds`), paid to them when
they accept, to the seller when they decline (:meth:`Splits.decline`) or the invitation
expires. Setting a split never looks up another account's Stripe state, so its answer
tells nothing of it; a collaborator whose part is unchanged keeps how their invitation
stands, one whose part changes is invited again, and so is one whose invitation ended
(declined, expired) when the seller asks to invite them again with the same part.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from business.marketplace import bookings
from business.marketplace.errors import CatalogueInvalid, InvitationEnded
from business.marketplace.ledger import Ledger
from business.marketplace.stripe_gateway import StripeGateway, idempotency_key

if TYPE_CHECKING:
    from business.marketplace.split_holds import SplitHolds

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


#: How a collaborator's invitation to their part stands (``Part.status``).
PENDING = "pending"
ACCEPTED = "accepted"
DECLINED = "declined"
EXPIRED = "expired"


@dataclass(frozen=True)
class Part:
    """One collaborator's part as the seller set it, and whether they agreed to it
    (``ended``: ``declined`` or ``expired`` when they never will)."""

    collaborator: str
    basis_points: int
    accepted: bool
    ended: str | None = None

    @property
    def status(self) -> str:
        """``accepted``, ``pending``, ``declined`` or ``expired``."""
        return ACCEPTED if self.accepted else self.ended or PENDING


def _not_pending(seller: str, beat_id: str, status: str) -> InvitationEnded:
    return InvitationEnded(f"your part of beat {beat_id!r} by {seller!r} is {status}, not "
                           "pending: ask the seller to offer it to you again")


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


def connected(share: Share) -> bool:
    """Whether ``share`` names a connected Stripe account to pay (else it is held)."""
    return share.stripe_account.startswith("acct_")


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
        #: holds pending collaborators' parts (:mod:`.split_holds`)
        self.holds: SplitHolds | None = None

    async def save(self, seller: str, beat_id: str, shares: list[Share]) -> list[Share]:
        """Replace the split of ``beat_id`` (checked first), every part agreed (a split
        the platform sets itself; sellers' splits go through :meth:`propose`); parts held
        on the beat are paid out as the split now stands."""
        check_shares(shares)
        async with self.db.transaction() as tx:
            await self._lock(tx, seller, beat_id)
            await tx.execute("DELETE FROM mkt_splits WHERE account_id = ? AND beat_id = ?",
                             seller, beat_id)
            await tx.executemany(
                "INSERT INTO mkt_splits (account_id, beat_id, collaborator, stripe_account, "
                "basis_points, accepted_at) VALUES (?, ?, ?, ?, ?, ?)",
                [(seller, beat_id, s.collaborator, s.stripe_account, s.basis_points,
                  time.time()) for s in shares])
            await self._settle_held(tx, seller, beat_id, "saved")
        return shares

    async def _settle_held(self, tx: Any, seller: str, beat_id: str, why: str) -> None:
        """In ``tx``: queue paying out every part still held on ``beat_id`` as the split
        now stands (agreed: to its collaborator; taken out: back to the seller)."""
        if self.holds is None:
            return
        now = time.time()
        named = {str(r["collaborator"]) for r in await tx.fetch(
            "SELECT collaborator FROM mkt_splits WHERE account_id = ? AND beat_id = ?",
            seller, beat_id)}
        for r in await tx.fetch(
                "SELECT DISTINCT collaborator FROM mkt_split_holds WHERE account_id = ? AND "
                "beat_id = ? AND state IN (?, ?) ORDER BY collaborator", seller, beat_id,
                "held", "returning"):
            if str(r["collaborator"]) not in named:  # taken out: theirs no more, for good
                await self.holds.keep_returning(tx, seller, beat_id, str(r["collaborator"]))
        for r in await tx.fetch(
                "SELECT DISTINCT collaborator FROM mkt_split_holds WHERE account_id = ? AND "
                "beat_id = ? AND state = ? ORDER BY collaborator", seller, beat_id, "held"):
            await self.holds.queue_settle(tx, seller, beat_id, str(r["collaborator"]),
                                          f"{why}:{now}")

    async def propose(self, seller: str, beat_id: str, parts: list[tuple[str, int]], *,
                      seller_account: str | None, again: Collection[str] = ()
                      ) -> list[Part]:
        """Replace the split of ``beat_id`` with ``parts`` (collaborator, basis points;
        checked first): the seller's own part is agreed at once when they have connected
        Stripe (``seller_account``), a collaborator whose part is unchanged keeps how
        their invitation stands (agreed, pending since it was sent, declined, expired)
        unless it ended and they are named in ``again``, every other part is a new
        invitation, pending until its collaborator accepts. A collaborator taken out of
        the split has their held money returned to the seller (:mod:`.split_holds`), and
        so has one whose ended invitation a new one replaces: the new one never takes
        over money the old one's answer gave back."""
        check_shares([Share(c, "", bp) for c, bp in parts], connected=False)
        now = time.time()
        async with self.db.transaction() as tx:
            await self._lock(tx, seller, beat_id)
            old = {r["collaborator"]: r for r in await tx.fetch(
                "SELECT collaborator, stripe_account, basis_points, accepted_at, invited_at, "
                "ended, ended_at FROM mkt_splits WHERE account_id = ? AND beat_id = ?",
                seller, beat_id)}
            await tx.execute("DELETE FROM mkt_splits WHERE account_id = ? AND beat_id = ?",
                             seller, beat_id)
            rows = []
            for collaborator, bp in parts:
                was = old.get(collaborator)
                ended = was is not None and was["ended"] is not None
                if collaborator == seller and seller_account:
                    rows.append((collaborator, seller_account, bp, now, now, None, None))
                elif (was is not None and int(was["basis_points"]) == bp
                      and not (ended and collaborator in again)):
                    rows.append((collaborator, was["stripe_account"], bp, was["accepted_at"],
                                 was["invited_at"], was["ended"], was["ended_at"]))
                else:
                    if ended and self.holds is not None:
                        await self.holds.return_ended(tx, seller, beat_id, collaborator,
                                                      f"invited-again:{now}")
                    rows.append((collaborator, "", bp, None, now, None, None))
            await tx.executemany(
                "INSERT INTO mkt_splits (account_id, beat_id, collaborator, stripe_account, "
                "basis_points, accepted_at, invited_at, ended, ended_at) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?)", [(seller, beat_id, *row) for row in rows])
            if self.holds is not None:
                named = {c for c, _ in parts}
                for gone in sorted(set(old) - named):
                    # theirs no more: named again later, the new invitation starts empty
                    await self.holds.keep_returning(tx, seller, beat_id, gone)
                    await self.holds.queue_settle(tx, seller, beat_id, gone, f"removed:{now}")
        return await self.parts(seller, beat_id)

    async def _lock(self, tx: Any, seller: str, beat_id: str) -> None:
        """In ``tx``: hold the beat's row until ``tx`` ends, so a seller replacing its
        split and a collaborator answering take turns (on PostgreSQL; SQLite runs one
        writing transaction at a time), and neither writes over what the other read."""
        if getattr(self.db, "dialect", "") == "postgresql":
            await tx.fetchval("SELECT beat_id FROM mkt_beats WHERE account_id = ? AND "
                              "beat_id = ? FOR UPDATE", seller, beat_id)

    async def parts(self, seller: str, beat_id: str) -> list[Part]:
        """The split of ``beat_id`` as set, each part agreed, pending or ended."""
        rows = await self.db.fetch(
            "SELECT collaborator, basis_points, accepted_at, ended FROM mkt_splits WHERE "
            "account_id = ? AND beat_id = ? ORDER BY collaborator", seller, beat_id)
        return [Part(r["collaborator"], int(r["basis_points"]), r["accepted_at"] is not None,
                     r["ended"]) for r in rows]

    async def accept(self, seller: str, beat_id: str, collaborator: str,
                     stripe_account: str) -> bool:
        """``collaborator`` agrees to their part of ``seller``'s split of ``beat_id``,
        paid to ``stripe_account`` (their own), and what was held for them is paid out;
        False when no such part is theirs, :class:`InvitationEnded` when they declined it
        or it expired (accepting again is a no-op)."""
        return await self._answer(seller, beat_id, collaborator, ACCEPTED, stripe_account)

    async def decline(self, seller: str, beat_id: str, collaborator: str) -> bool:
        """``collaborator`` turns their pending part down: what was held for them goes
        back to the seller, and so do their parts of later sales; False when no such
        part is theirs, :class:`InvitationEnded` when it was accepted or ended before
        (declining again is a no-op)."""
        return await self._answer(seller, beat_id, collaborator, DECLINED, "")

    async def _answer(self, seller: str, beat_id: str, collaborator: str, answer: str,
                      stripe_account: str) -> bool:
        """Record ``answer`` (accepted, declined) to a pending part, once, queueing its
        held money's payout in the same transaction."""
        now = time.time()

        async def _status(tx: Any) -> str | None:
            """How the part stands now (None: no such part)."""
            row = await tx.fetchrow(
                "SELECT accepted_at, ended FROM mkt_splits WHERE account_id = ? AND "
                "beat_id = ? AND collaborator = ?", seller, beat_id, collaborator)
            if row is None:
                return None
            return Part(collaborator, 0, row["accepted_at"] is not None, row["ended"]).status

        async with self.db.transaction() as tx:
            await self._lock(tx, seller, beat_id)
            status = await _status(tx)
            if status is None:
                return False
            if status == answer:
                return True
            if status != PENDING:
                raise _not_pending(seller, beat_id, status)
            if answer == ACCEPTED:
                changed = await tx.execute(
                    "UPDATE mkt_splits SET stripe_account = ?, accepted_at = ? WHERE "
                    "account_id = ? AND beat_id = ? AND collaborator = ? AND accepted_at IS "
                    "NULL AND ended IS NULL", stripe_account, now, seller, beat_id,
                    collaborator)
            else:
                changed = await tx.execute(
                    "UPDATE mkt_splits SET ended = ?, ended_at = ? WHERE account_id = ? AND "
                    "beat_id = ? AND collaborator = ? AND accepted_at IS NULL AND ended IS "
                    "NULL", answer, now, seller, beat_id, collaborator)
            if not changed:
                # ended since it was read (the sweeper's expiry takes no beat lock), or
                # replaced: read again and say how it stands
                status = await _status(tx)
                if status is None:
                    return False
                if status == answer:
                    return True
                raise _not_pending(seller, beat_id, status)
            if self.holds is not None:
                await self.holds.queue_settle(tx, seller, beat_id, collaborator,
                                              f"{answer}:{now}")
        return True

    async def clear(self, seller: str, beat_id: str) -> None:
        """End the split of ``beat_id``: the seller is paid alone again, and what was
        held for its pending collaborators goes back to the seller."""
        async with self.db.transaction() as tx:
            await self._lock(tx, seller, beat_id)
            await tx.execute("DELETE FROM mkt_splits WHERE account_id = ? AND beat_id = ?",
                             seller, beat_id)
            await self._settle_held(tx, seller, beat_id, "removed")

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
        check_shares(shares, connected=False)
        stored = {t["collaborator"]: t for t in await self.transfers(seller, order_id)
                  if t["hold_of"] is None}
        paid = []
        for share, part in zip(shares, split_amount(amount, shares), strict=True):
            if part <= 0:
                continue
            if not connected(share):  # a pending collaborator's: held for them
                if self.holds is None:
                    raise CatalogueInvalid(f"{share.collaborator} has no connected Stripe "
                                           "account and nothing holds their part")
                await self.holds.hold(seller, order_id, share.collaborator, part,
                                      charge=charge, currency=currency,
                                      transfer_group=transfer_group or order_id,
                                      withheld=withheld)
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
                await self.book_transfer(tx, seller, order_id, transfer, share, part,
                                         currency, [(c, min(cut, full)) for c, cut in cuts])
            paid.append({"transfer": tid, "collaborator": share.collaborator, "amount": part})
        return paid

    async def book_transfer(self, tx: Any, seller: str, order_id: str, transfer: Any,
                            payee: Share, amount: int, currency: str,
                            cuts: list[tuple[str, int]], *, hold_of: str | None = None
                            ) -> None:
        """In ``tx``: store and book a transfer Stripe made of ``amount`` to ``payee``
        (once per transfer), each of ``cuts`` (cause, amount: taken by a refund or lost
        dispute before it was paid) recorded as that cause's reversal of it;
        ``hold_of``: the collaborator whose held part it pays out."""
        tid = str(transfer.id)
        await tx.execute(
            "INSERT INTO mkt_transfers (account_id, transfer_id, order_id, collaborator, "
            "stripe_account, amount, currency, hold_of) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account_id, transfer_id) DO NOTHING", seller, tid, order_id,
            payee.collaborator, payee.stripe_account, amount, currency, hold_of)
        # Stripe has made it: booked as the fact it is, even where a refund of another
        # line of the charge took the clearing balance below zero first
        await self.ledger.record(tx, seller, dataclasses.replace(
            bookings.transfer_out(f"transfer-out:{tid}", currency, amount=amount,
                                  stripe_txn=str(transfer.balance_transaction)),
            imposed=True))
        await self.ledger.record(tx, payee.collaborator, bookings.transfer_in(
            f"transfer-in:{tid}", currency, amount=amount))
        for cause, cut in cuts:  # taken by the cause before it was paid
            await tx.execute(
                "INSERT INTO mkt_transfer_reversals (account_id, cause, transfer_id, "
                "order_id, reversal_id, amount, at) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id, cause, transfer_id) DO NOTHING", seller, cause,
                tid, order_id, WITHHELD, cut, time.time())

    async def transfers(self, seller: str, order_id: str) -> list[dict[str, Any]]:
        rows = await self.db.fetch(
            "SELECT transfer_id, collaborator, stripe_account, amount, reversed, currency, "
            "hold_of FROM mkt_transfers WHERE account_id = ? AND order_id = ? ORDER BY transfer_id",
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
