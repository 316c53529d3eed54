"""database.redis_client and database.redis_pubsub on one Redis and on a real Redis Cluster;
the keys and channels every component uses, checked for one slot per multi-key command."""

from __future__ import annotations

import asyncio
import socket
import uuid
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError

from accounts.sessions import RedisSessions, SessionPolicy, Sessions
from collab.relay import RedisRelay
from database.redis_client import (
    MAX_CONNECTIONS,
    cluster_nodes,
    is_cluster_url,
    redacted,
    redis_client,
)
from database.redis_pubsub import ShardedSubscriber, SlotMoved
from events.redis_streams import RedisStreamsTransport
from tests.redis_cluster_helpers import RedisClusterServers, fail_over

pytestmark = pytest.mark.timeout(120)


def slot(key: str) -> int:
    return key_slot(key.encode())


# -- the factory ---------------------------------------------------------------------------


def test_a_cluster_url_lists_its_startup_nodes() -> None:
    url = "redis+cluster://127.0.0.1:7101,10.0.0.2:7102"
    assert is_cluster_url(url) and not is_cluster_url("redis://127.0.0.1:6379/0")
    assert cluster_nodes(url) == [("127.0.0.1", 7101), ("10.0.0.2", 7102)]
    assert cluster_nodes("redis+cluster://:secret@h:1,[::1]:2/0") == [("h", 1), ("::1", 2)]


