"""Held split money: a pending collaborator's part of a sale, kept for them.

A collaborator named in a split agrees to their part before they are paid
(:meth:`.Splits.accept`). Until they answer, each sale's part of theirs is **held**: the
split transfer job (:meth:`.Splits.pay`) pays every agreed payee and records the pending
part as a row of ``mkt_split_holds`` instead of a transfer. The money stays in the
platform's Stripe balance and in the seller's ``platform:clearing`` books, owed to nobody
yet. Then one ``marketplace.split_holds`` job (queued in the transaction that changed the
invitation, and after each hold) pays every held part of that collaborator on that beat
as the invitation now stands:

- **accepted** (with their connected account): *released*, one Stripe transfer to the
  collaborator, tied to the sale's charge (``source_transaction``);
- **declined**, **expired** (``split_invitation_days`` after it was sent, 30 by default:
  the checkout sweeper ends it) or the collaborator **taken out** of the split:
  *returned*, one transfer to the seller;
- still pending: nothing, it stays held.

Each step is idempotent. A hold is one row per line and collaborator; it leaves ``held``
once, by a conditional update, for ``releasing`` or ``returning`` (the first decision
wins), and its transfer's idempotency key is the line, collaborator and decision's
(``attempt``, bumped each time the part goes back to ``held``), so a job run again after
a crash gets Stripe's same transfer and books it once (``mkt_transfers`` row, ledger
postings keyed by the transfer); every run first looks for the part's transfer among
Stripe's (by its metadata), so one retried after Stripe forgot the key, or made under an
earlier decision, pays nothing twice: it is booked as Stripe made it (amount and
destination), and the cuts it paid out anyway have their reversals queued again.

A refund or lost dispute of the line (:meth:`.SplitSales.reverse`) *cuts* each held part
by ``part * taken // of``, once per cause (``mkt_split_hold_cuts``), so the refunded
money is never paid out; a part already paid out is reversed with the line's other
transfers, and one being paid out that moment makes the reversal take back the line's
other transfers and wait (:class:`HeldPartPaying`) until its transfer is stored; a
payout booked after the reversal gave up queues that reversal again. A cut part is paid
out less its cuts, each recorded as its cause's reversal of the transfer, so a later
refund of the same cause takes nothing twice.

A run paying a part out first claims it (``claim``, ``claimed_at``; see
:mod:`.split_hold_claims`) by a compare-and-set: only a part no live run claims, or
whose claim is older than ``CLAIM_TTL_S`` by the database's clock (its run died without
letting go), so two runs never both ask Stripe for it; the other returns at once, and
its job comes back once that claim will have expired (:meth:`SplitHolds.claimed_for`,
``CLAIM_MARGIN_S`` after): a run killed holding a claim has its own job run again when
the job's lease ran out, which so takes the part over a claim's life after the run died,
not at the hourly sweep; a job with no attempt left, or killed on its last one (its
dead-letter notice), queues a fresh one to come back instead, one per claim
(:meth:`SplitHolds.claim_key`). The run renews its claim while it works, checks it is
still its own immediately before asking Stripe for the transfer and again when booking
it, and stops (paying and booking nothing) when it is not; the claim is let go when the
run books the transfer, fails or stops. A payout Stripe refuses until the job's last
attempt goes back to ``held`` (unless Stripe made it after all, and only while no run
holds its ``claim``, even an expired one: a run that lost its claim during its Stripe
call may still be asking Stripe with the decision's key, which a new decision would
change) and the seller is mailed (:meth:`SplitHolds.give_up`; a part left alone is no
failure and mails no one); the sweeper tries again, hourly, parts held though answered
and parts stuck being paid out. A seller's erasure forgets their splits: the sweep
returns the parts held for collaborators who never agreed to the seller's connected
account.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from business.marketplace.split_hold_claims import (
    CLAIM_MARGIN_S,
    CLAIM_RENEW_S,
    ClaimLost,
    HoldClaim,
    LiveClaim,
    claim_left_sql,
    live_claim_sql,
)
from business.marketplace.splits import ACCEPTED, DECLINED, EXPIRED, PENDING, Share, Splits
from business.marketplace.stripe_gateway import idempotency_key
from business.marketplace.transfer_alerts import TransferAlerts

logger = logging.getLogger(__name__)

#: The job that pays out a collaborator's held parts of one beat as their invitation stands.
HOLD_JOB = "marketplace.split_holds"
#: How long a collaborator has to answer an invitation, by default.
DEFAULT_INVITATION_DAYS = 30.0
#: How often the sweeper tries a held part's payout again when it did not happen.
STUCK_RETRY_S = 3600.0

#: ``mkt_split_holds.state``: held, being paid out, paid out.
HELD = "held"
RELEASING = "releasing"
RETURNING = "returning"
RELEASED = "released"
RETURNED = "returned"
_PAID_AS = {RELEASING: RELEASED, RETURNING: RETURNED}

#: ``await enqueue(tx, job, payload, account_id, idempotency_key)``: a job in ``tx``.
Enqueue = Callable[[Any, str, dict[str, Any], str, str], Awaitable[Any]]


def _job_key(seller: str, beat_id: str, collaborator: str, why: str) -> str:
    """A ``marketplace.split_holds`` job's idempotency key: one job per ``why``."""
    return f"split-holds/{seller}/{beat_id}/{collaborator}/{why}"


