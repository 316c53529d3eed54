"""A run's claim on a held split part's payout: aged by the database's clock, so servers
whose clocks differ agree on it; kept alive while its run works, however slowly; and a
run that lost it (taken over, or dead to an erasure) neither pays nor books."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from test_marketplace_split_holds import (
    Sale,
    ben_accepted_in_books,
    ben_being_paid_out,
    books_settled,
    held_sale,
    hold_jobs_done,
    hold_of,
    transfers_to,
)

from business.marketplace.privacy import erase_account
from business.marketplace.split_hold_claims import CLAIM_TTL_S
from business.marketplace.split_holds import RELEASED, RELEASING
from dawserver.plugin_api import Pseudonymiser, Retry

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]

#: ben erased: his id becomes the pseudonym in every kept row
BEN_ERASED = Pseudonymiser("ben", ("ben",), "erased_ben")


async def claimed_by_another(s: Sale, age: float = 0.0) -> None:
    """Another run's claim on ben's part, stamped ``age`` s ago by the database's clock."""
    await s.db.execute(f"UPDATE mkt_split_holds SET claim = 'other', claimed_at = "
                       f"{s.db.now_sql} - ? WHERE order_id = ? AND collaborator = ?", age,
                       s.order_id, "ben")


async def claim_of(s: Sale) -> tuple[str | None, float | None]:
    """ben's part's claim token and its age by the database's clock."""
    row = await s.db.fetchrow(
        f"SELECT claim, {s.db.now_sql} - claimed_at AS age FROM mkt_split_holds WHERE "
        "order_id = ? AND collaborator = ?", s.order_id, "ben")
    assert row is not None
    return row["claim"], row["age"]


def host_clock_off_by(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """This server's own clock runs ``seconds`` ahead (behind, when negative)."""
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + seconds)


def asking_stripe(s: Sale) -> tuple[list[dict[str, Any]], Any]:
    """Record every transfer the gateway is asked for (and make it); the list and
    Stripe's real ``transfer``, to put back."""
    gateway = s.module.gateway
    real, asked = gateway.transfer, []

    async def recorded(**kwargs: Any) -> Any:
        asked.append(kwargs)
        return await real(**kwargs)

    gateway.transfer = recorded
    return asked, real


