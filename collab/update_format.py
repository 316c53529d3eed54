"""The Yjs v1 update format, read under the rules of stock ``yjs``.

The server stores, relays and replays updates that browsers running stock
``yjs`` must decode.  Yrs (pycrdt) reads more than ``yjs`` does: unknown
content references, type reference 9, trailing bytes.  Such an update would
be applied on the server and then break every ``yjs`` client that receives
it.  :func:`read_update` walks every byte of an update the way ``yjs``'s
``readUpdate`` does and raises :class:`MalformedUpdate` for anything ``yjs``
would not read, plus the few things no ``yjs`` encoder ever writes (zero-length
items or deletions, unsorted or overlapping deletions, numbers above 2**53-1,
two struct groups or delete lists for one client, a parent flag other than 0
or 1, an item pointing at a newer item of its own client, an item inside a
plain value of the same update, a map entry that is not one value).

Why not a library: no Python package decodes the v1 format independently of
yrs, and yrs is exactly the reader whose leniency is the problem.

Layout (``lib0`` encoding): a varint count of client groups; each group is a
varint struct count, the client id, the first clock and the structs; then the
delete set (per client: ranges of clock and length).  A struct's info byte
says its kind (low 5 bits: 0 GC, 10 skip, 1..9 an item's content) and which
of origin (0x80), right origin (0x40) and parent sub key (0x20) follow.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from .errors import MalformedMessage

__all__ = ["COLLECTED", "ENTRY", "MalformedUpdate", "Placement", "UpdateSummary",
           "check_neighbours", "read_update", "where_of"]

#: Content references stock yjs knows (``contentRefs`` in yjs' encoding.js), by name.
CONTENT_DELETED, CONTENT_JSON, CONTENT_BINARY, CONTENT_STRING = 1, 2, 3, 4
CONTENT_EMBED, CONTENT_FORMAT, CONTENT_TYPE, CONTENT_ANY, CONTENT_DOC = 5, 6, 7, 8, 9
STRUCT_GC, STRUCT_SKIP = 0, 10
#: Shared type references stock yjs knows (``typeRefs``): array, map, text, XML element,
#: XML fragment, XML hook, XML text.  Element (3) and hook (5) carry a name.
TYPE_REFS = range(7)
NAMED_TYPE_REFS = (3, 5)
#: What yjs writes as a map entry (``typeMapSet``): one value, a binary, a shared type,
#: or, once collected, a deleted placeholder.
MAP_VALUE_CONTENTS = (CONTENT_ANY, CONTENT_BINARY, CONTENT_TYPE, CONTENT_DELETED)
#: lib0 reads numbers as JavaScript doubles: it refuses (or rounds) anything above this.
MAX_SAFE_INTEGER = 2**53 - 1
#: Nesting allowed inside one ``any`` value; deeper values are refused, not recursed into.
MAX_ANY_DEPTH = 64

ORIGIN, RIGHT_ORIGIN, PARENT_SUB = 0x80, 0x40, 0x20
LOW_5_BITS = 0x1F


class MalformedUpdate(MalformedMessage):
    """An update stock yjs cannot read (or that no yjs encoder writes)."""


#: An item's id: (client, clock).
ID = tuple[int, int]
#: Where an item sits: the root name or parent id of its list, :data:`ENTRY` (a map
#: entry), :data:`COLLECTED` (garbage collected, or placed next to such an item) or
#: None (not known).
ENTRY, COLLECTED = ("entry",), ("collected",)
Where = str | ID | tuple[str] | None


class Placement(NamedTuple):
    """Where one item of an update says it goes."""

    item: ID
    length: int
    #: Root name or parent id, when the item names its parent (no origins).
    parent: str | ID | None
    origin: ID | None
    right: ID | None
    #: Names a map key.
    keyed: bool


@dataclass(frozen=True, slots=True)
class UpdateSummary:
    """What an update holds.

    ``reached``: the clock each client's items reach.  ``deletes``: whether it
    deletes anything.  ``spans``: per client, the clocks its structs cover.
    ``types``: ids of its shared-type items.  ``gc``: (client, start, end) of its
    collected ranges.  ``parents``: the ids its items name as their parent.
    ``entries``: ids of its items that name a map key.  ``follows``: for each item
    placed after another, (that origin, the item, whether it could be a map entry).
    ``references``: every id its items point at (origins and parents).
    ``skipped``: (client, start, end) of its Skip structs.  ``needs``: per client, the
    clock the document must hold before the items after a Skip can be integrated.
    ``placements``: where each item goes, in the order read.
    """

    reached: dict[int, int]
    deletes: bool
    spans: dict[int, tuple[int, int]] = field(default_factory=dict)
    types: frozenset[ID] = frozenset()
    gc: tuple[tuple[int, int, int], ...] = ()
    parents: tuple[ID, ...] = ()
    entries: frozenset[ID] = frozenset()
    follows: tuple[tuple[ID, ID, bool], ...] = ()
    references: tuple[ID, ...] = ()
    skipped: tuple[tuple[int, int, int], ...] = ()
    needs: dict[int, int] = field(default_factory=dict)
    placements: tuple[Placement, ...] = ()

    @property
    def empty(self) -> bool:
        """Whether the update has neither items nor deletions."""
        return not self.reached and not self.deletes

    def holds(self, item: ID) -> bool:
        """Whether one of this update's structs covers ``item``."""
        span = self.spans.get(item[0])
        return (span is not None and span[0] <= item[1] < span[1]
                and not any(c == item[0] and start <= item[1] < end
                            for c, start, end in self.skipped))

    def collected(self, item: ID) -> bool:
        """Whether ``item`` lies in one of this update's collected (GC) ranges."""
        return any(c == item[0] and start <= item[1] < end for c, start, end in self.gc)