class HeldPartPaying(Exception):
    """A held part of the line is being paid out: a reversal waits for its transfer."""


class SplitHolds:
    """Holds pending collaborators' parts and pays them out when the invitation ends."""

    def __init__(self, splits: Splits, enqueue: Enqueue, *,
                 invitation_ttl_s: float = DEFAULT_INVITATION_DAYS * 86_400.0) -> None:
        if invitation_ttl_s <= 0:
            raise ValueError(f"split invitations must last a while, not {invitation_ttl_s} s "
                             "(set plugins.marketplace.split_invitation_days above 0)")
        self.splits = splits
        self.db = splits.db
        self.enqueue = enqueue
        self.invitation_ttl_s = invitation_ttl_s
        #: how often a run paying a part out renews its claim (:mod:`.split_hold_claims`)
        self.claim_renew_s = CLAIM_RENEW_S
        #: how long after another run's claim expires a run that found it comes back
        self.claim_margin_s = CLAIM_MARGIN_S
        #: ``await paid_out(tx, seller, order_id, collaborator)`` in the transaction
        #: booking a held part's transfer: queues taking back what refunds whose
        #: reversal gave up meanwhile are owed (:meth:`.SplitSales.queue_take_back`)
        self.paid_out: Callable[[Any, str, str, str], Awaitable[Any]] | None = None
        #: mails the seller's owners and admins when a held part cannot be paid out
        self.alerts: TransferAlerts | None = None
        splits.holds = self

    async def queue_settle(self, tx: Any, seller: str, beat_id: str, collaborator: str,
                           why: str) -> None:
        """In ``tx``: queue paying out ``collaborator``'s held parts of ``beat_id`` as
        their invitation will then stand (once per ``why``)."""
        await self.enqueue(tx, HOLD_JOB, {"seller": seller, "beat_id": beat_id,
                                          "collaborator": collaborator}, seller,
                           _job_key(seller, beat_id, collaborator, why))

    @staticmethod
    def claim_key(seller: str, beat_id: str, collaborator: str, claim: str) -> str:
        """The idempotency key of the job that comes back once the claim (token)
        ``claim`` on one of ``collaborator``'s parts of ``beat_id`` expired: one job per
        claim, however many runs found it live."""
        return _job_key(seller, beat_id, collaborator, f"claim:{claim}")

    async def hold(self, seller: str, order_id: str, collaborator: str, amount: int, *,
                   charge: str, currency: str, transfer_group: str,
                   withheld: list[tuple[str, int, int]] = ()) -> None:
        """Hold ``amount``, ``collaborator``'s part of line ``order_id``, for them (once
        per line and collaborator), cut by the ``withheld`` causes (cause, taken, of)
        whose reversal ran before the line was paid; its payout is queued at once, so an
        invitation answered meanwhile is not missed."""
        beat_id = await self.db.fetchval("SELECT beat_id FROM mkt_orders WHERE account_id = ? "
                                         "AND order_id = ?", seller, order_id)
        if beat_id is None:
            raise ValueError(f"no order {order_id!r} of {seller!r} to hold a part of")
        now = time.time()
        async with self.db.transaction() as tx:
            made = await tx.execute(
                "INSERT INTO mkt_split_holds (account_id, order_id, collaborator, beat_id, "
                "charge, transfer_group, currency, amount, cut, state, held_at) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (account_id, order_id, "
                "collaborator) DO NOTHING", seller, order_id, collaborator, beat_id, charge,
                transfer_group, currency, amount, HELD, now)
            if not made:
                return
            for cause, taken, of in withheld:
                if of > 0:
                    await self._cut(tx, seller, order_id, collaborator, cause,
                                    min(amount, amount * taken // of), now)
            await self.queue_settle(tx, seller, str(beat_id), collaborator, f"order:{order_id}")

    async def _cut(self, tx: Any, seller: str, order_id: str, collaborator: str, cause: str,
                   amount: int, now: float) -> None:
        """In ``tx``: ``cause`` takes ``amount`` of a held part (once per cause);
        :class:`HeldPartPaying` when the part left ``held`` meanwhile."""
        if amount <= 0:
            return
        new = await tx.execute(
            "INSERT INTO mkt_split_hold_cuts (account_id, order_id, collaborator, cause, "
            "amount, at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, order_id, "
            "collaborator, cause) DO NOTHING", seller, order_id, collaborator, cause, amount,
            now)
        if not new:
            return
        cut = await tx.execute(
            "UPDATE mkt_split_holds SET cut = cut + ? WHERE account_id = ? AND order_id = ? "
            "AND collaborator = ? AND state = ?", amount, seller, order_id, collaborator, HELD)
        if not cut:  # rolls the cause's row back with the transaction
            raise HeldPartPaying(f"{collaborator}'s held part of order {order_id!r} is being "
                                 "paid out: its refund waits for the transfer")

    async def cut(self, seller: str, order_id: str, *, cause: str, taken: int,
                  of: int) -> int:
        """A refund or lost dispute of ``taken`` out of the line's ``of``: cut each held
        part of the line by ``part * taken // of`` (once per cause); what was cut.
        :class:`HeldPartPaying` while a part is being paid out (its transfer, once
        stored, is reversed with the line's others)."""
        if of <= 0 or not 0 < taken <= of:
            raise ValueError("cut taken/of with 0 < taken <= of")
        total = 0
        now = time.time()
        async with self.db.transaction() as tx:
            for h in await tx.fetch(
                    "SELECT collaborator, amount, state FROM mkt_split_holds WHERE "
                    "account_id = ? AND order_id = ? ORDER BY collaborator", seller, order_id):
                if h["state"] in _PAID_AS:
                    raise HeldPartPaying(f"{h['collaborator']}'s held part of order "
                                         f"{order_id!r} is being paid out: the reversal "
                                         "waits for its transfer")
                if h["state"] == HELD:
                    part = int(h["amount"])
                    share = min(part, part * taken // of)
                    await self._cut(tx, seller, order_id, h["collaborator"], cause, share, now)
                    total += share
        return total

    async def return_ended(self, tx: Any, seller: str, beat_id: str, collaborator: str,
                           why: str) -> int:
        """In ``tx``, as a new invitation of ``collaborator`` replaces one that ended
        (declined, expired): the parts still held of the ended one are set to go back
        to the seller, as its answer decided, and their payout queued (once per
        ``why``), so the new invitation never takes them over; how many. Left held (and
        logged) while the seller has no connected Stripe account."""
        # marked first: parts that cannot go back yet (no connected account) still do
        # once they can, whatever the new invitation's answer
        await self.keep_returning(tx, seller, beat_id, collaborator)
        own = await tx.fetchval("SELECT stripe_account FROM mkt_sellers WHERE account_id = ?",
                                seller)
        if not own:
            logger.error("held parts of %s's beat %s for %s cannot go back: the seller has "
                         "no connected Stripe account", seller, beat_id, collaborator)
            return 0
        returning = await tx.execute(
            "UPDATE mkt_split_holds SET state = ?, payee = ?, stripe_account = ?, "
            "returns_to_seller = 1 WHERE account_id = ? AND beat_id = ? AND collaborator = ? "
            "AND state = ?", RETURNING, seller, str(own), seller, beat_id, collaborator, HELD)
        if returning:
            await self.queue_settle(tx, seller, beat_id, collaborator, why)
        return int(returning)

    async def keep_returning(self, tx: Any, seller: str, beat_id: str,
                             collaborator: str) -> None:
        """In ``tx``: the parts held for ``collaborator`` on ``beat_id`` (or going back)
        go to the seller for good (``returns_to_seller``), whatever a later invitation
        of theirs answers: they were taken out of the split, or their invitation ended."""
        await tx.execute(
            "UPDATE mkt_split_holds SET returns_to_seller = 1 WHERE account_id = ? AND "
            "beat_id = ? AND collaborator = ? AND state IN (?, ?)", seller, beat_id,
            collaborator, HELD, RETURNING)

    async def _decision(self, tx: Any, seller: str, beat_id: str, collaborator: str,
                        returns_to_seller: bool = False) -> tuple[str, Share] | None:
        """Where a held part goes now: (returning, the seller) when an ended invitation
        gave it back (``returns_to_seller``, :meth:`return_ended`), when the invitation
        ended or is gone; (releasing, the collaborator) when they accepted; None while
        pending."""
        row = await tx.fetchrow(
            "SELECT stripe_account, accepted_at, ended FROM mkt_splits WHERE account_id = ? "
            "AND beat_id = ? AND collaborator = ?", seller, beat_id, collaborator)
        if row is not None and row["ended"] is None and not returns_to_seller:
            account = str(row["stripe_account"] or "")
            if row["accepted_at"] is not None and account.startswith("acct_"):
                return RELEASING, Share(collaborator, account, 0)
            return None
        own = await tx.fetchval("SELECT stripe_account FROM mkt_sellers WHERE account_id = ?",
                                seller)
        if not own:
            logger.error("held parts of %s's beat %s for %s cannot go back: the seller has "
                         "no connected Stripe account", seller, beat_id, collaborator)
            return None
        return RETURNING, Share(seller, str(own), 0)

    async def settle_invitation(self, seller: str, beat_id: str, collaborator: str
                                ) -> list[dict[str, Any]]:
        """The ``marketplace.split_holds`` job: pay out every held part of
        ``collaborator`` on ``beat_id`` as their invitation stands (nothing while it is
        pending); what was paid out."""
        rows = await self.db.fetch(
            "SELECT order_id FROM mkt_split_holds WHERE account_id = ? AND beat_id = ? AND "
            "collaborator = ? AND state IN (?, ?, ?) ORDER BY held_at, order_id", seller,
            beat_id, collaborator, HELD, RELEASING, RETURNING)
        done = []
        for r in rows:
            found = await self.settle(seller, str(r["order_id"]), collaborator)
            if found is not None:
                done.append(found)
        return done

    async def claimed_for(self, seller: str, beat_id: str, collaborator: str
                          ) -> LiveClaim | None:
        """The live claim of a run on ``collaborator``'s parts of ``beat_id`` being paid
        out that expires last (by the database's clock); None when no run holds one.
        The job comes back once it expired, in case that run died."""
        row = await self.db.fetchrow(
            f"SELECT claim, {claim_left_sql(self.db)} AS left_s FROM mkt_split_holds "
            "WHERE account_id = ? AND beat_id = ? AND collaborator = ? AND state IN (?, ?) "
            f"AND {live_claim_sql(self.db)} ORDER BY left_s DESC LIMIT 1", seller, beat_id,
            collaborator, RELEASING, RETURNING)
        if row is None:
            return None
        return LiveClaim(str(row["claim"]), max(0.0, float(row["left_s"])))

    async def settle(self, seller: str, order_id: str, collaborator: str
                     ) -> dict[str, Any] | None:
        """Pay out one held part as its invitation stands (once); None while pending, or
        while (or once) another run holds its claim."""
        claim = HoldClaim(self.db, seller, order_id, collaborator,
                          renew_s=self.claim_renew_s)
        async with self.db.transaction() as tx:
            h = await self._row(tx, seller, order_id, collaborator)
            if h is None or h["state"] in (RELEASED, RETURNED):
                return None
            if h["state"] == HELD:
                decided = await self._decision(tx, seller, h["beat_id"], collaborator,
                                               bool(h["returns_to_seller"]))
                if decided is None:
                    return None
                state, payee = decided
                await tx.execute(
                    "UPDATE mkt_split_holds SET state = ?, payee = ?, stripe_account = ? "
                    "WHERE account_id = ? AND order_id = ? AND collaborator = ? AND state = ?",
                    state, payee.collaborator, payee.stripe_account, seller, order_id,
                    collaborator, HELD)
                h = await self._row(tx, seller, order_id, collaborator)
            cuts = [(str(c["cause"]), int(c["amount"])) for c in await tx.fetch(
                "SELECT cause, amount FROM mkt_split_hold_cuts WHERE account_id = ? AND "
                "order_id = ? AND collaborator = ? ORDER BY cause", seller, order_id,
                collaborator)]
            # compare-and-set: only a part no live run claims (or whose claim expired,
            # its run dead), so two runs never both ask Stripe for it; give_up leaves
            # a claimed part be
            claimed = h["state"] in _PAID_AS and await claim.take(tx, h["state"],
                                                                   int(h["attempt"]))
        if not claimed:
            # paid out meanwhile, or another run is paying it out now (it books it, or
            # lets go when it fails: the job's retry or the sweeper comes back to it;
            # should it die holding the claim, this job comes back once the claim
            # expired: claimed_for)
            return None
        payee = Share(str(h["payee"]), str(h["stripe_account"]), 0)
        amount = max(0, int(h["amount"]) - int(h["cut"]))
        try:
            async with claim.kept():  # renewed while Stripe is asked, however slow
                # always asked first: a transfer made under an earlier decision (a run
                # that lost its answer, or one racing the give-up) is booked, never made
                # again
                transfer = await self._made(seller, order_id, collaborator, h)
                if amount > 0 and transfer is None:
                    # still this run's, checked last thing before paying: a run whose
                    # claim was taken over (or whose part an erasure moved) pays nothing
                    await claim.renew()
                    # the amount is fixed once the part left `held` (no cut reaches it
                    # after): every attempt of this decision asks with the same key and
                    # parameters
                    transfer = await self.splits.gateway.transfer(
                        idempotency_key=self._key(seller, order_id, collaborator,
                                                  int(h["attempt"])),
                        amount=amount, currency=h["currency"],
                        destination=payee.stripe_account,
                        transfer_group=h["transfer_group"], source_transaction=h["charge"],
                        metadata={"seller": seller, "order_id": order_id,
                                  "collaborator": payee.collaborator,
                                  "held_for": collaborator})
        except ClaimLost:
            await claim.let_go()
            logger.warning("split line %s of %s: %s's held part was not paid out: this "
                           "run lost its claim, the run that takes it over pays it",
                           order_id, seller, collaborator)
            return None
        except BaseException:
            await claim.let_go()
            raise
        paid_as = _PAID_AS[h["state"]]
        withheld, excess = [(c, min(a, int(h["amount"]))) for c, a in cuts], []
        if transfer is not None:
            # booked as Stripe made it: its real amount and destination
            meta = (transfer["metadata"] if "metadata" in transfer else None) or {}  # noqa: SIM401
            to = str((meta["collaborator"] if "collaborator" in meta else None)  # noqa: SIM401
                     or payee.collaborator)
            dest = transfer["destination"] if "destination" in transfer else None  # noqa: SIM401
            payee = Share(to, str(dest or payee.stripe_account), 0)
            paid_as = RELEASED if to == collaborator else RETURNED
            amount = int(transfer.amount)
            # the cuts it did withhold are recorded as such; the ones made after it
            # (while the part was wrongly back in held) are taken back from it
            kept, withheld = max(0, int(h["amount"]) - amount), []
            for c, a in cuts:
                a = min(a, int(h["amount"]))
                if a <= kept:
                    withheld.append((c, a))
                    kept -= a
                else:
                    excess.append(c)
        try:
            paid = await self._book(claim, h, transfer, payee, paid_as, amount, withheld,
                                    excess)
        except BaseException:
            # the next run (the job's retry) claims it at once and books what Stripe made
            await claim.let_go()
            raise
        if not paid:
            # paid out by another run, or this run's claim was lost: the run holding it
            # (or the next to take it) finds the transfer at Stripe and books it
            await claim.let_go()
            return None
        logger.info("split line %s of %s: %s's held part, %s %s, %s to %s", order_id, seller,
                    collaborator, amount, h["currency"], paid_as, payee.collaborator)
        return {"order_id": order_id, "collaborator": collaborator, "state": paid_as,
                "payee": payee.collaborator, "amount": amount,
                "transfer": str(transfer.id) if transfer is not None else None}

    async def _book(self, claim: HoldClaim, h: Any, transfer: Any, payee: Share,
                    paid_as: str, amount: int, withheld: list[tuple[str, int]],
                    excess: list[str]) -> bool:
        """Mark the part paid out as ``paid_as`` and book ``transfer`` (if any), in one
        transaction; False when the part left this decision meanwhile or ``claim`` is
        no longer this run's and live (compare-and-set)."""
        seller, order_id, collaborator = claim.key
        async with self.db.transaction() as tx:
            held, args = claim.held_sql(tx)
            paid = await tx.execute(
                "UPDATE mkt_split_holds SET state = ?, transfer_id = ?, paid = ?, "
                f"settled_at = ?, claim = NULL, claimed_at = NULL WHERE {held}", paid_as,
                str(transfer.id) if transfer is not None else None, amount, time.time(),
                *args)
            if paid and transfer is not None:
                await self.splits.book_transfer(
                    tx, seller, order_id, transfer, payee, amount, h["currency"], withheld,
                    hold_of=collaborator)
                if excess:
                    await self._take_back(tx, seller, order_id, collaborator, excess)
                if self.paid_out is not None:
                    # a refund whose reversal gave up while this part was being paid out
                    # never cut it: its reversal is queued again, with this transfer
                    await self.paid_out(tx, seller, order_id, collaborator)
        return bool(paid)

    async def give_up(self, seller: str, beat_id: str, collaborator: str,
                      reason: str) -> list[str]:
        """The ``marketplace.split_holds`` job's last attempt failed with ``reason``: each
        of ``collaborator``'s parts of ``beat_id`` left being paid out is booked when
        Stripe made its transfer after all, else put back to ``held`` (refunds cut it
        again; a later run decides it anew); the seller's owners and admins are mailed
        (:mod:`.transfer_alerts`). The orders put back."""
        back = []
        for r in await self.db.fetch(
                "SELECT order_id FROM mkt_split_holds WHERE account_id = ? AND beat_id = ? "
                "AND collaborator = ? AND state IN (?, ?) ORDER BY held_at, order_id",
                seller, beat_id, collaborator, RELEASING, RETURNING):
            order_id = str(r["order_id"])
            async with self.db.transaction() as tx:
                h = await self._row(tx, seller, order_id, collaborator)
            if h is None or h["state"] not in _PAID_AS:
                continue
            try:
                made = await self._made(seller, order_id, collaborator, h)
                if made is not None:  # Stripe made it: settle books it without a new one
                    await self.settle(seller, order_id, collaborator)
                    continue
            except Exception:  # Stripe still unreachable: left as it is, and said so
                logger.exception("split line %s of %s: %s's held part could not be looked "
                                 "up at Stripe", order_id, seller, collaborator)
            else:
                # only when no run holds its claim, not even an expired one: a run whose
                # claim expired during its Stripe call (the database out of its reach for
                # a claim's whole life) may still be asking Stripe with this decision's
                # key, and a new decision's key would let a later run pay it again. A
                # claim left by a dead run is taken over by the sweeper's settle, with
                # this decision's key, and let go when that run fails.
                changed = await self.db.execute(
                    "UPDATE mkt_split_holds SET state = ?, payee = NULL, stripe_account = "
                    "NULL, attempt = attempt + 1 WHERE account_id = ? AND order_id = ? AND "
                    "collaborator = ? AND state = ? AND attempt = ? AND claim IS NULL",
                    HELD, seller, order_id, collaborator, h["state"], h["attempt"])
                if not changed:  # being paid out, or decided anew: no failure to tell
                    continue
                back.append(order_id)
            logger.error("split line %s of %s: paying out %s's held part failed for good "
                         "(%s)", order_id, seller, collaborator, reason)
            if self.alerts is not None:  # its own mail: never one with the line's
                await self.alerts.notify_held(seller, order_id, collaborator,
                                              int(h["attempt"]), reason)
        return back

    async def _made(self, seller: str, order_id: str, collaborator: str, h: Any) -> Any:
        """The transfer an earlier run had Stripe make of this held part (None if none):
        asked of Stripe, so a run long after its key was forgotten pays nothing twice."""
        async for t in self.splits.gateway.transfers(transfer_group=h["transfer_group"]):
            meta = (t["metadata"] if "metadata" in t else None) or {}  # noqa: SIM401
            named = {k: meta[k] for k in ("held_for", "order_id", "seller") if k in meta}
            if named == {"held_for": collaborator, "order_id": order_id, "seller": seller}:
                return t
        return None

    @staticmethod
    def _key(seller: str, order_id: str, collaborator: str, attempt: int) -> str:
        """The idempotency key of a held part's transfer, one per decision (attempt)."""
        if attempt == 0:
            return idempotency_key("split-hold", seller, order_id, collaborator)
        return idempotency_key("split-hold", seller, order_id, collaborator,
                               f"attempt:{attempt}")

    async def _take_back(self, tx: Any, seller: str, order_id: str, collaborator: str,
                         causes: list[str]) -> None:
        """In ``tx``: queue each cause's reversal of the line again, so it takes its part
        back of the held part's transfer, which paid what the cause had cut."""
        from business.marketplace.split_sales import REVERSAL_JOB

        for r in await tx.fetch(
                "SELECT cause, taken, of_amount FROM mkt_split_reversals WHERE account_id = ? "
                "AND order_id = ? ORDER BY cause", seller, order_id):
            if str(r["cause"]) in causes:
                await self.enqueue(tx, REVERSAL_JOB, {
                    "seller": seller, "order_id": order_id, "taken": int(r["taken"]),
                    "of": int(r["of_amount"]), "cause": str(r["cause"])}, seller,
                    f"split-reversal/{r['cause']}/{order_id}/held-excess:{collaborator}")

    async def _row(self, tx: Any, seller: str, order_id: str, collaborator: str) -> Any:
        return await tx.fetchrow(
            "SELECT beat_id, charge, transfer_group, currency, amount, cut, state, payee, "
            "stripe_account, attempt, returns_to_seller FROM mkt_split_holds WHERE "
            "account_id = ? AND "
            "order_id = ? AND collaborator = ?", seller, order_id, collaborator)

    async def expire(self, now: float | None = None) -> int:
        """End every invitation pending longer than ``invitation_ttl_s`` (its held
        money goes back to the seller); how many. An invitation sent before invitations
        expired (no ``invited_at``) is stamped now, so it gets a full term; parts held
        for an invitation that no longer exists are returned too."""
        now = time.time() if now is None else now
        ended = 0
        async with self.db.transaction() as tx:
            await tx.execute(
                "UPDATE mkt_splits SET invited_at = ? WHERE invited_at IS NULL AND "
                "accepted_at IS NULL AND ended IS NULL", now)
            for r in await tx.fetch(
                    "SELECT account_id, beat_id, collaborator FROM mkt_splits WHERE "
                    "accepted_at IS NULL AND ended IS NULL AND collaborator <> account_id "
                    "AND invited_at <= ? ORDER BY account_id, beat_id, collaborator",
                    now - self.invitation_ttl_s):
                changed = await tx.execute(
                    "UPDATE mkt_splits SET ended = ?, ended_at = ? WHERE account_id = ? AND "
                    "beat_id = ? AND collaborator = ? AND accepted_at IS NULL AND ended IS "
                    "NULL", EXPIRED, now, r["account_id"], r["beat_id"], r["collaborator"])
                if changed:
                    ended += 1
                    await self.queue_settle(tx, r["account_id"], r["beat_id"],
                                            r["collaborator"], f"{EXPIRED}:{now}")
            # parts held for an invitation that is gone without its own job (the
            # collaborator's account erased): returned, one job per oldest such part
            for r in await tx.fetch(
                    "SELECT h.account_id, h.beat_id, h.collaborator, MIN(h.held_at) AS since "
                    "FROM mkt_split_holds h WHERE h.state = ? AND NOT EXISTS (SELECT 1 FROM "
                    "mkt_splits s WHERE s.account_id = h.account_id AND s.beat_id = "
                    "h.beat_id AND s.collaborator = h.collaborator) GROUP BY h.account_id, "
                    "h.beat_id, h.collaborator", HELD):
                await self.queue_settle(tx, r["account_id"], r["beat_id"], r["collaborator"],
                                        f"orphaned:{r['since']}")
            # parts whose payout did not happen (its job gave up, or found the seller
            # without a connected account): held though answered or marked going back
            # to the seller, or stuck being paid out (whether or not the split still
            # names them: a dead run's claim is taken over here once it expired); tried
            # again once per STUCK_RETRY_S, each window its own job
            window = int(now // STUCK_RETRY_S)
            for r in await tx.fetch(
                    "SELECT DISTINCT h.account_id, h.beat_id, h.collaborator FROM "
                    "mkt_split_holds h LEFT JOIN mkt_splits s ON s.account_id = "
                    "h.account_id AND s.beat_id = h.beat_id AND s.collaborator = "
                    "h.collaborator WHERE (h.state = ? AND (s.accepted_at IS NOT NULL OR "
                    "s.ended IS NOT NULL OR h.returns_to_seller = 1) AND h.held_at <= ?) OR "
                    "h.state IN (?, ?) ORDER BY h.account_id, h.beat_id, h.collaborator",
                    HELD, now - STUCK_RETRY_S, RELEASING, RETURNING):
                await self.queue_settle(tx, r["account_id"], r["beat_id"], r["collaborator"],
                                        f"stuck:{window}")
        return ended

    def _expires(self, r: Any) -> float | None:
        if r["accepted_at"] is not None or r["ended"] is not None or r["invited_at"] is None:
            return None
        return float(r["invited_at"]) + self.invitation_ttl_s

    async def _money(self, where: str, *args: Any) -> dict[tuple[str, str, str], dict]:
        """Held, released and returned amounts by (seller, beat, collaborator), then state
        group, then currency."""
        found: dict[tuple[str, str, str], dict] = {}
        for r in await self.db.fetch(
                "SELECT account_id, beat_id, collaborator, state, currency, "
                "SUM(amount - cut) AS owed, SUM(COALESCE(paid, 0)) AS paid, COUNT(*) AS sales "
                f"FROM mkt_split_holds WHERE {where} GROUP BY account_id, beat_id, "
                "collaborator, state, currency", *args):
            group = "held" if r["state"] in (HELD, *_PAID_AS) else str(r["state"])
            amount = int(r["owed"]) if group == "held" else int(r["paid"])
            key = (str(r["account_id"]), str(r["beat_id"]), str(r["collaborator"]))
            money = found.setdefault(key, {}).setdefault(group, {})
            got = money.setdefault(r["currency"], {"currency": r["currency"], "amount": 0,
                                                   "sales": 0})
            got["amount"] += amount
            got["sales"] += int(r["sales"])
        return found

    async def invitations(self, collaborator: str) -> list[dict[str, Any]]:
        """The invitations waiting for ``collaborator``'s answer, each with what is held
        for them (by currency) and when it expires."""
        rows = await self.db.fetch(
            "SELECT account_id, beat_id, basis_points, accepted_at, ended, invited_at FROM "
            "mkt_splits WHERE collaborator = ? AND account_id <> collaborator AND "
            "accepted_at IS NULL AND ended IS NULL ORDER BY invited_at, account_id, beat_id",
            collaborator)
        money = await self._money("collaborator = ?", collaborator)
        return [{"seller": r["account_id"], "beat_id": r["beat_id"],
                 "basis_points": int(r["basis_points"]), "status": PENDING,
                 "invited_at": r["invited_at"], "expires_at": self._expires(r),
                 "held": list(money.get((r["account_id"], r["beat_id"], collaborator), {})
                              .get("held", {}).values())} for r in rows]

    async def sent(self, seller: str) -> list[dict[str, Any]]:
        """Every invitation ``seller`` sent (the parts of others in their splits), each
        with its state and the money held, released to the collaborator and returned."""
        rows = await self.db.fetch(
            "SELECT beat_id, collaborator, basis_points, accepted_at, ended, ended_at, "
            "invited_at FROM mkt_splits WHERE account_id = ? AND collaborator <> account_id "
            "ORDER BY beat_id, collaborator", seller)
        money = await self._money("account_id = ?", seller)
        out = []
        for r in rows:
            status = (ACCEPTED if r["accepted_at"] is not None else r["ended"] or PENDING)
            mine = money.get((seller, r["beat_id"], r["collaborator"]), {})
            out.append({"beat_id": r["beat_id"], "collaborator": r["collaborator"],
                        "basis_points": int(r["basis_points"]), "status": status,
                        "invited_at": r["invited_at"], "expires_at": self._expires(r),
                        "answered_at": (r["accepted_at"] if status == ACCEPTED else
                                        r["ended_at"] if status in (DECLINED, EXPIRED)
                                        else None),
                        **{group: list(mine.get(group, {}).values())
                           for group in ("held", RELEASED, RETURNED)}})
        return out