async def test_servers_whose_clocks_differ_agree_on_whether_a_claim_is_dead(
        tmp_path: Any, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with held_sale(tmp_path, db_url) as sale:
        m, order_id, holds = sale.m, sale.order_id, sale.holds
        await hold_jobs_done(m)
        await ben_accepted_in_books(sale)
        await ben_being_paid_out(sale)
        # a run on another server claimed ben's part just now; this server's clock runs
        # ahead by more than a claim's life: the claim is still live to it
        await claimed_by_another(sale)
        host_clock_off_by(monkeypatch, CLAIM_TTL_S + 60)
        with pytest.raises(Retry, match="being paid out"):
            await erase_account(sale.db, BEN_ERASED)
        assert await holds.settle("seller", order_id, "ben") is None
        assert transfers_to(m, order_id, "ben") == []
        assert (await claim_of(sale))[0] == "other"
        # that run died long ago; this server's clock runs behind by more than a
        # claim's life: the claim is dead to it too, and it takes the payout over
        await claimed_by_another(sale, age=CLAIM_TTL_S + 1)
        host_clock_off_by(monkeypatch, -2 * (CLAIM_TTL_S + 60))
        paid = await holds.settle("seller", order_id, "ben")
        monkeypatch.undo()
        [made] = transfers_to(m, order_id, "ben")
        assert paid is not None and paid["transfer"] == made["id"]
        assert (await hold_of(m, order_id))["state"] == RELEASED
        await books_settled(sale)


async def test_a_run_slower_than_its_claims_life_keeps_it_while_it_works(
        tmp_path: Any, db_url: str) -> None:
    async with held_sale(tmp_path, db_url) as sale:
        m, order_id, holds, gateway = sale.m, sale.order_id, sale.holds, sale.module.gateway
        await hold_jobs_done(m)
        await ben_accepted_in_books(sale)
        holds.claim_renew_s = 0.05
        real, at_stripe, answer = gateway.transfer, asyncio.Event(), asyncio.Event()

        async def slow(**kwargs: Any) -> Any:
            at_stripe.set()
            async with asyncio.timeout(60):
                await answer.wait()
            return await real(**kwargs)

        gateway.transfer = slow
        try:
            run = asyncio.create_task(holds.settle("seller", order_id, "ben"))
            async with asyncio.timeout(30):
                await at_stripe.wait()
            # Stripe takes nearly the claim's whole life: the run's heartbeat renews it
            await sale.db.execute(f"UPDATE mkt_split_holds SET claimed_at = {sale.db.now_sql}"
                                  " - ? WHERE order_id = ?", CLAIM_TTL_S - 30, order_id)
            async with asyncio.timeout(10):
                while (await claim_of(sale))[1] > 10:
                    await asyncio.sleep(0.02)
            # so that more than its life after it was taken, it is live to another run
            # (which asks Stripe nothing) and to an erasure (which waits)
            assert await holds.settle("seller", order_id, "ben") is None
            with pytest.raises(Retry, match="being paid out"):
                await erase_account(sale.db, BEN_ERASED)
            answer.set()
            paid = await run
        finally:
            gateway.transfer = real
        [made] = transfers_to(m, order_id, "ben")
        assert paid is not None and paid["transfer"] == made["id"]
        assert await claim_of(sale) == (None, None)
        assert (await hold_of(m, order_id))["state"] == RELEASED
        await books_settled(sale)


async def test_a_run_whose_claim_died_pays_nothing_once_an_erasure_went_through(
        tmp_path: Any, db_url: str) -> None:
    """The run stalled (its host paused) past its claim's life while looking for the
    part's transfer at Stripe; an erasure of ben found the claim dead and moved his held
    part under his pseudonym. The run wakes: it must not pay ben's account now, which
    nothing would book (the sweep, finding no transfer held for the pseudonym, could
    pay the part again)."""
    async with held_sale(tmp_path, db_url) as sale:
        m, order_id, holds = sale.m, sale.order_id, sale.holds
        await hold_jobs_done(m)
        await ben_accepted_in_books(sale)
        made, erased = holds._made, []

        async def stalled(*args: Any) -> Any:
            found = await made(*args)
            await sale.db.execute(f"UPDATE mkt_split_holds SET claimed_at = "
                                  f"{sale.db.now_sql} - ? WHERE order_id = ?",
                                  CLAIM_TTL_S + 1, order_id)
            erased.append(await erase_account(sale.db, BEN_ERASED))
            return found

        holds._made = stalled
        asked, real = asking_stripe(sale)
        try:
            assert await holds.settle("seller", order_id, "ben") is None
        finally:
            holds._made, sale.module.gateway.transfer = made, real
        assert erased and asked == [] and transfers_to(m, order_id, "ben") == []
        # left being paid out, under the pseudonym, its claim dead: the sweep takes over
        row = await sale.db.fetchrow(
            f"SELECT collaborator, state, {sale.db.now_sql} - claimed_at AS age FROM "
            "mkt_split_holds WHERE order_id = ?", order_id)
        assert row is not None and row["age"] > CLAIM_TTL_S
        assert (row["collaborator"], row["state"]) == ("erased_ben", RELEASING)


async def test_a_run_whose_claim_was_taken_over_leaves_the_booking_to_its_new_run(
        tmp_path: Any, db_url: str) -> None:
    async with held_sale(tmp_path, db_url) as sale:
        m, order_id, holds, gateway = sale.m, sale.order_id, sale.holds, sale.module.gateway
        await hold_jobs_done(m)
        await ben_accepted_in_books(sale)
        real = gateway.transfer

        async def taken_over(**kwargs: Any) -> Any:
            """Stripe answers after this run's claim expired and another run took it."""
            await claimed_by_another(sale)
            return await real(**kwargs)

        gateway.transfer = taken_over
        try:
            assert await holds.settle("seller", order_id, "ben") is None
        finally:
            gateway.transfer = real
        # nothing booked by the run that lost its claim; the claim left to its holder
        assert (await hold_of(m, order_id))["state"] == RELEASING
        assert (await claim_of(sale))[0] == "other"
        assert await sale.db.fetchval("SELECT COUNT(*) FROM mkt_transfers WHERE hold_of = ?",
                                      "ben") == 0
        # that run died: the next one books the transfer Stripe made, making none
        await claimed_by_another(sale, age=CLAIM_TTL_S + 1)
        asked, real = asking_stripe(sale)
        try:
            paid = await holds.settle("seller", order_id, "ben")
        finally:
            gateway.transfer = real
        [made] = transfers_to(m, order_id, "ben")
        assert asked == [] and paid is not None and paid["transfer"] == made["id"]
        assert (await hold_of(m, order_id))["state"] == RELEASED
        await books_settled(sale)


async def test_a_run_killed_holding_its_claim_is_finished_once_the_claim_expired(
        tmp_path: Any, db_url: str) -> None:
    from business.marketplace.split_holds import HOLD_JOB
    from dawserver.plugins import PLUGIN_CONTEXT_KEY

    # the sweeper stays asleep: the dead run's own job must finish the payout
    async with held_sale(tmp_path, db_url, checkout_sweep_s=3600.0) as sale:
        m, order_id, holds, gateway = sale.m, sale.order_id, sale.holds, sale.module.gateway
        queue = m.app[PLUGIN_CONTEXT_KEY].background.queue
        await hold_jobs_done(m)
        await ben_accepted_in_books(sale)
        await ben_being_paid_out(sale)
        holds.claim_margin_s = 0.5
        real, asked_at = gateway.transfer, []

        async def timed(**kwargs: Any) -> Any:
            asked_at.append(time.monotonic())
            return await real(**kwargs)

        gateway.transfer = timed
        try:
            # a run was killed holding ben's claim, 2 s short of its expiry, and its job
            # left running under a lease that ran out, as a killed worker leaves them
            left = 2.0
            await claimed_by_another(sale, age=CLAIM_TTL_S - left)
            expires = time.monotonic() + left
            job = await queue.enqueue(HOLD_JOB, {"seller": "seller", "beat_id": sale.beat_id,
                                                 "collaborator": "ben"},
                                      account_id="seller", delay_s=3600.0)
            await queue.db.execute(
                "UPDATE jobs SET state = 'running', attempts = 1, run_at = ?, lease_until = "
                "?, lease_token = 'killed', worker = 'killed' WHERE account_id = ? AND id = ?",
                time.time() - 60, time.time() - 1, "seller", job.id)
            # paid out within the claim's life and the margin (and a worker's poll)
            async with asyncio.timeout(left + holds.claim_margin_s + 5):
                while (await hold_of(m, order_id))["state"] != RELEASED:
                    await asyncio.sleep(0.05)
        finally:
            gateway.transfer = real
        # never while the dead run's claim was live; once
        [when] = asked_at
        assert when >= expires - 0.25
        assert len(transfers_to(m, order_id, "ben")) == 1
        assert await claim_of(sale) == (None, None)
        await hold_jobs_done(m)
        await books_settled(sale)


async def test_a_job_with_no_attempt_left_has_a_dead_runs_claim_followed_once(
        tmp_path: Any, db_url: str) -> None:
    from business.marketplace.split_holds import HOLD_JOB
    from dawserver.plugins import PLUGIN_CONTEXT_KEY

    # the sweeper stays asleep: only a job following the claim can pay the part out
    async with held_sale(tmp_path, db_url, checkout_sweep_s=3600.0) as sale:
        m, order_id, holds = sale.m, sale.order_id, sale.holds
        queue = m.app[PLUGIN_CONTEXT_KEY].background.queue
        await hold_jobs_done(m)
        await ben_accepted_in_books(sale)
        await ben_being_paid_out(sale)
        holds.claim_margin_s = 0.5
        asked, real = asking_stripe(sale)
        try:
            # a run died holding ben's claim, shortly before its expiry; two jobs, each
            # at its last attempt, find that claim live
            await claimed_by_another(sale, age=CLAIM_TTL_S - 3)
            for _ in range(2):
                await queue.enqueue(HOLD_JOB, {"seller": "seller", "beat_id": sale.beat_id,
                                               "collaborator": "ben"},
                                    account_id="seller", max_attempts=1)
            async with asyncio.timeout(30):
                while (await hold_of(m, order_id))["state"] != RELEASED:
                    await asyncio.sleep(0.05)
            await hold_jobs_done(m)
        finally:
            sale.module.gateway.transfer = real
        # one job followed the dead run's claim and paid ben once
        followed = [j for j in await queue.find(account_id="seller", queue=HOLD_JOB)
                    if (j.idempotency_key or "").endswith("/claim:other")]
        assert len(followed) == 1 and followed[0].state == "done"
        assert len(asked) == 1 and len(transfers_to(m, order_id, "ben")) == 1
        assert await claim_of(sale) == (None, None)
        assert await sale.db.fetchval("SELECT COUNT(*) FROM mkt_transfers WHERE hold_of = ?",
                                      "ben") == 1
        await books_settled(sale)


@pytest.mark.parametrize("made", ["after the stall", "before the stall"])
async def test_a_run_stalled_at_stripe_past_its_claims_life_pays_once_with_its_successor(
        tmp_path: Any, db_url: str, made: str) -> None:
    """A run stalls in its Stripe call (its host paused: no heartbeat) past its claim's
    life, before Stripe made the transfer or after, while the answer is on its way;
    another run takes the claim over and pays the part out. The stalled run then
    finishes: Stripe made one transfer (one idempotency key from either run), booked
    once, and the stalled run writes nothing over its successor's record."""
    async with held_sale(tmp_path, db_url) as sale:
        m, order_id, holds, gateway = sale.m, sale.order_id, sale.holds, sale.module.gateway
        await hold_jobs_done(m)
        await ben_accepted_in_books(sale)
        real, at_stripe, answer = gateway.transfer, asyncio.Event(), asyncio.Event()
        keys: list[str] = []
        mailed: list[Any] = []

        async def stalling(**kwargs: Any) -> Any:
            keys.append(kwargs["idempotency_key"])
            if at_stripe.is_set():  # the run that took the claim over
                return await real(**kwargs)
            early = await real(**kwargs) if made == "before the stall" else None
            at_stripe.set()
            async with asyncio.timeout(60):
                await answer.wait()
            return early if early is not None else await real(**kwargs)

        async def mail(*args: Any, **kwargs: Any) -> None:
            mailed.append(args)

        holds.alerts.send_mail = mail
        gateway.transfer = stalling
        try:
            stalled = asyncio.create_task(holds.settle("seller", order_id, "ben"))
            async with asyncio.timeout(30):
                await at_stripe.wait()
            await sale.db.execute(f"UPDATE mkt_split_holds SET claimed_at = {sale.db.now_sql}"
                                  " - ? WHERE order_id = ? AND collaborator = ?",
                                  CLAIM_TTL_S + 1, order_id, "ben")
            successor = await holds.settle("seller", order_id, "ben")
            assert successor is not None and successor["state"] == RELEASED
            answer.set()
            late = await stalled
        finally:
            gateway.transfer = real
        [transfer] = transfers_to(m, order_id, "ben")
        assert late is None and successor["transfer"] == transfer["id"]
        # asked with one key by either run (the successor finds a transfer Stripe made)
        assert len(keys) == (1 if made == "before the stall" else 2)
        assert len(set(keys)) == 1
        hold = await hold_of(m, order_id)
        assert (hold["state"], hold["transfer_id"]) == (RELEASED, transfer["id"])
        assert await claim_of(sale) == (None, None)
        assert await sale.db.fetchval("SELECT COUNT(*) FROM mkt_transfers WHERE hold_of = ?",
                                      "ben") == 1
        assert await sale.db.fetchval(
            "SELECT COUNT(*) FROM mkt_ledger_postings WHERE account_id = ? AND "
            "idempotency_key LIKE ?", "ben", "transfer-in:%") == 1
        assert mailed == []
        await books_settled(sale)


async def test_a_job_killed_at_its_last_attempt_has_its_claim_followed_once(
        tmp_path: Any, db_url: str) -> None:
    from business.marketplace.split_holds import HOLD_JOB
    from dawserver.plugins import PLUGIN_CONTEXT_KEY

    # the sweeper stays asleep: only a job following the claim can pay the part out
    async with held_sale(tmp_path, db_url, checkout_sweep_s=3600.0) as sale:
        m, order_id, holds = sale.m, sale.order_id, sale.holds
        queue = m.app[PLUGIN_CONTEXT_KEY].background.queue
        await hold_jobs_done(m)
        await ben_accepted_in_books(sale)
        await ben_being_paid_out(sale)
        holds.claim_margin_s = 0.5
        asked, real = asking_stripe(sale)
        try:
            # the job's last attempt was killed while its run held ben's claim, shortly
            # before the claim's expiry: the queue makes it a dead letter, its handler
            # never running again
            await claimed_by_another(sale, age=CLAIM_TTL_S - 3)
            job = await queue.enqueue(HOLD_JOB, {"seller": "seller", "beat_id": sale.beat_id,
                                                 "collaborator": "ben"},
                                      account_id="seller", max_attempts=1, delay_s=3600.0)
            await queue.db.execute(
                "UPDATE jobs SET state = 'running', attempts = 1, run_at = ?, lease_until = "
                "?, lease_token = 'killed', worker = 'killed' WHERE account_id = ? AND id = ?",
                time.time() - 60, time.time() - 1, "seller", job.id)
            async with asyncio.timeout(30):
                while (await hold_of(m, order_id))["state"] != RELEASED:
                    await asyncio.sleep(0.05)
            await hold_jobs_done(m)
        finally:
            sale.module.gateway.transfer = real
        assert (await queue.get("seller", job.id)).state == "dead"
        followed = [j for j in await queue.find(account_id="seller", queue=HOLD_JOB)
                    if (j.idempotency_key or "").endswith("/claim:other")]
        assert len(followed) == 1 and followed[0].state == "done"
        assert len(asked) == 1 and len(transfers_to(m, order_id, "ben")) == 1
        assert await claim_of(sale) == (None, None)
        await books_settled(sale)
