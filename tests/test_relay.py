"""Two server processes of one deployment serve the same project (shared store + Redis).

Each test runs two full apps (``create_app``) on one database — an SQLite file
or a real PostgreSQL database — linked through a real Redis server or a real
three-master Redis Cluster (``any_redis_url``), with
clients connected to each: stock Node y-websocket clients and Python clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from loopback import free_port
from nodepeer import NodePeer, eventually, node_ready, running_server
from redis.asyncio.cluster import RedisCluster

from collab import protocol as p
from collab.client import SyncClient
from collab.relay import AWARENESS, UPDATE
from collab.schema import ProjectDocument
from collab.tokens import Role
from dawclient.channel import connect
from dawserver.config import ServerConfig
from dawserver.keys import RELAY, STORE, TOKENS
from dawserver.projects import import_session
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio,
              pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))]


def jam() -> Session:
    return Session(name="Jam", tracks=[
        Track(f"t{i}", f"Track {i}", clips=[Clip("/audio/x.wav", 0, 48000, id=f"c{i}")])
        for i in range(8)])


class Deployment:
    """Two server processes ("a" and "b") sharing a data directory, a store and Redis."""

    def __init__(self, apps: dict[str, object], configs: dict[str, ServerConfig],
                 project_id: str) -> None:
        self.apps, self.configs, self.project_id = apps, configs, project_id

    def token(self, role: Role = Role.EDITOR, user: str = "ana") -> str:
        return self.apps["a"][TOKENS].issue(self.project_id, role, user)

    def url(self, name: str) -> str:
        return f"{self.configs[name].collab_url}/{self.project_id}"

    @contextlib.asynccontextmanager
    async def client(self, name: str, user: str = "ana", role: Role = Role.EDITOR,
                     presence: dict | None = None) -> AsyncIterator[SyncClient]:
        async with connect(self.url(name), self.token(role, user)) as channel, \
                SyncClient(channel, presence=presence) as client:
            await client.wait_synced()
            yield client

    async def node(self, stack: contextlib.AsyncExitStack, name: str, user: str) -> NodePeer:
        peer = await stack.enter_async_context(NodePeer())
        await peer.call("connect", url=self.configs[name].collab_url, room=self.project_id,
                        token=self.token(Role.EDITOR, user))
        await peer.wait_event("synced")
        return peer

    async def stored(self) -> dict:
        """The project as a restart would load it from the shared store."""
        stored = await self.apps["a"][STORE].load(self.project_id)
        document = ProjectDocument()
        if stored.snapshot:
            document.doc.apply_update(stored.snapshot)
        for update in stored.updates:
            document.doc.apply_update(update)
        assert stored.last_seq - stored.snapshot_seq == len(stored.updates), "a gap in the log"
        return document.to_json()


@contextlib.asynccontextmanager
async def deployment(tmp_path: Path, database_url: str, redis_url: str,
                     **options) -> AsyncIterator[Deployment]:
    configs = {name: ServerConfig(port=free_port(), data_dir=tmp_path, engine=False,
                                  database_url=database_url, redis_url=redis_url, **options)
               for name in ("a", "b")}
    async with running_server(configs["a"]) as app_a, running_server(configs["b"]) as app_b:
        info = await import_session(app_a[STORE], jam())
        for app in (app_a, app_b):
            app[RELAY].poll_seconds = 0.3
        yield Deployment({"a": app_a, "b": app_b}, configs, info.project_id)


def gain(document: ProjectDocument | dict, track: str) -> float:
    data = document.to_json() if isinstance(document, ProjectDocument) else document
    return data["tracks"][track]["gain_db"]


async def test_an_edit_on_one_process_reaches_clients_of_the_other(
        tmp_path: Path, collab_database_url: str, any_redis_url: str) -> None:
    async with deployment(tmp_path, collab_database_url, any_redis_url) as dep, \
            contextlib.AsyncExitStack() as stack:
        node_b = await dep.node(stack, "b", "ben")
        async with dep.client("a") as ana:
            ana.document.set_track_gain("t1", -6.0)
            await eventually(lambda: _node_gain(node_b, "t1", -6.0))
            await node_b.call("set_track", track="t2", field="gain_db", value=-3.5)
            await eventually(lambda: gain(ana.document, "t2") == -3.5)
        assert gain(await dep.stored(), "t1") == -6.0
        assert gain(await dep.stored(), "t2") == -3.5


async def _node_gain(peer: NodePeer, track: str, value: float) -> bool:
    return (await peer.dump())["tracks"][track]["gain_db"] == value


async def test_bursts_on_both_processes_converge_and_are_stored_once(
        tmp_path: Path, collab_database_url: str, any_redis_url: str) -> None:
    # Small compaction threshold: both processes fold the log while the other appends.
    async with deployment(tmp_path, collab_database_url, any_redis_url, compact_every=7) as dep, \
            dep.client("a", "ana") as ana, dep.client("b", "ben") as ben:
        for i in range(60):
            ana.document.set_track_gain("t1", -float(i))
            ben.document.set_track_gain("t2", -float(i) / 2)
            ana.document.add_comment("ana", f"from a {i}", position=i)
            ben.document.add_comment("ben", f"from b {i}", position=i)
            if i % 10 == 0:
                await asyncio.sleep(0.01)
        await eventually(lambda: ana.snapshot_json() == ben.snapshot_json(), timeout=20)
        final = ana.document.to_json()
        assert gain(final, "t1") == -59.0 and gain(final, "t2") == -29.5
        texts = sorted(comment["text"] for comment in final["comments"].values())
        assert texts == sorted([f"from a {i}" for i in range(60)] +
                               [f"from b {i}" for i in range(60)])
        await eventually(lambda: _stored_equals(dep, final), timeout=20)


async def _stored_equals(dep: Deployment, expected: dict) -> bool:
    return await dep.stored() == expected


async def test_presence_crosses_processes_and_leaves_with_its_client(
        tmp_path: Path, collab_database_url: str, any_redis_url: str) -> None:
    async with deployment(tmp_path, collab_database_url, any_redis_url) as dep, \
            dep.client("b", "ben") as ben:
        async with dep.client("a", "ana", presence={"user": "ana", "colour": "#e33"}) as ana:
            await eventually(lambda: {"user": "ana", "colour": "#e33"} in ben.presence.values())
            ana_id = ana.doc.client_id
        await eventually(lambda: ana_id not in ben.presence)


async def test_a_process_that_opens_the_room_later_learns_who_is_there(
        tmp_path: Path, collab_database_url: str, any_redis_url: str) -> None:
    """Presence is not stored: a process that subscribes after a peer elsewhere announced
    itself asks the others, which answer with their own peers' presence (the Python
    client never renews its presence, so nothing else would bring it)."""
    async with deployment(tmp_path, collab_database_url, any_redis_url) as dep, \
            dep.client("a", "ana", presence={"user": "ana", "colour": "#e33"}) as ana:
        await ana.wait_synced()
        async with dep.client("b", "ben") as ben:
            await eventually(lambda: {"user": "ana", "colour": "#e33"}
                             in ben.presence.values(), timeout=30)


async def test_another_user_cannot_take_a_quiet_id_owned_on_another_process(
        tmp_path: Path, collab_database_url: str, any_redis_url: str, monkeypatch) -> None:
    """Ana's tab on process a goes quiet (a background tab): on process b her state looks
    outdated. Mallory on b claims her id there; b knows from the relay that the id is
    Ana's and drops the claim, and Mallory's connection takes its own id instead."""
    ana_state = {"user": "ana", "colour": "#e33"}
    async with deployment(tmp_path, collab_database_url, any_redis_url) as dep, \
            dep.client("b", "ben") as ben, \
            dep.client("a", "ana", presence=ana_state) as ana:
        ana_id = ana.doc.client_id
        await eventually(lambda: ben.presence.get(ana_id) == ana_state)
        monkeypatch.setattr("collab.presence.OUTDATED_SECONDS", 0.0)  # quiet long enough
        async with dep.client("b", "mallory") as mallory:
            spoof = p.AwarenessEntry(ana_id, 99, {"user": "mallory"})
            await mallory.channel.send(p.awareness(p.encode_awareness([spoof])))
            await mallory.set_presence({"user": "mallory"})  # after it, on one connection
            await eventually(lambda: {"user": "mallory"} in ben.presence.values())
            assert ben.presence.get(ana_id) == ana_state
            assert ben.presence.get(mallory.doc.client_id) == {"user": "mallory"}


async def test_a_malformed_presence_announcement_is_ignored(
        tmp_path: Path, collab_database_url: str, any_redis_url: str, caplog) -> None:
    async with deployment(tmp_path, collab_database_url, any_redis_url) as dep, \
            dep.client("b", "ben") as ben:
        relay_a = dep.apps["a"][RELAY]
        channel = relay_a._room_channel(dep.project_id)
        await eventually(lambda: _equals(shard_subscribers(relay_a._redis, channel), 1))
        for junk in (b"\x00\x00", b"\x00\x00\x00\x09{\"1\": 2", b"\x00\x00\x00\x02[]"):
            relay_a._send(channel, AWARENESS + uuid.uuid4().bytes + junk)
        async with dep.client("a", "ana", presence={"user": "ana"}):
            await eventually(lambda: {"user": "ana"} in ben.presence.values())
        # (each logged at least once; a run on two workers once counted five lines)
        assert caplog.text.count("ignoring a malformed presence message") >= 3


async def test_revoking_on_one_process_closes_the_users_socket_on_the_other(
        tmp_path: Path, collab_database_url: str, any_redis_url: str) -> None:
    async with deployment(tmp_path, collab_database_url, any_redis_url) as dep:
        await _ben_on_b_is_closed_when_revoked_on_a(dep)


async def _ben_on_b_is_closed_when_revoked_on_a(dep: Deployment) -> None:
    owner = dep.token(Role.OWNER, "olga")
    async with connect(dep.url("b"), dep.token(Role.EDITOR, "ben")) as channel:
        client = SyncClient(channel)
        await client.start()
        await client.wait_synced()
        async with aiohttp.ClientSession() as http, http.delete(
                f"{dep.configs['a'].base_url}/projects/{dep.project_id}/members/ben",
                headers={"Authorization": f"Bearer {owner}"}) as response:
            assert response.status == 200, await response.text()
        await asyncio.wait_for(client.closed.wait(), 10)
        assert channel.close_code == p.CloseCode.ROLE_REVOKED
        await client.stop()


async def test_a_lost_announcement_is_read_from_the_store(
        tmp_path: Path, collab_database_url: str, any_redis_url: str, monkeypatch) -> None:
    async with deployment(tmp_path, collab_database_url, any_redis_url) as dep, \
            dep.client("a", "ana") as ana, dep.client("b", "ben") as ben:
        cluster_b = dep.apps["b"][RELAY]
        dispatch = cluster_b._dispatch
        dropped = []

        def lossy(channel: str, data: bytes) -> None:
            if data[:1] == UPDATE:
                dropped.append(data)
                return
            dispatch(channel, data)

        monkeypatch.setattr(cluster_b, "_dispatch", lossy)
        ana.document.set_track_gain("t3", -12.0)
        await eventually(lambda: gain(ben.document, "t3") == -12.0)
        # every update b's relay hears is dropped, so ben's came from the store; the
        # announcement itself may come after the store's poll did
        await eventually(lambda: bool(dropped))


async def test_a_lost_revocation_is_found_in_the_store(
        tmp_path: Path, collab_database_url: str, any_redis_url: str, monkeypatch) -> None:
    async with deployment(tmp_path, collab_database_url, any_redis_url) as dep:
        cluster_b = dep.apps["b"][RELAY]
        cluster_b.revocation_check_seconds = 0.5
        dispatch = cluster_b._dispatch
        monkeypatch.setattr(cluster_b, "_dispatch", lambda channel, data: None if channel
                            == cluster_b._members_channel else dispatch(channel, data))
        await _ben_on_b_is_closed_when_revoked_on_a(dep)


async def test_a_process_listens_only_to_the_projects_it_holds(
        tmp_path: Path, collab_database_url: str, any_redis_url: str) -> None:
    async with deployment(tmp_path, collab_database_url, any_redis_url,
                          idle_unload_seconds=0.2) as dep:
        relay = dep.apps["a"][RELAY]
        channel = relay._room_channel(dep.project_id)
        assert channel == f"maxbooster:{{room:{dep.project_id}}}"  # one slot per project

        async def listeners() -> int:
            return await shard_subscribers(relay._redis, channel)

        async with dep.client("a", "ana"), dep.client("b", "ben"):
            await eventually(lambda: _equals(listeners(), 2))
        async with dep.client("a", "ana"):
            await eventually(lambda: _equals(listeners(), 1))  # b unloaded its room
        await eventually(lambda: _equals(listeners(), 0))


async def shard_subscribers(redis, channel: str) -> int:
    """How many connections hold ``SSUBSCRIBE channel`` (asked of the slot's master)."""
    if isinstance(redis, RedisCluster):  # redis-py would ask any node
        await redis.initialize()
        reply = await redis.execute_command("PUBSUB SHARDNUMSUB", channel,
                                            target_nodes=redis.get_node_from_key(channel))
    else:
        reply = await redis.pubsub_shardnumsub(channel)
    return dict(reply)[channel.encode()]


async def _equals(value, expected) -> bool:
    return await value == expected


@pytest.fixture
def own_redis() -> Iterator[tuple[str, callable]]:
    """A Redis server of this test's own, and a function that restarts it."""
    server = shutil.which("redis-server")
    if not server:
        pytest.fail("Redis is not installed: run scripts/setup.sh")
    port = free_port()
    command = [server, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
               "--appendonly", "no"]

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return proc
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    procs = [start()]

    def restart() -> None:
        procs[-1].kill()
        procs[-1].wait()
        procs.append(start())

    yield f"redis://127.0.0.1:{port}/0", restart
    procs[-1].terminate()
    procs[-1].wait(timeout=10)


async def test_processes_keep_in_step_through_a_redis_restart(
        tmp_path: Path, collab_database_url: str, own_redis) -> None:
    url, restart = own_redis
    async with deployment(tmp_path, collab_database_url, url) as dep, \
            dep.client("a", "ana") as ana, dep.client("b", "ben") as ben:
        ana.document.set_track_gain("t4", -1.0)
        await eventually(lambda: gain(ben.document, "t4") == -1.0)
        await asyncio.get_running_loop().run_in_executor(None, restart)
        # Edits made while Redis was away and right after it came back all arrive.
        for value in (-2.0, -3.0, -4.0):
            ana.document.set_track_gain("t4", value)
            ben.document.set_track_gain("t5", value)
            await asyncio.sleep(0.2)
        await eventually(lambda: gain(ben.document, "t4") == -4.0, timeout=20)
        await eventually(lambda: gain(ana.document, "t5") == -4.0, timeout=20)
        # ...and announcements flow again once the subscription is back.
        dep.apps["b"][RELAY].poll_seconds = 3600
        await asyncio.sleep(0.5)
        ana.document.set_track_gain("t6", -9.0)
        await eventually(lambda: gain(ben.document, "t6") == -9.0, timeout=20)


async def test_a_server_without_redis_refuses_a_second_writer_instead_of_forking(
        tmp_path: Path, collab_database_url: str) -> None:
    # Two processes on one store but no Redis link: the second append of a sequence
    # number is refused (the editor is asked to reconnect), never stored twice.
    configs = [ServerConfig(port=free_port(), data_dir=tmp_path, engine=False,
                            database_url=collab_database_url) for _ in range(2)]
    async with running_server(configs[0]) as app_a, running_server(configs[1]):
        info = await import_session(app_a[STORE], jam())
        token = app_a[TOKENS].issue(info.project_id, Role.EDITOR, "ana")
        urls = [f"{c.collab_url}/{info.project_id}" for c in configs]
        async with connect(urls[0], token) as ch_a, connect(urls[1], token) as ch_b, \
                SyncClient(ch_a) as a, SyncClient(ch_b) as b:
            await a.wait_synced()
            await b.wait_synced()
            a.document.set_track_gain("t1", -1.0)
            await eventually(lambda: _last_seq(app_a, info.project_id, 1))
            b.document.set_track_gain("t2", -2.0)
            await asyncio.wait_for(b.closed.wait(), 10)
            assert ch_b.close_code == 1011
        stored = await app_a[STORE].load(info.project_id)
        assert stored.last_seq == 1


async def _last_seq(app, project_id: str, seq: int) -> bool:
    return (await app[STORE].load(project_id)).last_seq == seq
