"""The y-websocket wire protocol: message encoding, strict decoding and close codes.

Every WebSocket binary message starts with a varint message type:

* ``0`` sync, followed by a varint sub-type (``0`` step 1 with a state vector,
  ``1`` step 2 with an update, ``2`` update) and a length-prefixed payload;
* ``1`` awareness, followed by a length-prefixed awareness update;
* ``2`` auth, followed by ``0`` (permission denied) and a length-prefixed reason;
* ``3`` query awareness (no payload).

The layout is the one of ``y-protocols`` so stock ``y-websocket`` clients work
unchanged.  Decoding is strict: anything else raises :class:`MalformedMessage`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import NoReturn

from .errors import MalformedMessage

MSG_SYNC = 0
MSG_AWARENESS = 1
MSG_AUTH = 2
MSG_QUERY_AWARENESS = 3

SYNC_STEP1 = 0
SYNC_STEP2 = 1
SYNC_UPDATE = 2

AUTH_PERMISSION_DENIED = 0

#: The update Yjs sends when it has nothing new (no structs, empty delete set).
EMPTY_UPDATE = b"\x00\x00"


class CloseCode(IntEnum):
    """Application WebSocket close codes (4000-4999) the server uses."""

    MALFORMED_MESSAGE = 4400
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    PROJECT_NOT_FOUND = 4404
    ROLE_REVOKED = 4410
    PROJECT_DELETED = 4411
    MESSAGE_TOO_BIG = 4413
    TOO_SLOW = 4408
    PROJECT_BUSY = 4409
    SERVER_FULL = 4503
    SERVER_SHUTDOWN = 4001

    @property
    def reason(self) -> str:
        """The default human-readable close reason (at most 123 bytes)."""
        return CLOSE_REASONS[self]


CLOSE_REASONS: dict[CloseCode, str] = {
    CloseCode.MALFORMED_MESSAGE: "malformed y-websocket message; use a yjs/y-websocket client",
    CloseCode.UNAUTHORIZED: "missing or invalid token; get one with `dawserver token PROJECT`",
    CloseCode.FORBIDDEN: "this token is not valid for this project",
    CloseCode.PROJECT_NOT_FOUND: "no such project; list them with GET /projects",
    CloseCode.ROLE_REVOKED: "your role on this project was revoked; ask an owner",
    CloseCode.PROJECT_DELETED: "this project was deleted by an owner; it cannot be opened "
                               "again",
    CloseCode.MESSAGE_TOO_BIG: "message larger than the server's max_message_bytes",
    CloseCode.TOO_SLOW: "you fell too far behind the live session; reconnect to resync",
    CloseCode.PROJECT_BUSY: "the project is being moved to another data region; reconnect "
                            "in a few seconds",
    CloseCode.SERVER_FULL: "too many documents open on this server; try again later",
    CloseCode.SERVER_SHUTDOWN: "server is shutting down; reconnect shortly",
}


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded protocol message.

    ``kind`` is the message type, ``sub`` the sync sub-type (or the auth
    sub-type), ``payload`` the length-prefixed body (empty when there is none).
    """

    kind: int
    sub: int
    payload: bytes


def write_var_uint(value: int) -> bytes:
    """Encode a non-negative integer as an lib0 varint."""
    out = bytearray()
    while value > 127:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def _var_bytes(payload: bytes) -> bytes:
    return write_var_uint(len(payload)) + payload


class Reader:
    """A strict lib0 decoder over ``data`` that raises :class:`MalformedMessage`."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def var_uint(self) -> int:
        """Read one varint (at most 64 bits)."""
        value, shift, data = 0, 0, self.data
        while True:
            if self.pos >= len(data):
                raise MalformedMessage("message ends inside a varint")
            byte = data[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 63:
                raise MalformedMessage("varint longer than 64 bits")

    def var_bytes(self) -> bytes:
        """Read a length-prefixed byte string."""
        length = self.var_uint()
        end = self.pos + length
        if end > len(self.data):
            raise MalformedMessage(
                f"payload length {length} exceeds the {len(self.data) - self.pos} bytes left"
            )
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def var_string(self) -> str:
        """Read a length-prefixed UTF-8 string."""
        try:
            return self.var_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedMessage(f"string is not UTF-8: {exc}") from None

    def done(self) -> bool:
        """Whether every byte has been read."""
        return self.pos >= len(self.data)


def decode_message(data: bytes) -> Message:
    """Decode one client message or raise :class:`MalformedMessage` saying what is wrong."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise MalformedMessage("text frames are not part of the protocol; send binary frames")
    reader = Reader(bytes(data))
    kind = reader.var_uint()
    if kind == MSG_SYNC:
        sub = reader.var_uint()
        if sub not in (SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE):
            raise MalformedMessage(f"unknown sync message type {sub}; expected 0, 1 or 2")
        payload = reader.var_bytes()
    elif kind == MSG_AWARENESS:
        sub, payload = 0, reader.var_bytes()
    elif kind == MSG_AUTH:
        sub = reader.var_uint()
        payload = reader.var_bytes() if not reader.done() else b""
    elif kind == MSG_QUERY_AWARENESS:
        sub, payload = 0, b""
    else:
        raise MalformedMessage(f"unknown message type {kind}; expected 0 to 3")
    if not reader.done():
        raise MalformedMessage(f"{len(reader.data) - reader.pos} trailing bytes after message")
    return Message(kind, sub, payload)


