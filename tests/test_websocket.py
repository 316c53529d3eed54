"""End to end over real WebSockets: stock Node yjs/y-websocket clients and a Python client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from loopback import free_port
from nodepeer import NodePeer, eventually, node_ready, normalised, running_server
from yjs_updates import BAD_PARENT, TYPE_REF_9, Item, UpdateBuilder, any_string

from collab import protocol as p
from collab.client import SyncClient
from collab.errors import ProjectBusy
from collab.schema import ProjectDocument
from collab.tokens import Role
from dawclient.channel import connect
from dawserver.config import ServerConfig
from dawserver.keys import ROOMS, STORE, TOKENS
from dawserver.projects import import_session
from dsp_core.session import Clip, Session, Track

pytestmark = [pytest.mark.asyncio,
              pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))]


class Server:
    def __init__(self, app, config: ServerConfig, project_id: str) -> None:
        self.app, self.config, self.project_id = app, config, project_id

    def token(self, role: Role = Role.EDITOR, user: str = "ana", project: str | None = None
              ) -> str:
        return self.app[TOKENS].issue(project or self.project_id, role, user)

    @property
    def room_url(self) -> str:
        return f"{self.config.collab_url}/{self.project_id}"

    async def node(self, stack: contextlib.AsyncExitStack, role: Role = Role.EDITOR,
                   user: str = "ana", token: str | None = None) -> NodePeer:
        peer = await stack.enter_async_context(NodePeer())
        await peer.call("connect", url=self.config.collab_url, room=self.project_id,
                        token=token if token is not None else self.token(role, user))
        return peer


def jam() -> Session:
    return Session(name="Jam", tracks=[
        Track(f"t{i}", f"Track {i}", clips=[Clip("/audio/x.wav", 0, 48000, id=f"c{i}")])
        for i in range(8)])


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, **options):
    config = ServerConfig(port=free_port(), data_dir=tmp_path, engine=False, **options)
    async with running_server(config) as app:
        info = await import_session(app[STORE], jam())
        yield Server(app, config, info.project_id)


@pytest_asyncio.fixture
async def server(tmp_path: Path):
    async with serving(tmp_path) as server:
        yield server


async def stored_document(server: Server) -> dict:
    """The project as a restart would load it: the stored snapshot plus the logged updates."""
    stored = await server.app[STORE].load(server.project_id)
    document = ProjectDocument()
    if stored.snapshot:
        document.doc.apply_update(stored.snapshot)
    for update in stored.updates:
        document.doc.apply_update(update)
    return document.to_json()


async def synced_raw(channel) -> ProjectDocument:
    """Sync a bare channel by hand (no client library): the server's full state."""
    document = ProjectDocument()
    await channel.send(p.sync_step1(document.doc.get_state()))
    async for data in channel:
        message = p.decode_message(data)
        if message.kind == p.MSG_SYNC and message.sub == p.SYNC_STEP2:
            document.doc.apply_update(message.payload)
            return document
    raise AssertionError("the server closed before sync step 2")


