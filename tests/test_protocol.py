"""The y-websocket wire protocol: encodings match pycrdt/y-protocols, decoding is strict."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Map, create_awareness_message, create_sync_message, create_update_message

from collab import protocol as p
from collab.errors import MalformedMessage


def a_doc_with_an_update() -> tuple[Doc, bytes]:
    doc = Doc()
    doc.get("tracks", type=Map)["t1"] = Map({"gain_db": -3.0})
    return doc, doc.get_update()


def test_sync_messages_are_byte_identical_to_pycrdt_ones() -> None:
    doc, update = a_doc_with_an_update()
    assert p.sync_step1(doc.get_state()) == create_sync_message(doc)
    assert p.sync_update(update) == create_update_message(update)
    assert p.awareness(b"\x00") == create_awareness_message(b"\x00")


@pytest.mark.parametrize("builder,kind,sub", [
    (p.sync_step1, p.MSG_SYNC, p.SYNC_STEP1),
    (p.sync_step2, p.MSG_SYNC, p.SYNC_STEP2),
    (p.sync_update, p.MSG_SYNC, p.SYNC_UPDATE),
    (p.awareness, p.MSG_AWARENESS, 0),
])
def test_encoded_messages_decode_back(builder, kind: int, sub: int) -> None:
    payload = bytes(range(200))
    message = p.decode_message(builder(payload))
    assert (message.kind, message.sub, message.payload) == (kind, sub, payload)


def test_permission_denied_carries_its_reason() -> None:
    message = p.decode_message(p.permission_denied("viewers cannot edit"))
    assert (message.kind, message.sub) == (p.MSG_AUTH, p.AUTH_PERMISSION_DENIED)
    assert message.payload == b"viewers cannot edit"


@pytest.mark.parametrize("data,words", [
    (b"", "ends inside a varint"),
    (b"\x07", "unknown message type 7"),
    (b"\x00\x05\x00", "unknown sync message type 5"),
    (b"\x00\x02\x09abc", "payload length 9 exceeds"),
    (b"\x00\x02\x01a!", "trailing bytes"),
    (b"\xff" * 11, "longer than 64 bits"),
    ("text", "text frames"),
])
def test_malformed_messages_are_named(data, words: str) -> None:
    with pytest.raises(MalformedMessage, match=words):
        p.decode_message(data)


def test_new_structs_are_told_apart_from_known_ones() -> None:
    assert p.has_new_structs({1: 5}, {1: 4})
    assert p.has_new_structs({2: 1}, {1: 4})
    assert not p.has_new_structs({1: 4}, {1: 4, 2: 9})


def test_awareness_round_trip_and_bad_json() -> None:
    entries = [p.AwarenessEntry(7, 3, {"user": "ana", "cursor": 12}),
               p.AwarenessEntry(9, 1, None)]
    assert p.decode_awareness(p.encode_awareness(entries)) == entries
    bad = p.write_var_uint(1) + p.write_var_uint(7) + p.write_var_uint(1) + b"\x03{x}"
    with pytest.raises(MalformedMessage, match="not JSON"):
        p.decode_awareness(bad)


@pytest.mark.parametrize("state", [b'{"x":NaN}', b'{"x":-Infinity}', b'{"n":' + b"9" * 5000
                                   + b"}", b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"],
                         ids=["nan", "infinity", "5000-digits", "deep"])
def test_awareness_json_that_stock_clients_refuse_is_malformed(state: bytes) -> None:
    """What JSON.parse refuses (NaN, Infinity), an integer past Python's digit limit and
    nesting past its recursion limit are malformed messages (4400), not stored states
    relayed to browsers that throw on them, nor errors that escape the room."""
    update = p.write_var_uint(1) + p.write_var_uint(7) + p.write_var_uint(1) + \
        p.write_var_uint(len(state)) + state
    with pytest.raises(MalformedMessage, match="not JSON"):
        p.decode_awareness(update)


def test_awareness_ids_and_clocks_past_2_53_are_malformed() -> None:
    """lib0 refuses varints past Number.MAX_SAFE_INTEGER: a stock client would throw."""
    fine = p.AwarenessEntry(p.MAX_SAFE_INTEGER, p.MAX_SAFE_INTEGER, {"user": "ana"})
    assert p.decode_awareness(p.encode_awareness([fine])) == [fine]
    for client_id, clock in ((2**53, 1), (1, 2**60)):
        update = p.encode_awareness([p.AwarenessEntry(client_id, clock, {"u": 1})])
        with pytest.raises(MalformedMessage, match="2\\^53"):
            p.decode_awareness(update)


def test_close_codes_are_application_codes_with_reasons() -> None:
    for code in p.CloseCode:
        assert 4000 <= code <= 4999
        assert 0 < len(code.reason.encode()) <= 123
