"""A run's claim on a held split part's payout: aged by the database's clock, so servers
whose clocks differ agree on it."""

from __future__ import annotations

import time
from typing import Any

import pytest
from marketplace_helpers import db_url  # noqa: F401 - the fixture
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
from business.marketplace.split_holds import CLAIM_TTL_S, RELEASED
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


async def test_servers_whose_clocks_differ_agree_on_whether_a_claim_is_dead(
        tmp_path: Any, db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
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
