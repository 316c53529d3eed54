"""Split beats sold through a cart's checkout: the payees' transfers after the payment.

A cart holding a beat with collaborator splits (:mod:`.splits`) is paid by a *separate
charge* on the platform's Stripe account (:mod:`.cart_checkout`), its PaymentIntent's
``transfer_group`` the cart id, each order carrying that group (``mkt_orders``). When the
payment arrives (:mod:`.cart_fulfilment`, in the webhook's one transaction) the sale is
booked to ``platform:clearing`` and, for each line paid, :meth:`SplitSales.queue_payment`
queues the ``marketplace.split_transfers`` job with the line's net (its amount less its
part of Stripe's fee, cut by amount across the lines, and less its discovery fee) and its
payees: the beat's split as it is then, or the seller alone for a line without one. The
job (:meth:`SplitSales.pay`) sends each payee's part by a Stripe transfer with
``source_transaction`` (the charge) and ``transfer_group``, one idempotency key per order
and payee, booked once per transfer; so a crash anywhere between the payment and the
last transfer is finished by the job's next attempt, and no payee is paid twice.

A refund of one line (``charge.refunded``) books the refund to ``platform:clearing`` and
queues ``marketplace.split_reversal`` (:meth:`SplitSales.queue_reversal`), which takes back
``refund / line amount`` of that line's transfers only, once the line's transfers are all
made (it waits for ``mkt_orders.transferred_at`` in growing steps, up to 15 minutes
apart and about five hours in all, past the transfer job's own retries), keyed by the
refund booked. A lost dispute of the charge (:mod:`.money_events`), and a refund that
names no line (one made in Stripe's dashboard), queue the same job for every line still
paid (:meth:`SplitSales.queue_shared_reversals`): the amount cut across those lines by
amount, each taking back its part of its own transfers, keyed by cause and line.

A line whose transfer job gives up (its retries spent: :meth:`SplitSales.fail`, called
by the job's last attempt) is marked failed with the reason
(``mkt_orders.transfer_failed``), counted (``marketplace_split_failures_total``) and its
seller's owners and admins are mailed (:mod:`.transfer_alerts`). A reversal of such a line
does not wait for transfers that will not come: it takes back its part of what was
transferred and ends :class:`TransfersFailed`, recorded. Every reversal's end is a row of
``mkt_split_reversals`` (``reversed``, ``transfers_failed`` or ``timed_out`` when its own
retries ran out while the line's transfers were still being made), so none ends unseen;
one ending ``timed_out`` mails the seller's owners and admins too: the line's transfer job
may have died without its last attempt marking the line (its workers stopped on every
attempt), and nobody else would know.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from business.marketplace import metrics
from business.marketplace.models import PAID, Order
from business.marketplace.split_holds import HeldPartPaying
from business.marketplace.splits import Share, Splits, apportion
from business.marketplace.transfer_alerts import TransferAlerts

logger = logging.getLogger(__name__)

#: The job that pays a split line's payees, and the one that takes back a refunded part.
PAY_JOB = "marketplace.split_transfers"
REVERSAL_JOB = "marketplace.split_reversal"

#: ``await enqueue(tx, job, payload, account_id, idempotency_key)``: a job in ``tx``.
Enqueue = Callable[[Any, str, dict[str, Any], str, str], Awaitable[Any]]


#: How a reversal ended (``mkt_split_reversals.state``).
REVERSED = "reversed"
TRANSFERS_FAILED = "transfers_failed"
TIMED_OUT = "timed_out"
#: Its job died with no end recorded (Stripe refused it for good, its workers killed).
DIED = "died"


class TransfersPending(Exception):
    """A line's transfers are not all made yet: its reversal waits for them."""


class TransfersFailed(Exception):
    """A line's transfers failed for good: its reversal took back only what was
    transferred, and is not tried again."""


