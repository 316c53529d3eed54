"""Held split money: a pending collaborator's part of each sale is held for them (paid to
nobody), paid to them by one transfer when they accept, returned to the seller when they
decline or the invitation expires, cut by a refund first, each step once however often it
runs; the invitations are listed for the collaborator and the seller, never another
account's."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from marketplace_helpers import (
    Market,
    market,
    market_services,
    who,
)
from test_marketplace_split_sales import (
    M,
    accept,
    add,
    books_match_stripe,
    reversals_booked,
    transfers_made,
)

from business.marketplace import bookings
from business.marketplace.split_holds import HELD, RELEASED, RETURNED

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180)]

PARTS = {"seller": 5000, "amy": 3000, "ben": 2000}


async def split_sale(m: Market, *, accepted: tuple[str, ...] = ("amy",)
                     ) -> tuple[dict[str, str], str, dict[str, Any]]:
    """Three onboarded sellers; ``seller``'s beat split by :data:`PARTS`, agreed by
    ``accepted``; one bought and paid (its transfers made)."""
    accounts = {name: await m.seller(name) for name in PARTS}
    beat = await m.beat("seller")
    status, split = await m.call("PUT", f"{M}/beats/{beat['beat_id']}/split", who("seller"),
                                 {"shares": [{"collaborator": c, "basis_points": bp}
                                             for c, bp in PARTS.items()]})
    assert status == 200, split
    for name in accepted:
        await accept(m, name, beat["beat_id"])
    started = await sell(m, beat["beat_id"])
    return accounts, beat["beat_id"], started


async def sell(m: Market, beat_id: str, buyer: str = "buyer") -> dict[str, Any]:
    """``buyer`` buys the beat through the cart and pays; its transfers made."""
    await add(m, buyer, {"beat_id": beat_id}, "mp3_lease")
    status, started = await m.call("POST", f"{M}/carts/seller/checkout", who(buyer), {})
    assert status == 201, started
    m.pay(started)
    await transfers_made(m, started["cart_id"])
    return started


async def hold_of(m: Market, order_id: str, collaborator: str = "ben") -> dict[str, Any]:
    row = await market_services(m).store.db.fetchrow(
        "SELECT amount, cut, state, payee, transfer_id, paid FROM mkt_split_holds WHERE "
        "account_id = ? AND order_id = ? AND collaborator = ?", "seller", order_id,
        collaborator)
    assert row is not None, f"nothing held for {collaborator} of {order_id}"
    return dict(row)


async def settled(m: Market, order_id: str, state: str, collaborator: str = "ben"
                  ) -> dict[str, Any]:
    """The hold once its queued payout job brought it to ``state``."""
    async with asyncio.timeout(30):
        while (found := await hold_of(m, order_id, collaborator))["state"] != state:
            await asyncio.sleep(0.05)
    await m.fake.webhooks.settled()
    return found


async def hold_jobs_done(m: Market) -> None:
    """Wait until every queued ``marketplace.split_holds`` job of ``seller`` ended."""
    from business.marketplace.split_holds import HOLD_JOB
    from dawserver.plugins import PLUGIN_CONTEXT_KEY

    queue = m.app[PLUGIN_CONTEXT_KEY].background.queue
    async with asyncio.timeout(30):
        while not all(j.finished for j in await queue.find(account_id="seller",
                                                           queue=HOLD_JOB)):
            await asyncio.sleep(0.05)


def transfers_to(m: Market, order_id: str, collaborator: str) -> list[dict[str, Any]]:
    return [t for t in m.fake.all_of("transfer") if t["metadata"]["order_id"] == order_id
            and t["metadata"]["collaborator"] == collaborator]


def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database in ``tmp_path``, for what does not depend on the database."""
    return f"sqlite://{tmp_path / 'm.sqlite3'}"


@dataclass(frozen=True)
class Sale:
    """A market where ``seller``'s beat, split by :data:`PARTS` (amy agreed, ben
    pending), was sold once: the onboarded accounts, the beat and the sold line."""

    m: Market
    accounts: dict[str, str]
    beat_id: str
    order_id: str

    @property
    def module(self) -> Any:
        return market_services(self.m)

    @property
    def db(self) -> Any:
        return self.module.store.db

    @property
    def holds(self) -> Any:
        return self.module.splits.holds


@contextlib.asynccontextmanager
async def held_sale(tmp_path: Path, url: str = "", **options: Any) -> AsyncIterator[Sale]:
    """:func:`split_sale` in a market on ``url`` (default SQLite in ``tmp_path``).

    The plug-in's sweeper stays asleep unless ``checkout_sweep_s`` says otherwise: a test
    that sets a part being paid out and settles it itself would otherwise race a sweep
    that, a minute in on a loaded machine, queues that part's payout job first. A test
    of the sweep calls ``holds.expire()`` itself.
    """
    options.setdefault("checkout_sweep_s", 3600.0)
    async with market(tmp_path, url or sqlite_url(tmp_path), **options) as m:
        accounts, beat_id, started = await split_sale(m)
        yield Sale(m, accounts, beat_id, started["orders"][0]["order_id"])


async def ben_accepted_in_books(s: Sale) -> None:
    """ben accepts in the books only: no payout job is queued, the test runs it."""
    await s.db.execute("UPDATE mkt_splits SET stripe_account = ?, accepted_at = 1 WHERE "
                       "account_id = ? AND collaborator = ?", s.accounts["ben"], "seller",
                       "ben")


async def ben_being_paid_out(s: Sale) -> None:
    """ben's payout is between its decision (releasing, to him) and its transfer."""
    await s.db.execute(
        "UPDATE mkt_split_holds SET state = 'releasing', payee = ?, stripe_account = ? "
        "WHERE order_id = ? AND collaborator = ?", "ben", s.accounts["ben"], s.order_id,
        "ben")


async def refunded(s: Sale) -> None:
    """The seller refunds the sale in full and the buyer's order says so."""
    status, body = await s.m.call("POST", f"{M}/sales/{s.order_id}/refund", who("seller"),
                                  {})
    assert status == 202, body
    await s.m.order("buyer", s.order_id, "refunded")


async def every_transfer_reversed(m: Market) -> None:
    """Wait until Stripe took back the whole of every transfer made, and the books
    recorded it."""
    async with asyncio.timeout(30):
        while any(t["amount_reversed"] < t["amount"] for t in m.fake.all_of("transfer")):
            await asyncio.sleep(0.05)
    await reversals_booked(m)


async def books_settled(s: Sale) -> None:
    """Once Stripe's webhooks are in, every payee's books match Stripe."""
    await s.m.fake.webhooks.settled()
    await books_match_stripe(s.m, s.accounts)


def refusing(reason: str) -> Callable[..., Awaitable[Any]]:
    """A gateway ``transfer`` Stripe answers with an error (``reason``), making nothing."""
    from business.marketplace.errors import StripeUnavailable

    async def refused(**kwargs: Any) -> Any:
        raise StripeUnavailable(reason)
    return refused


