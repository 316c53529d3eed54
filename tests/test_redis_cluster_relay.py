"""Two server processes linked through a Redis Cluster keep every stored edit across a
failover of the master that owns their project's channel: a graceful one (``CLUSTER
FAILOVER`` on the session's cluster) and a master killed outright (a cluster of the
test's own)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from nodepeer import eventually, node_ready

from dawserver.keys import RELAY
from tests.redis_cluster_helpers import RedisClusterServers, fail_over, master_of
from tests.test_relay import deployment, gain

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(180),
              pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))]


async def test_edits_survive_a_failover_of_the_projects_master(
        tmp_path: Path, redis_cluster_url: str) -> None:
    database = f"sqlite://{tmp_path / 'collab.sqlite3'}"
    async with deployment(tmp_path, database, redis_cluster_url) as dep, \
            dep.client("a", "ana") as ana, dep.client("b", "ben") as ben:
        ana.document.set_track_gain("t1", -1.0)
        await eventually(lambda: gain(ben.document, "t1") == -1.0)
        channel = dep.apps["a"][RELAY]._room_channel(dep.project_id)
        failing = asyncio.create_task(fail_over(redis_cluster_url, channel))
        # Edits on both sides while the replica takes over, and after.
        for i in range(12):
            ana.document.set_track_gain("t2", -float(i))
            ben.document.set_track_gain("t3", -float(i))
            ana.document.add_comment("ana", f"a{i}", position=i)
            ben.document.add_comment("ben", f"b{i}", position=i)
            await asyncio.sleep(0.1)
        old, new = await failing
        assert old != new
        for i in range(12, 16):
            ana.document.set_track_gain("t2", -float(i))
            ben.document.set_track_gain("t3", -float(i))
            await asyncio.sleep(0.05)
        await eventually(lambda: ana.snapshot_json() == ben.snapshot_json(), timeout=30)
        final = ana.document.to_json()
        assert gain(final, "t2") == -15.0 and gain(final, "t3") == -15.0
        texts = sorted(c["text"] for c in final["comments"].values())
        assert texts == sorted([f"a{i}" for i in range(12)] + [f"b{i}" for i in range(12)])
        await eventually(lambda: _stored_is(dep, final), timeout=30)
        # ...and announcements flow again on the new master (no store polling now).
        for app in dep.apps.values():
            app[RELAY].poll_seconds = 3600
        await asyncio.sleep(0.5)
        ana.document.set_track_gain("t4", -9.0)
        ben.document.set_track_gain("t5", -8.0)
        await eventually(lambda: gain(ben.document, "t4") == -9.0, timeout=20)
        await eventually(lambda: gain(ana.document, "t5") == -8.0, timeout=20)


async def _stored_is(dep, expected: dict) -> bool:
    return await dep.stored() == expected


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[RedisClusterServers]:
    """A Redis Cluster of this test's own (one of its masters will be killed)."""
    if not shutil.which("redis-server") or not shutil.which("redis-cli"):
        pytest.skip("redis-server and redis-cli are not installed: run scripts/setup.sh")
    (tmp_path / "cluster").mkdir()
    cluster = RedisClusterServers(tmp_path / "cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


async def test_edits_survive_a_killed_master(tmp_path: Path,
                                             own_cluster: RedisClusterServers) -> None:
    url = own_cluster.url
    database = f"sqlite://{tmp_path / 'collab.sqlite3'}"
    async with deployment(tmp_path, database, url) as dep, \
            dep.client("a", "ana") as ana, dep.client("b", "ben") as ben:
        ana.document.set_track_gain("t1", -1.0)
        await eventually(lambda: gain(ben.document, "t1") == -1.0)
        channel = dep.apps["a"][RELAY]._room_channel(dep.project_id)
        old = await master_of(url, channel)
        own_cluster.kill(old)
        for i in range(20):  # while the replica notices, is elected and takes over
            ana.document.set_track_gain("t2", -float(i))
            ben.document.set_track_gain("t3", -float(i))
            await asyncio.sleep(0.1)
        await eventually(lambda: _moved(url, channel, old), timeout=30, interval=0.3)
        await eventually(lambda: ana.snapshot_json() == ben.snapshot_json(), timeout=30)
        final = ana.document.to_json()
        assert gain(final, "t2") == -19.0 and gain(final, "t3") == -19.0
        await eventually(lambda: _stored_is(dep, final), timeout=30)
        for app in dep.apps.values():
            app[RELAY].poll_seconds = 3600
        await asyncio.sleep(0.5)
        ana.document.set_track_gain("t4", -9.0)
        await eventually(lambda: gain(ben.document, "t4") == -9.0, timeout=20)


async def _moved(url: str, channel: str, old: int) -> bool:
    try:
        return await master_of(url, channel) != old
    except Exception:  # the startup node may be the dead one, or slots still uncovered
        return False