async def payees(db: Any, seller: str, beat_id: str, stripe_account: str) -> list[Share]:
    """Who is paid for a line of ``beat_id``: the collaborators of its split who agreed to
    their part; each collaborator whose invitation is still pending, with no Stripe
    account (their part is *held* for them, :mod:`.split_holds`); the seller
    (``stripe_account``) taking their own part, and every part declined or expired; or
    the seller alone."""
    rows = await db.fetch(
        "SELECT collaborator, stripe_account, basis_points, accepted_at, ended FROM "
        "mkt_splits WHERE account_id = ? AND beat_id = ? ORDER BY collaborator", seller,
        beat_id)
    if not rows:
        return [Share(seller, stripe_account, 10_000)]
    paid = {r["collaborator"]: Share(r["collaborator"], r["stripe_account"],
                                     int(r["basis_points"]))
            for r in rows if r["accepted_at"] is not None and r["stripe_account"]}
    paid.update({r["collaborator"]: Share(r["collaborator"], "", int(r["basis_points"]))
                 for r in rows if r["collaborator"] not in paid and r["ended"] is None
                 and r["collaborator"] != seller})
    sellers = sum(int(r["basis_points"]) for r in rows if r["collaborator"] not in paid)
    if sellers:
        own = paid.get(seller)
        paid[seller] = Share(seller, stripe_account,
                             sellers + (own.basis_points if own else 0))
    return [paid[c] for c in sorted(paid)]


async def has_split(db: Any, seller: str, beat_ids: list[str]) -> bool:
    """Whether any of ``beat_ids`` has collaborator splits."""
    if not beat_ids:
        return False
    marks = ", ".join("?" for _ in beat_ids)
    found = await db.fetchval(
        f"SELECT COUNT(*) FROM mkt_splits WHERE account_id = ? AND beat_id IN ({marks})",
        seller, *beat_ids)
    return bool(found)


def line_nets(orders: list[Order], fees: dict[str, int], stripe_fee: int) -> dict[str, int]:
    """What the platform holds of each line of a separate charge: its amount less its
    part of ``stripe_fee`` (cut by amount) and its discovery fee (``fees`` by order id)."""
    if not orders:
        return {}
    weights = [o.amount for o in orders]
    parts = apportion(stripe_fee, weights) if sum(weights) else [0] * len(orders)
    return {o.order_id: max(0, o.amount - part - fees.get(o.order_id, 0))
            for o, part in zip(orders, parts, strict=True)}


