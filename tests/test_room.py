"""A room: durable before relay, roles, malformed input, server edits, presence, restore."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from pycrdt import Doc, Map
from room_helpers import Client, MemoryChannel, project_room, state_of, wait_for

from collab import protocol as p
from collab.room import Room, RoomLimits
from collab.schema import ProjectDocument
from collab.store import open_store
from collab.tokens import Role
from collab.update_format import read_update
from dsp_core.session import Clip, Session, Track

pytestmark = pytest.mark.asyncio


def a_session() -> Session:
    return Session(tracks=[Track(f"t{i}", clips=[Clip("/x.wav", 0, 100, id=f"c{i}")])
                           for i in range(4)])


@pytest_asyncio.fixture
async def store(tmp_path: Path):
    async with open_store(None, tmp_path) as store:
        update = ProjectDocument.from_session(a_session()).doc.get_update()
        await store.create_project("song", "Song", update)
        yield store


class GatedStore:
    """Delegates to a real store but holds every append until ``gate`` is set."""

    def __init__(self, inner) -> None:
        self.inner, self.gate, self.appended, self.held = inner, asyncio.Event(), [], []

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    async def append(self, project_id: str, first_seq: int, updates: list[bytes]) -> None:
        self.held.extend(updates)
        await self.gate.wait()
        await self.inner.append(project_id, first_seq, updates)
        self.appended.extend(updates)


async def test_a_stop_waits_for_the_batch_being_stored_and_its_edit_returns(store) -> None:
    """A room stopped (unloaded, moved, shut down) while the flusher stores a server
    edit's batch lets that batch finish: the edit returns and its change is stored."""
    gated = GatedStore(store)
    room = project_room("song", gated)
    await room.start()
    edit = asyncio.create_task(room.edit(lambda d: d.rename("New name")))
    await wait_for(lambda: gated.held)  # the batch is off the queue, being stored
    stopping = asyncio.create_task(room.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # waits for the batch, rather than cancel it
    gated.gate.set()
    async with asyncio.timeout(10):
        await stopping
        await edit
    assert gated.appended == gated.held
    again = project_room("song", store)
    async with again:
        assert again.document.doc.get("meta", type=Map)["name"] == "New name"


async def test_an_update_is_relayed_only_after_it_is_durable(store) -> None:
    gated = GatedStore(store)
    async with project_room("song", gated) as room:
        ana, ben = Client(room), Client(room, user="ben")
        gated.gate.set()
        await ana.sync()
        await ben.sync()
        gated.gate.clear()
        update = ana.edit(lambda d: d.set_track_gain("t1", -6.0))
        await asyncio.sleep(0.05)
        assert not ben.channel.messages(p.MSG_SYNC, p.SYNC_UPDATE)
        assert gated.appended == []
        gated.gate.set()
        relayed = await wait_for(lambda: ben.channel.messages(p.MSG_SYNC, p.SYNC_UPDATE))
        assert gated.appended == [update]  # stored as received, relayed as yrs encodes it
        assert read_update(relayed[0].payload).reached == read_update(update).reached
        assert not ana.channel.messages(p.MSG_SYNC, p.SYNC_UPDATE)
        ben.apply_received()
        assert ben.doc.track("t1")["gain_db"] == -6.0
        await ana.leave()
        await ben.leave()


async def test_viewer_updates_are_refused_and_the_viewer_is_told(store) -> None:
    async with project_room("song", store) as room:
        editor, viewer = Client(room), Client(room, Role.VIEWER, "val")
        await editor.sync()
        await viewer.sync()
        viewer.edit(lambda d: d.set_track_gain("t0", -20.0))
        denied = await wait_for(lambda: viewer.channel.messages(p.MSG_AUTH))
        assert b"role viewer cannot edit" in denied[0].payload
        editor.edit(lambda d: d.set_track_gain("t2", -1.0))
        await wait_for(lambda: viewer.channel.messages(p.MSG_SYNC, p.SYNC_UPDATE))
        assert room.document.track("t0")["gain_db"] == 0.0
        assert room.document.track("t2")["gain_db"] == -1.0
        assert room.last_seq == 1 and viewer.channel.closed is None
        await editor.leave()
        await viewer.leave()


async def test_a_viewers_empty_sync_reply_is_not_a_refusal(store) -> None:
    async with project_room("song", store) as room:
        viewer = Client(room, Role.VIEWER, "val")
        await viewer.sync()
        viewer.send(p.sync_step2(viewer.doc.doc.get_update(room.doc.get_state())))
        viewer.send(p.sync_step2(p.EMPTY_UPDATE))
        await asyncio.sleep(0.05)
        assert viewer.channel.messages(p.MSG_AUTH) == []
        await viewer.leave()


@pytest.mark.parametrize("garbage,code", [
    (b"\x09\x01", p.CloseCode.MALFORMED_MESSAGE),
    (p.sync_update(b"\x01\x02\x03garbage"), p.CloseCode.MALFORMED_MESSAGE),
    ("hello", p.CloseCode.MALFORMED_MESSAGE),
    (p.sync_update(b"\x00" * 5000), p.CloseCode.MESSAGE_TOO_BIG),
])
async def test_a_bad_message_closes_only_its_connection(store, garbage, code) -> None:
    async with project_room("song", store, RoomLimits(max_message_bytes=4096)) as room:
        good, bad = Client(room), Client(room, user="mallory")
        await good.sync()
        await bad.sync()
        bad.send(garbage)
        await bad.task
        assert bad.channel.closed[0] == code
        good.edit(lambda d: d.set_track_gain("t3", -2.0))
        await wait_for(lambda: room.document.track("t3")["gain_db"] == -2.0)
        assert good.channel.closed is None and room.peers == {good.peer}
        await good.leave()


async def test_a_late_joiner_gets_the_full_state(store) -> None:
    async with project_room("song", store) as room:
        ana = Client(room)
        await ana.sync()
        for i in range(4):
            ana.edit(lambda d, i=i: d.set_track_gain(f"t{i}", -float(i)))
        ana.edit(lambda d: d.add_marker(48000, "drop"))
        await wait_for(lambda: room.last_seq == 5)
        late = Client(room, Role.VIEWER, "late")
        await late.sync()
        assert late.doc.to_json() == room.document.to_json() == ana.doc.to_json()
        await ana.leave()
        await late.leave()


async def test_server_edits_are_durable_and_reach_every_peer(store) -> None:
    async with project_room("song", store) as room:
        ana = Client(room)
        await ana.sync()
        await room.edit(lambda d: d.update_transport(tempo=140.0))
        assert room.last_seq == 1
        await wait_for(lambda: ana.channel.messages(p.MSG_SYNC, p.SYNC_UPDATE))
        ana.apply_received()
        assert ana.doc.transport()["tempo"] == 140.0
        await ana.leave()
    stored = await store.load("song")
    assert len(stored.updates) == 0 and stored.snapshot_seq == 1


async def test_presence_is_relayed_and_cleared_when_a_client_leaves(store) -> None:
    async with project_room("song", store) as room:
        ana, ben = Client(room), Client(room, user="ben")
        await ana.sync()
        await ben.sync()
        state = {"user": "ana", "colour": "#f00", "track": "t1"}
        ana.send(p.awareness(p.encode_awareness([p.AwarenessEntry(42, 1, state)])))
        await wait_for(lambda: ben.channel.messages(p.MSG_AWARENESS))
        assert room.presence.states() == {42: state}
        await ana.leave()
        gone = await wait_for(lambda: ben.channel.messages(p.MSG_AWARENESS)[1:])
        assert p.decode_awareness(gone[0].payload) == [p.AwarenessEntry(42, 2, None)]
        assert room.presence.states() == {}
        await ben.leave()


async def test_a_server_announcement_reaches_every_peer_and_outlives_their_leaving(
        store) -> None:
    async with project_room("song", store) as room:
        ana = Client(room)
        await ana.sync()
        state = {"lv2": {"bypassed": []}}
        room.announce(p.encode_awareness([p.AwarenessEntry(7, 1, state)]))
        [told] = await wait_for(lambda: ana.channel.messages(p.MSG_AWARENESS))
        assert p.decode_awareness(told.payload) == [p.AwarenessEntry(7, 1, state)]
        await ana.leave()
        assert room.presence.states() == {7: state}  # no peer controls it: it stays
        ben = Client(room, user="ben")  # a late joiner gets it with everyone's state
        [joined] = await wait_for(lambda: ben.channel.messages(p.MSG_AWARENESS))
        assert p.decode_awareness(joined.payload) == [p.AwarenessEntry(7, 1, state)]
        room.announce(p.encode_awareness([p.AwarenessEntry(7, 2, None)]))
        await wait_for(lambda: ben.channel.messages(p.MSG_AWARENESS)[1:])
        assert room.presence.states() == {}
        await ben.leave()


def awareness_of(*entries: p.AwarenessEntry) -> bytes:
    return p.awareness(p.encode_awareness(list(entries)))


def told(client: Client) -> list[p.AwarenessEntry]:
    """Every awareness entry ``client`` was sent, in order."""
    return [entry for message in client.channel.messages(p.MSG_AWARENESS)
            for entry in p.decode_awareness(message.payload)]


SERVER = (1 << 32) + 5  # an id of collab.presence.server_client_id()'s range
BYPASSED = {"lv2": {"bypassed": [{"reason": "failed", "owner": "t1", "effect": "fx-1"}]}}


async def test_a_peer_cannot_change_or_withdraw_the_servers_awareness_entry(store) -> None:
    limits = RoomLimits(server_fields=frozenset({"lv2"}))
    async with project_room("song", store, limits) as room:
        mallory, ben = Client(room, user="mallory"), Client(room, user="ben")
        await mallory.sync()
        await ben.sync()
        room.announce(p.encode_awareness([p.AwarenessEntry(SERVER, 1, BYPASSED)]))
        await wait_for(lambda: told(ben))
        dropped = REGISTRY.get_sample_value("collab_awareness_dropped_total")
        mallory.send(awareness_of(p.AwarenessEntry(SERVER, 9, None)))  # withdraw it
        mallory.send(awareness_of(p.AwarenessEntry(SERVER, 10, {"lv2": {"bypassed": []}})))
        # its own state may not say what the server says: relayed without that field
        mallory.send(awareness_of(p.AwarenessEntry(77, 1, {"user": "m", **BYPASSED})))
        await wait_for(lambda: len(told(ben)) > 1)
        await asyncio.sleep(0.05)
        assert told(ben) == [p.AwarenessEntry(SERVER, 1, BYPASSED),
                             p.AwarenessEntry(77, 1, {"user": "m"})]
        assert room.presence.states() == {SERVER: BYPASSED, 77: {"user": "m"}}
        assert not mallory.peer.closing  # stock clients echo others' entries: not closed
        assert REGISTRY.get_sample_value("collab_awareness_dropped_total") == dropped + 2
        await mallory.leave()
        assert room.presence.states() == {SERVER: BYPASSED}
        await ben.leave()


async def test_a_peer_cannot_claim_a_server_id_before_the_server_announces(store) -> None:
    """A server's id is learnt from any project it announced in; in a room where it has
    not announced yet, a peer claiming it with a high clock would hide the server's
    later announcements (their clocks are lower). The servers' whole id range is kept."""
    limits = RoomLimits(server_fields=frozenset({"lv2"}))
    async with project_room("song", store, limits) as room:
        mallory, ben = Client(room, user="mallory"), Client(room, user="ben")
        await mallory.sync()
        await ben.sync()
        mallory.send(awareness_of(p.AwarenessEntry(SERVER, 2 ** 40, {"user": "x"})))
        mallory.send(awareness_of(p.AwarenessEntry(1 << 32, 1, {"user": "y"})))
        mallory.send(awareness_of(p.AwarenessEntry(77, 1, {"user": "m"})))
        await wait_for(lambda: told(ben))
        room.announce(p.encode_awareness([p.AwarenessEntry(SERVER, 1, BYPASSED)]))
        await wait_for(lambda: len(told(ben)) > 1)
        await asyncio.sleep(0.05)
        assert told(ben) == [p.AwarenessEntry(77, 1, {"user": "m"}),
                             p.AwarenessEntry(SERVER, 1, BYPASSED)]
        assert room.presence.states() == {SERVER: BYPASSED, 77: {"user": "m"}}
        await mallory.leave()
        await ben.leave()


async def test_a_peer_cannot_write_another_connected_peers_awareness_entry(store) -> None:
    async with project_room("song", store) as room:
        ana, mallory, ben = Client(room), Client(room, user="mallory"), Client(room, "ben")
        for client in (ana, mallory, ben):
            await client.sync()
        ana.send(awareness_of(p.AwarenessEntry(42, 1, {"user": "ana", "cursor": 0})))
        await wait_for(lambda: told(ben))
        # another user's newer state, and a null, for ana's id: dropped, not relayed
        mallory.send(awareness_of(p.AwarenessEntry(42, 5, {"user": "ana", "cursor": 666}),
                                  p.AwarenessEntry(42, 6, None)))
        # mallory's own id (in the same update) still works, and it is the only one it gets
        mallory.send(awareness_of(p.AwarenessEntry(43, 1, {"user": "mallory"})))
        mallory.send(awareness_of(p.AwarenessEntry(44, 1, {"user": "ghost"})))
        ana.send(awareness_of(p.AwarenessEntry(42, 2, {"user": "ana", "cursor": 10})))
        await wait_for(lambda: len(told(ben)) == 3)
        await asyncio.sleep(0.05)
        assert told(ben) == [p.AwarenessEntry(42, 1, {"user": "ana", "cursor": 0}),
                             p.AwarenessEntry(43, 1, {"user": "mallory"}),
                             p.AwarenessEntry(42, 2, {"user": "ana", "cursor": 10})]
        await mallory.leave()  # leaving withdraws its own id only
        assert room.presence.states() == {42: {"user": "ana", "cursor": 10}}
        await ana.leave()
        await ben.leave()


async def test_a_reconnecting_client_takes_its_old_awareness_id_back(store) -> None:
    async with project_room("song", store) as room:
        ana, ben = Client(room), Client(room, user="ben")
        await ana.sync()
        await ben.sync()
        ana.send(awareness_of(p.AwarenessEntry(42, 3, {"user": "ana"})))
        await wait_for(lambda: told(ben))
        await ana.leave()
        await wait_for(lambda: len(told(ben)) == 2)  # gone: null at clock 4
        # another user cannot take the id ana's client will come back with
        mallory = Client(room, user="mallory")
        await mallory.sync()
        mallory.send(awareness_of(p.AwarenessEntry(42, 9, {"user": "ana"})))
        again = Client(room)
        await again.sync()
        # a yjs client comes back with the clock it had: told the null, it bumps it
        again.send(awareness_of(p.AwarenessEntry(42, 3, {"user": "ana"})))
        await wait_for(lambda: told(again)[-1:] == [p.AwarenessEntry(42, 4, None)])
        again.send(awareness_of(p.AwarenessEntry(42, 5, {"user": "ana"})))
        await wait_for(lambda: len(told(ben)) == 3)
        assert told(ben)[2] == p.AwarenessEntry(42, 5, {"user": "ana"})
        # a second connection of the same user takes it over (the first one went silent)
        third = Client(room)
        await third.sync()
        third.send(awareness_of(p.AwarenessEntry(42, 6, {"user": "ana", "tab": 2})))
        await wait_for(lambda: len(told(ben)) == 4)
        await again.leave()  # no longer its id: nothing withdrawn
        assert room.presence.states() == {42: {"user": "ana", "tab": 2}}
        for client in (third, mallory, ben):
            await client.leave()


async def test_a_loaded_room_forgets_ids_long_gone(store, monkeypatch) -> None:
    """Every page load comes with a new awareness id: what the room keeps of its past
    connections is bounded by the horizon, not by how many there were."""
    monkeypatch.setattr("collab.presence.GONE_FORGET_SECONDS", 0.0)
    async with project_room("song", store) as room:
        ben = Client(room, user="ben")
        await ben.sync()
        ben.send(awareness_of(p.AwarenessEntry(7, 1, {"user": "ben"})))
        await wait_for(lambda: room.presence.clock(7) is not None)
        for client_id in range(100, 130):
            visitor = Client(room, user=f"v{client_id}")
            await visitor.sync()
            visitor.send(awareness_of(p.AwarenessEntry(client_id, 1, {"user": "v"})))
            await wait_for(lambda cid=client_id: room.presence.clock(cid) is not None)
            await visitor.leave()
        assert room.presence.states() == {7: {"user": "ben"}}  # ben's own stays
        assert set(room._id_users) <= {7, 129} and room.presence.clock(100) is None
        await ben.leave()


async def test_another_process_cannot_overwrite_an_id_a_connection_here_owns(
        store) -> None:
    """Alice's tab went quiet for over 30 s (a background tab); on another server process
    Mallory claims her id there, where it looks free. Relayed here, where Alice is still
    connected and owns it, that entry is dropped; the rest of the message still counts."""
    async with project_room("song", store) as room:
        ana, ben = Client(room), Client(room, user="ben")
        await ana.sync()
        await ben.sync()
        ana.send(awareness_of(p.AwarenessEntry(42, 1, {"user": "ana"})))
        await wait_for(lambda: told(ben))
        room.receive_awareness(awareness_of(p.AwarenessEntry(42, 9, {"user": "mallory"}),
                                            p.AwarenessEntry(77, 1, {"user": "zoe"})))
        await wait_for(lambda: len(told(ben)) == 2)
        assert told(ben)[1] == p.AwarenessEntry(77, 1, {"user": "zoe"})
        assert room.presence.states() == {42: {"user": "ana"}, 77: {"user": "zoe"}}
        ana.send(awareness_of(p.AwarenessEntry(42, 2, {"user": "ana", "cursor": 3})))
        await wait_for(lambda: len(told(ben)) == 3)  # her renewal is not hidden either
        assert told(ben)[2] == p.AwarenessEntry(42, 2, {"user": "ana", "cursor": 3})
        await ana.leave()
        await ben.leave()


class PresenceLink:
    """A link to other server processes that keeps the presence it is told to announce."""

    def __init__(self) -> None:
        self.presence: list[tuple[list[p.AwarenessEntry], dict[int, str]]] = []

    def publish_update(self, project_id: str, first_seq: int, count: int,
                       update: bytes) -> None:
        pass

    def publish_awareness(self, project_id: str, message: bytes,
                          owners: dict[int, str]) -> None:
        self.presence.append((p.decode_awareness(p.decode_message(message).payload), owners))


async def test_presence_goes_to_other_processes_with_the_user_who_owns_each_id(
        store, monkeypatch) -> None:
    """Ids are announced with their owner; one owned on another process stays that user's
    here, even once its state looks outdated: only the same user may take it then."""
    link = PresenceLink()
    async with Room("song", store, link=link, document_type=ProjectDocument) as room:
        ana = Client(room)
        await ana.sync()
        ana.send(awareness_of(p.AwarenessEntry(42, 1, {"user": "ana"})))
        await wait_for(lambda: link.presence)
        assert link.presence == [([p.AwarenessEntry(42, 1, {"user": "ana"})], {42: "ana"})]
        room.receive_awareness(awareness_of(p.AwarenessEntry(77, 1, {"user": "zoe"})),
                               {77: "zoe"})
        monkeypatch.setattr("collab.presence.OUTDATED_SECONDS", 0.0)  # zoe's tab is quiet
        mallory, zoe = Client(room, user="mallory"), Client(room, user="zoe")
        for client in (mallory, zoe):
            await client.sync()
        mallory.send(awareness_of(p.AwarenessEntry(77, 5, {"user": "mallory"})))
        zoe.send(awareness_of(p.AwarenessEntry(77, 6, {"user": "zoe", "tab": 2})))
        await wait_for(lambda: len(link.presence) == 2)  # only zoe's: hers to take here
        assert link.presence[1] == ([p.AwarenessEntry(77, 6, {"user": "zoe", "tab": 2})],
                                    {77: "zoe"})
        await ana.leave()
        await wait_for(lambda: len(link.presence) == 3)  # her null, still with its owner
        assert link.presence[2] == ([p.AwarenessEntry(42, 2, None)], {42: "ana"})
        for client in (mallory, zoe):
            await client.leave()


async def test_disconnect_user_closes_only_that_users_connections(store) -> None:
    async with project_room("song", store) as room:
        ana, ben = Client(room), Client(room, user="ben")
        await ana.sync()
        assert room.disconnect_user("ben", p.CloseCode.ROLE_REVOKED, "revoked") == 1
        await ben.task
        assert ben.channel.closed == (p.CloseCode.ROLE_REVOKED, "revoked")
        assert ana.channel.closed is None
        await ana.leave()


async def test_an_update_sent_just_before_closing_is_stored_and_relayed(store) -> None:
    async with project_room("song", store) as room:
        ana, ben = Client(room), Client(room, user="ben")
        await ana.sync()
        await ben.sync()
        ana.edit(lambda d: d.set_track_gain("t2", -7.5))
        ana.send(None)  # the close arrives with the edit, as when a tab is closed
        await ana.task
        relayed = await wait_for(lambda: ben.channel.messages(p.MSG_SYNC, p.SYNC_UPDATE))
        ben.apply_received()
        assert relayed and ben.doc.track("t2")["gain_db"] == -7.5
        assert room.last_seq == 1
        await ben.leave()
    async with project_room("song", store) as reloaded:
        assert reloaded.document.track("t2")["gain_db"] == -7.5


async def test_a_revoked_peers_queued_update_is_dropped(store) -> None:
    gated = GatedStore(store)
    gated.gate.set()
    async with project_room("song", gated) as room:
        ana, ben = Client(room), Client(room, user="ben")
        await ana.sync()
        await ben.sync()
        ana.edit(lambda d: d.set_track_gain("t2", -7.5))
        room.disconnect_user("ana", p.CloseCode.ROLE_REVOKED, "revoked")
        await ana.task
        ben.edit(lambda d: d.set_track_gain("t3", -1.0))
        await wait_for(lambda: room.last_seq == 1)
        assert room.document.track("t2")["gain_db"] == 0.0
        assert ana.channel.closed[0] == p.CloseCode.ROLE_REVOKED
        await ben.leave()


async def test_a_lowered_role_drops_the_updates_still_queued(store) -> None:
    gated = GatedStore(store)
    async with project_room("song", gated) as room:
        ana = Client(room)
        gated.gate.set()
        await ana.sync()
        gated.gate.clear()
        ana.edit(lambda d: d.set_track_gain("t0", -3.0))  # being stored (held at the gate)
        await wait_for(lambda: gated.held)
        ana.edit(lambda d: d.set_track_gain("t1", -4.0))  # accepted, queued behind it
        await wait_for(lambda: len(room._queue) == 1)
        assert room.set_role("ana", Role.VIEWER) == 1
        gated.gate.set()
        denied = await wait_for(lambda: ana.channel.messages(p.MSG_AUTH))
        assert b"role viewer cannot edit" in denied[0].payload
        assert room.document.track("t0")["gain_db"] == -3.0
        assert room.document.track("t1")["gain_db"] == 0.0 and room.last_seq == 1
        assert ana.channel.closed is None
        await ana.leave()


async def test_restart_restores_the_document_exactly(collab_database_url: str,
                                                     tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        await store.create_project("song", "Song",
                                   ProjectDocument.from_session(a_session()).doc.get_update())
        async with project_room("song", store, RoomLimits(compact_every=7)) as room:
            ana = Client(room)
            await ana.sync()
            for i in range(20):
                ana.edit(lambda d, i=i: d.set_track_gain(f"t{i % 4}", -0.5 * i))
            ana.edit(lambda d: d.remove_clip("c2"))
            await wait_for(lambda: room.last_seq == 21)
            await wait_for(lambda: room._snapshot_seq >= 7)  # compaction runs in background
            expected = room.document.to_json()
            expected_state = state_of(room.doc)
            await ana.leave()
            before_stop = await store.load("song")
        assert before_stop.snapshot_seq >= 7 and before_stop.last_seq == 21
    async with open_store(collab_database_url, tmp_path) as store, \
            project_room("song", store) as room:
        assert room.document.to_json() == expected
        assert state_of(room.doc) == expected_state


async def test_a_room_that_dies_without_stopping_reloads_what_every_client_received(
        collab_database_url: str, tmp_path: Path) -> None:
    async with open_store(collab_database_url, tmp_path) as store:
        await store.create_project("song", "Song",
                                   ProjectDocument.from_session(a_session()).doc.get_update())
        room = project_room("song", store, RoomLimits(compact_every=7))
        await room.start()
        ana, ben = Client(room), Client(room, user="ben")
        await ana.sync()
        await ben.sync()
        for i in range(10):
            ana.edit(lambda d, i=i: d.set_track_gain(f"t{i % 4}", -0.5 * i))
            ben.edit(lambda d, i=i: d.add_marker(i, f"b{i}"))
        await wait_for(lambda: room.last_seq == 20)
        await wait_for(lambda: room._compaction is not None and room._compaction.done())
        room.limits = RoomLimits()  # no more snapshots: the rest lives only in the log
        ana.edit(lambda d: d.remove_clip("c2"))
        ben.edit(lambda d: d.update_transport(tempo=97.0))
        await wait_for(lambda: room.last_seq == 22)

        def converged() -> bool:
            for client in (ana, ben):
                client.apply_received()
            return ana.doc.to_json() == ben.doc.to_json() == room.document.to_json()

        await wait_for(converged)
        received = ben.doc.to_json()
        # The process dies: no drain, no final snapshot, the peers just vanish.
        for task in (room._flusher, ana.task, ben.task):
            task.cancel()
        await asyncio.gather(room._flusher, ana.task, ben.task, return_exceptions=True)
        on_disk = await store.load("song")
        assert 7 <= on_disk.snapshot_seq < on_disk.last_seq == 22
    async with open_store(collab_database_url, tmp_path) as store, \
            project_room("song", store) as again:
        assert again.last_seq == 22
        assert again.document.to_json() == received
        assert len(again.document.markers()) == 10 and "c2" not in received["clips"]
        assert again.document.transport()["tempo"] == 97.0


async def test_updates_from_many_peers_are_batched_and_all_kept(store) -> None:
    async with project_room("song", store) as room:
        clients = [Client(room, user=f"u{i}") for i in range(6)]
        for client in clients:
            await client.sync()
        for n in range(10):
            for i, client in enumerate(clients):
                client.edit(lambda d, i=i, n=n: d.add_marker(n, f"{i}-{n}"))
        await wait_for(lambda: room.last_seq == 60)
        assert len(room.document.markers()) == 60
        other = Doc()
        other.apply_update(room.doc.get_update())
        assert len(ProjectDocument(other).markers()) == 60
        for client in clients:
            await client.leave()


class StuckChannel(MemoryChannel):
    """A peer that stops reading: every send blocks forever."""

    async def send(self, data: bytes) -> None:
        await asyncio.Event().wait()


async def test_a_peer_that_stops_reading_is_dropped_and_the_others_continue(store) -> None:
    async with project_room("song", store, RoomLimits(max_outbox=3)) as room:
        ana = Client(room)
        stuck = Client(room, user="stuck")
        stuck.channel.__class__ = StuckChannel
        await ana.sync()
        for i in range(40):
            ana.edit(lambda d, i=i: d.add_marker(i, str(i)))
            await asyncio.sleep(0.005)
        await wait_for(lambda: stuck.channel.closed is not None)
        assert stuck.channel.closed[0] == p.CloseCode.TOO_SLOW
        await asyncio.wait_for(stuck.task, 5)
        assert stuck.peer not in room.peers
        await wait_for(lambda: room.last_seq == 40)
        assert len(room.document.markers()) == 40 and ana.channel.closed is None
        await ana.leave()


async def test_a_viewer_asking_for_the_document_again_without_reading_is_dropped(
        store) -> None:
    """Each sync step 1 is answered with the whole document: a viewer that keeps asking
    and never reads is dropped once its answers outweigh the byte limit, long before
    10,000 copies of the document are held for it."""
    whole = len(ProjectDocument.from_session(a_session()).doc.get_update())
    async with project_room("song", store, RoomLimits(max_outbox_bytes=4 * whole)) as room:
        ana = Client(room)
        await ana.sync()
        viewer = Client(room, Role.VIEWER, "mallory")
        viewer.channel.__class__ = StuckChannel
        for _ in range(50):
            viewer.send(p.sync_step1(Doc().get_state()))
            await asyncio.sleep(0)
        await wait_for(lambda: viewer.channel.closed is not None)
        assert viewer.channel.closed[0] == p.CloseCode.TOO_SLOW
        assert viewer.peer.outbox_bytes == 0 and ana.channel.closed is None
        await asyncio.wait_for(viewer.task, 5)
        await ana.leave()


async def test_compaction_is_amortised_against_the_snapshot_size() -> None:
    limits = RoomLimits(compact_every=100, compact_min_bytes=1000)
    assert not limits.should_compact(0, 0, 0)
    assert limits.should_compact(100, 10, 10_000)
    assert not limits.should_compact(99, 5_000, 10_000)
    assert limits.should_compact(99, 10_000, 10_000)
    assert not limits.should_compact(5, 999, 10)


class FailingStore(GatedStore):
    """A real store whose next append fails, as a full disk or a lost database would."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.gate.set()
        self.fail_next = False

    async def append(self, project_id: str, first_seq: int, updates: list[bytes]) -> None:
        if self.fail_next:
            self.fail_next = False
            from collab.errors import StoreError

            raise StoreError("disk full")
        await super().append(project_id, first_seq, updates)


async def test_a_failed_append_changes_nothing_and_closes_only_its_senders(store) -> None:
    failing = FailingStore(store)
    async with project_room("song", failing) as room:
        ana, ben = Client(room), Client(room, user="ben")
        await ana.sync()
        await ben.sync()
        failing.fail_next = True
        ana.edit(lambda d: d.set_track_gain("t1", -9.0))
        await asyncio.wait_for(ana.task, 5)
        assert ana.channel.closed[0] == 1011
        assert room.document.track("t1")["gain_db"] == 0.0 and room.last_seq == 0
        assert not ben.channel.messages(p.MSG_SYNC, p.SYNC_UPDATE)
        ben.edit(lambda d: d.set_track_gain("t2", -1.0))
        await wait_for(lambda: room.last_seq == 1)
        assert room.document.track("t2")["gain_db"] == -1.0
        await ben.leave()



async def test_a_server_edit_whose_append_fails_is_in_no_snapshot(store) -> None:
    """An edit reported failed is not kept, so retrying it does not make it twice: the
    snapshot a batch starts (compacting after every batch here) leaves out a server edit
    already in the document but queued for the next batch, whose append then fails."""
    class SlowThenFailing(GatedStore):
        async def append(self, project_id: str, first_seq: int, updates: list[bytes]
                         ) -> None:
            if self.held:  # the second append: the disk is full by now
                from collab.errors import StoreError

                raise StoreError("disk full")
            await super().append(project_id, first_seq, updates)

    failing = SlowThenFailing(store)
    room = project_room("song", failing, RoomLimits(compact_every=1))
    await room.start()
    first = asyncio.create_task(room.edit(lambda d: d.add_marker(100, "first")))
    await wait_for(lambda: failing.held)  # the first batch waits on its append
    second = asyncio.create_task(room.edit(lambda d: d.add_marker(200, "second")))
    await asyncio.sleep(0.05)  # queued, in the document already
    failing.gate.set()
    results = await asyncio.gather(first, second, return_exceptions=True)
    assert results[0] is None and type(results[1]).__name__ == "StoreError"
    await room.stop()
    async with project_room("song", store) as again:
        assert [m["name"] for m in again.document.markers()] == ["first"]


async def test_an_undoable_server_edit_is_undone_and_redone_durably_for_every_peer(
        store) -> None:
    async with project_room("song", store) as room:
        ana = Client(room)
        await ana.sync()
        before = room.document.to_json()
        assert not room.can_undo and not await room.undo()
        await room.edit(lambda d: d.update_clip("c1", position=500), undoable=True)
        await room.edit(lambda d: d.update_transport(tempo=99.0))  # not undoable
        edited = room.document.to_json()
        assert room.can_undo and await room.undo()
        assert room.document.to_json()["clips"] == before["clips"]
        assert room.document.transport()["tempo"] == 99.0
        assert not room.can_undo and room.last_seq == 3
        await wait_for(lambda: len(ana.channel.messages(p.MSG_SYNC, p.SYNC_UPDATE)) == 3)
        ana.apply_received()
        assert ana.doc.to_json() == room.document.to_json()
        assert room.can_redo and await room.redo()
        assert room.document.to_json() == edited
        undone = room.document.to_json()
        await ana.leave()
    async with project_room("song", store) as room:
        assert room.document.to_json() == undone
        assert not room.can_undo  # the history is per room session


async def test_an_idle_room_gives_back_its_trial_copy(store, monkeypatch) -> None:
    # the idle timer starts as the copy is made, before the edit's append (an fsync):
    # long enough that a slow disk does not let it give the copy back before we look
    monkeypatch.setattr("collab.room.TRIAL_IDLE_SECONDS", 2.0)
    async with project_room("song", store) as room:
        ana = Client(room)
        await ana.sync()
        assert not room._trial.held  # a room nobody edits never makes one
        ana.edit(lambda d: d.set_track_gain("t1", -6.0))
        await wait_for(lambda: room.last_seq == 1)
        assert room._trial.held
        await wait_for(lambda: not room._trial.held)
        ana.edit(lambda d: d.set_track_gain("t1", -7.0))  # made again when needed
        await wait_for(lambda: room.last_seq == 2)
        assert room.document.track("t1")["gain_db"] == -7.0
        await ana.leave()


async def test_a_server_edit_that_fails_half_way_is_still_stored_and_relayed(store) -> None:
    """pycrdt commits a transaction even when the change raised: what was written before
    the failure (here a panic of pycrdt on an int past 64 bits, a BaseException) must reach
    the store and every peer, or later edits depend on clocks nobody else has."""
    from collab.errors import SchemaError

    def half(document: ProjectDocument) -> None:
        document.set_track_gain("t1", -7.0)
        document._roots["tracks"]["t2"]["gain_db"] = 10 ** 30

    async with project_room("song", store) as room:
        ana = Client(room)
        await ana.sync()
        with pytest.raises(SchemaError, match="could not take a value"):
            await room.edit(half)
        await room.edit(lambda d: d.set_track_gain("t3", -3.0))  # builds on the failed one
        await wait_for(lambda: len(ana.channel.messages(p.MSG_SYNC, p.SYNC_UPDATE)) >= 2)
        ana.apply_received()
        assert ana.doc.to_json() == room.document.to_json()
        assert room.document.track("t1")["gain_db"] == -7.0
        await ana.leave()
    async with project_room("song", store) as again:
        assert again.document.to_json() == ana.doc.to_json()
        assert again.document.track("t3")["gain_db"] == -3.0
