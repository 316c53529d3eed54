"""A late joiner (a client with an empty state vector) gets exactly the current document,
from the cached encoding of the whole plus the updates applied since (collab/room.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_asyncio
from room_helpers import Client, project_room, state_of, wait_for

from collab import protocol as p
from collab import room as room_module
from collab.schema import ProjectDocument
from collab.store import open_store
from collab.tokens import Role
from dsp_core.session import Clip, Session, Track

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def store(tmp_path: Path):
    session = Session(tracks=[Track(f"t{i}", clips=[Clip("/x.wav", 0, 100, id=f"c{i}")])
                              for i in range(8)])
    async with open_store(None, tmp_path) as store:
        await store.create_project("song", "Song",
                                   ProjectDocument.from_session(session).doc.get_update())
        yield store


async def joined(room, user: str) -> Client:
    """A viewer that synced and has applied everything the room sent it so far."""
    client = Client(room, Role.VIEWER, user)
    await client.sync()
    await wait_for(lambda: (client.apply_received(), state_of(client.doc.doc) ==
                            state_of(room.doc))[1])
    return client


def step2(client: Client) -> bytes:
    return client.channel.messages(p.MSG_SYNC, p.SYNC_STEP2)[0].payload


def sync_updates(client: Client) -> int:
    return len(client.channel.messages(p.MSG_SYNC, p.SYNC_UPDATE))


async def test_a_joiner_after_edits_gets_the_cached_whole_and_the_updates_since(store) -> None:
    async with project_room("song", store) as room:
        ana = Client(room)
        await ana.sync()
        first = await joined(room, "first")  # the whole is encoded here
        for i in range(5):
            ana.edit(lambda d, i=i: d.set_track_gain(f"t{i}", -float(i) - 1))
            await wait_for(lambda i=i: room.last_seq == i + 1)
        await room.edit(lambda d: d.add_marker(48000, "drop"))  # a server edit, too
        second = await joined(room, "second")
        assert step2(second) == step2(first)  # not encoded again
        assert sync_updates(second) == 6  # five client edits and the server's marker
        assert second.doc.to_json() == room.document.to_json()
        await wait_for(lambda: (ana.apply_received(), state_of(ana.doc.doc) ==
                                state_of(room.doc))[1])
        assert ana.doc.to_json() == second.doc.to_json()
        assert second.doc.track("t4")["gain_db"] == -5.0
        for client in (ana, first, second):
            await client.leave()


async def test_a_long_tail_is_replaced_by_a_fresh_encoding(store, monkeypatch) -> None:
    monkeypatch.setattr(room_module, "WHOLE_TAIL_UPDATES", 2)
    async with project_room("song", store) as room:
        ana = Client(room)
        await ana.sync()
        first = await joined(room, "first")
        for i in range(3):
            ana.edit(lambda d, i=i: d.set_track_gain(f"t{i}", -3.0))
            await wait_for(lambda i=i: room.last_seq == i + 1)
        second = await joined(room, "second")
        assert step2(second) != step2(first)
        assert sync_updates(second) == 0  # the three edits are inside the new whole
        assert second.doc.to_json() == room.document.to_json()
        for client in (ana, first, second):
            await client.leave()


async def test_joiners_during_concurrent_edits_converge_on_the_rooms_state(store) -> None:
    async with project_room("song", store) as room:
        editors = [Client(room, user=f"ed{k}") for k in range(3)]
        for editor in editors:
            await editor.sync()

        async def edit_a_lot(k: int, editor: Client) -> None:
            for n in range(15):
                editor.edit(lambda d, n=n: d.set_track_gain(f"t{k}", -float(n)))
                await asyncio.sleep(0.002)

        async def join_now_and_then() -> list[Client]:
            clients = []
            for j in range(5):
                clients.append(Client(room, Role.VIEWER, f"late{j}"))
                await clients[-1].sync()
                await asyncio.sleep(0.005)
            return clients

        async with asyncio.timeout(20):
            *_, late = await asyncio.gather(*(edit_a_lot(k, e) for k, e in enumerate(editors)),
                                            join_now_and_then())
            # every editor's last edit stored and applied (the queue empties before the
            # last batch is stored, so an empty queue alone is not enough)
            await wait_for(lambda: [room.document.track(f"t{k}")["gain_db"]
                                    for k in range(3)] == [-14.0] * 3)
            for client in late:
                await wait_for(lambda c=client: (c.apply_received(), state_of(c.doc.doc) ==
                                                 state_of(room.doc))[1])
        expected = room.document.to_json()
        assert [client.doc.to_json() == expected for client in late] == [True] * len(late)
        for client in editors + late:
            await client.leave()
