"""Which items of a document are shared types: the only items another item may sit in.

An item names its parent by id when it is the first one in a nested type.  Yjs
and yrs disagree on a parent that is a plain value: yjs files the item under no
parent, yrs refuses the update, or takes it when the value was deleted first.
Whether it was deleted first depends on the order updates arrive in, and a
merged relay reorders them (items before deletions), so one such update can
make yrs clients fail on a relay the server took.  No yjs client writes such a
parent, so the room refuses any update whose parent is a known item that is
not a shared type (:meth:`TypeIndex.check`).  Items collected by garbage
collection count as types: their kind is gone, and a deleted track, say, is
one of them, which an offline client may still edit.

The same holds for map entries: an item placed after a map entry replaces it
(it takes the entry's key), and yjs only ever writes one value, a binary or a
shared type there, with nothing to its right; given a run of text instead,
yjs reads the entry's last character and yrs the whole text.  The index keeps
the map entries too, so an update can be checked against them.

And for list items: yjs writes an item's right origin next to its origin, in
the same list.  Given a right origin that is a map entry, in another list, or
collected while the origin is not, yrs and yjs place the item differently.  The
index keeps the list (root name or parent id) of every list item, so such an
item is refused too.

Yrs does not say what kind an item is, so the index reads the document's own
encoding once (on first need) and then every update the document takes.
"""

from __future__ import annotations

import bisect
import logging
from collections import defaultdict
from collections.abc import Iterable

from .update_format import (
    COLLECTED,
    ENTRY,
    ID,
    MalformedUpdate,
    UpdateSummary,
    Where,
    check_neighbours,
    read_update,
    where_of,
)

__all__ = ["TypeIndex"]

log = logging.getLogger(__name__)


class IdSet:
    """A set of item ids kept as sorted, disjoint clock ranges per client.

    A client's items mostly take consecutive clocks (each fader move is one more map
    entry after the last), so a long editing session is a few ranges, where a set of
    clocks kept every id ever written: 24,000 fader moves made 35,000 entries that the
    index held until the room went idle.
    """

    __slots__ = ("_count", "_ends", "_starts")

    def __init__(self) -> None:
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        self._count = 0

    def __contains__(self, item: ID) -> bool:
        starts = self._starts.get(item[0])
        if not starts:
            return False
        at = bisect.bisect_right(starts, item[1]) - 1
        return at >= 0 and item[1] < self._ends[item[0]][at]

    def add(self, client: int, clock: int) -> None:
        """Add the id ``client#clock``."""
        starts = self._starts.setdefault(client, [])
        ends = self._ends.setdefault(client, [])
        if starts and clock == ends[-1]:  # the usual case: the client's next clock
            ends[-1] += 1
            self._count += 1
            return
        at = bisect.bisect_right(starts, clock) - 1
        if at >= 0 and clock < ends[at]:
            return  # held already
        joins_left = at >= 0 and ends[at] == clock
        joins_right = at + 1 < len(starts) and starts[at + 1] == clock + 1
        if joins_left and joins_right:
            ends[at] = ends[at + 1]
            del starts[at + 1], ends[at + 1]
        elif joins_left:
            ends[at] = clock + 1
        elif joins_right:
            starts[at + 1] = clock
        else:
            starts.insert(at + 1, clock)
            ends.insert(at + 1, clock + 1)
        self._count += 1

    def add_run(self, client: int, clock: int, length: int) -> None:
        """Add the ids ``client#clock`` up to ``client#(clock + length - 1)``."""
        starts = self._starts.setdefault(client, [])
        ends = self._ends.setdefault(client, [])
        if starts and clock == ends[-1]:  # the usual case: the client's next clocks
            ends[-1] += length
            self._count += length
            return
        for at in range(clock, clock + min(length, 1 << 16)):  # rare: out of order
            self.add(client, at)

    def update(self, items: Iterable[ID]) -> None:
        """Add ``items`` (in order: a whole document's ids each extend the last range)."""
        for client, clock in sorted(items):
            self.add(client, clock)

    def __len__(self) -> int:
        """How many ids it holds."""
        return self._count

    @property
    def ranges(self) -> int:
        """How many ranges it keeps (what its memory follows)."""
        return sum(map(len, self._starts.values()))


