"""Trying updates on a copy first, and loading a log that holds updates yrs cannot apply."""

from __future__ import annotations

import asyncio

import pytest
from pycrdt import Doc, Map
from yjs_updates import BAD_PARENT, TYPE_REF_9, fixed_project, plain_value_parent

from collab.trial import TrialDoc, UnappliableUpdate, apply_update, load_document
from collab.update_format import MalformedUpdate, UpdateSummary, read_update


def edit(doc: Doc, key: str, value: object) -> bytes:
    """Set ``markers[key]`` in ``doc``; returns the update."""
    before = doc.get_state()
    doc.get("markers", type=Map)[key] = value
    return doc.get_update(before)


def unforeseen(update: bytes) -> UpdateSummary:
    """A summary that names no parent: the checks before yrs let anything through."""
    return UpdateSummary({}, False)


def test_yrs_applies_part_of_the_bad_parent_update_before_failing() -> None:
    """Why the copy exists: the real document would keep half of it."""
    doc = fixed_project().doc
    with pytest.raises(UnappliableUpdate, match="must be deleted or shared ref type"):
        apply_update(doc, BAD_PARENT)
    assert doc.get("markers", type=Map).to_py() == {"x": "a"}


def test_an_update_yrs_fails_on_leaves_the_document_untouched() -> None:
    doc = fixed_project().doc
    before = doc.get_update()
    trial = TrialDoc(doc)
    with pytest.raises(UnappliableUpdate):
        trial.attempt(BAD_PARENT, unforeseen(BAD_PARENT))
    assert doc.get_update() == before


def test_an_item_inside_a_plain_value_of_the_document_is_refused_before_yrs() -> None:
    project = fixed_project()
    update = plain_value_parent(project)
    with pytest.raises(UnappliableUpdate):  # what yrs would do with it
        apply_update(fixed_project().doc, update)
    with pytest.raises(MalformedUpdate, match="is not a shared type"):
        TrialDoc(project.doc).attempt(update, read_update(update))


def test_the_copy_is_rebuilt_after_a_failure_and_takes_good_updates() -> None:
    doc = fixed_project().doc
    trial = TrialDoc(doc)
    with pytest.raises(UnappliableUpdate):
        trial.attempt(BAD_PARENT, unforeseen(BAD_PARENT))
    writer = Doc()
    writer.apply_update(doc.get_update())
    good = edit(writer, "verse", 48000)
    trial.attempt(good, read_update(good))  # on a fresh copy: the broken one was dropped
    apply_update(doc, good)
    follow_up = edit(writer, "verse", 96000)
    trial.attempt(follow_up, read_update(follow_up))


def test_the_copy_and_its_index_follow_what_the_document_took_another_way() -> None:
    doc = fixed_project().doc
    trial = TrialDoc(doc)
    warm_up = edit(Doc(client_id=9), "warm-up", 1)
    trial.attempt(warm_up, read_update(warm_up))  # the copy and index exist from here on
    apply_update(doc, warm_up)
    before = doc.get_state()
    doc.get("markers", type=Map)["server"] = Map({"name": "made by the server"})
    trial.follow(doc.get_update(before))
    # An editor adds a field inside the map the server made: its parent is that map.
    writer = Doc()
    writer.apply_update(doc.get_update())
    before = writer.get_state()
    writer.get("markers", type=Map)["server"]["colour"] = "#fff"
    nested = writer.get_update(before)
    assert read_update(nested).parents
    trial.attempt(nested, read_update(nested))


def test_loading_leaves_out_updates_yjs_cannot_read_or_yrs_cannot_apply() -> None:
    project = fixed_project()
    snapshot = project.doc.get_update()
    writer = Doc()
    writer.apply_update(snapshot)
    first, last = edit(writer, "a", 1), edit(writer, "b", 2)
    yrs_refuses = plain_value_parent(project)
    doc, left_out = load_document(snapshot, [first, yrs_refuses, TYPE_REF_9, last], 11)
    assert [entry.seq for entry in left_out] == [12, 13]
    assert "must be deleted or shared ref type" in left_out[0].reason
    assert "type reference 9" in left_out[1].reason
    assert doc.get("markers", type=Map).to_py() == {"a": 1, "b": 2}  # and no "x"


def test_loading_rebuilds_the_document_without_an_update_yrs_half_applied() -> None:
    project = fixed_project()
    half = plain_value_parent(project)
    doc, left_out = load_document(project.doc.get_update(), [half], 1)
    assert [entry.seq for entry in left_out] == [1]
    assert doc.get("markers", type=Map).to_py() == {}  # no stray "x" from it


def test_a_snapshot_that_cannot_be_applied_is_an_error() -> None:
    with pytest.raises(UnappliableUpdate):
        load_document(b"\x01\x02garbage", [], 1)


@pytest.mark.asyncio
async def test_an_index_built_in_a_thread_takes_in_what_the_document_took_meanwhile(
        monkeypatch) -> None:
    monkeypatch.setattr("collab.trial.INDEX_IN_THREAD_BYTES", 0)  # every index in a thread
    doc = fixed_project().doc
    trial = TrialDoc(doc)
    building = asyncio.ensure_future(trial.prepare())
    await asyncio.sleep(0)  # the index is being read in the thread now
    before = doc.get_state()
    doc.get("markers", type=Map)["server"] = Map({"name": "made meanwhile"})
    trial.follow(doc.get_update(before))
    await building
    writer = Doc()
    writer.apply_update(doc.get_update())
    before = writer.get_state()
    writer.get("markers", type=Map)["server"]["colour"] = "#fff"
    nested = writer.get_update(before)
    trial.attempt(nested, read_update(nested))  # its parent is the map made meanwhile