class _Reader:
    """A lib0 reader that raises :class:`MalformedUpdate` with the offset of the problem."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def fail(self, what: str) -> MalformedUpdate:
        return MalformedUpdate(f"{what} at byte {self.pos} of {len(self.data)}")

    def uint8(self) -> int:
        if self.pos >= len(self.data):
            raise self.fail("update ends early")
        byte = self.data[self.pos]
        self.pos += 1
        return byte

    def var_uint(self) -> int:
        data, pos = self.data, self.pos
        try:
            byte = data[pos]
            if byte < 0x80:  # the common one-byte case, without the loop
                self.pos = pos + 1
                return byte
            value, shift = byte & 0x7F, 7
            while True:
                pos += 1
                byte = data[pos]
                value |= (byte & 0x7F) << shift
                if byte < 0x80:
                    self.pos = pos + 1
                    if value > MAX_SAFE_INTEGER:
                        raise self.fail(f"number {value} is above 2**53-1, which yjs refuses")
                    return value
                shift += 7
                if shift > 63:
                    self.pos = pos
                    raise self.fail("varint longer than 64 bits")
        except IndexError:
            self.pos = len(data)
            raise self.fail("update ends early") from None

    def var_int(self) -> int:
        first = self.uint8()
        value, shift, byte = first & 0x3F, 6, first
        while byte & 0x80:
            byte = self.uint8()
            value |= (byte & 0x7F) << shift
            shift += 7
            if shift > 70:
                raise self.fail("signed varint longer than 64 bits")
        if value > MAX_SAFE_INTEGER:
            raise self.fail(f"integer {value} is beyond 2**53-1, which yjs refuses")
        return -value if first & 0x40 else value

    def take(self, length: int) -> bytes:
        end = self.pos + length
        if end > len(self.data):
            raise self.fail(f"length {length} runs past the end")
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def var_bytes(self) -> bytes:
        return self.take(self.var_uint())

    def var_string(self) -> str:
        raw = self.var_bytes()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("string is not UTF-8") from None

    def json(self, text: str | None = None) -> None:
        """Read a JSON string (or check ``text``) as ``JSON.parse`` would."""
        if text is None:
            text = self.var_string()
        try:
            json.loads(text, parse_constant=_no_constant)
        except ValueError:
            raise self.fail(f"JSON content {text[:40]!r} does not parse") from None

    def any(self, depth: int = 0) -> None:
        """Skip one lib0 ``any`` value (``readAny``), refusing unknown tags."""
        if depth > MAX_ANY_DEPTH:
            raise self.fail(f"value nested deeper than {MAX_ANY_DEPTH}")
        tag = self.uint8()
        if tag in (127, 126, 121, 120):  # undefined, null, false, true
            return
        if tag == 125:
            self.var_int()
        elif tag == 124:
            self.take(4)
        elif tag in (123, 122):  # float64, bigint64
            self.take(8)
        elif tag == 119:
            self.var_string()
        elif tag == 118:
            for _ in range(self.count()):
                self.var_string()
                self.any(depth + 1)
        elif tag == 117:
            for _ in range(self.count()):
                self.any(depth + 1)
        elif tag == 116:
            self.var_bytes()
        else:
            raise self.fail(f"unknown value tag {tag}")

    def count(self) -> int:
        """A varint count of things that each take at least one byte."""
        count = self.var_uint()
        if count > len(self.data) - self.pos:
            raise self.fail(f"count {count} exceeds the bytes left")
        return count


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def read_update(update: bytes) -> UpdateSummary:
    """Read every byte of a Yjs v1 ``update`` as stock yjs would.

    Returns what it holds; raises :class:`MalformedUpdate` naming the first
    problem and its byte offset.
    """
    reader = _Reader(bytes(update))
    reached: dict[int, int] = {}
    spans: dict[int, tuple[int, int]] = {}
    types: set[ID] = set()
    gc: list[tuple[int, int, int]] = []
    parents: list[ID] = []
    entries: set[ID] = set()
    follows: list[tuple[ID, ID, bool]] = []
    references: list[ID] = []
    skipped: list[tuple[int, int, int]] = []
    needs: dict[int, int] = {}
    placements: list[Placement] = []
    for _ in range(reader.count()):
        structs = reader.count()
        client = reader.var_uint()
        clock = start = reader.var_uint()
        if client in spans:
            raise reader.fail(f"client {client} has two struct groups")
        end = clock
        for _ in range(structs):
            info = reader.uint8()
            kind = info & LOW_5_BITS
            if kind in (STRUCT_GC, STRUCT_SKIP):
                length = reader.var_uint()
                if kind == STRUCT_GC:
                    gc.append((client, clock, clock + length))
                else:
                    skipped.append((client, clock, clock + length))
            else:
                length = _item(reader, info, kind, client, clock, parents, entries, follows,
                               references, placements)
                if kind == CONTENT_TYPE:
                    types.add((client, clock))
            if length == 0:
                raise reader.fail("zero-length struct")
            if kind != STRUCT_SKIP and skipped and skipped[-1][0] == client:
                needs[client] = skipped[-1][2]  # a gap before this struct
            clock += length
            if kind != STRUCT_SKIP:
                end = clock
        spans[client] = (start, end)  # a trailing Skip covers nothing
        if end > start:
            reached[client] = end
    deletes = False
    deleted_clients: set[int] = set()
    for _ in range(reader.count()):
        client = reader.var_uint()
        if client in deleted_clients:
            raise reader.fail(f"client {client} has two delete lists")
        deleted_clients.add(client)
        covered = 0
        for _ in range(reader.count()):
            clock, length = reader.var_uint(), reader.var_uint()
            if length == 0:
                raise reader.fail("zero-length deletion")
            if clock < covered:  # yjs sorts and merges its ranges before writing them
                raise reader.fail(f"deleted range {client}#{clock} overlaps or precedes "
                                  "the one before it")
            covered = clock + length
            deletes = True
    if reader.pos != len(reader.data):
        raise reader.fail(f"{len(reader.data) - reader.pos} trailing bytes")
    summary = UpdateSummary(reached, deletes, spans, frozenset(types), tuple(gc),
                            tuple(parents), frozenset(entries), tuple(follows),
                            tuple(references), tuple(skipped), needs, tuple(placements))
    for parent in parents:
        if summary.holds(parent) and parent not in types and not summary.collected(parent):
            raise MalformedUpdate(f"parent {parent[0]}#{parent[1]} is an item of this update "
                                  "that is not a shared type")
    check_neighbours(summary, _unknown)
    return summary


def _unknown(_item: ID) -> Where:
    return None


def where_of(summary: UpdateSummary, outside: Callable[[ID], Where]) -> Callable[[ID], Where]:
    """Where each id sits, read from ``summary``'s items and, for others, ``outside``.

    An item that names no parent sits where its origin sits (else its right
    origin), as yjs places it; next to a collected item it is collected too.
    """
    by_client: dict[int, list[Placement]] = {}
    for placement in summary.placements:
        by_client.setdefault(placement.item[0], []).append(placement)
    starts = {client: [p.item[1] for p in ps] for client, ps in by_client.items()}
    known: dict[ID, Where] = {}

    def find(item: ID) -> Placement | None:
        if summary.collected(item):
            return None
        at = bisect.bisect_right(starts.get(item[0], ()), item[1]) - 1
        if at < 0:
            return None
        placement = by_client[item[0]][at]
        return placement if item[1] < placement.item[1] + placement.length else None

    def where(item: ID) -> Where:
        chain: list[ID] = []
        step: ID | None = item
        while True:
            placement = find(step) if step is not None else None
            if placement is None:
                found = _outside(step, outside, summary)
                break
            if placement.item in known:
                found = known[placement.item]
                break
            if placement.keyed or placement.parent is not None:
                found = ENTRY if placement.keyed else placement.parent
                known[placement.item] = found
                break
            if placement.item in chain:  # origins that lead round in a circle
                found = None
                break
            chain.append(placement.item)
            step = placement.origin if placement.origin is not None else placement.right
        for link in chain:  # each sits where the item it follows sits
            known[link] = found
        return found

    return where


def _outside(item: ID | None, outside: Callable[[ID], Where], summary: UpdateSummary) -> Where:
    if item is None:
        return None
    if summary.collected(item):
        return COLLECTED
    return None if summary.holds(item) else outside(item)


def check_neighbours(summary: UpdateSummary, outside: Callable[[ID], Where]) -> None:
    """Raise :class:`MalformedUpdate` for an item whose origins sit in different places.

    Yjs writes a right origin only inside a list, next to the origin: a right
    origin that is a map entry, or in another list, or collected while the
    origin is not, is placed one way by yrs and another by yjs.
    """
    where = where_of(summary, outside)
    for placement in summary.placements:
        if placement.right is None:
            continue
        right = where(placement.right)
        name = f"item {placement.item[0]}#{placement.item[1]}"
        if right is ENTRY:
            raise MalformedUpdate(f"{name} has a map entry as its right origin; yjs only "
                                  "writes a right origin in a list")
        if placement.origin is None:
            continue
        left = where(placement.origin)
        if left is None or right is None or left == right:
            continue
        raise MalformedUpdate(f"{name}: its origin and right origin are not in the same list "
                              f"({_said(left)} and {_said(right)})")


def _said(where: Where) -> str:
    if where is COLLECTED or where is ENTRY:
        return str(where[0])
    return repr(where) if isinstance(where, str) else f"in {where[0]}#{where[1]}"


def _item(reader: _Reader, info: int, kind: int, client: int, clock: int,
          parents: list[ID], entries: set[ID], follows: list[tuple[ID, ID, bool]],
          references: list[ID], placements: list[Placement]) -> int:
    """Read an item after its info byte; returns its length in clock ticks.

    Its parent (when named by id) goes to ``parents``, the item to ``entries``
    when it names a map key, and (origin, item, could be a map entry) to
    ``follows`` when it has an origin.

    An item can only follow, precede or sit in items that existed when it was
    made: one of its own client's must have a lower clock (yjs fails on others).
    """
    def reference(what: str) -> ID:
        ref_client, ref_clock = reader.var_uint(), reader.var_uint()
        if ref_client == client and ref_clock >= clock:
            raise reader.fail(f"{what} {ref_client}#{ref_clock} is not older than its item "
                              f"{client}#{clock}")
        references.append((ref_client, ref_clock))
        return ref_client, ref_clock

    origin = reference("origin") if info & ORIGIN else None
    right = reference("right origin") if info & RIGHT_ORIGIN else None
    parent: str | ID | None = None
    if not info & (ORIGIN | RIGHT_ORIGIN):
        flag = reader.var_uint()
        if flag == 1:
            parent = reader.var_string()  # name of a root type
        elif flag == 0:
            parent = reference("parent")
            parents.append(parent)
        else:
            raise reader.fail(f"parent flag {flag} (expected 0 or 1)")
        if info & PARENT_SUB:
            key = reader.var_string()
            length = _content(reader, kind)
            if kind not in MAP_VALUE_CONTENTS:
                raise reader.fail(f"map entry {key!r} holds content {kind}; yjs sets map "
                                  "entries to one value, a binary or a shared type")
            if length != 1 and kind != CONTENT_DELETED:  # yjs merges deleted runs
                raise reader.fail(f"map entry {key!r} holds {length} values; yjs sets one")
            entries.add((client, clock))
            placements.append(Placement((client, clock), length, parent, None, None, True))
            return length
    length = _content(reader, kind)
    placements.append(Placement((client, clock), length, parent, origin, right, False))
    if origin is not None:
        entry_like = kind in MAP_VALUE_CONTENTS and not info & RIGHT_ORIGIN and (
            length == 1 or kind == CONTENT_DELETED)
        follows.append((origin, (client, clock), entry_like))
    return length


def _content(reader: _Reader, kind: int) -> int:
    if kind == CONTENT_DELETED:
        return reader.var_uint()
    if kind == CONTENT_JSON:
        # Legacy (yjs 12): yjs 13 reads it but never writes it, and yrs' merge of it
        # writes bytes neither yjs nor yrs can read back.
        raise reader.fail("legacy JSON content (content 2) is not accepted; use yjs 13")
    if kind == CONTENT_BINARY:
        reader.var_bytes()
        return 1
    if kind == CONTENT_STRING:
        return len(reader.var_string().encode("utf-16-le")) // 2
    if kind == CONTENT_EMBED:
        reader.json()
        return 1
    if kind == CONTENT_FORMAT:
        reader.var_string()
        reader.json()
        return 1
    if kind == CONTENT_TYPE:
        ref = reader.var_uint()
        if ref not in TYPE_REFS:
            raise reader.fail(f"type reference {ref} is unknown to yjs (0 to 6)")
        if ref in NAMED_TYPE_REFS:
            reader.var_string()
        return 1
    if kind == CONTENT_ANY:
        length = reader.count()
        for _ in range(length):
            reader.any()
        return length
    if kind == CONTENT_DOC:
        raise reader.fail("sub-documents (content 9) are not part of a project document")
    raise reader.fail(f"content reference {kind} is unknown to yjs (1 to 9)")