class ListIndex:
    """The list (root name or parent id) of each list item, as clock ranges per client.

    A range runs on over the clocks of the client's map entries and collected
    items in between (looked up elsewhere first), so a client adding list items
    and map entries by turns keeps one range per list it writes in a row.
    """

    __slots__ = ("_ends", "_lists", "_starts")

    def __init__(self) -> None:
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        self._lists: dict[int, list[Where]] = {}

    def add(self, client: int, clock: int, length: int, where: Where) -> None:
        """Record ``length`` items from ``client#clock`` in list ``where`` (None: unknown)."""
        starts = self._starts.setdefault(client, [])
        ends = self._ends.setdefault(client, [])
        lists = self._lists.setdefault(client, [])
        if starts and clock >= ends[-1]:
            if lists[-1] == where:
                ends[-1] = clock + length
                return
            at = len(starts)
        else:  # out of order: keep what is known, add a range of its own
            at = bisect.bisect_right(starts, clock)
            if at > 0 and clock < ends[at - 1]:
                return
        starts.insert(at, clock)
        ends.insert(at, clock + length if at == len(ends) else min(clock + length,
                                                                     starts[at + 1]))
        lists.insert(at, where)

    def get(self, item: ID) -> Where:
        """The list of ``item`` (None when not known)."""
        starts = self._starts.get(item[0])
        if not starts:
            return None
        at = bisect.bisect_right(starts, item[1]) - 1
        return self._lists[item[0]][at] if at >= 0 and item[1] < self._ends[item[0]][at] \
            else None

    @property
    def ranges(self) -> int:
        """How many ranges it keeps."""
        return sum(map(len, self._starts.values()))


class TypeIndex:
    """Shared-type items, map entries and collected ranges of one document."""

    def __init__(self, *, checking: bool = True) -> None:
        #: False for a document whose own encoding does not read (written before these
        #: checks): nothing is known about its items, so nothing is refused.
        self.checking = checking
        self.types = IdSet()
        #: client -> sorted, disjoint (start, end) ranges of collected items.
        self._collected: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self.entries = IdSet()
        self.lists = ListIndex()

    @classmethod
    def of(cls, encoded_document: bytes) -> TypeIndex:
        """The index of a whole document (its ``get_update()``)."""
        index = cls()
        try:
            index.add(read_update(encoded_document))
        except MalformedUpdate as exc:
            log.error("a document does not read as yjs would (%s); its updates are not "
                      "checked against its items", exc)
            return cls(checking=False)
        return index

    def add(self, summary: UpdateSummary) -> None:
        """Take in an update the document has taken."""
        self.types.update(summary.types)
        for client, start, end in summary.gc:
            bisect.insort(self._collected[client], (start, end))
        where = where_of(summary, self._where)
        for placement in summary.placements:
            (client, clock), length = placement.item, placement.length
            found = where(placement.item)
            if found is ENTRY:
                self.entries.add_run(client, clock, length)
            else:
                self.lists.add(client, clock, length, None if found is COLLECTED else found)

    def check(self, summary: UpdateSummary, state: dict[int, int]) -> None:
        """Raise :class:`MalformedUpdate` if an item of ``summary`` sits in a plain value.

        ``state`` is the document's state vector: the items it holds.  A parent it
        does not hold yet (an item still on its way) passes.
        """
        if not self.checking:
            return
        for parent in summary.parents:
            if parent in summary.types or parent in self.types or summary.holds(parent):
                continue  # a parent inside the update was checked when it was read
            client, clock = parent
            if clock >= state.get(client, 0) or self.is_collected(client, clock):
                continue
            raise MalformedUpdate(f"parent {client}#{clock} is not a shared type; an item "
                                  "can only sit in a map or an array")
        self._entries_of(summary)
        check_neighbours(summary, self._where)

    @property
    def size(self) -> int:
        """How many ranges of ids it keeps: its memory follows this, not the edits made."""
        return (self.types.ranges + self.entries.ranges + self.lists.ranges
                + sum(map(len, self._collected.values())))

    def _entries_of(self, summary: UpdateSummary) -> set[ID]:
        """The map entries of ``summary``: named ones and those replacing an entry.

        Raises :class:`MalformedUpdate` for an item replacing an entry that is not
        one value, a binary or a shared type.
        """
        entries = set(summary.entries)
        for origin, item, entry_like in summary.follows:
            if origin in entries or origin in self.entries:
                if not entry_like:
                    raise MalformedUpdate(f"item {item[0]}#{item[1]} replaces map entry "
                                          f"{origin[0]}#{origin[1]} but is not one value")
                entries.add(item)
        return entries

    def _where(self, item: ID) -> Where:
        """Where a document's ``item`` sits: collected, a map entry, a list or unknown."""
        if self.is_collected(*item):
            return COLLECTED
        if item in self.entries:
            return ENTRY
        return self.lists.get(item)

    def is_collected(self, client: int, clock: int) -> bool:
        """Whether the document's item ``client#clock`` was collected (a GC range)."""
        ranges = self._collected.get(client)
        if not ranges:
            return False
        at = bisect.bisect_right(ranges, (clock, float("inf"))) - 1
        return at >= 0 and ranges[at][0] <= clock < ranges[at][1]