def sync_step1(state_vector: bytes) -> bytes:
    """Sync step 1: "here is my state vector, send me what I miss"."""
    return bytes((MSG_SYNC, SYNC_STEP1)) + _var_bytes(state_vector)


def sync_step2(update: bytes) -> bytes:
    """Sync step 2: the reply to step 1, every change the peer misses."""
    return bytes((MSG_SYNC, SYNC_STEP2)) + _var_bytes(update)


def sync_update(update: bytes) -> bytes:
    """An incremental document update."""
    return bytes((MSG_SYNC, SYNC_UPDATE)) + _var_bytes(update)


def awareness(update: bytes) -> bytes:
    """An awareness (presence) message carrying an encoded awareness update."""
    return bytes((MSG_AWARENESS,)) + _var_bytes(update)


def query_awareness() -> bytes:
    """Ask the peer to send its full awareness state."""
    return bytes((MSG_QUERY_AWARENESS,))


def permission_denied(reason: str) -> bytes:
    """The y-protocols auth message that tells a client its change was refused."""
    return bytes((MSG_AUTH, AUTH_PERMISSION_DENIED)) + _var_bytes(reason.encode("utf-8"))


def read_state_vector(state_vector: bytes) -> dict[int, int]:
    """Decode an encoded state vector into ``{client_id: clock}``."""
    reader = Reader(state_vector)
    count = reader.var_uint()
    result = {}
    for _ in range(count):
        client = reader.var_uint()
        result[client] = reader.var_uint()
    return result


def has_new_structs(update_state: dict[int, int], doc_state: dict[int, int]) -> bool:
    """Whether an update whose end state is ``update_state`` adds items ``doc_state`` lacks."""
    return any(clock > doc_state.get(client, 0) for client, clock in update_state.items())


@dataclass(frozen=True, slots=True)
class AwarenessEntry:
    """One client's entry in an awareness update (``state`` None means "gone")."""

    client_id: int
    clock: int
    state: dict | None


#: The largest integer stock clients read from a varint (lib0: Number.MAX_SAFE_INTEGER).
MAX_SAFE_INTEGER = 2**53 - 1


def _no_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is no JSON value (JSON.parse refuses it)")


def decode_awareness(update: bytes) -> list[AwarenessEntry]:
    """Decode an awareness update or raise :class:`MalformedMessage`: only what stock
    y-protocols clients read back (JSON that ``JSON.parse`` takes, so no ``NaN`` or
    ``Infinity``; ids and clocks up to :data:`MAX_SAFE_INTEGER`)."""
    reader = Reader(update)
    entries = []
    for _ in range(reader.var_uint()):
        client_id, clock = reader.var_uint(), reader.var_uint()
        if max(client_id, clock) > MAX_SAFE_INTEGER:
            raise MalformedMessage(f"awareness client id {client_id} or clock {clock} is past "
                                   f"2^53 - 1, which stock clients cannot read")
        text = reader.var_string()
        try:
            state = json.loads(text, parse_constant=_no_constant) if text else None
        except (ValueError, RecursionError) as exc:  # bad JSON, NaN, huge ints, deep nesting
            raise MalformedMessage(f"awareness state is not JSON: {exc}") from None
        if state is not None and not isinstance(state, dict):
            raise MalformedMessage("awareness state must be a JSON object or null")
        entries.append(AwarenessEntry(client_id, clock, state))
    if not reader.done():
        raise MalformedMessage("trailing bytes after awareness update")
    return entries


def encode_awareness(entries: list[AwarenessEntry]) -> bytes:
    """Encode awareness entries (the inverse of :func:`decode_awareness`)."""
    out = bytearray(write_var_uint(len(entries)))
    for entry in entries:
        out += write_var_uint(entry.client_id) + write_var_uint(entry.clock)
        text = "null" if entry.state is None else json.dumps(entry.state, separators=(",", ":"))
        out += _var_bytes(text.encode("utf-8"))
    return bytes(out)