class SplitSales:
    """Queues and runs the transfers of split lines paid by a separate charge."""

    def __init__(self, splits: Splits, enqueue: Enqueue) -> None:
        self.splits = splits
        self.db = splits.db
        self.enqueue = enqueue
        #: tells the seller's owners and admins when a line's transfers fail
        self.alerts = TransferAlerts(None, None)

    async def fees(self, tx: Any, seller: str, cart_id: str) -> dict[str, int]:
        """Each line's discovery fee, by order id."""
        rows = await tx.fetch("SELECT order_id, platform_fee FROM mkt_orders WHERE "
                              "account_id = ? AND cart_id = ?", seller, cart_id)
        return {r["order_id"]: int(r["platform_fee"] or 0) for r in rows}

    async def queue_payment(self, tx: Any, order: Order, *, net: int, charge: str | None,
                            currency: str, now: float) -> None:
        """In the payment's transaction: queue the transfers of ``net`` to the line's
        payees (a line with nothing to pay is marked done at once; one with something to
        pay needs the charge its transfers are made from)."""
        if net <= 0:
            await self.done(tx, order, now)
            return
        if not charge:
            raise ValueError(f"order {order.order_id!r}: {net} to pay to its payees but no "
                             "charge to transfer it from")
        shares = await payees(tx, order.account_id, order.beat_id, order.stripe_account)
        await self.enqueue(tx, PAY_JOB, {
            "seller": order.account_id, "order_id": order.order_id, "charge": charge,
            "amount": net, "currency": currency,
            "transfer_group": order.transfer_group or order.order_id,
            "shares": [{"collaborator": s.collaborator, "stripe_account": s.stripe_account,
                        "basis_points": s.basis_points} for s in shares]},
            order.account_id, f"split-transfers/{order.order_id}")

    async def done(self, tx: Any, order: Order, now: float) -> None:
        """Mark a line that has no transfers to make (refunded at once, free)."""
        await tx.execute("UPDATE mkt_orders SET transferred_at = ? WHERE account_id = ? AND "
                         "order_id = ? AND transferred_at IS NULL", now, order.account_id,
                         order.order_id)

    async def pay(self, seller: str, order_id: str, *, charge: str, amount: int,
                  currency: str, transfer_group: str,
                  shares: list[Share]) -> list[dict[str, Any]]:
        """The ``marketplace.split_transfers`` job: every payee's part, once.

        Run again after it failed for good (the dead letter requeued), the line may have
        been refunded or lost to a dispute meanwhile, and those reversals ended taking
        back only what had been transferred (``transfers_failed``, ``timed_out``): each
        payee's part is then cut by what those causes took (nothing is paid of a line
        refunded in full), the cut recorded as that cause's reversal of the transfer.
        Once the line is marked transferred, every such cause is reversed again (a
        no-op for what was cut or taken before), which closes the race with a reversal
        job ending at the same time: each side checks after its own write."""
        withheld = await self._unreversed(seller, order_id)
        paid = await self.splits.pay(seller, order_id, charge=charge, amount=amount,
                                     currency=currency, shares=shares,
                                     transfer_group=transfer_group, withheld=withheld)
        async with self.db.transaction() as tx:
            await tx.execute("UPDATE mkt_orders SET transferred_at = ?, transfer_failed = NULL "
                             "WHERE account_id = ? AND order_id = ? AND transferred_at IS NULL",
                             time.time(), seller, order_id)
        for cause, taken, of in await self._unreversed(seller, order_id):
            done = await self.splits.reverse(seller, order_id, taken=taken, of=of,
                                             cause=cause)
            await self.record(seller, order_id, cause, taken=taken, of=of,
                              reversed_=sum(int(d["amount"]) for d in done), state=REVERSED,
                              note="taken back when the line's transfers were made at last")
        return paid

    async def queue_take_back(self, tx: Any, seller: str, order_id: str,
                              collaborator: str) -> None:
        """In the transaction booking ``collaborator``'s held part of the line, paid out
        at last: queue the reversal again of every cause of the line whose reversal ended
        before (``timed_out``, ``transfers_failed``), so it takes back its part of that
        transfer too (a no-op for what it cut or took before), once per cause and part."""
        for r in await tx.fetch(
                "SELECT cause, taken, of_amount FROM mkt_split_reversals WHERE account_id = ? "
                "AND order_id = ? AND state IN (?, ?) ORDER BY cause", seller, order_id,
                TRANSFERS_FAILED, TIMED_OUT):
            await self.enqueue(tx, REVERSAL_JOB, {
                "seller": seller, "order_id": order_id, "taken": int(r["taken"]),
                "of": int(r["of_amount"]), "cause": str(r["cause"])}, seller,
                f"split-reversal/{r['cause']}/{order_id}/held:{collaborator}")

    async def _unreversed(self, seller: str, order_id: str) -> list[tuple[str, int, int]]:
        """The causes (cause, taken, of) whose reversal of the line ended before its
        transfers were all made."""
        rows = await self.db.fetch(
            "SELECT cause, taken, of_amount FROM mkt_split_reversals WHERE account_id = ? "
            "AND order_id = ? AND state IN (?, ?) ORDER BY cause", seller, order_id,
            TRANSFERS_FAILED, TIMED_OUT)
        return [(str(r["cause"]), int(r["taken"]), int(r["of_amount"])) for r in rows]

    async def fail(self, seller: str, order_id: str, reason: str) -> bool:
        """The line's transfer job gave up: mark the line failed with ``reason``, count it
        and mail the seller's owners and admins (once: False when it was marked before,
        or its transfers were all made)."""
        async with self.db.transaction() as tx:
            row = await tx.fetchrow(
                "SELECT transfer_failed FROM mkt_orders WHERE account_id = ? AND "
                "order_id = ? AND transferred_at IS NULL", seller, order_id)
            if row is None or row["transfer_failed"] is not None:
                return False
            await tx.execute("UPDATE mkt_orders SET transfer_failed = ? WHERE account_id = ? "
                             "AND order_id = ? AND transferred_at IS NULL", reason, seller,
                             order_id)
        logger.error("split line %s of %s: its transfers failed for good: %s", order_id,
                     seller, reason)
        metrics.SPLIT_FAILURES.labels(stage="transfer").inc()
        await self.alerts.notify(seller, order_id, reason)
        return True

    async def gave_up_waiting(self, seller: str, order_id: str, cause: str,
                              reason: str) -> None:
        """The reversal of ``cause`` gave up waiting for the line's transfers (recorded
        ``timed_out``, counted): log it and mail the seller's owners and admins, who
        have the line's transfer job requeued (it withholds what the cause takes)."""
        logger.error("split line %s of %s: the reversal of %s gave up waiting for the "
                     "line's transfers: %s", order_id, seller, cause, reason)
        await self.alerts.notify_reversal(seller, order_id, cause, reason)

    async def reversal_died(self, seller: str, order_id: str, cause: str, *, taken: int,
                            of: int, reason: str) -> bool:
        """The reversal job of ``cause`` died with no end recorded (:data:`DIED`): Stripe
        refused it for good, or its workers were killed on every attempt. While the
        line's transfers are not all made it ends as one that gave up waiting
        (``timed_out``: those transfers withhold what the cause takes); otherwise it is
        recorded ``died`` with ``reason``, counted and mailed, and the seller has the job
        requeued. False when an end was recorded already (nothing more is said)."""
        owed = await self.db.fetchval("SELECT transferred_at FROM mkt_orders WHERE "
                                      "account_id = ? AND order_id = ?", seller,
                                      order_id) is None
        state = TIMED_OUT if owed else DIED
        if not await self._record_unended(seller, order_id, cause, taken=taken, of=of,
                                          state=state, note=reason):
            return False  # an attempt (a requeued one too) recorded its end
        if owed:
            await self.gave_up_waiting(seller, order_id, cause, reason)
            return True
        logger.error("split line %s of %s: the reversal of %s died: %s", order_id, seller,
                     cause, reason)
        metrics.SPLIT_FAILURES.labels(stage="reversal").inc()
        await self.alerts.notify_reversal_died(seller, order_id, cause, reason)
        return True

    async def queue_reversal(self, tx: Any, order: Order, *, cause: str,
                             amount: int) -> None:
        """In a refund's transaction: queue taking ``amount / order.amount`` of the line's
        transfers back (once per ``cause``, the refund booked)."""
        if amount <= 0 or order.amount <= 0:
            return
        await self._queue_reversal(tx, order, amount, cause, f"split-reversal/{cause}")

    async def queue_dispute_reversals(self, tx: Any, lines: list[Order], *, dispute_id: str,
                                      amount: int) -> dict[str, int]:
        """In a lost dispute's transaction: cut ``amount`` across the paid ``lines`` by
        their amounts and queue taking each line's part of its transfers back (once per
        dispute and line); the parts queued, by order id."""
        return await self.queue_shared_reversals(tx, lines, cause=f"dispute:{dispute_id}",
                                                 amount=amount)

    async def queue_shared_reversals(self, tx: Any, lines: list[Order], *, cause: str,
                                     amount: int) -> dict[str, int]:
        """In the transaction of a ``cause`` that takes ``amount`` of the whole charge (a
        lost dispute, a refund naming no line): cut it across the paid ``lines`` by their
        amounts and queue taking each line's part of its transfers back (once per cause
        and line); the parts queued, by order id."""
        paid = [o for o in lines if o.status == PAID and o.amount > 0]
        if amount <= 0 or not paid:
            return {}
        parts = apportion(min(amount, sum(o.amount for o in paid)), [o.amount for o in paid])
        queued = {}
        for order, part in zip(paid, parts, strict=True):
            if part <= 0:
                continue
            await self._queue_reversal(tx, order, part, cause,
                                       f"split-reversal/{cause}/{order.order_id}")
            queued[order.order_id] = part
        return queued

    async def _queue_reversal(self, tx: Any, order: Order, amount: int, cause: str,
                              key: str) -> None:
        """Queue taking ``amount`` (at most the line's) of ``order``'s transfers back,
        once per ``key``."""
        await self.enqueue(tx, REVERSAL_JOB, {
            "seller": order.account_id, "order_id": order.order_id,
            "taken": min(amount, order.amount), "of": order.amount, "cause": cause},
            order.account_id, key)

    async def reverse(self, seller: str, order_id: str, *, taken: int, of: int,
                      cause: str) -> list[dict[str, Any]]:
        """The ``marketplace.split_reversal`` job; :class:`TransfersPending` while the
        line's transfers are still being made."""
        row = await self.db.fetchrow("SELECT transferred_at, transfer_failed FROM mkt_orders "
                                     "WHERE account_id = ? AND order_id = ?", seller, order_id)
        if row is None:
            return []
        failed = row["transfer_failed"] if row["transferred_at"] is None else None
        if row["transferred_at"] is None and failed is None:
            raise TransfersPending(f"order {order_id!r}'s transfers are still being made: "
                                   "its refund's reversals wait for them")
        if self.splits.holds is not None:  # held parts are cut, never paid out
            try:
                await self.splits.holds.cut(seller, order_id, cause=cause, taken=taken,
                                            of=of)
            except HeldPartPaying as exc:
                # only the part being paid out waits: every transfer already made is
                # taken back now (once per cause and transfer), so a payout that stays
                # stuck past this job's retries holds back nobody else's reversal
                await self.splits.reverse(seller, order_id, taken=taken, of=of,
                                          cause=cause)
                raise TransfersPending(str(exc)) from None
        done = await self.splits.reverse(seller, order_id, taken=taken, of=of, cause=cause)
        back = sum(int(d["amount"]) for d in done)
        if failed is None:
            await self.record(seller, order_id, cause, taken=taken, of=of, reversed_=back,
                              state=REVERSED)
            return done
        note = (f"the line's transfers failed ({failed}): {back} taken back of what was "
                "transferred; the rest was never paid out")
        await self.record(seller, order_id, cause, taken=taken, of=of, reversed_=back,
                          state=TRANSFERS_FAILED, note=note)
        # a requeued transfer job may have marked the line transferred meanwhile, having
        # read no record of this cause: take back what it paid (once per transfer)
        if await self.db.fetchval("SELECT transferred_at FROM mkt_orders WHERE account_id "
                                  "= ? AND order_id = ?", seller, order_id) is not None:
            done = await self.splits.reverse(seller, order_id, taken=taken, of=of,
                                             cause=cause)
            await self.record(seller, order_id, cause, taken=taken, of=of,
                              reversed_=sum(int(d["amount"]) for d in done), state=REVERSED)
            return done
        metrics.SPLIT_FAILURES.labels(stage="reversal").inc()
        raise TransfersFailed(f"order {order_id!r}: {note}")

    async def _record_unended(self, seller: str, order_id: str, cause: str, *, taken: int,
                              of: int, state: str, note: str) -> bool:
        """Record ``state`` for a reversal of ``cause`` whose attempts recorded no end
        (its row absent or ``died``), in one statement, so an end a requeued attempt
        records meanwhile is never overwritten; whether it was recorded."""
        recorded = bool(await self.db.execute(
            "INSERT INTO mkt_split_reversals (account_id, cause, order_id, taken, of_amount, "
            "reversed, state, note, at) VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT "
            "(account_id, cause, order_id) DO UPDATE SET state = excluded.state, note = "
            "excluded.note, at = excluded.at WHERE mkt_split_reversals.state = ?",
            seller, cause, order_id, taken, of, state, note, time.time(), DIED))
        if recorded and state == TIMED_OUT:
            metrics.SPLIT_FAILURES.labels(stage="reversal_timeout").inc()
        return recorded

    async def record(self, seller: str, order_id: str, cause: str, *, taken: int, of: int,
                     reversed_: int, state: str, note: str | None = None) -> None:
        """Record how the reversal of ``cause`` of a line ended (the last word wins)."""
        if state == TIMED_OUT:
            metrics.SPLIT_FAILURES.labels(stage="reversal_timeout").inc()
        async with self.db.transaction() as tx:
            await tx.execute(
                "INSERT INTO mkt_split_reversals (account_id, cause, order_id, taken, "
                "of_amount, reversed, state, note, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (account_id, cause, order_id) DO UPDATE SET taken = "
                "excluded.taken, of_amount = excluded.of_amount, reversed = "
                "excluded.reversed, state = excluded.state, note = excluded.note, "
                "at = excluded.at", seller, cause, order_id, taken, of, reversed_, state,
                note, time.time())

    async def reversals(self, seller: str, order_id: str) -> list[dict[str, Any]]:
        """How the line's reversals ended (rows of ``mkt_split_reversals``)."""
        rows = await self.db.fetch(
            "SELECT cause, taken, of_amount, reversed, state, note, at FROM "
            "mkt_split_reversals WHERE account_id = ? AND order_id = ? ORDER BY at, cause",
            seller, order_id)
        return [dict(r) for r in rows]
