"""A right origin left of its origin: live and reloaded documents order the list apart.

Yjs writes an item's right origin from the right of its origin.  A hand-made
item whose right origin lies left of its origin is integrated in one place by
the live document (yrs and yjs agree) and in another when the document is
loaded again, so the room refuses it (4400) before storing it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pycrdt import Array, Doc, Map
from room_helpers import Client, project_room, wait_for
from yjs_updates import Item, UpdateBuilder, any_string, fixed_project

from collab import protocol as p
from collab import trial as trial_module
from collab.room import RoomLimits
from collab.store import open_store
from collab.tokens import Role
from collab.trial import TrialDoc
from collab.update_format import MalformedUpdate, read_update
from dsp_core.effects import EffectSpec

NO_COMPACTION = RoomLimits(compact_every=10**9, compact_min_bytes=2**62)


def four_values() -> bytes:
    """Root list ``a`` holding b0..b3, written by client 1 (ids 1#0 to 1#3)."""
    doc = Doc(client_id=1)
    values = doc.get("a", type=Array)
    with doc.transaction():
        values.extend(["b0", "b1", "b2", "b3"])
    return doc.get_update()


#: After b2, before b1: a right origin left of the origin.
LEFT_OF_ORIGIN = UpdateBuilder([(10, 0, [Item(8, any_string("X"), origin=(1, 2),
                                             right_origin=(1, 1))])]).encode()


def listed(update: bytes, *more: bytes) -> list[str]:
    doc = Doc()
    for each in (update, *more):
        doc.apply_update(each)
    return doc.get("a", type=Array).to_py()


def test_the_live_document_and_a_reload_order_such_an_item_apart() -> None:
    """Why it is refused (stock yjs places it as the live yrs document does)."""
    live = listed(four_values(), LEFT_OF_ORIGIN)
    doc = Doc()
    doc.apply_update(four_values())
    doc.apply_update(LEFT_OF_ORIGIN)
    assert live == ["b0", "X", "b1", "b2", "b3"]
    assert listed(doc.get_update()) == ["b0", "b1", "b2", "b3", "X"]


def test_the_trial_refuses_a_right_origin_left_of_the_origin() -> None:
    doc = Doc()
    doc.apply_update(four_values())
    trial = TrialDoc(doc)
    with pytest.raises(MalformedUpdate, match="lies left of its origin"):
        trial.attempt(LEFT_OF_ORIGIN, read_update(LEFT_OF_ORIGIN))
    same = UpdateBuilder([(11, 0, [Item(8, any_string("Y"), origin=(1, 2),
                                        right_origin=(1, 2))])]).encode()
    with pytest.raises(MalformedUpdate, match="origin as its right origin"):
        trial.attempt(same, read_update(same))
    # Right of the origin, next to it or further on past a deleted item: taken.
    doc.get("a", type=Array).pop(2)
    trial = TrialDoc(doc)
    for client, origin, right in ((12, (1, 0), (1, 1)), (13, (1, 1), (1, 3)),
                                  (14, (1, 2), (1, 3))):
        update = UpdateBuilder([(client, 0, [Item(8, any_string(str(client)), origin=origin,
                                                  right_origin=right)])]).encode()
        trial.attempt(update, read_update(update))


def test_concurrent_inserts_at_one_place_are_all_taken() -> None:
    """Several clients insert at the same index without seeing each other's items."""
    base = four_values()
    doc = Doc()
    doc.apply_update(base)
    trial = TrialDoc(doc)
    for client in (30, 20, 40):
        writer = Doc(client_id=client)
        writer.apply_update(base)
        before = writer.get_state()
        writer.get("a", type=Array).insert(2, f"c{client}")
        update = writer.get_update(before)
        trial.attempt(update, read_update(update))
        doc.apply_update(update)
    assert listed(doc.get_update()) == doc.get("a", type=Array).to_py()


def with_a_collected_list() -> Doc:
    """``four_values`` (client 1) beside a list of client 2 whose map entry was deleted:
    loaded again, its items 2#1.. are collected."""
    writer = Doc(client_id=2)
    entries = writer.get("m", type=Map)
    with writer.transaction():
        entries["k"] = Array(["v0", "v1", "v2", "v3"])
    with writer.transaction():
        del entries["k"]
    doc = Doc()
    doc.apply_update(four_values())
    doc.apply_update(writer.get_update())
    return doc


def test_items_placed_among_collected_ones_are_not_looked_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """yrs panics on a lookup of a collected item (slow with a backtrace): an update
    placing many items among them is let through without one, as an unknown item is."""
    looked_up: list[tuple[int, int]] = []
    position = trial_module._position

    def counted(doc: Doc, item: tuple[int, int]) -> int | None:
        looked_up.append(item)
        return position(doc, item)

    monkeypatch.setattr(trial_module, "_position", counted)
    update = UpdateBuilder([(50, 0, [Item(8, any_string(f"x{n}"), origin=(2, 1),
                                          right_origin=(2, 2)) for n in range(20)])]).encode()
    TrialDoc(with_a_collected_list()).attempt(update, read_update(update))
    assert looked_up == []


def test_items_among_collected_ones_do_not_let_a_bad_one_through() -> None:
    placed = [Item(8, any_string(f"x{n}"), origin=(2, 1), right_origin=(2, 2))
              for n in range(8)]
    bad = Item(8, any_string("X"), origin=(1, 2), right_origin=(1, 1))
    update = UpdateBuilder([(50, 0, [*placed, bad])]).encode()
    with pytest.raises(MalformedUpdate, match="lies left of its origin"):
        TrialDoc(with_a_collected_list()).attempt(update, read_update(update))


@pytest.mark.asyncio
async def test_the_room_refuses_it_stores_nothing_and_keeps_serving(tmp_path: Path) -> None:
    project = fixed_project()
    for name in ("a", "b", "c"):
        project.add_effect("t0", EffectSpec("gain", {"gain_db": -1.0}, id=f"t0-{name}"))
    first, last = (4242, 132), (4242, 144)  # effects t0-a and t0-c
    assert {first, last} <= {placement.item for placement in
                             read_update(project.doc.get_update()).placements}
    bad = UpdateBuilder([(77, 0, [Item(8, any_string("x"), origin=last,
                                       right_origin=first)])]).encode()
    async with open_store(None, tmp_path) as store:
        await store.create_project("song", "Song", project.doc.get_update())
        async with project_room("song", store, NO_COMPACTION) as room:
            ana, ben = Client(room, user="ana"), Client(room, user="ben")
            await ana.sync()
            await ben.sync()
            attacker = Client(room, Role.EDITOR, "mallory")
            attacker.send(p.sync_update(bad))
            await wait_for(lambda: attacker.channel.closed)
            assert attacker.channel.closed[0] == p.CloseCode.MALFORMED_MESSAGE
            ana.edit(lambda d: d.set_track_gain("t1", -4.0))
            await wait_for(lambda: sees_gain(ben, -4.0))
            effects = room.doc.get("tracks", type=Map)["t0"]["effects"].to_py()
            assert [e["id"] for e in effects] == ["t0-a", "t0-b", "t0-c"]
            assert bad not in (await store.load("song")).updates
            await ana.leave()
            await ben.leave()


def sees_gain(client: Client, gain_db: float) -> bool:
    """Whether ``client`` has received track t1's gain ``gain_db``."""
    client.apply_received()
    return client.doc.track("t1")["gain_db"] == gain_db
