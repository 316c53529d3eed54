"""Reading Yjs updates as stock yjs does: what real clients write passes, the rest is named."""

from __future__ import annotations

import pytest
from nodepeer import node_ready, yjs_replay
from pycrdt import Array, Doc, Map, Text, XmlElement, XmlFragment, XmlText, get_state, merge_updates
from yjs_updates import (
    BAD_PARENT,
    TYPE_REF_9,
    Fuzzer,
    Item,
    UpdateBuilder,
    any_string,
    content_type,
    fixed_project,
    item_ids,
    var_string,
)

from collab import protocol as p
from collab.protocol import write_var_uint
from collab.schema import ProjectDocument
from collab.update_format import MalformedUpdate, read_update
from dsp_core.session import Clip, Session, Track

needs_node = pytest.mark.skipif(node_ready() is not None, reason=str(node_ready()))


def edits_of_every_kind() -> list[bytes]:
    """Updates a pycrdt client writes: maps, arrays, text with formats and embeds, XML."""
    doc = Doc(client_id=77)
    updates: list[bytes] = []
    doc.observe(lambda event: updates.append(event.update))
    doc["m"] = m = Map()
    m["values"] = [1, 2.5, -7, 2**40, True, False, None, "s", {"a": [1, {"b": "c"}]}, b"\x00\x01"]
    m["nested"] = Map({"x": 1})
    doc["a"] = a = Array([1, "two", Map({"k": "v"})])
    a.insert(1, "between")
    del a[0]
    doc["t"] = t = Text("héllo 🎵 wörld")
    t.format(0, 5, {"bold": True})
    t.insert_embed(3, {"image": "x.png"})
    del t[1:4]
    doc["x"] = xml = XmlFragment()
    element = xml.children.append(XmlElement("p", {"class": "c"}))
    element.children.append(XmlText("inside"))
    del m["nested"]
    return updates


def a_big_document() -> bytes:
    session = Session(tracks=[Track(f"t{i}", clips=[Clip("/x.wav", 0, 100, id=f"c{i}")])
                              for i in range(40)])
    return ProjectDocument.from_session(session).doc.get_update()


def test_what_real_clients_write_is_read_with_the_clock_each_client_reaches() -> None:
    updates = edits_of_every_kind()
    replica = Doc()
    for update in updates:  # each one ends where the writer's document then stood
        summary = read_update(update)
        replica.apply_update(update)
        state = p.read_state_vector(replica.get_state())
        assert summary.reached == {c: state[c] for c in summary.reached}
    for whole in (merge_updates(*updates), a_big_document()):
        assert read_update(whole).reached == p.read_state_vector(get_state(whole))
    assert read_update(merge_updates(*updates)).deletes


def test_the_empty_update_is_empty() -> None:
    assert read_update(p.EMPTY_UPDATE).empty
    assert not read_update(edits_of_every_kind()[0]).empty


def test_type_reference_9_of_issue_10_is_refused_by_name() -> None:
    with pytest.raises(MalformedUpdate, match="type reference 9 is unknown to yjs"):
        read_update(TYPE_REF_9)


def test_an_item_inside_a_plain_value_of_the_same_update_is_refused() -> None:
    # Issue 10's first update: stock yjs files the second item under no parent, yrs
    # refuses it half-way through applying it.
    with pytest.raises(MalformedUpdate, match="parent 424242#0 is an item of this update "
                                              "that is not a shared type"):
        read_update(BAD_PARENT)


@pytest.mark.parametrize("ref", [11, 17, 24, 31])
def test_unknown_content_references_are_refused(ref: int) -> None:
    update = UpdateBuilder([(5, 0, [Item(ref, any_string("x"), parent_key="markers",
                                         parent_sub="k")])]).encode()
    with pytest.raises(MalformedUpdate, match=f"content reference {ref} is unknown"):
        read_update(update)


def test_the_content_byte_0x38_of_issue_10_is_refused() -> None:
    update = UpdateBuilder([(5, 0, [Item(0x38, any_string("x"), parent_key="markers",
                                         parent_sub="k")])]).encode()
    with pytest.raises(MalformedUpdate, match="content reference 24"):
        read_update(update)


