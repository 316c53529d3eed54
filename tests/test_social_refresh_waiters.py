"""Waiting for another process's token refresh: a slow refresh that is alive (its lease
renewed) is waited for, however long its network takes within ``refresh_timeout_s``;
a lease whose holder died is taken over once it lapses."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from social_helpers import InTestNetwork, migrated
from test_social_channels import _channels, _connected

from database import open_database


def test_a_waiter_waits_for_a_slow_refresh_that_is_alive(tmp_path: Path) -> None:
    network = InTestNetwork("x", lifetime_s=60.0)   # rotates: a used token is spent

    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'social.sqlite3'}") as db, \
                asyncio.timeout(30):
            await migrated(db)
            slow, _ = await _channels(db, network, lease_s=0.1)
            channel_id = await _connected(slow, network)
            other, _ = await _channels(db, network, lease_s=0.1)   # another process
            network.delays = [0.6]                  # answered after six leases
            holder = asyncio.create_task(slow.refresh("acc", channel_id, force=True))
            await asyncio.sleep(0.05)               # its lease is taken
            waited = await other.refresh("acc", channel_id, force=True)
            answered = await holder
            assert (waited.state, answered.state) == ("active", "active")
            assert waited.token_generation == answered.token_generation == 2
            assert network.refresh_calls == 1

    asyncio.run(go())


def test_a_waiter_takes_over_the_lease_of_a_dead_refresh(tmp_path: Path) -> None:
    network = InTestNetwork("x", lifetime_s=60.0)

    async def go() -> None:
        async with open_database(f"sqlite://{tmp_path / 'social.sqlite3'}") as db, \
                asyncio.timeout(30):
            await migrated(db)
            channels, _ = await _channels(db, network, lease_s=0.1)
            channel_id = await _connected(channels, network)
            sealed = await channels.store.sealed_tokens("acc", channel_id)
            now = time.time()                       # a process took it, then died
            assert await channels.store.claim_refresh("acc", channel_id, sealed.generation,
                                                      "dead", now + 0.2, now)
            refreshed = await channels.refresh("acc", channel_id, force=True)
            assert (refreshed.state, refreshed.token_generation) == ("active", 2)
            assert network.refresh_calls == 1

    asyncio.run(go())