def answer_lost(real: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """A gateway ``transfer`` Stripe makes, whose answer never reaches us."""
    from business.marketplace.errors import StripeUnavailable

    async def lost(**kwargs: Any) -> Any:
        await real(**kwargs)
        raise StripeUnavailable("the connection was cut after the request was sent")
    return lost


async def split_with_ben(m: Market) -> tuple[dict[str, str], str, list[tuple[str, int]]]:
    """``seller`` and ``ben`` onboarded; a beat of ``seller``'s split 80/20 with ben,
    invited: the accounts, the beat and the parts."""
    accounts = {name: await m.seller(name) for name in ("seller", "ben")}
    beat_id = (await m.beat("seller"))["beat_id"]
    parts = [("seller", 8000), ("ben", 2000)]
    status, split = await m.call("PUT", f"{M}/beats/{beat_id}/split", who("seller"), {
        "shares": [{"collaborator": c, "basis_points": bp} for c, bp in parts]})
    assert status == 200, split
    return accounts, beat_id, parts


async def test_a_pending_part_is_held_listed_and_paid_once_when_they_accept(
        tmp_path: Path, db_url: str) -> None:
    async with held_sale(tmp_path, db_url) as sale:
        m, accounts, beat_id, order_id = sale.m, sale.accounts, sale.beat_id, sale.order_id
        held = await hold_of(m, order_id)
        # held: owed to ben, paid to nobody, still in the platform's clearing
        assert held["state"] == HELD and held["amount"] > 0 and held["cut"] == 0
        assert transfers_to(m, order_id, "ben") == []
        assert {t["metadata"]["collaborator"] for t in m.fake.all_of("transfer")} == {
            "amy", "seller"}
        ledger = market_services(m).ledger
        assert await ledger.balance("seller", bookings.CLEARING, "usd") == held["amount"]
        await books_match_stripe(m, accounts)

        # ben sees the invitation with what is held for him; the seller sees both
        status, mine = await m.call("GET", f"{M}/splits/invitations", who("ben"))
        assert status == 200, mine
        [invitation] = mine["invitations"]
        assert invitation["seller"] == "seller" and invitation["beat_id"] == beat_id
        assert invitation["basis_points"] == 2000 and invitation["status"] == "pending"
        assert invitation["held"] == [{"currency": "usd", "amount": held["amount"],
                                       "sales": 1}]
        assert invitation["expires_at"] == pytest.approx(
            invitation["invited_at"] + 30 * 86_400)
        status, sent = await m.call("GET", f"{M}/splits/sent", who("seller"))
        assert status == 200, sent
        by = {s["collaborator"]: s for s in sent["invitations"]}
        assert set(by) == {"amy", "ben"}  # the seller's own part is no invitation
        assert by["amy"]["status"] == "accepted" and by["amy"]["held"] == []
        assert by["ben"]["status"] == "pending"
        assert by["ben"]["held"][0]["amount"] == held["amount"]

        # he accepts: one transfer of the held part, tied to the sale's charge
        await accept(m, "ben", beat_id)
        paid = await settled(m, order_id, RELEASED)
        [transfer] = transfers_to(m, order_id, "ben")
        assert transfer["amount"] == paid["paid"] == held["amount"]
        assert transfer["destination"] == accounts["ben"]
        assert transfer["source_transaction"] == transfers_to(
            m, order_id, "amy")[0]["source_transaction"]
        assert await ledger.balance("seller", bookings.CLEARING, "usd") == 0
        await books_match_stripe(m, accounts)
        status, mine = await m.call("GET", f"{M}/splits/invitations", who("ben"))
        assert mine == {"invitations": []}
        status, sent = await m.call("GET", f"{M}/splits/sent", who("seller"))
        ben = next(s for s in sent["invitations"] if s["collaborator"] == "ben")
        assert ben["status"] == "accepted" and ben["held"] == []
        assert ben["released"] == [{"currency": "usd", "amount": held["amount"],
                                    "sales": 1}]

        # every step again, and two at once: nothing more is paid
        await accept(m, "ben", beat_id)
        again = await asyncio.gather(sale.holds.settle_invitation("seller", beat_id, "ben"),
                                     sale.holds.settle("seller", order_id, "ben"))
        assert again == [[], None]
        assert len(transfers_to(m, order_id, "ben")) == 1
        await books_match_stripe(m, accounts)


async def test_two_payouts_of_one_held_part_racing_make_one_transfer(
        tmp_path: Path, db_url: str) -> None:
    async with held_sale(tmp_path, db_url) as sale:
        # ben accepts in the books only: the payout job is run here, four at once
        await ben_accepted_in_books(sale)
        done = await asyncio.gather(*(sale.holds.settle("seller", sale.order_id, "ben")
                                      for _ in range(4)))
        assert sum(d is not None for d in done) == 1, done
        assert len(transfers_to(sale.m, sale.order_id, "ben")) == 1
        assert (await hold_of(sale.m, sale.order_id))["state"] == RELEASED
        await books_settled(sale)


async def test_a_run_never_takes_a_held_part_from_another_run_paying_it(
        tmp_path: Path, db_url: str) -> None:
    async with held_sale(tmp_path, db_url) as sale:
        m, order_id, gateway = sale.m, sale.order_id, sale.module.gateway
        await hold_jobs_done(m)
        await ben_accepted_in_books(sale)
        real, asked, second_done = gateway.transfer, [], asyncio.Event()

        async def slow(**kwargs: Any) -> Any:
            """Run A is at Stripe until run B has had its go."""
            asked.append(kwargs["idempotency_key"])
            if len(asked) == 1:
                async with asyncio.timeout(30):
                    await second_done.wait()
            return await real(**kwargs)

        gateway.transfer = slow
        try:
            first = asyncio.create_task(sale.holds.settle("seller", order_id, "ben"))
            async with asyncio.timeout(30):
                while not asked:
                    await asyncio.sleep(0.01)
            second = await sale.holds.settle("seller", order_id, "ben")
            second_done.set()
            paid = await first
        finally:
            gateway.transfer = real
        # B left A's claim alone and asked Stripe nothing; A made and booked the one
        assert second is None and paid is not None
        assert len(asked) == 1
        [made] = transfers_to(m, order_id, "ben")
        assert paid["transfer"] == made["id"]
        assert await sale.db.fetchval("SELECT COUNT(*) FROM mkt_transfers WHERE hold_of = ?",
                                      "ben") == 1
        assert (await hold_of(m, order_id))["state"] == RELEASED
        await books_settled(sale)


async def test_a_claim_left_by_a_dead_run_is_taken_over_once_it_expired(
        tmp_path: Path) -> None:
    import time

    from business.marketplace.split_hold_claims import CLAIM_TTL_S

    async with held_sale(tmp_path) as sale:
        m, order_id = sale.m, sale.order_id
        await hold_jobs_done(m)
        await ben_accepted_in_books(sale)
        await ben_being_paid_out(sale)

        async def claimed(at: float) -> None:
            await sale.db.execute("UPDATE mkt_split_holds SET claim = 'dead', claimed_at = ? "
                                  "WHERE order_id = ? AND collaborator = ?", at, order_id,
                                  "ben")

        await claimed(time.time() - CLAIM_TTL_S / 2)  # still live: left to its run
        assert await sale.holds.settle("seller", order_id, "ben") is None
        assert transfers_to(m, order_id, "ben") == []
        await claimed(time.time() - CLAIM_TTL_S - 1)  # its run died: taken over
        paid = await sale.holds.settle("seller", order_id, "ben")
        assert paid is not None and len(transfers_to(m, order_id, "ben")) == 1
        assert (await hold_of(m, order_id))["state"] == RELEASED
        await books_settled(sale)


async def test_a_declined_part_goes_back_to_the_seller_and_later_sales_are_theirs(
        tmp_path: Path) -> None:
    async with held_sale(tmp_path) as sale:
        m, accounts, beat_id, order_id = sale.m, sale.accounts, sale.beat_id, sale.order_id
        held = await hold_of(m, order_id)
        # someone not named cannot decline (404, no data); ben can
        status, body = await m.call("POST", f"{M}/splits/seller/{beat_id}/decline",
                                    who("carl"), {})
        assert status == 404 and "ben" not in str(body), body
        status, split = await m.call("POST", f"{M}/splits/seller/{beat_id}/decline",
                                     who("ben"), {})
        assert status == 200, split
        assert {p["collaborator"]: p["status"] for p in split["shares"]} == {
            "amy": "accepted", "ben": "declined", "seller": "accepted"}
        returned = await settled(m, order_id, RETURNED)
        assert returned["payee"] == "seller" and returned["paid"] == held["amount"]
        [back] = [t for t in m.fake.all_of("transfer")
                  if t["metadata"].get("held_for") == "ben"]
        assert back["destination"] == accounts["seller"] and back["amount"] == held["amount"]
        assert transfers_to(m, order_id, "ben") == []
        await books_match_stripe(m, accounts)
        # declining again is a no-op; accepting now is refused, saying why
        status, _ = await m.call("POST", f"{M}/splits/seller/{beat_id}/decline", who("ben"),
                                 {})
        assert status == 200
        status, body = await m.call("POST", f"{M}/splits/seller/{beat_id}/accept",
                                    who("ben"), {})
        assert status == 409 and "declined" in str(body), body
        # a later sale pays ben's part to the seller at once: nothing held
        later = await sell(m, beat_id, "buyer2")
        later_id = later["orders"][0]["order_id"]
        assert await sale.db.fetchval(
            "SELECT COUNT(*) FROM mkt_split_holds WHERE order_id = ?", later_id) == 0
        assert not [t for t in m.fake.all_of("transfer")
                    if t["metadata"]["order_id"] == later_id
                    and t["metadata"]["collaborator"] == "ben"]
        status, sent = await m.call("GET", f"{M}/splits/sent", who("seller"))
        ben = next(s for s in sent["invitations"] if s["collaborator"] == "ben")
        assert ben["status"] == "declined" and ben["answered_at"] is not None
        assert ben["returned"] == [{"currency": "usd", "amount": held["amount"], "sales": 1}]
        assert len([t for t in m.fake.all_of("transfer")
                    if t["metadata"].get("held_for") == "ben"]) == 1
        await books_match_stripe(m, accounts)


async def put_split(m: Market, beat_id: str, again: tuple[str, ...] = ()
                    ) -> dict[str, str]:
    """``seller`` sets the split by :data:`PARTS` again, asking to invite ``again``
    again; each part's status."""
    status, split = await m.call("PUT", f"{M}/beats/{beat_id}/split", who("seller"), {
        "shares": [{"collaborator": c, "basis_points": bp, "invite_again": c in again}
                   for c, bp in PARTS.items()]})
    assert status == 200, split
    return {p["collaborator"]: p["status"] for p in split["shares"]}


async def test_a_declined_collaborator_can_be_invited_again_with_the_same_part(
        tmp_path: Path) -> None:
    async with held_sale(tmp_path) as sale:
        m, beat_id, order_id = sale.m, sale.beat_id, sale.order_id
        status, _ = await m.call("POST", f"{M}/splits/seller/{beat_id}/decline", who("ben"),
                                 {})
        assert status == 200
        await settled(m, order_id, RETURNED)
        ended = await sale.db.fetchval("SELECT invited_at FROM mkt_splits WHERE "
                                       "collaborator = ?", "ben")
        # the split set again as it was: ben's answer stands
        assert await put_split(m, beat_id) == {
            "seller": "accepted", "amy": "accepted", "ben": "declined"}
        # invited again (amy too, asked for: her accepted part stays as it is)
        assert await put_split(m, beat_id, again=("ben", "amy")) == {
            "seller": "accepted", "amy": "accepted", "ben": "pending"}
        assert await sale.db.fetchval("SELECT invited_at FROM mkt_splits WHERE "
                                      "collaborator = ?", "ben") > ended
        status, mine = await m.call("GET", f"{M}/splits/invitations", who("ben"))
        assert [i["status"] for i in mine["invitations"]] == ["pending"]
        # a new sale is held for him again, and paid to him when he accepts this time
        later_id = (await sell(m, beat_id, "buyer2"))["orders"][0]["order_id"]
        assert (await hold_of(m, later_id))["state"] == HELD
        await accept(m, "ben", beat_id)
        released = await settled(m, later_id, RELEASED)
        assert released["payee"] == "ben"
        # what his decline gave back stays the seller's
        assert (await hold_of(m, order_id))["payee"] == "seller"
        assert transfers_to(m, order_id, "ben") == []
        await books_settled(sale)


async def test_a_new_invitation_never_takes_over_money_the_decline_gave_back(
        tmp_path: Path) -> None:
    async with held_sale(tmp_path) as sale:
        m, beat_id, order_id = sale.m, sale.beat_id, sale.order_id
        await hold_jobs_done(m)
        # ben declined; the re-invitation comes before the job returning his part ran
        await sale.db.execute("UPDATE mkt_splits SET ended = 'declined', ended_at = 1 "
                              "WHERE account_id = ? AND collaborator = ?", "seller", "ben")
        assert (await hold_of(m, order_id))["state"] == HELD
        assert (await put_split(m, beat_id, again=("ben",)))["ben"] == "pending"
        returned = await settled(m, order_id, RETURNED)
        assert returned["payee"] == "seller"
        # he accepts the new invitation: nothing of the declined one is paid to him
        await accept(m, "ben", beat_id)
        await hold_jobs_done(m)
        assert (await hold_of(m, order_id))["state"] == RETURNED
        assert transfers_to(m, order_id, "ben") == []
        await books_settled(sale)


async def accepted_but_returned(s: Sale) -> None:
    """Ben accepts; his part held from before still goes back to the seller, none of it
    to him, and the books match Stripe."""
    await accept(s.m, "ben", s.beat_id)
    returned = await settled(s.m, s.order_id, RETURNED)
    assert returned["payee"] == "seller"
    assert transfers_to(s.m, s.order_id, "ben") == []
    await books_settled(s)


async def test_money_the_decline_gave_back_stays_the_sellers_when_its_return_fails(
        tmp_path: Path) -> None:
    """Review R2: the decline's part, set going back to the seller by the new invitation,
    fails to be paid for good and goes back to held; ben then accepts the new invitation.
    The part still goes to the seller (its lasting ``returns_to_seller``), never to ben."""
    from business.marketplace.errors import StripeUnavailable

    async with held_sale(tmp_path) as sale:
        m, beat_id, order_id = sale.m, sale.beat_id, sale.order_id
        holds, gateway = sale.holds, sale.module.gateway
        await hold_jobs_done(m)
        await sale.db.execute("UPDATE mkt_splits SET ended = 'declined', ended_at = 1 "
                              "WHERE account_id = ? AND collaborator = ?", "seller", "ben")
        real = gateway.transfer
        gateway.transfer = refusing("Stripe is down")
        assert (await put_split(m, beat_id, again=("ben",)))["ben"] == "pending"
        with pytest.raises(StripeUnavailable):
            await holds.settle("seller", order_id, "ben")
        assert await holds.give_up("seller", beat_id, "ben", "down") == [order_id]
        assert (await hold_of(m, order_id))["state"] == HELD
        gateway.transfer = real
        await accepted_but_returned(sale)


async def test_an_unanswered_invitation_expires_and_its_money_returns_once(
        tmp_path: Path) -> None:
    async with held_sale(tmp_path, split_invitation_days=7) as sale:
        m, accounts, beat_id, order_id = sale.m, sale.accounts, sale.beat_id, sale.order_id
        holds, db = sale.holds, sale.db
        invited = await db.fetchval("SELECT invited_at FROM mkt_splits WHERE account_id = ? "
                                    "AND collaborator = ?", "seller", "ben")
        assert await holds.expire(invited + 6 * 86_400) == 0  # not yet
        assert await holds.expire(invited + 7 * 86_400) == 1
        assert await holds.expire(invited + 8 * 86_400) == 0  # once
        returned = await settled(m, order_id, RETURNED)
        assert returned["payee"] == "seller" and returned["paid"] > 0
        status, split = await m.call("GET", f"{M}/beats/{beat_id}/split", who("seller"))
        assert {p["collaborator"]: p["status"] for p in split["shares"]}["ben"] == "expired"
        status, body = await m.call("POST", f"{M}/splits/seller/{beat_id}/accept",
                                    who("ben"), {})
        assert status == 409 and "expired" in str(body), body
        status, mine = await m.call("GET", f"{M}/splits/invitations", who("ben"))
        assert mine == {"invitations": []}
        await books_match_stripe(m, accounts)
        # an invitation from before expiry existed gets a full term from when it is seen
        await db.execute("UPDATE mkt_splits SET invited_at = NULL, ended = NULL, "
                         "ended_at = NULL WHERE account_id = ? AND collaborator = ?",
                         "seller", "ben")
        assert await holds.expire(invited + 100 * 86_400) == 0
        assert await db.fetchval("SELECT invited_at FROM mkt_splits WHERE account_id = ? "
                                 "AND collaborator = ?", "seller", "ben") == (
            invited + 100 * 86_400)


async def test_a_refund_cuts_the_held_part_so_no_refunded_money_is_paid_out(
        tmp_path: Path, db_url: str) -> None:
    async with held_sale(tmp_path, db_url) as sale:
        m, beat_id, order_id, db = sale.m, sale.beat_id, sale.order_id, sale.db
        held = await hold_of(m, order_id)
        await refunded(sale)
        async with asyncio.timeout(30):
            while (await hold_of(m, order_id))["cut"] < held["amount"]:
                await asyncio.sleep(0.05)
        # the paid parts came back; ben's held part was cut whole, once
        await every_transfer_reversed(m)
        assert await db.fetchval("SELECT COUNT(*) FROM mkt_split_hold_cuts WHERE "
                                 "order_id = ?", order_id) == 1
        # ben accepts afterwards: nothing of the refunded sale is paid to him
        await accept(m, "ben", beat_id)
        paid = await settled(m, order_id, RELEASED)
        assert paid["paid"] == 0 and paid["transfer_id"] is None
        assert transfers_to(m, order_id, "ben") == []
        status, sent = await m.call("GET", f"{M}/splits/sent", who("seller"))
        ben = next(s for s in sent["invitations"] if s["collaborator"] == "ben")
        assert ben["held"] == [] and ben["released"][0]["amount"] == 0
        await books_settled(sale)


async def test_a_refund_after_the_held_part_was_paid_out_reverses_its_transfer(
        tmp_path: Path) -> None:
    async with held_sale(tmp_path) as sale:
        m, order_id = sale.m, sale.order_id
        await accept(m, "ben", sale.beat_id)
        await settled(m, order_id, RELEASED)
        await refunded(sale)
        await every_transfer_reversed(m)
        [ben] = transfers_to(m, order_id, "ben")
        assert ben["amount_reversed"] == ben["amount"] > 0
        await books_settled(sale)


async def test_a_collaborator_taken_out_of_the_split_has_their_held_money_returned(
        tmp_path: Path) -> None:
    async with held_sale(tmp_path) as sale:
        status, split = await sale.m.call(
            "PUT", f"{M}/beats/{sale.beat_id}/split", who("seller"), {
                "shares": [{"collaborator": "seller", "basis_points": 7000},
                           {"collaborator": "amy", "basis_points": 3000}]})
        assert status == 200, split
        returned = await settled(sale.m, sale.order_id, RETURNED)
        assert returned["payee"] == "seller"
        await books_settled(sale)


async def test_a_collaborator_taken_out_and_named_again_gets_none_of_the_old_money(
        tmp_path: Path) -> None:
    """Review R2: ben is taken out of the split while his part cannot go back yet (the
    seller's Stripe account unset), then named again before it went: accepting the new
    invitation pays him none of what was held while he was out; it goes to the seller."""
    async with held_sale(tmp_path) as sale:
        m, beat_id, order_id = sale.m, sale.beat_id, sale.order_id
        own = await sale.db.fetchval("SELECT stripe_account FROM mkt_sellers WHERE "
                                     "account_id = ?", "seller")
        await sale.db.execute("UPDATE mkt_sellers SET stripe_account = '' WHERE "
                              "account_id = ?", "seller")
        status, split = await m.call("PUT", f"{M}/beats/{beat_id}/split", who("seller"), {
            "shares": [{"collaborator": "seller", "basis_points": 7000},
                       {"collaborator": "amy", "basis_points": 3000}]})
        assert status == 200, split
        await hold_jobs_done(m)
        assert (await hold_of(m, order_id))["state"] == HELD  # nowhere to go yet
        await sale.db.execute("UPDATE mkt_sellers SET stripe_account = ? WHERE "
                              "account_id = ?", own, "seller")
        assert (await put_split(m, beat_id))["ben"] == "pending"
        await accepted_but_returned(sale)


async def seller_unconnected(s: Sale) -> Callable[[], Awaitable[None]]:
    """The seller's Stripe account unset (nothing can go back to them); a function
    setting it again."""
    own = await s.db.fetchval("SELECT stripe_account FROM mkt_sellers WHERE account_id = ?",
                              "seller")
    await s.db.execute("UPDATE mkt_sellers SET stripe_account = '' WHERE account_id = ?",
                       "seller")

    async def connected_again() -> None:
        await s.db.execute("UPDATE mkt_sellers SET stripe_account = ? WHERE "
                           "account_id = ?", own, "seller")
    return connected_again


async def test_a_decline_re_invited_while_the_seller_cannot_take_it_still_goes_back(
        tmp_path: Path) -> None:
    """Review R3 #1 and #4: re-invited while the seller has no connected account, the
    decline's part stays held, marked the seller's; once the seller can take it the
    hourly sweep returns it, the new invitation still pending, and ben's acceptance
    later pays him none of it."""
    import time

    from business.marketplace.split_holds import STUCK_RETRY_S

    async with held_sale(tmp_path) as sale:
        m, beat_id, order_id = sale.m, sale.beat_id, sale.order_id
        await hold_jobs_done(m)
        await sale.db.execute("UPDATE mkt_splits SET ended = 'declined', ended_at = 1 "
                              "WHERE account_id = ? AND collaborator = ?", "seller", "ben")
        connected_again = await seller_unconnected(sale)
        assert (await put_split(m, beat_id, again=("ben",)))["ben"] == "pending"
        await hold_jobs_done(m)
        assert (await hold_of(m, order_id))["state"] == HELD
        await connected_again()
        await sale.holds.expire(now=time.time() + STUCK_RETRY_S + 1)
        returned = await settled(m, order_id, RETURNED)
        assert returned["payee"] == "seller"
        await accept(m, "ben", beat_id)
        await hold_jobs_done(m)
        assert transfers_to(m, order_id, "ben") == []
        await books_settled(sale)


async def test_a_cleared_split_named_again_pays_none_of_the_old_money(
        tmp_path: Path) -> None:
    """Review R3 #2: clearing the split (``shares: []``) marks what was held the
    seller's as taking a collaborator out does."""
    async with held_sale(tmp_path) as sale:
        m, beat_id, order_id = sale.m, sale.beat_id, sale.order_id
        connected_again = await seller_unconnected(sale)
        status, split = await m.call("PUT", f"{M}/beats/{beat_id}/split", who("seller"),
                                     {"shares": []})
        assert status == 200, split
        await hold_jobs_done(m)
        assert (await hold_of(m, order_id))["state"] == HELD
        await connected_again()
        assert (await put_split(m, beat_id))["ben"] == "pending"
        await accepted_but_returned(sale)


async def test_the_sweep_takes_over_a_dead_claim_on_a_part_no_split_names(
        tmp_path: Path) -> None:
    """Review R3 #3: a run died holding the claim on a part going back to the seller,
    and the split no longer names its collaborator: the hourly sweep still finds it and
    finishes the return once the claim expired."""
    import time

    from business.marketplace.split_hold_claims import CLAIM_TTL_S
    from business.marketplace.split_holds import RETURNING

    async with held_sale(tmp_path) as sale:
        m, order_id = sale.m, sale.order_id
        await hold_jobs_done(m)
        own = await sale.db.fetchval("SELECT stripe_account FROM mkt_sellers WHERE "
                                     "account_id = ?", "seller")
        await sale.db.execute("DELETE FROM mkt_splits WHERE collaborator = ?", "ben")
        await sale.db.execute(
            "UPDATE mkt_split_holds SET state = ?, payee = 'seller', stripe_account = ?, "
            "claim = 'dead', claimed_at = ? WHERE order_id = ? AND collaborator = ?",
            RETURNING, own, time.time() - CLAIM_TTL_S - 1, order_id, "ben")
        await sale.holds.expire()
        returned = await settled(m, order_id, RETURNED)
        assert returned["payee"] == "seller"
        await books_settled(sale)


async def test_the_invitation_lists_show_only_the_signed_in_accounts_own(
        tmp_path: Path) -> None:
    async with held_sale(tmp_path) as sale:
        m, beat_id = sale.m, sale.beat_id
        # amy (a collaborator who accepted) and carl (a stranger) see nothing of ben's
        for other in ("amy", "carl"):
            status, mine = await m.call("GET", f"{M}/splits/invitations", who(other))
            assert (status, mine) == (200, {"invitations": []})
            status, sent = await m.call("GET", f"{M}/splits/sent", who(other))
            assert (status, sent) == (200, {"invitations": []})
        # another seller's ids in a path: 404, no data
        for name in ("accept", "decline"):
            status, body = await m.call("POST", f"{M}/splits/seller/{beat_id}/{name}",
                                        who("carl"), {})
            assert status in (404, 422) and "shares" not in str(body), body
        status, body = await m.call("POST", f"{M}/splits/carl/{beat_id}/decline", who("ben"),
                                    {})
        assert status == 404 and "shares" not in str(body), body
        # a viewer of ben's account may read his list, not answer for him
        status, _ = await m.call("GET", f"{M}/splits/invitations", who("ben", "bob", "viewer"))
        assert status == 200
        status, _ = await m.call("POST", f"{M}/splits/seller/{beat_id}/decline",
                                 who("ben", "bob", "viewer"), {})
        assert status == 403


async def test_a_part_held_for_an_erased_collaborator_returns_to_the_seller(
        tmp_path: Path, db_url: str) -> None:
    async with held_sale(tmp_path, db_url) as sale:
        # an erasure forgets the split rows naming ben (privacy.erase_account)
        await sale.db.execute("DELETE FROM mkt_splits WHERE collaborator = ?", "ben")
        assert (await hold_of(sale.m, sale.order_id))["state"] == HELD
        await sale.holds.expire()
        returned = await settled(sale.m, sale.order_id, RETURNED)
        assert returned["payee"] == "seller" and returned["paid"] > 0
        await books_settled(sale)


async def test_an_erasure_waits_for_a_payout_of_money_held_for_the_person(
        tmp_path: Path, db_url: str) -> None:
    """Review R2: erasing ben while a run pays his held part out would book the transfer
    under the id being forgotten (and leave the row under his pseudonym with no transfer
    of that name, for the sweep to pay again); the erasure is retried after the run."""
    import time

    from business.marketplace.privacy import erase_account
    from dawserver.plugin_api import Pseudonymiser, Retry

    async with held_sale(tmp_path, db_url) as sale:
        m, order_id = sale.m, sale.order_id
        await ben_being_paid_out(sale)
        await sale.db.execute("UPDATE mkt_split_holds SET claim = 'run', claimed_at = ? "
                              "WHERE order_id = ? AND collaborator = ?", time.time(),
                              order_id, "ben")
        pz = Pseudonymiser("ben", ("ben",), "erased_ben")
        with pytest.raises(Retry, match="being paid out"):
            await erase_account(sale.db, pz)
        assert (await hold_of(m, order_id))["state"] == "releasing"  # still his, untouched
        # the run let go (booked or failed): the erasure goes through
        await sale.db.execute("UPDATE mkt_split_holds SET claim = NULL, claimed_at = NULL "
                              "WHERE order_id = ?", order_id)
        await erase_account(sale.db, pz)
        assert await sale.db.fetchval("SELECT COUNT(*) FROM mkt_split_holds WHERE "
                                      "collaborator = ?", "ben") == 0


async def test_a_reversal_waits_for_a_held_part_being_paid_out_then_takes_it_back_once(
        tmp_path: Path, db_url: str) -> None:
    from business.marketplace.split_sales import TransfersPending

    async with held_sale(tmp_path, db_url) as sale:
        m, order_id = sale.m, sale.order_id
        holds, sales = sale.holds, sale.module.fulfilment.split_sales
        held = await hold_of(m, order_id)
        # ben accepted and his payout is between its decision and its transfer
        await ben_being_paid_out(sale)
        with pytest.raises(TransfersPending, match="being paid out"):
            await sales.reverse("seller", order_id, taken=1, of=1, cause="refund:re_x")
        assert await sale.db.fetchval(
            "SELECT COUNT(*) FROM mkt_split_hold_cuts WHERE order_id = ?", order_id) == 0
        paid = await holds.settle("seller", order_id, "ben")
        assert paid is not None and paid["amount"] == held["amount"]
        for _ in range(2):  # its next attempt takes the paid-out part back, once
            await sales.reverse("seller", order_id, taken=1, of=1, cause="refund:re_x")
        [ben] = transfers_to(m, order_id, "ben")
        assert ben["amount_reversed"] == ben["amount"] == held["amount"]
        await books_settled(sale)


async def test_a_payout_whose_answer_was_lost_is_not_made_twice_after_stripe_forgot_it(
        tmp_path: Path) -> None:
    from business.marketplace.errors import StripeUnavailable

    async with held_sale(tmp_path) as sale:
        m, order_id = sale.m, sale.order_id
        holds, gateway = sale.holds, sale.module.gateway
        await ben_accepted_in_books(sale)
        real = gateway.transfer
        gateway.transfer = answer_lost(real)
        with pytest.raises(StripeUnavailable):
            await holds.settle("seller", order_id, "ben")
        gateway.transfer = real
        m.fake._idempotency.clear()  # retried after Stripe's 24 h memory of the key
        paid = await holds.settle("seller", order_id, "ben")
        [made] = transfers_to(m, order_id, "ben")
        assert paid is not None and paid["transfer"] == made["id"]
        assert (await hold_of(m, order_id))["state"] == RELEASED
        await books_settled(sale)


async def test_a_refund_while_a_payout_is_stuck_takes_every_transfer_back_at_last(
        tmp_path: Path, db_url: str) -> None:
    from business.marketplace.errors import StripeUnavailable
    from business.marketplace.split_sales import REVERSED, TIMED_OUT, TransfersPending

    async with held_sale(tmp_path, db_url) as sale:
        m, order_id = sale.m, sale.order_id
        holds, gateway = sale.holds, sale.module.gateway
        sales = sale.module.fulfilment.split_sales
        held = await hold_of(m, order_id)
        # ben accepted (in the books: the job is run here) but Stripe refuses his transfer
        await ben_accepted_in_books(sale)
        real = gateway.transfer
        gateway.transfer = refusing("the destination lacks the transfers capability")
        with pytest.raises(StripeUnavailable):
            await holds.settle("seller", order_id, "ben")
        # the buyer is refunded in full: only ben's part waits, the others come back now
        with pytest.raises(TransfersPending):
            await sales.reverse("seller", order_id, taken=1, of=1, cause="refund:re_1")
        for name in ("amy", "seller"):
            [t] = transfers_to(m, order_id, name)
            assert t["amount_reversed"] == t["amount"], name
        # the reversal job gives up waiting; later ben's payout goes through
        await sales.record("seller", order_id, "refund:re_1", taken=1, of=1, reversed_=0,
                           state=TIMED_OUT, note="gave up")
        gateway.transfer = real
        paid = await holds.settle("seller", order_id, "ben")
        assert paid is not None and paid["amount"] == held["amount"]
        # ...and the refund's reversal, queued again with it, takes it back
        async with asyncio.timeout(30):
            while (await sales.reversals("seller", order_id))[0]["state"] != REVERSED:
                await asyncio.sleep(0.05)
        [ben] = transfers_to(m, order_id, "ben")
        assert ben["amount_reversed"] == ben["amount"] == held["amount"]
        await sales.reverse("seller", order_id, taken=1, of=1, cause="refund:re_1")
        assert [t["amount_reversed"] for t in m.fake.all_of("transfer")
                if t["metadata"]["order_id"] == order_id] == [
            t["amount"] for t in m.fake.all_of("transfer")
            if t["metadata"]["order_id"] == order_id]
        await books_settled(sale)


async def test_accepting_needs_a_stripe_account_that_can_receive_transfers(
        tmp_path: Path) -> None:
    async with market(tmp_path, sqlite_url(tmp_path)) as m:
        await m.seller("seller")
        # ben connected Stripe but has not finished onboarding: no transfers capability
        status, body = await m.call("POST", "/api/marketplace/seller/stripe", who("ben"),
                                    {"return_url": "https://example.com/back",
                                     "refresh_url": "https://example.com/again"})
        assert status == 200, body
        beat = await m.beat("seller")
        status, split = await m.call("PUT", f"{M}/beats/{beat['beat_id']}/split",
                                     who("seller"), {"shares": [
                                         {"collaborator": "seller", "basis_points": 8000},
                                         {"collaborator": "ben", "basis_points": 2000}]})
        assert status == 200, split
        status, refused = await m.call("POST", f"{M}/splits/seller/{beat['beat_id']}/accept",
                                       who("ben"), {})
        assert status == 422, refused
        assert "transfers capability is inactive" in str(refused)
        parts = await market_services(m).splits.parts("seller", beat["beat_id"])
        assert {p.collaborator: p.status for p in parts}["ben"] == "pending"
        m.fake.complete_onboarding(body["stripe_account"])
        split = await accept(m, "ben", beat["beat_id"])
        assert {p["collaborator"]: p["status"] for p in split["shares"]}["ben"] == "accepted"


class _LastAttempt:
    """The queue's last attempt of a job (what a job function reads of it)."""

    attempt = 12
    job = type("Job", (), {"max_attempts": 12})()


async def test_a_payout_refused_for_good_goes_back_to_held_and_the_seller_is_told(
        tmp_path: Path, db_url: str) -> None:
    from business.marketplace.errors import PaymentError
    from business.marketplace.services import run_split_holds
    from dawserver.plugins import PLUGIN_CONTEXT_KEY

    async with held_sale(tmp_path, db_url) as sale:
        m, accounts, beat_id, order_id = sale.m, sale.accounts, sale.beat_id, sale.order_id
        holds, sales = sale.holds, sale.module.fulfilment.split_sales
        held = await hold_of(m, order_id)
        # ben accepted (in the books) with an account Stripe will not pay
        m.fake.objects[accounts["ben"]]["capabilities"].update(
            transfers="inactive", card_payments="inactive")
        await ben_accepted_in_books(sale)
        sent: list[tuple[str, str, list[str]]] = []

        async def recipients(account_id: str) -> list[str]:
            return ["owner@example.com"] if account_id == "seller" else []

        async def send_mail(to: str, subject: str, paragraphs: list[str], **_: Any) -> None:
            sent.append((to, subject, paragraphs))

        holds.alerts.recipients, holds.alerts.send_mail = recipients, send_mail
        payload = type("Payload", (), {"seller": "seller", "beat_id": beat_id,
                                       "collaborator": "ben"})()
        with pytest.raises(PaymentError):
            await run_split_holds(m.app[PLUGIN_CONTEXT_KEY], payload, _LastAttempt())
        # no transfer was made: the part is held again and the seller's owner told
        back = await hold_of(m, order_id)
        assert back["state"] == HELD and back["payee"] is None
        assert transfers_to(m, order_id, "ben") == []
        [(to, subject, paragraphs)] = sent
        assert to == "owner@example.com" and order_id in subject
        assert "ben's held part" in paragraphs[0]
        # held again, a refund cuts it; once ben can take transfers he is paid the rest
        await sales.reverse("seller", order_id, taken=1, of=2, cause="refund:re_half")
        m.fake.complete_onboarding(accounts["ben"])
        paid = await holds.settle("seller", order_id, "ben")
        assert paid is not None
        assert paid["amount"] == held["amount"] - held["amount"] // 2
        [ben] = transfers_to(m, order_id, "ben")
        assert ben["amount"] == paid["amount"]
        await books_settled(sale)


async def test_a_held_part_and_its_line_failing_each_mail_the_seller(
        tmp_path: Path) -> None:
    from business.marketplace.errors import PaymentError
    from business.marketplace.services import run_split_holds
    from dawserver.account_mail import MAIL_ACCOUNT
    from dawserver.account_mail import QUEUE as MAIL_QUEUE
    from dawserver.plugins import PLUGIN_CONTEXT_KEY

    async with held_sale(tmp_path) as sale:
        m, order_id = sale.m, sale.order_id
        context = m.app[PLUGIN_CONTEXT_KEY]
        alerts = sale.holds.alerts

        async def recipients(account_id: str) -> list[str]:
            return ["owner@example.com"] if account_id == "seller" else []

        alerts.recipients = recipients  # mailed through the platform's own mail queue
        # the line's transfers fail for good (what its job's last attempt says) ...
        assert await alerts.notify("seller", order_id, "amy cannot take transfers") == [
            "owner@example.com"]
        # ... and so does paying out ben's held part of the same line
        m.fake.objects[sale.accounts["ben"]]["capabilities"].update(
            transfers="inactive", card_payments="inactive")
        await ben_accepted_in_books(sale)
        payload = type("Payload", (), {"seller": "seller", "beat_id": sale.beat_id,
                                       "collaborator": "ben"})()
        with pytest.raises(PaymentError):
            await run_split_holds(context, payload, _LastAttempt())
        # two mails, one of each: neither mail id suppressed the other
        mails = [j.payload for j in await context.background.queue.find(
            account_id=MAIL_ACCOUNT, queue=MAIL_QUEUE) if order_id in str(j.payload)]
        assert len({p["mail_id"] for p in mails}) == len(mails) == 2, mails
        assert {p["to"] for p in mails} == {"owner@example.com"}
        subjects = sorted(p["fields"]["subject"] for p in mails)
        assert "could not be paid" in subjects[0] and "held for ben" in subjects[1]


class _Interleaved:
    """A database whose first transaction reading (its method ``read``) a query
    containing ``marker`` calls ``meanwhile()`` with that read's answer before going on
    (what another transaction committing just after the read would do)."""

    def __init__(self, db: Any, read: str, marker: str,
                 meanwhile: Callable[[Any], Awaitable[Any]]) -> None:
        self._db, self.read, self.marker = db, read, marker
        self.meanwhile, self.done = meanwhile, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Any]:
        async with self._db.transaction() as tx:
            setattr(tx, self.read, self._pausing(getattr(tx, self.read)))
            yield tx

    def _pausing(self, read: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def reading(sql: str, *args: Any) -> Any:
            found = await read(sql, *args)
            if self.marker in sql and not self.done:
                self.done = True
                found = await self.meanwhile(found)
            return found
        return reading


async def test_an_accept_racing_the_seller_setting_the_split_again_is_kept(
        tmp_path: Path, pg_url: str) -> None:
    async with market(tmp_path, pg_url) as m:
        accounts, beat_id, parts = await split_with_ben(m)
        splits = market_services(m).splits
        db = splits.db
        accepting: list[asyncio.Task[bool]] = []

        async def ben_accepts(rows: Any) -> Any:
            """Right after the seller's edit read the split, ben accepts: his answer
            commits, or waits for the edit when the split is locked."""
            task = asyncio.create_task(splits.accept("seller", beat_id, "ben",
                                                     accounts["ben"]))
            accepting.append(task)
            async with asyncio.timeout(30):
                while not task.done() and not await db.fetchval(
                        "SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = "
                        "'Lock' AND query LIKE '%mkt_beats%FOR UPDATE%'"):
                    await asyncio.sleep(0.02)
            return rows

        splits.db = _Interleaved(db, "fetch", "invited_at, ended, ended_at FROM mkt_splits",
                                 ben_accepts)
        try:
            await splits.propose("seller", beat_id, parts, seller_account=accounts["seller"])
            assert await accepting[0] is True
        finally:
            splits.db = db
        assert {p.collaborator: p.status for p in await splits.parts("seller", beat_id)} == {
            "seller": "accepted", "ben": "accepted"}


async def test_an_answer_to_an_invitation_ended_meanwhile_is_refused(
        tmp_path: Path) -> None:
    from business.marketplace.errors import InvitationEnded

    async with market(tmp_path, sqlite_url(tmp_path)) as m:
        accounts, beat_id, _ = await split_with_ben(m)
        splits = market_services(m).splits
        db = splits.db
        # the sweeper expired the invitation after the answer read it still pending
        await db.execute("UPDATE mkt_splits SET ended = 'expired', ended_at = 1 WHERE "
                         "collaborator = ?", "ben")

        async def as_read_before(row: Any) -> Any:
            return {"accepted_at": None, "ended": None}

        splits.db = _Interleaved(db, "fetchrow", "SELECT accepted_at, ended FROM mkt_splits",
                                 as_read_before)
        try:
            with pytest.raises(InvitationEnded, match="expired"):
                await splits.accept("seller", beat_id, "ben", accounts["ben"])
        finally:
            splits.db = db


async def test_clearing_or_saving_the_split_pays_its_held_parts_out_at_once(
        tmp_path: Path, db_url: str) -> None:
    from business.marketplace.splits import Share

    async with held_sale(tmp_path, db_url) as sale:
        m, accounts, beat_id, order_id = sale.m, sale.accounts, sale.beat_id, sale.order_id
        # the seller ends the split: ben's held part goes back to them (not a minute later)
        status, split = await m.call("PUT", f"{M}/beats/{beat_id}/split", who("seller"),
                                     {"shares": []})
        assert status == 200, split
        returned = await settled(m, order_id, RETURNED)
        assert returned["payee"] == "seller"
        # a split the platform sets, every part agreed: the next held part is released
        status, split = await m.call("PUT", f"{M}/beats/{beat_id}/split", who("seller"), {
            "shares": [{"collaborator": c, "basis_points": bp} for c, bp in PARTS.items()]})
        assert status == 200, split
        order_id = (await sell(m, beat_id))["orders"][0]["order_id"]
        assert (await hold_of(m, order_id))["state"] == HELD
        await sale.module.splits.save("seller", beat_id, [
            Share(c, accounts[c], bp) for c, bp in PARTS.items()])
        released = await settled(m, order_id, RELEASED)
        assert released["payee"] == "ben"
        await books_settled(sale)


async def test_a_held_part_whose_payout_did_not_happen_is_tried_again_by_the_sweeper(
        tmp_path: Path, db_url: str) -> None:
    import time

    from business.marketplace.split_holds import STUCK_RETRY_S

    async with held_sale(tmp_path, db_url) as sale:
        m, accounts, beat_id, order_id = sale.m, sale.accounts, sale.beat_id, sale.order_id
        db, holds = sale.db, sale.holds
        await hold_jobs_done(m)
        # ben declined while the seller had no connected account: nowhere to return it
        await db.execute("UPDATE mkt_sellers SET stripe_account = '' WHERE account_id = ?",
                         "seller")
        await db.execute("UPDATE mkt_splits SET ended = 'declined', ended_at = 1 WHERE "
                         "account_id = ? AND collaborator = ?", "seller", "ben")
        assert await holds.settle_invitation("seller", beat_id, "ben") == []
        assert (await hold_of(m, order_id))["state"] == HELD
        # the seller connects again; within the hour the sweeper tries the part again
        await db.execute("UPDATE mkt_sellers SET stripe_account = ? WHERE account_id = ?",
                         accounts["seller"], "seller")
        await holds.expire(time.time() + STUCK_RETRY_S)
        returned = await settled(m, order_id, RETURNED)
        assert returned["payee"] == "seller"
        await books_settled(sale)


async def test_a_held_part_left_being_paid_out_is_finished_by_the_sweeper(
        tmp_path: Path) -> None:
    async with held_sale(tmp_path) as sale:
        await hold_jobs_done(sale.m)
        # ben accepted; his payout's job died between its decision and its transfer
        await ben_accepted_in_books(sale)
        await ben_being_paid_out(sale)
        await sale.holds.expire()
        released = await settled(sale.m, sale.order_id, RELEASED)
        assert released["payee"] == "ben"
        assert len(transfers_to(sale.m, sale.order_id, "ben")) == 1
        await books_settled(sale)


async def test_a_reversal_giving_up_as_the_late_payout_books_still_takes_it_back(
        tmp_path: Path) -> None:
    from business.marketplace.services import run_split_reversal
    from business.marketplace.split_sales import REVERSED, TIMED_OUT
    from dawserver.plugins import PLUGIN_CONTEXT_KEY

    async with held_sale(tmp_path) as sale:
        m, order_id = sale.m, sale.order_id
        holds, sales = sale.holds, sale.module.fulfilment.split_sales
        await hold_jobs_done(m)
        # ben's payout is between its decision and its transfer
        await ben_being_paid_out(sale)
        record = sales.record

        async def payout_books_first(*args: Any, **kwargs: Any) -> None:
            """The payout books its transfer just before the reversal records it gave up
            (so the payout reads no record of the cause)."""
            if kwargs.get("state") == TIMED_OUT:
                assert await holds.settle("seller", order_id, "ben") is not None
            await record(*args, **kwargs)

        sales.record = payout_books_first
        payload = type("Payload", (), {"seller": "seller", "order_id": order_id,
                                       "taken": 1, "of": 1, "cause": "refund:re_late"})()
        await run_split_reversal(m.app[PLUGIN_CONTEXT_KEY], payload, _LastAttempt())
        [ben] = transfers_to(m, order_id, "ben")
        assert ben["amount_reversed"] == ben["amount"] > 0
        [end] = await sales.reversals("seller", order_id)
        assert end["state"] == REVERSED
        await books_settled(sale)


async def payout_left_half_done(s: Sale) -> Callable[..., Awaitable[Any]]:
    """Ben accepted, and a payout attempt failed at Stripe, leaving his part being paid
    out (``releasing``, no claim); Stripe's real ``transfer``, to put back."""
    from business.marketplace.errors import StripeUnavailable

    gateway = s.module.gateway
    await ben_accepted_in_books(s)
    real = gateway.transfer
    gateway.transfer = refusing("Stripe is down")
    with pytest.raises(StripeUnavailable):
        await s.holds.settle("seller", s.order_id, "ben")
    return real


async def test_giving_up_leaves_a_part_another_run_is_paying_out(tmp_path: Path) -> None:
    async with held_sale(tmp_path) as sale:
        m, beat_id, order_id = sale.m, sale.beat_id, sale.order_id
        holds, gateway = sale.holds, sale.module.gateway
        real = await payout_left_half_done(sale)  # job A's attempt
        assert (await hold_of(m, order_id))["state"] == "releasing"
        given_back: list[list[str]] = []

        async def racing_give_up(**kwargs: Any) -> Any:
            """Run B (the sweeper's) is making the transfer as A's last attempt gives up."""
            given_back.append(await holds.give_up("seller", beat_id, "ben", "refused"))
            return await real(**kwargs)

        gateway.transfer = racing_give_up
        paid = await holds.settle("seller", order_id, "ben")
        gateway.transfer = real
        assert given_back == [[]]  # B's part was not put back under it
        [made] = transfers_to(m, order_id, "ben")
        assert paid is not None and paid["transfer"] == made["id"]
        assert (await hold_of(m, order_id))["state"] == RELEASED
        await books_settled(sale)


async def test_a_transfer_made_before_the_part_went_back_is_booked_as_made(
        tmp_path: Path) -> None:
    from business.marketplace.errors import StripeUnavailable
    from business.marketplace.split_sales import REVERSAL_JOB
    from dawserver.plugins import PLUGIN_CONTEXT_KEY

    async with held_sale(tmp_path) as sale:
        m, beat_id, order_id = sale.m, sale.beat_id, sale.order_id
        holds, gateway = sale.holds, sale.module.gateway
        sales = sale.module.fulfilment.split_sales
        await hold_jobs_done(m)
        held = await hold_of(m, order_id)
        await ben_accepted_in_books(sale)
        real, made = gateway.transfer, holds._made

        async def not_listed_yet(*args: Any) -> Any:
            return None

        gateway.transfer = answer_lost(real)
        with pytest.raises(StripeUnavailable):
            await holds.settle("seller", order_id, "ben")
        gateway.transfer = real
        # the give-up asked Stripe before the transfer showed: held again, then cut
        holds._made = not_listed_yet
        assert await holds.give_up("seller", beat_id, "ben", "lost") == [order_id]
        holds._made = made
        await sales.reverse("seller", order_id, taken=1, of=2, cause="refund:re_half")
        queue = m.app[PLUGIN_CONTEXT_KEY].background.queue
        before = len(await queue.find(account_id="seller", queue=REVERSAL_JOB))
        paid = await holds.settle("seller", order_id, "ben")
        # the transfer Stripe made is booked as made, never made again with a new amount
        [ben] = transfers_to(m, order_id, "ben")
        assert paid is not None and paid["transfer"] == ben["id"]
        assert paid["amount"] == ben["amount"] == held["amount"]
        # and what the refund cut of it is taken back by the refund's reversal, queued
        assert len(await queue.find(account_id="seller", queue=REVERSAL_JOB)) == before + 1
        await sales.reverse("seller", order_id, taken=1, of=2, cause="refund:re_half")
        [ben] = transfers_to(m, order_id, "ben")
        assert ben["amount_reversed"] == held["amount"] // 2
        await books_settled(sale)


async def test_giving_up_never_puts_back_a_part_a_slow_run_still_pays_out(
        tmp_path: Path) -> None:
    """Review R2: a run slower than CLAIM_TTL_S is still asking Stripe when the job's
    last attempt gives up and another run comes by. Putting the part back (a new
    decision, a new idempotency key) let the other run pay it a second time; it is left
    being paid out, nobody is mailed, and the other run asks with the same key."""
    import time

    from business.marketplace.split_hold_claims import CLAIM_TTL_S

    async with held_sale(tmp_path) as sale:
        m, beat_id, order_id = sale.m, sale.beat_id, sale.order_id
        holds, gateway = sale.holds, sale.module.gateway
        real = await payout_left_half_done(sale)
        given_back: list[list[str]] = []
        others: list[Any] = []
        mailed: list[str] = []

        async def mail(seller: str, order: str, *args: Any) -> None:
            mailed.append(order)

        holds.alerts.notify_held = mail

        async def slow(**kwargs: Any) -> Any:
            if not given_back:  # this run outlived its claim while Stripe was slow
                await sale.db.execute(
                    "UPDATE mkt_split_holds SET claimed_at = ? WHERE order_id = ? AND "
                    "collaborator = ?", time.time() - CLAIM_TTL_S - 1, order_id, "ben")
                given_back.append(await holds.give_up("seller", beat_id, "ben", "slow"))
                others.append(await holds.settle("seller", order_id, "ben"))
            return await real(**kwargs)

        gateway.transfer = slow
        mine = await holds.settle("seller", order_id, "ben")
        gateway.transfer = real
        assert given_back == [[]] and mailed == []
        # the other run took the expired claim over and asked with the same key: Stripe
        # made one transfer, booked once (by whichever run got there first)
        [made] = transfers_to(m, order_id, "ben")
        assert [p["transfer"] for p in [mine, *others] if p is not None] == [made["id"]]
        assert (await hold_of(m, order_id))["state"] == RELEASED
        await books_settled(sale)


async def test_a_run_whose_booking_fails_lets_go_of_its_claim(tmp_path: Path) -> None:
    """Review R2: a run that had Stripe make the transfer but could not book it kept its
    claim, so the job's retry found the part claimed, did nothing and ended "done"; the
    claim is let go and the retry books the transfer Stripe made."""
    async with held_sale(tmp_path) as sale:
        m, order_id, holds = sale.m, sale.order_id, sale.holds
        await ben_accepted_in_books(sale)
        real_book = holds._book

        async def failing(*args: Any, **kwargs: Any) -> Any:
            raise OSError("the database went away")

        holds._book = failing
        with pytest.raises(OSError):
            await holds.settle("seller", order_id, "ben")
        holds._book = real_book
        assert (await hold_of(m, order_id))["state"] == "releasing"
        paid = await holds.settle("seller", order_id, "ben")
        [made] = transfers_to(m, order_id, "ben")
        assert paid is not None and paid["transfer"] == made["id"]
        assert (await hold_of(m, order_id))["state"] == RELEASED
        await books_settled(sale)