@pytest.mark.parametrize("ref", [7, 8, 9, 15, 300])
def test_unknown_type_references_are_refused(ref: int) -> None:
    update = UpdateBuilder([(5, 0, [Item(7, content_type(ref), parent_key="tracks",
                                         parent_sub="t")])]).encode()
    with pytest.raises(MalformedUpdate, match=f"type reference {ref}"):
        read_update(update)


@pytest.mark.parametrize("ref", range(7))
def test_every_type_yjs_knows_is_read(ref: int) -> None:
    update = UpdateBuilder([(5, 0, [Item(7, content_type(ref), parent_key="tracks",
                                         parent_sub="t")])]).encode()
    assert read_update(update).reached == {5: 1}


def test_sub_documents_are_refused() -> None:
    content = var_string("guid") + bytes([118]) + write_var_uint(0)
    update = UpdateBuilder([(5, 0, [Item(9, content, parent_key="m", parent_sub="d")])])
    with pytest.raises(MalformedUpdate, match="sub-documents"):
        read_update(update.encode())


@pytest.mark.parametrize(("update", "words"), [
    (edits_of_every_kind()[0] + b"\x00", "1 trailing bytes"),
    (UpdateBuilder([(5, 0, [Item(4, var_string(""), parent_key="m")])]).encode(),
     "zero-length struct"),
    (UpdateBuilder([(5, 0, [Item(8, any_string("a"), parent_key="m")]),
                    (5, 1, [Item(8, any_string("b"), parent_key="m")])]).encode(),
     "client 5 has two struct groups"),
    (b"\x01\x01\x05\x00\x08\x02\x01m\x01\x77\x01a\x00", "parent flag 2"),
    (UpdateBuilder([(5, 0, [Item(5, var_string("NaN"), parent_key="m")])]).encode(),
     "does not parse"),
    (UpdateBuilder([(5, 0, [Item(2, write_var_uint(1) + var_string("1"),
                                 parent_key="m")])]).encode(), "legacy JSON content"),
    (UpdateBuilder([(5, 0, [Item(4, b"\x02\xc3\x28", parent_key="m")])]).encode(),
     "not UTF-8"),
    (UpdateBuilder([(5, 0, [Item(8, write_var_uint(1) + bytes([117, 1]) * 70 + b"\x7e",
                                 parent_key="m")])]).encode(), "nested deeper"),
    (UpdateBuilder([(5, 0, [Item(8, write_var_uint(1) + b"\x63", parent_key="m")])]).encode(),
     "unknown value tag 99"),
    (b"\x05", "count 5 exceeds"),
    (b"\x00\x01\x05\x01\x03\x00", "zero-length deletion"),
    (b"\x00\x01" + b"\xff" * 7 + b"\x7f\x01\x03\x01", "above 2\\*\\*53-1"),
    (b"\x01\x01\x05", "ends early"),
    (b"\xff" * 12, "longer than 64 bits"),
])
def test_what_no_yjs_encoder_writes_is_refused_with_the_reason(update: bytes,
                                                               words: str) -> None:
    with pytest.raises(MalformedUpdate, match=words):
        read_update(update)


def test_every_truncation_of_a_real_update_is_refused() -> None:
    for update in edits_of_every_kind():
        for end in range(len(update)):
            with pytest.raises(MalformedUpdate):
                read_update(update[:end])


@needs_node
def test_everything_it_accepts_stock_yjs_reads_too() -> None:
    """Differential: 3,000 fuzzed updates; each one accepted here must decode in yjs."""
    project = fixed_project()
    fuzzer = Fuzzer(10, item_ids(project), [*edits_of_every_kind(), project.doc.get_update()])
    corpus = [fuzzer.update() for _ in range(3000)] + [TYPE_REF_9]
    accepted = []
    for update in corpus:
        try:
            read_update(update)
        except MalformedUpdate:
            continue
        accepted.append(update)
    assert 300 < len(accepted) < len(corpus) - 300  # both outcomes are well exercised
    errors = yjs_replay({"each": [u.hex() for u in accepted]})["each"]
    refused_by_yjs = [(u.hex(), e) for u, e in zip(accepted, errors, strict=True) if e]
    assert refused_by_yjs == []
    # And yjs refuses what we refuse for a yjs reason (type and content references).
    assert yjs_replay({"each": [TYPE_REF_9.hex()]})["each"][0] is not None
