"""A run's claim on a held split part's payout: taken, kept alive, checked, let go.

A run paying a held part out (:meth:`.SplitHolds.settle`) claims it first: its own
random token in ``mkt_split_holds.claim``, stamped ``claimed_at``, by a compare-and-set
that succeeds only while no live claim is there. A claim is **live** while
``claimed_at`` is less than :data:`CLAIM_TTL_S` old; an older one is dead (its run died
without letting go) and may be taken over. A run that finds another's live claim comes
back when it will have expired (:data:`CLAIM_MARGIN_S` after): a run killed while it
held one has its job run again by the queue once the job's lease ran out, which finds
the claim still live and retries then (a job with no attempt left queues one fresh
job per claim to come back), so the part is paid out a claim's life after its run
died, not at the hourly sweep. Claim times are the database's own clock
(``Session.now_sql``), stamped and compared inside the statement, never a host's: two
servers whose clocks differ agree on whether a claim is dead.

The run keeps its claim alive while it works: a heartbeat (:meth:`HoldClaim.kept`)
renews ``claimed_at`` every ``renew_s`` (a quarter of the claim's life) by a
compare-and-set on its own live token and the part's decision (``state``,
``attempt``), so a run slower than :data:`CLAIM_TTL_S` but alive never looks dead to
another run or to an erasure. Immediately before asking Stripe for the transfer
(:meth:`HoldClaim.renew`) and again in the transaction booking it
(:meth:`HoldClaim.held_sql`), the run checks by the same compare-and-set that the claim
is still its own and live; when it is not (it expired and was taken over, the part was
decided anew, or an erasure moved the row) the run stops: it never pays nor books after
losing its claim. Left is a Stripe call already under way when the claim is lost (the
database out of the run's reach for a whole claim's life): it asks with the decision's
idempotency key, so a run that took the claim over gets the same transfer, and every
run looks for the part's transfer at Stripe before making one; its booking, a
compare-and-set on its own token, then writes nothing over the successor's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

#: How long a claim on a held part's payout lives unless its run renews it: far longer
#: than one Stripe call takes (the client's timeouts and retries), so only a run that
#: died, or lost the database for that long, leaves a claim this old.
CLAIM_TTL_S = 600.0
#: How often a working run renews its claim (its heartbeat).
CLAIM_RENEW_S = CLAIM_TTL_S / 4
#: How long after a claim's expiry a run that found it live comes back to take it over:
#: room for the clocks of the database and of the job queue's hosts to differ.
CLAIM_MARGIN_S = 30.0


def live_claim_sql(session: Any) -> str:
    """SQL true of a ``mkt_split_holds`` row whose claim is live, by the database's
    clock (``session``'s: a database or a transaction)."""
    return f"(claim IS NOT NULL AND claimed_at > {session.now_sql} - {CLAIM_TTL_S!r})"


def claim_left_sql(session: Any) -> str:
    """SQL for the seconds a ``mkt_split_holds`` row's claim has left to live, by the
    database's clock (``session``'s); not above 0 once it is dead."""
    return f"(claimed_at + {CLAIM_TTL_S!r} - {session.now_sql})"


@dataclass(frozen=True)
class LiveClaim:
    """Another run's live claim on a held part: its token and the seconds it has left
    (by the database's clock)."""

    token: str
    left_s: float


class ClaimLost(Exception):
    """This run's claim on a held part's payout is no longer its own and live: it stops."""


class HoldClaim:
    """One run's claim on one held part's payout (``seller``'s line ``order_id``,
    ``collaborator``'s part)."""

    def __init__(self, db: Any, seller: str, order_id: str, collaborator: str, *,
                 renew_s: float = CLAIM_RENEW_S) -> None:
        if not 0 < renew_s < CLAIM_TTL_S:
            raise ValueError(f"a claim must be renewed within its life of {CLAIM_TTL_S} s, "
                             f"not every {renew_s} s")
        self.db = db
        self.key = (seller, order_id, collaborator)
        self.token = uuid.uuid4().hex
        self.renew_s = renew_s
        self._decision: tuple[str, int] | None = None

    async def take(self, tx: Any, state: str, attempt: int) -> bool:
        """In ``tx``: claim the part's payout as decided (``state``, ``attempt``) unless
        another run's live claim is there; whether this run holds it now."""
        now = tx.now_sql
        taken = await tx.execute(
            f"UPDATE mkt_split_holds SET claim = ?, claimed_at = {now} WHERE account_id = ? "
            "AND order_id = ? AND collaborator = ? AND state = ? AND attempt = ? AND "
            f"(claim IS NULL OR claimed_at IS NULL OR claimed_at <= {now} - ?)",
            self.token, *self.key, state, attempt, CLAIM_TTL_S)
        if taken:
            self._decision = (state, attempt)
        return bool(taken)

    def held_sql(self, session: Any) -> tuple[str, list[Any]]:
        """SQL (and its arguments) true of the part's row while this run holds a live
        claim on it as decided when taken, for a compare-and-set in ``session``."""
        if self._decision is None:
            raise ClaimLost("this run never took the claim")
        state, attempt = self._decision
        return (f"account_id = ? AND order_id = ? AND collaborator = ? AND claim = ? AND "
                f"state = ? AND attempt = ? AND claimed_at > {session.now_sql} - ?",
                [*self.key, self.token, state, attempt, CLAIM_TTL_S])

    async def renew(self) -> None:
        """Compare-and-set: stamp this run's claim again; :class:`ClaimLost` when it is
        no longer its own and live (it expired, was taken over, or the row changed)."""
        where, args = self.held_sql(self.db)
        if not await self.db.execute(
                f"UPDATE mkt_split_holds SET claimed_at = {self.db.now_sql} WHERE {where}",
                *args):
            raise ClaimLost(f"the claim on {self.key[2]}'s held part of order "
                            f"{self.key[1]!r} of {self.key[0]!r} was lost")

    @contextlib.asynccontextmanager
    async def kept(self) -> AsyncIterator[None]:
        """Renew the claim every ``renew_s`` while the block runs (a heartbeat); a beat
        that finds it lost stops beating (the block's own checks stop the run)."""
        done = asyncio.Event()

        async def beat() -> None:
            while True:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.renew_s):
                        await done.wait()
                        return
                try:
                    await self.renew()
                except ClaimLost:
                    logger.warning("split line %s of %s: the claim on %s's held part was "
                                   "lost while its run worked", self.key[1], self.key[0],
                                   self.key[2])
                    return
                except Exception:  # the database out of reach: the next beat tries again
                    logger.warning("split line %s of %s: renewing the claim on %s's held "
                                   "part failed", self.key[1], self.key[0], self.key[2],
                                   exc_info=True)

        task = asyncio.create_task(beat(), name=f"split-hold-claim:{self.token}")
        try:
            yield
        finally:
            done.set()  # never cancelled mid-statement: the beat under way ends first
            await task

    async def let_go(self) -> None:
        """Let go of the claim if it is still this run's (a run that failed or stops)."""
        await self.db.execute(
            "UPDATE mkt_split_holds SET claim = NULL, claimed_at = NULL WHERE account_id = ? "
            "AND order_id = ? AND collaborator = ? AND claim = ?", *self.key, self.token)
