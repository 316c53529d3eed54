"""A room: one project's live document, its connected peers and its durable log.

Data flow for an edit: a peer's update is decoded and checked (role, and
every byte read as stock yjs would: :mod:`collab.update_format`), queued,
and the room's single *flusher* task takes everything queued so far as one
batch: it tries each update on a copy of the document (:mod:`collab.trial`;
yrs refuses some updates only half-way through applying them), appends the
ones the copy took to the store in one transaction (durable), then applies
them to the document, relays them to the other peers (merged, so re-encoded
by yrs, never the bytes received) and answers queued sync-step-1 requests.
An update refused by either check closes its sender with 4400 and is never
stored or relayed; nothing that goes wrong in a batch stops the flusher.
Loading leaves out (and quarantines) logged updates that cannot be applied,
so a project poisoned before these checks still opens.  Batching is what
lets one fsync cover many edits under load; the order (store before relay)
is what makes "every update another client saw survives a crash" true.
An update queued just before its sender disconnects is still stored and
relayed; only a peer the server refused (revoked, malformed input) or whose
role no longer allows editing has its queued updates dropped.

The room knows nothing of what the document holds: the server hands it a
``document_type`` (:class:`collab.schema.ProjectDocument`), a typed view of
the Yjs document that it offers as :attr:`Room.document` and whose
``undo_scopes`` names the top-level maps server edits may undo.

Server-made edits (:meth:`Room.edit`) travel the same batch path.  An edit
made with ``undoable=True`` is tracked by the room's undo manager (on the
``undo_scopes`` maps); :meth:`Room.undo` and :meth:`Room.redo` revert and replay
such edits as server edits of their own: durable and relayed like any other.
The undo history lives in memory: it starts empty each time the room starts.

Several server processes may serve one project at once (:mod:`collab.relay`):
a room given a :class:`RoomLink` publishes each durable batch and its peers'
presence through it, and takes in the other processes' batches
(:meth:`Room.receive_update`) and presence (:meth:`Room.receive_awareness`).
Appends then race for sequence numbers; the loser reads what it missed from
the store and tries the next number, so the log stays one gap-free sequence
and every update is still on disk before any client sees it.

A project deleted from the store (:meth:`collab.store.Store.delete_project`) ends its
room: :meth:`Room.close_deleted` (or the store refusing a batch with
:class:`~collab.errors.ProjectDeleted`, when another process deleted it) sends every
peer away with 4411, drops what they queued and writes nothing more, no final
snapshot included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple, Protocol

from opentelemetry import trace
from pycrdt import Doc, Map, Subscription, TransactionEvent, UndoManager, merge_updates

from . import metrics
from . import protocol as p
from .errors import (
    CollabError,
    MalformedMessage,
    ProjectBusy,
    ProjectDeleted,
    SchemaError,
    SeqConflict,
    StoreError,
)
from .peer import Channel, Peer
from .presence import Presence, is_server_id
from .sequence import SeqTracker
from .store import Store
from .tokens import Role
from .trial import TrialDoc, UnappliableUpdate, UpdateAhead, apply_update, load_document
from .update_format import MalformedUpdate, UpdateSummary, read_update

__all__ = ["UNDOABLE_ORIGIN", "Channel", "DocumentType", "Peer", "Room", "RoomLimits",
           "RoomLink"]

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)
#: Batch entries that change the document: a batch holding one gets a trace span.
EDITS = frozenset({"update", "local", "remote"})

#: Transaction origin of server edits that :meth:`Room.undo` can revert.
UNDOABLE_ORIGIN = "server-undoable"
#: How long a room waits for a missing update to arrive before reading it from the store.
CATCH_UP_DELAY = 0.2
#: Updates this large are read in a worker thread (a client's sync step 2 after offline
#: work, a pasted session); smaller ones take well under a millisecond to read.
READ_IN_THREAD_BYTES = 64 * 1024
#: Seconds without peer edits after which a room drops its trial copy and index.
TRIAL_IDLE_SECONDS = 60.0
#: The state vector of a client that holds nothing.
EMPTY_STATE = b"\x00"
#: Appends tried in a row when other processes keep taking the sequence numbers.
MAX_APPEND_TRIES = 50
#: The encoded whole document is followed by at most this many later updates (and at
#: most 1/WHOLE_TAIL_FRACTION of its size in bytes) before it is encoded afresh.
WHOLE_TAIL_UPDATES = 256
WHOLE_TAIL_FRACTION = 8


class RoomLink(Protocol):
    """Where a room shares what other server processes of the same project must see."""

    def publish_update(self, project_id: str, first_seq: int, count: int,
                       update: bytes) -> None:
        """Announce a durable batch: log entries ``first_seq ..`` merged into ``update``."""

    def publish_awareness(self, project_id: str, message: bytes,
                          owners: dict[int, str]) -> None:
        """Announce a presence (awareness) message of a local peer, with the user who
        introduced each of its client ids here (``owners``; none for the server's)."""


@dataclass
class RoomLimits:
    """Per-room limits (and what peers may not say)."""

    max_message_bytes: int = 8 * 1024 * 1024
    compact_every: int = 10_000
    compact_min_bytes: int = 1024 * 1024
    max_outbox: int = 10_000
    #: The bytes a peer may fall behind (besides the batch its writer is sending).
    max_outbox_bytes: int = 64 * 1024 * 1024
    #: Top-level awareness state fields only the server may set (its announcements'):
    #: a peer's state is relayed without them.
    server_fields: frozenset[str] = frozenset()

    def should_compact(self, log_updates: int, log_bytes: int, snapshot_bytes: int) -> bool:
        """Fold the log when it holds ``compact_every`` updates or outweighs the snapshot.

        Compaction rewrites the whole document, so it is amortised against the
        snapshot's size: a big document with tiny fader updates compacts rarely.
        """
        return log_updates >= self.compact_every or (
            log_updates > 0 and log_bytes >= max(self.compact_min_bytes, snapshot_bytes))


class DocumentType(Protocol):
    """A typed view of a room's Yjs document: ``document_type(doc)``.

    ``undo_scopes`` names the top-level maps an undoable server edit may touch.
    """

    undo_scopes: tuple[str, ...]

    def __call__(self, doc: Doc) -> Any: ...


class Room:
    """The live document of one project (an async context manager).

    ``document_type`` makes :attr:`document`, the view server edits receive;
    without one, ``document`` is None and nothing can be undone.
    """

    def __init__(self, project_id: str, store: Store, limits: RoomLimits | None = None,
                 link: RoomLink | None = None, *,
                 document_type: DocumentType | None = None) -> None:
        self.project_id = project_id
        self.store = store
        self.limits = limits or RoomLimits()
        self.link = link
        self.document_type = document_type
        self.doc = Doc()
        self.document: Any = None
        self.peers: set[Peer] = set()
        self.presence = Presence()
        #: Awareness client ids the server announces under: no peer may write them.
        self._server_ids: set[int] = set()
        #: The user whose connection introduced each awareness client id: only that
        #: user's connections may take the id again (a reconnecting client).
        self._id_users: dict[int, str] = {}
        self._seqs = SeqTracker()
        self._gap_timer: asyncio.TimerHandle | None = None
        self._snapshot_seq = 0
        self._snapshot_bytes = 0
        self._log_bytes = 0
        self._queue: list[tuple[str, Peer | None, Any]] = []
        self._wake = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        self._compaction: asyncio.Task[None] | None = None
        self._listeners: list[Callable[[Room], None]] = []
        self._trial_release: asyncio.TimerHandle | None = None
        #: Server edits in the document whose batch is not stored yet.
        self._unstored_local = 0
        #: The whole document encoded once, and every update applied to it since, in
        #: order: what a client that has nothing is sent (see :meth:`_answer_step1`).
        self._whole: bytes | None = None
        self._whole_tail: list[bytes] = []
        self._whole_tail_bytes = 0
        #: While set, the update of every transaction of ``doc`` (a server edit) lands here.
        self._captured: list[bytes] | None = None
        self._trial = TrialDoc(self.doc)
        self._started = False
        #: The document's observer of :meth:`_on_transaction`: yrs holds it (and so the
        #: room) where Python's collector cannot see the cycle, so :meth:`stop` drops it.
        self._subscription: Subscription | None = None
        self._undo: UndoManager | None = None
        #: Set when the document may differ from the disk (a server edit that could not be
        #: stored, an update yrs failed on half-way): it must be reloaded, never snapshotted.
        self.diverged = False
        #: Set once the project is deleted from the store: nothing more is written.
        self.deleted = False

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Room:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Load the document from the store and start the flusher."""
        if self._started:
            raise CollabError(f"room {self.project_id!r} is already started")
        stored = await self.store.load(self.project_id)
        try:
            doc, left_out = load_document(stored.snapshot, stored.updates,
                                          stored.snapshot_seq + 1)
        except UnappliableUpdate as exc:
            raise StoreError(f"project {self.project_id}: the stored snapshot cannot be "
                             f"applied ({exc}); restore it from a backup") from None
        self.doc, self._trial = doc, TrialDoc(doc)
        self._drop_whole()
        if self.document_type is not None:
            self.document = self.document_type(doc)
        self._seqs, self._snapshot_seq = SeqTracker(stored.last_seq), stored.snapshot_seq
        self._snapshot_bytes = len(stored.snapshot or b"")
        self._log_bytes = sum(len(u) for u in stored.updates)
        if left_out:
            await self._quarantine(left_out, stored.last_seq)
        # Created after loading, so only edits made from now on can be undone.
        scopes = getattr(self.document_type, "undo_scopes", ())
        self._undo = UndoManager(scopes=[self.doc.get(name, type=Map) for name in scopes],
                                 capture_timeout_millis=0)
        self._undo.include_origin(UNDOABLE_ORIGIN)
        # Last, once nothing can fail: only stop() drops it (a start that raised never stops).
        self._subscription = self.doc.observe(self._on_transaction)
        self._flusher = asyncio.create_task(self._flush_loop(), name=f"flush {self.project_id}")
        self._started = True

    async def stop(self, *, close_code: int = p.CloseCode.SERVER_SHUTDOWN) -> None:
        """Persist everything queued, write a final snapshot and close every peer."""
        if not self._started:
            return
        self._started = False
        if self._gap_timer is not None:
            self._gap_timer.cancel()
        if self._trial_release is not None:
            self._trial_release.cancel()
        for peer in list(self.peers):
            peer.close_soon(close_code, p.CloseCode(close_code).reason)
        await self._drain()
        assert self._flusher is not None
        self._flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._flusher
        if self._compaction is not None:
            await asyncio.gather(self._compaction, return_exceptions=True)
        try:
            upto = self._seqs.watermark
            if upto > self._snapshot_seq and not self.diverged:
                await self._compact_now(self.doc.get_update(), upto, self._log_bytes)
        finally:
            self._forget_document()

    def _forget_document(self) -> None:
        """Drop the document's observer, so the stopped room (and its documents) can be
        freed: every room ever loaded stayed in memory before (the soak's open/close)."""
        if self._subscription is not None:
            self.doc.unobserve(self._subscription)
            self._subscription = None

    def mark_deleted(self) -> None:
        """The project was deleted: send every peer away (4411), their queued updates
        dropped; the room writes nothing more and is never snapshotted."""
        self.deleted = self.diverged = True
        for peer in self.peers:
            peer.refuse(p.CloseCode.PROJECT_DELETED, p.CloseCode.PROJECT_DELETED.reason)

    async def close_deleted(self) -> None:
        """End the room of a project deleted from the store (:meth:`mark_deleted`, then
        :meth:`stop` without a final snapshot)."""
        self.mark_deleted()
        await self.stop(close_code=p.CloseCode.PROJECT_DELETED)

    async def compact(self) -> bool:
        """Fold every durable update into a snapshot of the document now; whether written.

        After an edit that must not be readable from the store any more (a
        person's erasure): the new snapshot holds the document without the
        deleted content, and the logged updates it replaces are deleted.
        """
        if self.deleted:
            raise ProjectDeleted(f"project {self.project_id!r} was deleted")
        if not self._started or self.diverged:
            raise CollabError(f"room {self.project_id!r} is not started or is reloading")
        await self._drain()
        if self._compaction is not None:
            await asyncio.gather(self._compaction, return_exceptions=True)
        upto, logged, snapshot = self._seqs.watermark, self._log_bytes, self.doc.get_update()
        written = await self.store.compact(self.project_id, snapshot, upto)
        if written and upto >= self._snapshot_seq:
            self._snapshot_seq, self._snapshot_bytes = upto, len(snapshot)
            self._log_bytes = max(0, self._log_bytes - logged)
        return written

    async def _quarantine(self, left_out: list, upto_seq: int) -> None:
        """Keep unloadable logged updates aside and fold the log without them."""
        for entry in left_out:
            log.error("project %s: logged update %d left out and quarantined: %s",
                      self.project_id, entry.seq, entry.reason)
        metrics.UPDATES_QUARANTINED.inc(len(left_out))
        await self.store.quarantine(self.project_id, left_out)
        await self._compact_now(self.doc.get_update(), upto_seq, self._log_bytes)

    @property
    def last_seq(self) -> int:
        """Sequence number of the last durable update this room holds."""
        return self._seqs.last

    def on_change(self, callback: Callable[[Room], None]) -> None:
        """Call ``callback(room)`` after each batch of updates is applied and durable."""
        self._listeners.append(callback)

    # -- peers ---------------------------------------------------------------------------

    async def serve(self, peer: Peer) -> None:
        """Run one peer's session until it disconnects or is closed."""
        if not self._started:
            raise CollabError(f"room {self.project_id!r} is not started")
        if self.diverged:
            await peer.channel.close(1011, "the document is being reloaded; reconnect")
            return
        peer.max_outbox = self.limits.max_outbox
        peer.max_outbox_bytes = self.limits.max_outbox_bytes
        writer = asyncio.create_task(peer.write_loop(), name="collab writer")
        self.peers.add(peer)
        peer.push(p.sync_step1(self.doc.get_state()))
        everyone = self.presence.encode_all()
        if everyone:
            peer.push(p.awareness(everyone))
        try:
            async for data in peer.channel:
                if peer.closing:
                    break
                try:
                    await self._handle(peer, data)
                except MalformedMessage as exc:
                    log.info("project %s: closing %s: %s", self.project_id, peer.grant.user, exc)
                    peer.refuse(p.CloseCode.MALFORMED_MESSAGE, f"malformed message: {exc}")
                    break
        finally:
            self.peers.discard(peer)
            gone = self.presence.remove(peer.awareness_ids)
            if gone:
                message = p.awareness(gone)
                for other in self.peers:
                    other.push(message)
                if self.link is not None:
                    self.link.publish_awareness(self.project_id, message,
                                                self._owners_of(peer.awareness_ids))
            self._forget_gone_ids()
            if peer.closing is None:
                peer.closing = (1000, "")
                peer.wake.set()
            elif peer.closing[0] == p.CloseCode.TOO_SLOW:
                writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    def disconnect_user(self, user: str, code: int, reason: str) -> int:
        """Refuse every connection of ``user`` (their unstored updates are dropped).

        Returns how many connections were closed.
        """
        matches = [peer for peer in self.peers if peer.grant.user == user]
        for peer in matches:
            peer.refuse(code, reason)
        return len(matches)

    def revoked_users(self, revocations: dict[str, float]) -> set[str]:
        """Users connected here on a token that ``revocations`` (user -> when) cover."""
        return {peer.grant.user for peer in self.peers if not peer.grant.is_admin
                and peer.grant.user in revocations
                and peer.grant.issued_at <= revocations[peer.grant.user]}

    def set_role(self, user: str, role: Role) -> int:
        """Give every connection of ``user`` the role ``role`` from now on.

        Updates they queued that are not stored yet are dropped if ``role``
        cannot edit.  Returns how many connections changed.
        """
        matches = [peer for peer in self.peers if peer.grant.user == user]
        for peer in matches:
            peer.grant = replace(peer.grant, role=role)
        return len(matches)

    async def _handle(self, peer: Peer, data: bytes | str) -> None:
        if isinstance(data, str):
            raise MalformedMessage("text frames are not part of the protocol; send binary")
        if len(data) > self.limits.max_message_bytes:  # its earlier updates were fine
            peer.close_soon(p.CloseCode.MESSAGE_TOO_BIG,
                            f"message of {len(data)} bytes is over the "
                            f"{self.limits.max_message_bytes}-byte limit")
            return
        message = p.decode_message(data)
        if message.kind == p.MSG_SYNC:
            if message.sub == p.SYNC_STEP1:
                p.read_state_vector(message.payload)
                if peer.queued or self._unstored_local or self.diverged:
                    # After what it sent before (in order), or once server edits
                    # already in the document are durable.
                    self._enqueue("step1", peer, message.payload)
                else:  # the document holds only what is durable: answer now
                    self._answer_step1(peer, message.payload)
                return
            update = message.payload
            try:
                if len(update) < READ_IN_THREAD_BYTES:
                    summary = read_update(update)
                else:  # reading 780 kB takes 0.2 s: not on the event loop
                    summary = await asyncio.to_thread(read_update, update)
            except MalformedUpdate:
                metrics.UPDATES_REFUSED.labels("format").inc()
                raise
            if summary.empty:
                return
            if not peer.grant.role.can_edit:
                doc_state = p.read_state_vector(self.doc.get_state())
                if p.has_new_structs(summary.reached, doc_state) or \
                        message.sub == p.SYNC_UPDATE:
                    self._deny(peer)
                return
            self._enqueue("update", peer, (update, summary, time.monotonic()))
        elif message.kind == p.MSG_AWARENESS:
            self._take_awareness(peer, p.decode_awareness(message.payload))
        elif message.kind == p.MSG_QUERY_AWARENESS:
            everyone = self.presence.encode_all()
            if everyone:
                peer.push(p.awareness(everyone))

    def _take_awareness(self, peer: Peer, entries: list[p.AwarenessEntry]) -> None:
        """Apply the entries of ``peer``'s awareness update for the id it owns and relay
        the ones that changed something; drop the others, silently.

        Stock clients send others' entries as a matter of course (y-websocket sends
        back every awareness change it receives, times out quiet clients with a null,
        and forwards its other tabs' states), so a foreign entry is no reason to close.
        """
        mine = []
        for entry in entries:
            own = self._owned(peer, entry)
            if own is not None:
                mine.append(own)
            elif self._newer(entry):  # not an echo: a spoof (or another tab's news)
                metrics.AWARENESS_DROPPED.inc()
        taken = self.presence.take(mine)
        for entry in mine:
            held = self.presence.clock(entry.client_id)
            if entry.state is not None and entry not in taken and held is not None and (
                    held[0] > entry.clock or not held[1]):
                # Back after the room announced it gone (a reconnect): its clock is behind
                # that null. Told it, a yjs client bumps its clock past it and resends.
                peer.push(p.awareness(p.encode_awareness(
                    [p.AwarenessEntry(entry.client_id, held[0], None)])))
        if not taken:
            return
        message = p.awareness(p.encode_awareness(taken))
        for other in self.peers:
            if other is not peer:
                other.push(message)
        if self.link is not None:
            self.link.publish_awareness(self.project_id, message,
                                        self._owners_of({entry.client_id for entry in taken}))

    def _owners_of(self, client_ids: set[int]) -> dict[int, str]:
        """The user who introduced each of ``client_ids`` (those the room knows of)."""
        return {cid: self._id_users[cid] for cid in client_ids if cid in self._id_users}

    def _forget_gone_ids(self) -> None:
        """Forget the awareness ids long gone (and who held them): what the room keeps of
        its past connections stays bounded while it is loaded."""
        held = set(self._server_ids)
        for peer in self.peers:
            held |= peer.awareness_ids
        for client_id in self.presence.forget(keep=held):
            self._id_users.pop(client_id, None)

    def _newer(self, entry: p.AwarenessEntry) -> bool:
        """Whether ``entry`` would change what the room holds for its client id."""
        held = self.presence.clock(entry.client_id)
        return held is None or entry.clock > held[0]

    def _owned(self, peer: Peer, entry: p.AwarenessEntry) -> p.AwarenessEntry | None:
        """``entry`` if ``peer`` may write its client id (without the server's fields),
        else None.

        A connection owns one id: the first it sends a state for that is free (never
        seen, gone or outdated here, and not introduced by another user, here or on
        another server process: :meth:`receive_awareness`). A live
        connection of the same user gives the id up to it (a reconnect the server has
        not noticed yet). The servers' ids (the whole range :func:`is_server_id`, also
        one no server has announced under here yet) are nobody's.
        """
        client_id = entry.client_id
        if is_server_id(client_id) or client_id in self._server_ids:
            return None
        if client_id not in peer.awareness_ids:
            user = self._id_users.get(client_id)
            if peer.awareness_ids or entry.state is None or (
                    user is not None and user != peer.grant.user):
                return None
            holders = [other for other in self.peers if client_id in other.awareness_ids]
            if not holders and not self.presence.free(client_id):
                return None  # held by a peer of another server process
            for holder in holders:  # the same user's older connection
                holder.awareness_ids.discard(client_id)
            peer.awareness_ids.add(client_id)
            self._id_users[client_id] = peer.grant.user
        fields = self.limits.server_fields
        if entry.state is not None and not fields.isdisjoint(entry.state):
            entry = replace(entry, state={key: value for key, value in entry.state.items()
                                          if key not in fields})
        return entry

    def _deny(self, peer: Peer) -> None:
        peer.push(p.permission_denied(
            f"role {peer.grant.role.value} cannot edit project {self.project_id}; "
            "your change was not applied (ask an owner for the editor role)"))

    def _accepts(self, peer: Peer) -> bool:
        """Whether a queued update of ``peer`` is still to be stored (checked at flush)."""
        if peer.refused:
            return False
        if not peer.grant.role.can_edit:  # the role was lowered after the update arrived
            self._deny(peer)
            return False
        return True

    # -- the batch pipeline --------------------------------------------------------------

    def _enqueue(self, kind: str, peer: Peer | None, payload: Any) -> None:
        self._queue.append((kind, peer, payload))
        if peer is not None:
            peer.queued += 1
        self._wake.set()

    def _answer_step1(self, peer: Peer, state_vector: bytes) -> None:
        """Send ``peer`` what the document holds past ``state_vector``.

        A client that has nothing (a late joiner) gets the whole document as encoded
        earlier, in sync step 2, then every update applied since as sync updates, in
        order: the same state, without encoding 0.8 MB on the event loop after each
        change (encoding costs ~2 ms; merging the tail into it would cost ~130 ms).
        """
        if state_vector != EMPTY_STATE:
            peer.push(p.sync_step2(self.doc.get_update(state_vector)))
            return
        if self._whole is None or len(self._whole_tail) >= peer.max_outbox // 2:
            self._drop_whole()
            self._whole = self.doc.get_update()
        peer.push(p.sync_step2(self._whole))
        for update in self._whole_tail:
            peer.push(p.sync_update(update))

    def _drop_whole(self) -> None:
        self._whole = None
        self._whole_tail = []
        self._whole_tail_bytes = 0

    async def edit(self, change: Callable[[Any], None], *, undoable: bool = False) -> None:
        """Make a server-side edit of :attr:`document`; returns once it is durable and
        relayed to every peer.

        With ``undoable=True`` the edit becomes one step of the room's undo history.
        """
        origin = UNDOABLE_ORIGIN if undoable else "server"

        def run() -> None:
            with self.doc.transaction(origin=origin):
                change(self.document)

        await self._local(run)

    @property
    def can_undo(self) -> bool:
        """Whether an undoable server edit is there to undo."""
        return self._undo is not None and self._undo.can_undo()

    @property
    def can_redo(self) -> bool:
        """Whether an undone server edit is there to redo."""
        return self._undo is not None and self._undo.can_redo()

    async def undo(self) -> bool:
        """Revert the last undoable server edit (durable and relayed); False if none."""
        return await self._step("undo")

    async def redo(self) -> bool:
        """Replay the last undone server edit (durable and relayed); False if none."""
        return await self._step("redo")

    async def _step(self, direction: str) -> bool:
        done: list[bool] = []
        # Outside any transaction of ours: the undo manager opens its own.
        await self._local(lambda: done.append(getattr(self._undo, direction)()))
        return bool(done and done[0])

    async def _local(self, run: Callable[[], None]) -> None:
        """Run a change of ``self.doc`` and queue its updates for storage and relay."""
        if self.deleted:
            raise ProjectDeleted(f"project {self.project_id!r} was deleted")
        if not self._started or self.diverged:  # closed (unloaded, held) or reloading
            raise ProjectBusy(f"room {self.project_id!r} is closed or reloading; try again",
                              retry_after=1.0)
        self._captured = []
        failure: BaseException | None = None
        try:
            run()
        except Exception as exc:
            failure = exc
        except BaseException as exc:
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                failure = exc
            else:  # pycrdt's PanicException (a Rust panic) is a BaseException
                log.warning("room %s: the document refused a server edit: %r",
                            self.project_id, exc)
                failure = SchemaError(f"the document could not take a value of this edit "
                                      f"({exc}); check numbers are within the documented "
                                      "ranges")
        finally:
            updates, self._captured = self._captured, None
        # A transaction commits even when its change raised: what it wrote before the
        # failure is in the document (and the late-join tail), so it is stored and relayed
        # like any edit, never left in memory only.
        if updates:
            done = asyncio.get_running_loop().create_future()
            self._unstored_local += len(updates)
            for update in updates:
                self._enqueue("local", None, update)
            self._enqueue("notify", None, done)
            await done
        if failure is not None:
            raise failure

    def _on_transaction(self, event: TransactionEvent) -> None:
        if self._whole is not None:
            update = event.update
            self._whole_tail.append(update)
            self._whole_tail_bytes += len(update)
            if len(self._whole_tail) > WHOLE_TAIL_UPDATES or \
                    self._whole_tail_bytes * WHOLE_TAIL_FRACTION > len(self._whole):
                self._drop_whole()
        if self._captured is not None:
            self._captured.append(event.update)

    def _apply(self, update: bytes, *, tried: bool = False) -> None:
        """Apply a checked or stored ``update`` to the document.

        The trial copy follows, unless it took ``update`` already (``tried``).  Yrs
        failing here (after the copy took the update, or on a stored update) may
        leave part of it applied: the room is then marked diverged, to be reloaded
        from the store, and the failure raised.
        """
        try:
            apply_update(self.doc, update)
        except UnappliableUpdate:
            self.diverged = True
            raise
        if not tried:
            self._trial.follow(update)

    async def _drain(self) -> None:
        """Wait until the flusher has stored what is queued and the batch it holds (taken
        off the queue, its edits' waiters not yet told): a stop that cancelled it then
        would leave a server edit waiting for good."""
        if self._flusher is not None and not self._flusher.done():
            done = asyncio.get_running_loop().create_future()
            self._enqueue("notify", None, done)
            with contextlib.suppress(StoreError):
                await done

    def _release_trial_later(self) -> None:
        """Give the trial copy's memory back once nobody has edited for a while."""
        if self._trial_release is not None:
            self._trial_release.cancel()
        self._trial_release = asyncio.get_running_loop().call_later(
            TRIAL_IDLE_SECONDS, self._trial.discard)

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            try:
                if any(kind in EDITS for kind, _, _ in batch):
                    with _tracer.start_as_current_span(
                            "collab.apply_batch",
                            attributes={"project.id": self.project_id,
                                        "collab.batch.entries": len(batch)}):
                        await self._flush(batch)
                else:
                    await self._flush(batch)
            except ProjectDeleted as exc:  # another process (or an owner here) deleted it
                log.info("project %s was deleted; closing its room: %s", self.project_id, exc)
                self.mark_deleted()
                self._fail(batch, exc, p.CloseCode.PROJECT_DELETED.reason)
            except StoreError as exc:
                log.error("project %s: %s; closing the editors of this batch",
                          self.project_id, exc)
                if any(kind == "local" for kind, _, _ in batch):
                    self._diverge()
                self._fail(batch, exc, "server could not store your change; reconnect")
            except (KeyboardInterrupt, SystemExit, asyncio.CancelledError):
                raise
            except BaseException as exc:  # noqa: BLE001 - pyo3 panics are BaseExceptions
                # Nothing may stop the flusher: everyone else keeps being served.  The
                # document may hold part of this batch, so it is reloaded from the store.
                log.exception("project %s: a batch of %d entries failed; reloading the "
                              "document", self.project_id, len(batch))
                metrics.FLUSH_FAILURES.inc()
                self._diverge()
                self._fail(batch, CollabError(f"{type(exc).__name__}: {exc}"),
                           "server could not process your change; reconnect")
            finally:
                for kind, peer, _ in batch:
                    if peer is not None:
                        peer.queued -= 1
                    elif kind == "local":
                        self._unstored_local -= 1

    def _fail(self, batch: list[tuple[str, Peer | None, Any]], exc: Exception,
              reason: str) -> None:
        """Close the senders of a failed batch and fail its waiting server edits."""
        self._trial.discard()  # it may hold updates that were never stored
        for kind, peer, payload in batch:
            if peer is not None:
                peer.close_soon(1011, reason)
            if kind == "notify" and not payload.done():
                payload.set_exception(exc)

    def _diverge(self) -> None:
        """Mark the document as differing from the disk and send every peer away."""
        self.diverged = True
        for peer in self.peers:
            peer.close_soon(1011, "the document is being reloaded; reconnect")

    def _tried(self, peer: Peer, update: bytes, summary: UpdateSummary) -> bool:
        """Whether the trial copy took ``update``; a refused one closes its sender (4400)."""
        self._release_trial_later()
        try:
            self._trial.attempt(update, summary)
        except UpdateAhead as exc:
            # Not stored; the sender is asked for everything the document lacks instead.
            log.info("project %s: update of %s skips clocks (%s); asking for its history",
                     self.project_id, peer.grant.user, exc)
            metrics.UPDATES_REFUSED.labels("ahead").inc()
            peer.push(p.sync_step1(self.doc.get_state()))
            return False
        except MalformedUpdate as exc:
            reason = "apply" if isinstance(exc, UnappliableUpdate) else "parent"
            log.warning("project %s: refusing an update of %s (%s): %s",
                        self.project_id, peer.grant.user, reason, exc)
            metrics.UPDATES_REFUSED.labels(reason).inc()
            peer.refuse(p.CloseCode.MALFORMED_MESSAGE, f"update cannot be applied: {exc}")
            return False
        return True

    async def _flush(self, batch: list[tuple[str, Peer | None, Any]]) -> None:
        durable: list[Change] = []
        relayed: list[Change] = []
        received: list[float] = []
        if any(kind == "update" for kind, _, _ in batch):
            await self._trial.prepare()
        for kind, peer, payload in batch:
            if kind == "update" and peer is not None and self._accepts(peer) and \
                    self._tried(peer, payload[0], payload[1]):
                durable.append(Change(payload[0], peer, payload[1].spans))
                received.append(payload[2])
            elif kind == "local":  # already in the document
                self._trial.follow(payload)
                durable.append(Change(payload, None, None))
            elif kind == "remote":
                relayed += self._take_remote(*payload)
        if any(kind == "catch_up" for kind, _, _ in batch):
            relayed += await self._catch_up()
        if durable:
            # Store first: the document (and so every sync step 2 and every relay) only
            # ever holds what is on disk.  A store failure leaves the document untouched,
            # so the clients resend those changes when they reconnect.
            first = await self._append([c.update for c in durable], relayed)
            self._log_bytes += sum(len(c.update) for c in durable)
            for change in durable:
                if change.sender is not None:  # a server edit is in the document already
                    self._apply(change.update, tried=True)
            relayed += durable
            if self.link is not None:
                for group in merge_groups(durable):
                    self.link.publish_update(self.project_id, first, len(group),
                                             _merged([c.update for c in group]))
                    first += len(group)
        if relayed:
            self._relay(relayed)
        if received:
            now = time.monotonic()
            for at in received:
                metrics.EDIT_PROPAGATION.observe(now - at)
        if durable or relayed:
            for listener in self._listeners:
                try:
                    listener(self)
                except Exception:
                    log.exception("project %s: change listener failed", self.project_id)
        for kind, peer, payload in batch:
            if kind == "step1" and peer is not None and not peer.closing:
                self._answer_step1(peer, payload)
            elif kind == "notify" and not payload.done():
                payload.set_result(None)
        upto = self._seqs.watermark
        # Server edits queued for a later batch are in the document already, but not yet
        # stored and maybe never (their append can fail): no snapshot may hold them.
        later_edits = self._unstored_local - sum(kind == "local" for kind, _, _ in batch)
        if (self._compaction is None or self._compaction.done()) and not self.diverged and \
                not later_edits and self.limits.should_compact(
            upto - self._snapshot_seq, self._log_bytes, self._snapshot_bytes
        ):
            snapshot = self.doc.get_update()
            self._compaction = asyncio.create_task(
                self._compact_now(snapshot, upto, self._log_bytes))

    async def _append(self, durable: list[bytes], relayed: list[Change]) -> int:
        """Store ``durable`` at the next free sequence numbers; returns the first one.

        Only another server process of the same project can take a number first;
        what it wrote is read back (into the document and ``relayed``) before the
        next try.
        """
        for _ in range(MAX_APPEND_TRIES):
            first = self._seqs.next
            try:
                await self.store.append(self.project_id, first, durable)
            except SeqConflict:
                if self.link is None:
                    raise  # a second writer that this room was not told about
                relayed += await self._catch_up()
                continue
            self._seqs.mark(first, len(durable))
            return first
        raise StoreError(f"project {self.project_id}: other server processes took the next "
                         f"sequence numbers {MAX_APPEND_TRIES} times in a row")

    # -- other server processes of this project ------------------------------------------

    def receive_update(self, first_seq: int, count: int, update: bytes) -> None:
        """Take in a durable batch another server process stored and announced."""
        if self._started:
            self._enqueue("remote", None, (first_seq, count, update))

    def local_presence(self) -> tuple[bytes, dict[int, str]] | None:
        """A presence message of the peers connected to this process and who introduced
        each of its ids (None if no peer has any state), for another process that has
        just started relaying this room."""
        if not self._started:
            return None
        ids: set[int] = set()
        for peer in self.peers:
            ids |= peer.awareness_ids
        update = self.presence.encode(ids)
        return (p.awareness(update), self._owners_of(ids)) if update is not None else None

    def announce(self, update: bytes) -> None:
        """Publish an awareness ``update`` the server itself makes (under a client id no
        peer controls): every peer here and on other server processes gets it, and a peer
        that connects later gets it with everyone's state. Yjs clients forget a state not
        renewed for 30 s, so the announcer renews it while it holds."""
        if not self._started:
            return
        for entry in p.decode_awareness(update):
            self._server_ids.add(entry.client_id)
            self._id_users.pop(entry.client_id, None)
            for peer in self.peers:
                peer.awareness_ids.discard(entry.client_id)
        self.presence.apply(update)
        message = p.awareness(update)
        for peer in self.peers:
            peer.push(message)
        if self.link is not None:
            self.link.publish_awareness(self.project_id, message, {})

    def receive_awareness(self, message: bytes, owners: dict[int, str] | None = None) -> None:
        """Take in a presence message of a peer connected to another server process, with
        the user who introduced each of its client ids there (``owners``).

        An id's first known user is kept: a connection of another user here cannot take
        it then, even once its owner's tab there has gone quiet for long enough that its
        state looks outdated here."""
        if not self._started:
            return
        try:
            entries = p.decode_awareness(p.decode_message(message).payload)
        except MalformedMessage as exc:
            log.warning("project %s: ignoring relayed presence: %s", self.project_id, exc)
            return
        held = set().union(*(peer.awareness_ids for peer in self.peers))
        if held.intersection(entry.client_id for entry in entries):
            # an id a connection here owns is its own: another process's entry for it is
            # a spoof (taken there while the owner's tab was too quiet to renew) or stale
            metrics.AWARENESS_DROPPED.inc()
            entries = [entry for entry in entries if entry.client_id not in held]
            if not entries:
                return
            message = p.awareness(p.encode_awareness(entries))
        for entry in entries:
            user = (owners or {}).get(entry.client_id)
            if user is not None and entry.client_id not in self._server_ids:
                self._id_users.setdefault(entry.client_id, user)
        self.presence.take(entries)
        fields = self.limits.server_fields
        # Peers' states are relayed without the server's fields: these are a server's.
        self._server_ids.update(entry.client_id for entry in entries
                                if entry.state is not None and not fields.isdisjoint(entry.state))
        for peer in self.peers:
            peer.push(message)

    def catch_up_soon(self) -> None:
        """Read whatever the store holds that this room has not seen (in the next batch)."""
        if self._started:
            self._enqueue("catch_up", None, None)

    def _check_gap_later(self) -> None:
        """Read a missing batch from the store unless it arrives within CATCH_UP_DELAY."""
        def check() -> None:
            self._gap_timer = None
            if self._seqs.missing:
                self.catch_up_soon()

        if self._gap_timer is None:
            self._gap_timer = asyncio.get_running_loop().call_later(CATCH_UP_DELAY, check)

    def _take_remote(self, first_seq: int, count: int, update: bytes) -> list[Change]:
        if self._seqs.holds(first_seq, count):
            return []  # already read from the store
        self._apply(update)
        self._seqs.mark(first_seq, count)
        self._log_bytes += len(update)
        if self._seqs.missing:  # an earlier batch is still on its way, or was lost
            self._check_gap_later()
        return [Change(update, None, None)]

    async def _catch_up(self) -> list[Change]:
        """Apply what the store holds past the watermark that the document lacks."""
        stored = await self.store.load_since(self.project_id, self._seqs.watermark)
        before = self.doc.get_state()
        if stored.snapshot is not None:  # another process compacted past the watermark
            self._apply(stored.snapshot)
            self._seqs.mark_through(stored.snapshot_seq)
            self._snapshot_seq, self._snapshot_bytes = stored.snapshot_seq, len(stored.snapshot)
            self._log_bytes = 0
        for seq, update in enumerate(stored.updates, start=stored.snapshot_seq + 1):
            if self._seqs.holds(seq, 1):
                continue
            self._apply(update)
            self._seqs.mark(seq, 1)
            self._log_bytes += len(update)
        news = self.doc.get_update(before)
        return [] if news == p.EMPTY_UPDATE else [Change(news, None, None)]

    def _relay(self, changes: list[Change]) -> None:
        """Send the changes to every peer, merged where that keeps their meaning.

        Usually one message per batch; a lone sender does not get its own back.
        """
        for group in merge_groups(changes):
            message = p.sync_update(_merged([change.update for change in group]))
            senders = {id(change.sender) for change in group}
            only = group[0].sender if len(senders) == 1 else None
            for peer in self.peers:
                if peer is not only:
                    peer.push(message)

    async def _compact_now(self, snapshot: bytes, upto_seq: int, logged_before: int) -> None:
        try:
            written = await self.store.compact(self.project_id, snapshot, upto_seq)
        except ProjectDeleted:
            log.info("project %s was deleted; its snapshot is not written", self.project_id)
            self.mark_deleted()
            return
        except StoreError as exc:
            log.error("project %s: compaction failed: %s", self.project_id, exc)
            return
        if not written:  # another process folded further: adopt its snapshot instead
            self.catch_up_soon()
            return
        if upto_seq > self._snapshot_seq:
            self._snapshot_seq, self._snapshot_bytes = upto_seq, len(snapshot)
            self._log_bytes = max(0, self._log_bytes - logged_before)
        log.debug("project %s: compacted log up to %d", self.project_id, upto_seq)


class Change(NamedTuple):
    """An update the document took: who sent it and the clocks it covers (if known)."""

    update: bytes
    sender: Peer | None
    spans: dict[int, tuple[int, int]] | None


def merge_groups(changes: list[Change]) -> list[list[Change]]:
    """Split ``changes`` into runs that can be merged into one update each.

    A merged update integrates its items before its deletions and client by
    client, so it must not hold two versions of the same clocks (a client that
    reused its ids): yrs and yjs each keep a different one, where applying the
    updates in order keeps the first everywhere.  A change whose clocks are
    unknown stands alone.
    """
    groups: list[list[Change]] = []
    taken: dict[int, list[tuple[int, int]]] = {}
    for change in changes:
        spans = change.spans
        if groups and spans is not None and groups[-1][-1].spans is not None and not any(
                start < end2 and start2 < end
                for client, (start, end) in spans.items()
                for start2, end2 in taken.get(client, ())):
            groups[-1].append(change)
        else:
            groups.append([change])
            taken = {}
        for client, span in (spans or {}).items():
            taken.setdefault(client, []).append(span)
    return groups


def _merged(updates: list[bytes]) -> bytes:
    """One update holding ``updates``, decoded and encoded again by yrs.

    Never the bytes a peer sent: an update is read (as yjs would), tried,
    stored, then merged; yrs' merge keeps items still waiting for what they
    follow, which the update of the transaction that applied them would leave out.
    """
    return merge_updates(*updates)