async def close_of(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """The close message, skipping what the server sent before it."""
    while (message := await ws.receive(timeout=20)).type == aiohttp.WSMsgType.BINARY:
        pass
    return message


async def same_documents(*peers) -> bool:
    dumps = []
    for peer in peers:
        dumps.append(await peer.dump() if isinstance(peer, NodePeer) else peer.document.to_json())
    return all(normalised(d) == normalised(dumps[0]) for d in dumps)


async def test_two_node_clients_and_a_python_client_converge(server: Server) -> None:
    async with contextlib.AsyncExitStack() as stack:
        a = await server.node(stack, user="ana")
        b = await server.node(stack, user="ben")
        channel = await stack.enter_async_context(connect(server.room_url, server.token()))
        py = await stack.enter_async_context(SyncClient(channel))
        await a.wait_event("synced")
        await b.wait_event("synced")
        await py.wait_synced()
        for i in range(5):
            await a.call("set_track", track="t1", field="gain_db", value=-1.0 - i)
            await b.call("set_track", track="t2", field="pan", value=-0.1 * i)
            py.document.update_track("t3", mute=i % 2 == 0)
        await a.call("add_marker", marker="m-a", position=1000, name="from node a")
        py.document.add_comment("py", "from python")
        await eventually(lambda: same_documents(a, b, py))
        doc = await b.dump()
        assert doc["tracks"]["t1"]["gain_db"] == -5
        assert doc["tracks"]["t2"]["pan"] == pytest.approx(-0.4)
        assert doc["tracks"]["t3"]["mute"] is True
        assert doc["markers"]["m-a"]["name"] == "from node a"
        assert [c["text"] for c in doc["comments"].values()] == ["from python"]


async def test_offline_edits_merge_on_reconnect_without_loss_or_duplicates(server: Server
                                                                           ) -> None:
    async with contextlib.AsyncExitStack() as stack:
        a = await server.node(stack, user="ana")
        b = await server.node(stack, user="ben")
        await a.wait_event("synced")
        await b.wait_event("synced")
        await a.call("disconnect")
        await a.wait_event("status", after=0)
        for i in range(3):
            await a.call("add_marker", marker=f"offline-{i}", position=i, name="a")
            await b.call("add_marker", marker=f"online-{i}", position=i, name="b")
        for i in range(2):  # both append to the same Y.Array (the track's effects list)
            await a.call("add_effect", track="t4", effect=f"fx-a{i}", kind="gain",
                         params={"gain_db": -1.0 - i})
            await b.call("add_effect", track="t4", effect=f"fx-b{i}", kind="gain",
                         params={"gain_db": -3.0 - i})
        await a.call("set_track", track="t4", field="gain_db", value=-12)
        await b.call("set_track", track="t5", field="gain_db", value=-3)
        await asyncio.sleep(0.2)
        assert "offline-0" not in (await b.dump())["markers"]
        await a.call("reconnect")
        await eventually(lambda: same_documents(a, b))
        doc = await a.dump()
        assert sorted(doc["markers"]) == sorted(
            [f"offline-{i}" for i in range(3)] + [f"online-{i}" for i in range(3)])
        assert doc["tracks"]["t4"]["gain_db"] == -12 and doc["tracks"]["t5"]["gain_db"] == -3
        effects = [fx["id"] for fx in doc["tracks"]["t4"]["effects"]]
        assert sorted(effects) == ["fx-a0", "fx-a1", "fx-b0", "fx-b1"]  # each exactly once
        room = server.app[ROOMS].loaded(server.project_id)
        assert normalised(room.document.to_json()) == normalised(doc)
        # Going offline and back again resends a's state: still nothing doubled.
        await a.call("disconnect")
        seen = len(a.events)
        await a.call("reconnect")
        await a.wait_event("synced", after=seen)
        await eventually(lambda: same_documents(a, b, room))
        again = await b.dump()
        assert [fx["id"] for fx in again["tracks"]["t4"]["effects"]] == effects
        assert normalised(again) == normalised(doc)
        # What the server logged reloads to the very same document.
        assert normalised(await stored_document(server)) == normalised(doc)


async def test_a_late_joiner_gets_the_full_state(server: Server) -> None:
    async with contextlib.AsyncExitStack() as stack:
        a = await server.node(stack)
        await a.wait_event("synced")
        await a.call("add_track", track="t9", name="Keys")
        for i in range(8):
            await a.call("set_track", track=f"t{i}", field="gain_db", value=-i)
        late = await server.node(stack, role=Role.VIEWER, user="late")
        await late.wait_event("synced")
        await eventually(lambda: same_documents(a, late))
        doc = await late.dump()
        assert doc["tracks"]["t9"]["name"] == "Keys" and doc["tracks"]["t7"]["gain_db"] == -7
        assert len(doc["clips"]) == 8 and doc["meta"]["name"] == "Jam"


async def test_a_viewer_is_refused_and_told_but_keeps_receiving(server: Server) -> None:
    async with contextlib.AsyncExitStack() as stack:
        editor = await server.node(stack, user="ed")
        viewer = await server.node(stack, role=Role.VIEWER, user="val")
        await editor.wait_event("synced")
        await viewer.wait_event("synced")
        await viewer.call("set_track", track="t0", field="gain_db", value=-30)
        denied = await viewer.wait_event("denied")
        assert "role viewer cannot edit" in denied["reason"]
        await editor.call("set_track", track="t1", field="gain_db", value=-2)
        await eventually(lambda: _gain(viewer, "t1", -2))
        assert (await editor.dump())["tracks"]["t0"]["gain_db"] == 0
        assert not [e for e in viewer.events if e.get("event") == "close"]


async def _gain(peer: NodePeer, track: str, value: float) -> bool:
    return (await peer.dump())["tracks"][track]["gain_db"] == value


@pytest.mark.parametrize("token_kind,code", [
    ("missing", p.CloseCode.UNAUTHORIZED),
    ("forged", p.CloseCode.UNAUTHORIZED),
    ("other-project", p.CloseCode.FORBIDDEN),
])
async def test_bad_tokens_are_closed_with_a_named_code(server: Server, token_kind: str,
                                                       code: int) -> None:
    token = {"missing": "", "forged": server.token()[:-4] + "AAAA",
             "other-project": server.token(project="another")}[token_kind]
    async with contextlib.AsyncExitStack() as stack:
        peer = await server.node(stack, token=token)
        closed = await peer.wait_event("close")
        assert closed["code"] == code and closed["reason"]
        assert not [e for e in peer.events if e.get("event") == "synced"]


async def test_an_unknown_project_is_closed_as_not_found(server: Server) -> None:
    async with aiohttp.ClientSession() as session, session.ws_connect(
            f"{server.config.collab_url}/nope", params={"token": server.token(project="nope")}
    ) as ws:
        message = await ws.receive(timeout=20)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert message.data == p.CloseCode.PROJECT_NOT_FOUND


async def test_a_malformed_message_closes_that_connection_only(server: Server) -> None:
    async with contextlib.AsyncExitStack() as stack:
        node = await server.node(stack)
        await node.wait_event("synced")
        async with aiohttp.ClientSession() as session, session.ws_connect(
                server.room_url, params={"token": server.token(user="mallory")}) as ws:
            await ws.send_bytes(b"\x00\x02\xff\xff\xff\xff")
            while (message := await ws.receive(timeout=20)).type == aiohttp.WSMsgType.BINARY:
                pass
            assert message.type == aiohttp.WSMsgType.CLOSE
            assert message.data == p.CloseCode.MALFORMED_MESSAGE
            assert "malformed" in message.extra
        await node.call("set_track", track="t6", field="gain_db", value=-6)
        channel = await stack.enter_async_context(connect(server.room_url, server.token()))
        py = await stack.enter_async_context(SyncClient(channel))
        await py.wait_synced()
        await eventually(lambda: py.document.track("t6")["gain_db"] == -6)
        assert not [e for e in node.events if e.get("event") == "close"]


async def test_the_three_updates_of_issue_10_are_refused_and_yjs_clients_keep_syncing(
        tmp_path: Path) -> None:
    """Over real WebSockets: each is closed with 4400, never stored; stock yjs clients
    go on editing, and a restart loads what they see."""
    content_0x38 = UpdateBuilder([(31337, 0, [Item(0x38, any_string("x"),
                                                   parent_key="markers",
                                                   parent_sub="k")])]).encode()
    async with serving(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        ana, ben = await server.node(stack), await server.node(stack, user="ben")
        await ana.wait_event("synced")
        await ben.wait_event("synced")
        for step, update in enumerate((BAD_PARENT, TYPE_REF_9, content_0x38), start=1):
            async with aiohttp.ClientSession() as session, session.ws_connect(
                    server.room_url, params={"token": server.token(user="mallory")}) as ws:
                await ws.send_bytes(p.sync_update(update))
                message = await close_of(ws)
                assert message.data == p.CloseCode.MALFORMED_MESSAGE
            await ana.call("set_track", track="t3", field="gain_db", value=-step)
            await eventually(lambda step=step: ben_gain(ben, step))
        assert not [e for e in ana.events + ben.events if e.get("event") == "close"]
        stored = await server.app[STORE].load(server.project_id)
        assert not {BAD_PARENT, TYPE_REF_9, content_0x38} & set(stored.updates)
        seen = await ben.dump()
    async with serving_again(tmp_path, server.project_id) as again, \
            contextlib.AsyncExitStack() as stack:
        late = await again.node(stack, user="late")
        await late.wait_event("synced")
        assert await same_documents(late) and normalised(await late.dump()) == normalised(seen)


async def ben_gain(ben: NodePeer, value: int) -> bool:
    return (await ben.dump())["tracks"]["t3"]["gain_db"] == -value


@contextlib.asynccontextmanager
async def serving_again(tmp_path: Path, project_id: str):
    """The server of :func:`serving` started again on the same data, project kept."""
    config = ServerConfig(port=free_port(), data_dir=tmp_path, engine=False)
    async with running_server(config) as app:
        yield Server(app, config, project_id)


async def test_presence_reaches_others_and_is_cleared_when_a_client_leaves(server: Server
                                                                          ) -> None:
    async with contextlib.AsyncExitStack() as stack:
        channel = await stack.enter_async_context(connect(server.room_url, server.token()))
        py = await stack.enter_async_context(
            SyncClient(channel, presence={"user": "py", "colour": "#00f", "track": "t2"}))
        await py.wait_synced()
        async with NodePeer() as node:
            await node.call("connect", url=server.config.collab_url, room=server.project_id,
                            token=server.token(user="node"))
            await node.wait_event("synced")
            await node.call("presence", state={"user": "node", "cursor": 4800, "track": "t1"})
            await eventually(lambda: any(s.get("user") == "node" for s in py.presence.values()))
            await eventually(lambda: _node_sees(node, "py"))
        await eventually(lambda: not any(s.get("user") == "node" for s in py.presence.values()))


async def test_a_yjs_client_that_reconnects_is_seen_again_under_its_old_id(server: Server
                                                                         ) -> None:
    async def node_states(watcher: NodePeer) -> dict[str, dict]:
        states = (await watcher.call("presence_dump"))["states"]
        return {cid: s for cid, s in states.items() if s.get("user") == "node"}

    async with NodePeer() as node, NodePeer() as watcher:
        for peer, user in ((watcher, "watcher"), (node, "node")):
            await peer.call("connect", url=server.config.collab_url, room=server.project_id,
                            token=server.token(user=user))
            await peer.wait_event("synced")
        await node.call("presence", state={"user": "node", "cursor": 1})
        await eventually(lambda: node_states(watcher))
        [client_id] = await node_states(watcher)
        await node.call("disconnect")
        await eventually(lambda: _not(node_states(watcher)))  # the server said it is gone
        after = len(node.events)
        await node.call("reconnect")
        await node.wait_event("synced", after=after)
        # back with the clock it had, behind the server's null: a stock yjs client sees it
        # again at once, not after two of its 15-second renewals
        await eventually(lambda: _has(node_states(watcher), client_id), timeout=5)
        await node.call("presence", state={"user": "node", "cursor": 2})
        await eventually(lambda: _cursor(node_states(watcher), client_id, 2), timeout=5)


async def _not(states: Awaitable[dict]) -> bool:
    return not await states


async def _has(states: Awaitable[dict], client_id: str) -> bool:
    return client_id in await states


async def _cursor(states: Awaitable[dict], client_id: str, cursor: int) -> bool:
    return (await states).get(client_id, {}).get("cursor") == cursor


async def _node_sees(node: NodePeer, user: str) -> bool:
    states = (await node.call("presence_dump"))["states"]
    return any(s.get("user") == user for s in states.values())


async def test_an_edit_sent_right_before_closing_is_stored_and_relayed(server: Server) -> None:
    async with contextlib.AsyncExitStack() as stack:
        channel = await stack.enter_async_context(connect(server.room_url, server.token()))
        other = await stack.enter_async_context(SyncClient(channel))
        await other.wait_synced()
        async with connect(server.room_url, server.token(user="tab")) as tab:
            document = await synced_raw(tab)
            before = document.doc.get_state()
            document.update_track("t3", gain_db=-7.5, mute=True)
            await tab.send(p.sync_update(document.doc.get_update(before)))
            await tab.close(1000, "tab closed")  # the close frame follows the edit at once
        await eventually(lambda: other.document.track("t3")["gain_db"] == -7.5)
        assert other.document.track("t3")["mute"] is True
        stored = await stored_document(server)
        assert stored["tracks"]["t3"]["gain_db"] == -7.5 and stored["tracks"]["t3"]["mute"]


def awareness_of_size(size: int) -> bytes:
    """A valid awareness message of exactly ``size`` bytes."""
    def message(pad: int) -> bytes:
        state = {"user": "big", "pad": "x" * pad}
        return p.awareness(p.encode_awareness([p.AwarenessEntry(7, 1, state)]))

    pad = size - len(message(0))
    while len(message(pad)) != size:  # the varint length prefixes grow with the pad
        pad -= len(message(pad)) - size
    return message(pad)


@pytest.mark.parametrize("size", [4097, 3 * 4096, 64 * 1024])
async def test_any_message_over_the_limit_closes_with_4413(tmp_path: Path, size: int) -> None:
    async with serving(tmp_path, max_message_bytes=4096) as server, \
            aiohttp.ClientSession() as session:
        async with session.ws_connect(server.room_url, params={"token": server.token()},
                                      max_msg_size=0) as fine:
            await fine.send_bytes(awareness_of_size(4096))  # exactly the limit: accepted
            await fine.send_bytes(p.query_awareness())
            while (reply := await fine.receive(timeout=20)).type == aiohttp.WSMsgType.BINARY:
                if p.decode_message(reply.data).kind == p.MSG_AWARENESS and \
                        b'"big"' in reply.data:
                    break
            assert reply.type == aiohttp.WSMsgType.BINARY
        async with session.ws_connect(server.room_url, params={"token": server.token()},
                                      max_msg_size=0) as ws:
            await ws.send_bytes(awareness_of_size(size))
            closed = await close_of(ws)
            assert closed.type == aiohttp.WSMsgType.CLOSE
            assert closed.data == p.CloseCode.MESSAGE_TOO_BIG
            assert "4096-byte limit" in closed.extra


async def test_a_full_server_closes_a_new_document_with_4503(tmp_path: Path) -> None:
    async with serving(tmp_path, max_documents=1) as server, \
            aiohttp.ClientSession() as session:
        second = await import_session(server.app[STORE], jam())
        async with connect(server.room_url, server.token()) as channel, \
                SyncClient(channel) as holder:
            await holder.wait_synced()
            async with session.ws_connect(
                    f"{server.config.collab_url}/{second.project_id}",
                    params={"token": server.token(project=second.project_id)}) as ws:
                closed = await close_of(ws)
                assert closed.type == aiohttp.WSMsgType.CLOSE
                assert closed.data == p.CloseCode.SERVER_FULL
                assert closed.extra == p.CloseCode.SERVER_FULL.reason
            assert not holder.closed.is_set()
        assert list(server.app[ROOMS].rooms) == [server.project_id]


async def test_a_held_project_closes_with_4409_and_answers_409_until_released(
        server: Server) -> None:
    """While a project's document moves between regions its room is held closed: a
    client is told to reconnect shortly (4409, not a final code) and HTTP answers 409
    with Retry-After; released, both are served again."""
    rooms = server.app[ROOMS]
    document_url = f"{server.config.base_url}/projects/{server.project_id}"
    headers = {"Authorization": f"Bearer {server.token()}"}
    async with aiohttp.ClientSession() as session, \
            connect(server.room_url, server.token()) as channel, \
            SyncClient(channel) as editing:
        await editing.wait_synced()
        async with rooms.use(server.project_id) as room:  # an HTTP edit's room, say
            pass
        async with rooms.held(server.project_id, "its document is moving (test)"):
            await asyncio.wait_for(editing.closed.wait(), 30)  # told to come back soon
            assert channel.close_code == p.CloseCode.PROJECT_BUSY
            with pytest.raises(ProjectBusy):  # the closed room takes no edit
                await room.edit(lambda document: document.rename("Lost?"))
            async with session.ws_connect(server.room_url,
                                          params={"token": server.token()}) as ws:
                closed = await close_of(ws)
                assert closed.data == p.CloseCode.PROJECT_BUSY
                assert closed.extra == p.CloseCode.PROJECT_BUSY.reason
            async with session.get(document_url, headers=headers) as response:
                assert response.status == 409
                assert int(response.headers["Retry-After"]) >= 1
                assert "moving" in await response.text()
            assert rooms.loaded(server.project_id) is None
        async with session.get(document_url, headers=headers) as response:
            assert response.status == 200
        async with connect(server.room_url, server.token()) as channel, \
                SyncClient(channel) as client:
            await client.wait_synced()
