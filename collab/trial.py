"""Applying updates safely: yrs can fail half-way, so peer updates are tried on a copy first.

Yrs refuses some updates only while integrating them (an item whose parent is
neither a shared type nor deleted) and can panic on others; by then it may have
integrated part of the update.  A room therefore tries each peer update on a
:class:`TrialDoc`, a copy of its document, before storing it: only updates the
copy took reach the store and the real document.  A copy that failed is thrown
away and rebuilt from the real document when it is next needed.  Loading a
stored document (:func:`load_document`) leaves out logged updates that cannot
be applied, so a log poisoned before these checks existed still loads.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from pycrdt import Doc, StickyIndex

from .protocol import read_state_vector
from .store import QuarantinedUpdate
from .type_index import TypeIndex
from .update_format import MalformedUpdate, UpdateSummary, read_update

__all__ = ["TrialDoc", "UnappliableUpdate", "UpdateAhead", "apply_update", "check_right_of_origin",
           "load_document"]

log = logging.getLogger(__name__)

#: Documents whose encoding is this large are indexed in a worker thread (780 kB takes
#: about 0.2 s to read); smaller ones are indexed at once.
INDEX_IN_THREAD_BYTES = 64 * 1024


class UnappliableUpdate(MalformedUpdate):
    """An update yrs could not apply (the document may hold part of it)."""


class UpdateAhead(MalformedUpdate):
    """An update that needs items the document does not hold yet.

    Its items start past the clock the document holds for their client, follow
    a gap (a Skip struct) the document does not hold, or point at items it lacks.
    These would wait in yrs and yjs until the missing items arrive, and they wait
    differently (yrs even integrates the first two kinds at once), so the server
    never keeps such an update.  A yjs client only sends one by racing its own sync
    step 2 (an edit made while it connects); asked with a sync step 1, it sends
    everything the document lacks.
    """


def apply_update(doc: Doc, update: bytes) -> None:
    """Apply ``update`` to ``doc``; any failure of yrs becomes :class:`UnappliableUpdate`.

    Yrs reports some failures as a ``PanicException``, which derives from
    ``BaseException``; those are caught too (interrupts and exits are not).
    """
    try:
        doc.apply_update(update)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - pyo3 panics are BaseExceptions
        raise UnappliableUpdate(f"{type(exc).__name__}: {exc}") from None


class TrialDoc:
    """A copy of ``source`` that updates are tried on before ``source`` takes them.

    The copy (and the :class:`~collab.type_index.TypeIndex` of its items, for
    updates that name a parent) is made on first use, so a room nobody edits
    never pays for it.  It must see every change ``source`` sees: :meth:`attempt`
    for updates still to be checked, :meth:`follow` for updates ``source`` took
    by other ways.
    """

    def __init__(self, source: Doc) -> None:
        self.source = source
        self._copy: Doc | None = None
        self._index: TypeIndex | None = None
        #: The copy's state vector, kept up to date by attempt() (decoding it from yrs for
        #: every update cost 0.1 ms per 20 clients of the document).
        self._state: dict[int, int] | None = None
        #: While the index is being built in a thread: updates followed meanwhile.
        self._missed: list[bytes] | None = None

    async def prepare(self) -> None:
        """Make the copy and the index now, the index in a worker thread.

        Reading a large document takes a noticeable time (0.2 s for 780 kB); done
        here, before a batch is tried, it does not hold up the event loop.
        """
        if self._copy is None:
            self._fresh_copy()
        if self._index is not None or self._missed is not None:
            return
        encoded = self.source.get_update()
        if len(encoded) < INDEX_IN_THREAD_BYTES:  # a few milliseconds: not worth a thread
            self._index = TypeIndex.of(encoded)
            return
        self._missed = []
        try:
            index = await asyncio.to_thread(TypeIndex.of, encoded)
            for update in self._missed or ():
                index.add(read_update(update))
        except MalformedUpdate:
            return  # left to attempt(), which builds a non-checking index
        finally:
            missed, self._missed = self._missed, None
        if missed is not None:
            self._index = index

    def attempt(self, update: bytes, summary: UpdateSummary) -> None:
        """Check ``update`` (read as ``summary``) and apply it to the copy.

        Raises :class:`UpdateAhead` for items that skip clocks (also after a Skip struct
        the document lacks the clocks of), :class:`MalformedUpdate` for an item whose
        parent is a plain value or whose origins sit apart, :class:`UnappliableUpdate` when
        yrs fails.  After a success the copy is
        ahead of ``source`` until ``source`` takes the same update (or
        :meth:`discard` is called).
        """
        copy = self._copy if self._copy is not None else self._fresh_copy()
        if self._state is None:
            self._state = read_state_vector(copy.get_state())
        state = self._state
        for client, (start, _end) in summary.spans.items():
            if start > state.get(client, 0):
                raise UpdateAhead(f"items of client {client} start at clock {start}, but the "
                                  f"document holds that client up to {state.get(client, 0)}")
        for client, needed in summary.needs.items():
            if needed > state.get(client, 0):
                raise UpdateAhead(f"items of client {client} follow a gap up to clock {needed}, "
                                  f"but the document holds that client up to "
                                  f"{state.get(client, 0)}")
        for client, clock in summary.references:
            if clock >= state.get(client, 0) and not summary.holds((client, clock)):
                raise UpdateAhead(f"an item refers to {client}#{clock}, which the document "
                                  "does not hold yet")
        if summary.parents or summary.follows or any(
                placement.right is not None for placement in summary.placements):
            if self._index is None:
                self._index = TypeIndex.of(self.source.get_update())
            self._index.check(summary, state)
            check_right_of_origin(copy, summary, self._index.is_collected)
        try:
            apply_update(copy, update)
        except UnappliableUpdate:
            self.discard()
            raise
        # Nothing it needs is missing (checked above), so all of it was integrated.
        for client, (_start, end) in summary.spans.items():
            if end > state.get(client, 0):
                state[client] = end
        if self._index is not None:
            self._index.add(summary)

    def follow(self, update: bytes) -> None:
        """Apply an update ``source`` has taken already (nothing to do without a copy)."""
        self._state = None  # read again from the copy when next needed
        if self._missed is not None:
            self._missed.append(update)
        if self._index is not None:
            try:
                self._index.add(read_update(update))
            except MalformedUpdate:
                self._index = None  # rebuilt from the document when next needed
        if self._copy is None:
            return
        try:
            apply_update(self._copy, update)
        except UnappliableUpdate as exc:
            log.warning("trial copy could not follow its document (%s); rebuilding it", exc)
            self._copy = None

    def discard(self) -> None:
        """Forget the copy and index (the copy may be ahead of ``source``); the next
        attempt rebuilds them.  Also how an idle room gives their memory back."""
        self._copy = None
        self._index = None
        self._state = None
        self._missed = None  # an index being built is not kept either

    @property
    def held(self) -> bool:
        """Whether a copy or an index is in memory."""
        return self._copy is not None or self._index is not None

    @property
    def index_size(self) -> int:
        """How many id ranges the index keeps (0 without one); see :attr:`TypeIndex.size`."""
        return 0 if self._index is None else self._index.size

    def _fresh_copy(self) -> Doc:
        self._state = None
        copy = Doc()
        copy.apply_update(self.source.get_update())
        self._copy = copy
        return copy


def check_right_of_origin(doc: Doc, summary: UpdateSummary,
                          collected: Callable[[int, int], bool] | None = None) -> None:
    """Raise :class:`MalformedUpdate` for an item whose right origin precedes its origin.

    Yjs takes an item's right origin from the right of its origin, and no edit
    moves one item past another, so in every replica the right origin lies right
    of the origin.  One that lies left of it (or is the origin) is integrated in
    one place live and in another when the document is loaded again.  Only items
    of ``doc`` that are not deleted can be told apart: their visible positions
    (one lookup each) differ; a deleted one shares its position with its right
    neighbour and is let through.  So is one next to an item ``collected`` says the
    document no longer holds (``(client, clock)``; its lookup would make yrs panic,
    which costs tens of milliseconds on the loop when a backtrace is printed).
    """
    for placement in summary.placements:
        origin, right = placement.origin, placement.right
        if origin is None or right is None or summary.holds(origin) or summary.holds(right):
            continue
        name = f"item {placement.item[0]}#{placement.item[1]}"
        if origin == right:
            raise MalformedUpdate(f"{name} has its origin as its right origin")
        if collected is not None and (collected(*origin) or collected(*right)):
            continue
        at_origin = _position(doc, origin)
        at_right = None if at_origin is None else _position(doc, right)
        if at_origin is not None and at_right is not None and at_right < at_origin:
            raise MalformedUpdate(f"{name}: its right origin {right[0]}#{right[1]} lies left "
                                  f"of its origin {origin[0]}#{origin[1]}")


def _position(doc: Doc, item: tuple[int, int]) -> int | None:
    """The visible index of ``item`` in its list (None when ``doc`` cannot say)."""
    sticky = StickyIndex.from_json({"item": {"client": item[0], "clock": item[1]}, "assoc": 0})
    try:
        with doc.transaction() as txn:
            return sticky.get_index(txn)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:  # noqa: BLE001 - yrs panics on an item it does not hold
        return None


def load_document(snapshot: bytes | None, updates: list[bytes], first_seq: int
                  ) -> tuple[Doc, list[QuarantinedUpdate]]:
    """Rebuild a document from its snapshot and logged updates ``first_seq, ...``.

    Logged updates that stock yjs cannot read, or that yrs cannot apply, are
    left out and returned for quarantine; the document is rebuilt without one
    that failed half-way.  Raises :class:`UnappliableUpdate` for a snapshot
    that cannot be applied.
    """
    doc = _replay(snapshot, [])
    good: list[bytes] = []
    left_out: list[QuarantinedUpdate] = []
    for seq, update in enumerate(updates, start=first_seq):
        try:
            read_update(update)
            apply_update(doc, update)
        except MalformedUpdate as exc:
            left_out.append(QuarantinedUpdate(seq, update, str(exc)))
            if isinstance(exc, UnappliableUpdate):
                doc = _replay(snapshot, good)
            continue
        good.append(update)
    return doc, left_out


def _replay(snapshot: bytes | None, updates: list[bytes]) -> Doc:
    doc = Doc()
    if snapshot:
        apply_update(doc, snapshot)
    for update in updates:
        doc.apply_update(update)
    return doc