@pytest.mark.parametrize("url, problem", [
    ("redis+cluster://", "names no node"),
    ("redis+cluster://h:1,h", "not HOST:PORT"),
    ("redis+cluster://h:1/3", "only database 0"),
    ("redis://h:1/0", "not a Redis Cluster URL"),
])
def test_a_malformed_cluster_url_says_how_to_write_it(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        cluster_nodes(url)


def test_passwords_stay_out_of_logs() -> None:
    assert redacted("redis+cluster://ops:s3cret@h:1,h:2") == "redis+cluster://ops:***@h:1,h:2"
    assert "s3cret" not in redacted("redis://:s3cret@h:1/0")
    assert redacted("redis://h:1/0") == "redis://h:1/0"


@pytest.mark.asyncio
async def test_the_factory_returns_the_client_the_url_names(any_redis_url: str) -> None:
    client = redis_client(any_redis_url, decode_responses=True)
    try:
        expected = RedisCluster if is_cluster_url(any_redis_url) else Redis
        assert type(client) is expected
        key = f"test:{{{uuid.uuid4().hex}}}"
        await client.set(key, "one", px=10_000)
        assert await client.get(key) == "one"
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_more_commands_in_flight_than_the_pool_holds_wait_for_a_connection(
        any_redis_url: str) -> None:
    """redis-py's own pool failed the 101st command in flight (``MaxConnectionsError``),
    and its cluster client the 101st to one node."""
    client = redis_client(any_redis_url)
    try:
        key, many = f"test:{{{uuid.uuid4().hex}}}", 3 * MAX_CONNECTIONS
        # each holds its connection 0.1 s: the last wait for the first to finish
        answers = await asyncio.gather(*(client.blpop([key], timeout=0.1)
                                         for _ in range(many)))
        assert answers == [None] * many
    finally:
        await client.aclose()


@pytest.mark.asyncio
async def test_a_cross_slot_command_is_refused_by_the_cluster(redis_cluster_url: str) -> None:
    """What the key audit guards against: the cluster refuses it, one Redis would not."""
    client = redis_client(redis_cluster_url)
    try:
        a, b = "test:{a}", "test:{b}"
        assert slot(a) != slot(b)
        with pytest.raises(Exception, match="(?i)slot"):
            await client.execute_command("MGET", a, b)
    finally:
        await client.aclose()


# -- the keys and channels -----------------------------------------------------------------


def test_a_sessions_keys_share_one_slot() -> None:
    sessions = RedisSessions(client=None)
    key_hash = "ab" * 32
    assert slot(sessions._key(key_hash)) == slot(sessions._mark(key_hash))  # MGET, DEL
    assert "{p:p_1}" in sessions._index("p_1")


def test_every_event_stream_shares_one_slot() -> None:
    """One XREADGROUP reads all of a subscriber's streams; the seen-marks go with them."""
    streams = [RedisStreamsTransport.stream(name) for name in ("track.sold", "post.sent", "x")]
    slots = {slot(s) for s in [*streams, RedisStreamsTransport.DEAD_LETTERS]}
    assert len(slots) == 1


def test_each_project_has_its_own_relay_channel_slot() -> None:
    relay = RedisRelay("redis://127.0.0.1:1/0")
    channels = [relay._room_channel(f"project-{i}") for i in range(64)]
    assert all("{room:project-" in channel for channel in channels)
    assert len({slot(channel) for channel in channels}) > 32  # spread over the masters
    assert relay._project_of(channels[5]) == "project-5"
    assert relay._members_channel.endswith("{members}")


# -- sharded pub/sub -----------------------------------------------------------------------


async def _next(subscriber: ShardedSubscriber, timeout: float = 5.0) -> tuple[str, bytes]:
    async with asyncio.timeout(timeout):
        return await subscriber.get()


@pytest.mark.asyncio
async def test_shard_channels_on_every_master_reach_one_subscriber(any_redis_url: str) -> None:
    client = redis_client(any_redis_url)
    channels = [f"test:{{room:{uuid.uuid4().hex}}}" for _ in range(12)]
    async with ShardedSubscriber(client) as subscriber:
        try:
            await subscriber.subscribe(*channels)
            for channel in channels:
                assert await client.spublish(channel, channel.encode()) == 1
            received = [await _next(subscriber) for _ in channels]
            assert sorted(received) == sorted((c, c.encode()) for c in channels)
            await subscriber.unsubscribe(channels[0])
            await client.spublish(channels[0], b"gone")
            await client.spublish(channels[1], b"still here")
            assert await _next(subscriber) == (channels[1], b"still here")
        finally:
            await client.aclose()


@pytest.mark.asyncio
async def test_a_dropped_channel_s_messages_are_left_out_until_redis_reads_the_drop(
        any_redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``SUNSUBSCRIBE`` travels on the subscriber's connection, a publish on another:
    Redis may deliver a message published after ``unsubscribe`` returned (here it never
    reads the drop at all)."""
    async def not_yet(self: PubSub, *channels: str) -> None:
        return None

    client = redis_client(any_redis_url)
    channels = [f"test:{{room:{uuid.uuid4().hex}}}" for _ in range(2)]
    async with ShardedSubscriber(client) as subscriber:
        try:
            await subscriber.subscribe(*channels)
            monkeypatch.setattr(PubSub, "sunsubscribe", not_yet)
            await subscriber.unsubscribe(channels[0])
            assert await client.spublish(channels[0], b"gone") == 1  # still subscribed
            await client.spublish(channels[1], b"still here")
            assert await _next(subscriber) == (channels[1], b"still here")
        finally:
            await client.aclose()


@pytest.mark.asyncio
async def test_a_failover_moves_the_subscription_to_the_new_master(
        redis_cluster_url: str) -> None:
    client = redis_client(redis_cluster_url)
    channel = f"test:{{room:{uuid.uuid4().hex}}}"
    async with ShardedSubscriber(client) as subscriber:
        try:
            await subscriber.subscribe(channel)
            old, new = await fail_over(redis_cluster_url, channel)
            assert old != new
            with pytest.raises(SlotMoved, match="moved"):
                await _next(subscriber, timeout=10)
            await subscriber.reconnect()
            await client.spublish(channel, b"after the failover")
            assert await _next(subscriber) == (channel, b"after the failover")
        finally:
            await client.aclose()


# -- sessions shared by two server processes -----------------------------------------------


@pytest.mark.asyncio
async def test_two_processes_share_sessions_through_the_cluster(redis_cluster_url: str) -> None:
    policy = SessionPolicy(idle_s=100.0, absolute_s=1000.0, touch_every_s=10.0)
    one = Sessions(RedisSessions.from_url(redis_cluster_url), policy)
    two = Sessions(RedisSessions.from_url(redis_cluster_url), policy)
    person = f"p_{uuid.uuid4().hex[:8]}"
    try:
        secrets_ = [(await one.start(person))[0] for _ in range(3)]
        for secret in secrets_:  # each on the slot of its own hash: all masters serve some
            found = await two.find(secret)
            assert found is not None and found.person_id == person
        assert len(await two.store.of_person(person)) == 3
        assert await two.end_all(person) == 3
        assert [await one.find(secret) for secret in secrets_] == [None, None, None]
    finally:
        await one.store.close()
        await two.store.close()


@pytest.mark.asyncio
async def test_a_malformed_cluster_url_stops_the_relay_with_the_fix() -> None:
    from collab.relay import RelayError

    with pytest.raises(RelayError, match="not HOST:PORT"):
        await RedisRelay("redis+cluster://:pw@127.0.0.1").start()


@pytest.mark.asyncio
async def test_a_failed_resubscription_keeps_every_channel_for_the_next_attempt() -> None:
    """Redis still down at a reconnect: no channel may be forgotten (only the first was)."""
    from tests.loopback import free_port

    client = Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=1)
    async with ShardedSubscriber(client) as subscriber:
        subscriber.channels = {"maxbooster:{members}", "maxbooster:{room:p1}"}
        with pytest.raises(RedisConnectionError):
            await subscriber.reconnect()
        assert subscriber.channels == {"maxbooster:{members}", "maxbooster:{room:p1}"}
    await client.aclose()


def test_a_cluster_starts_on_fresh_ports_when_one_was_taken_meanwhile(tmp_path: Path) -> None:
    """free_port's port can be taken before a node binds it (another test's server, a
    connection's ephemeral port): the node exits, and the port may even answer for the
    other process. The cluster is then made again on fresh ports, not left broken."""
    cluster = RedisClusterServers(tmp_path)
    taken = cluster.ports[2]
    with socket.socket() as other:
        other.bind(("127.0.0.1", taken))
        other.listen()
        try:
            cluster.start()
            assert taken not in cluster.ports and cluster.ready()
        finally:
            cluster.stop()
