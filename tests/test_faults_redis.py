"""Redis faults under a running linked pair of servers (one store, one relay).

- Redis killed and restarted while editors on both servers keep writing, and a member
  is revoked while it is down: every edit acknowledged on either server reaches both
  servers' editors and the store exactly once, the revocation closes the member's socket
  on the other server (re-checked from the store), and announcements flow again.
- One server cut from Redis by a network partition (Redis in its own network namespace
  behind one veth link per server; taking the link down drops the packets, no reset):
  the cut server keeps serving, edits cross through the store, a revocation reaches it,
  and once the link is back announcements flow again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fault_helpers import (
    Linked,
    OwnRedis,
    RedisBehindCut,
    linked_servers,
    namespaces_work,
    texts,
)
from nodepeer import eventually
from redis.exceptions import RedisError

from collab import protocol as p
from collab.client import SyncClient
from dawserver.keys import RELAY

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


def gain(client: SyncClient, track: str) -> float:
    return client.document.to_json()["tracks"][track]["gain_db"]


async def write_comments(client: SyncClient, who: str, count: int, pause: float) -> list[str]:
    """Add ``count`` comments, ``pause`` seconds apart; their texts."""
    written = []
    for i in range(count):
        text = f"{who} {i}"
        client.document.add_comment(who, text, position=i)
        written.append(text)
        await asyncio.sleep(pause)
    return written


async def nothing_lost(dep: Linked, clients: list[SyncClient], expected: list[str]) -> None:
    """Every client and the store hold exactly ``expected`` comments (none twice)."""
    want = sorted(expected)
    for client in clients:
        await eventually(lambda c=client: texts(c.document) == want, timeout=30)
    await eventually(lambda: _stored_texts(dep, want), timeout=30)


async def _stored_texts(dep: Linked, want: list[str]) -> bool:
    return texts(await dep.stored()) == want


async def reachable(dep: Linked, node: int) -> bool:
    """Whether node ``node``'s relay gets an answer from Redis within 2 s."""
    try:
        async with asyncio.timeout(2):
            return await dep.apps[node][RELAY]._redis.ping()
    except (TimeoutError, OSError, RedisError):
        return False


async def revoked_closes(client: SyncClient) -> None:
    async with asyncio.timeout(30):
        await client.closed.wait()
    assert client.channel.close_code == p.CloseCode.ROLE_REVOKED


async def test_a_redis_restart_loses_no_edit_and_revocations_are_rechecked(
        tmp_path: Path, collab_database_url: str) -> None:
    with OwnRedis() as redis:
        async with linked_servers(tmp_path, collab_database_url, [redis.url, redis.url]) as dep:
            dep.apps[1][RELAY].revocation_check_seconds = 3600  # only the reconnect checks
            async with dep.client(0, "ana") as ana, dep.client(1, "ben") as ben, \
                    dep.client(1, "cy") as cy:
                writers = [asyncio.create_task(write_comments(ana, "ana", 30, 0.05)),
                           asyncio.create_task(write_comments(ben, "ben", 30, 0.05))]
                await asyncio.sleep(0.5)
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, redis.kill)
                await dep.revoke(0, "cy")  # its announcement cannot be sent
                await asyncio.sleep(0.5)
                await loop.run_in_executor(None, redis.start)
                written = [text for task in writers for text in await task]
                await revoked_closes(cy)
                await nothing_lost(dep, [ana, ben], written)
                # Announcements flow again: with the store poll off, an edit still crosses.
                dep.apps[1][RELAY].poll_seconds = 3600
                await asyncio.sleep(0.5)
                ana.document.set_track_gain("t2", -7.0)
                await eventually(lambda: gain(ben, "t2") == -7.0, timeout=20)


@pytest.mark.skipif(namespaces_work() is not None, reason=str(namespaces_work()))
async def test_a_server_cut_from_redis_keeps_serving_and_loses_nothing(
        tmp_path: Path) -> None:
    database = f"sqlite://{tmp_path / 'collab.sqlite3'}"
    with RedisBehindCut(nodes=2) as net:
        async with linked_servers(tmp_path, database, [net.url(0), net.url(1)]) as dep:
            dep.apps[1][RELAY].revocation_check_seconds = 0.5
            async with dep.client(0, "ana") as ana, dep.client(1, "ben") as ben, \
                    dep.client(1, "cy") as cy:
                ana.document.set_track_gain("t1", -1.0)
                await eventually(lambda: gain(ben, "t1") == -1.0)
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, net.cut, 1)
                try:
                    assert await reachable(dep, 0) and not await reachable(dep, 1)
                    written = [text for batch in await asyncio.gather(
                        write_comments(ana, "ana", 20, 0.05),
                        write_comments(ben, "ben", 20, 0.05)) for text in batch]
                    await nothing_lost(dep, [ana, ben], written)
                    await dep.revoke(0, "cy")
                    await revoked_closes(cy)
                finally:
                    await loop.run_in_executor(None, net.heal, 1)
                # The link is back: announcements reach the cut server again.
                dep.apps[1][RELAY].poll_seconds = 3600
                await asyncio.sleep(0.5)
                ana.document.set_track_gain("t2", -7.0)
                await eventually(lambda: gain(ben, "t2") == -7.0, timeout=45)
