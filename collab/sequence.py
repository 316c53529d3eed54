"""Which logged updates a room's document holds, by sequence number.

One server process writes a project's log in order, so its room simply
counts.  When several processes serve the same project (see
:mod:`collab.relay`), updates reach a room out of order: its own appends,
other processes' updates relayed through Redis, and catch-up reads from the
store.  :class:`SeqTracker` keeps the numbers seen and the gaps below the
highest one; everything up to :attr:`SeqTracker.watermark` is in the document,
which is what a snapshot may safely fold in.  (An update only ever depends on
updates with lower numbers: a client sees a change only after it was logged,
so everything below the watermark is integrated, not waiting for a dependency.)
"""

from __future__ import annotations


class SeqTracker:
    """The sequence numbers of the updates a document holds."""

    def __init__(self, last: int = 0) -> None:
        #: Highest sequence number held.
        self.last = last
        #: Numbers below :attr:`last` not held yet.
        self.missing: set[int] = set()

    @property
    def watermark(self) -> int:
        """Every update numbered up to this one is held."""
        return min(self.missing) - 1 if self.missing else self.last

    @property
    def next(self) -> int:
        """The number an append of this process should try first."""
        return self.last + 1

    def holds(self, first: int, count: int) -> bool:
        """Whether every update numbered ``first .. first+count-1`` is held."""
        last = first + count - 1
        return last <= self.last and not any(
            seq in self.missing for seq in range(first, last + 1))

    def mark(self, first: int, count: int) -> None:
        """Record that updates ``first .. first+count-1`` are held now."""
        last = first + count - 1
        if first > self.last + 1:
            self.missing.update(range(self.last + 1, first))
        self.missing.difference_update(range(first, last + 1))
        self.last = max(self.last, last)

    def mark_through(self, seq: int) -> None:
        """Record that every update up to ``seq`` is held (a snapshot folded them in)."""
        self.missing = {m for m in self.missing if m > seq}
        self.last = max(self.last, seq)
