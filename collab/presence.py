"""Awareness (presence) bookkeeping for one room: who is here, their cursor, colour...

Clients send y-protocols awareness updates; the room keeps the newest state
per Yjs client id, remembers which connection controls which client ids,
and, when a connection goes away, produces the "state is null" update that
tells everyone else to forget those clients.

Stock awareness has no owners: any client may write any client id.  The room
adds them (:class:`collab.room.Room`): a connection owns the one id it
introduces, the server reserves the ids it announces under
(:func:`server_client_id`), and entries a connection sends for any other id are
dropped.  This module keeps the states; :meth:`Presence.free` says which ids a
connection may still take.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

from .protocol import AwarenessEntry, decode_awareness, encode_awareness

#: Seconds after which yjs clients forget a state that was not renewed (y-protocols'
#: ``outdatedTimeout``): an id whose owner went quiet that long may be taken again.
OUTDATED_SECONDS = 30.0
#: How long a room remembers a client id that is gone (its null state and clock, and who
#: held it), or whose state nobody renewed: room enough for that client to come back under
#: the same id (a reconnect, a laptop waking up). Then the id is forgotten, so a room
#: loaded for days does not keep one entry for every connection it ever had.
GONE_FORGET_SECONDS = 600.0


#: Awareness client ids from here up (to 2^53, the largest lib0 reads) are servers':
#: yjs draws uint32 client ids, and so does :class:`collab.schema.ProjectDocument`.
SERVER_IDS_FROM = 1 << 32


def server_client_id() -> int:
    """A random awareness client id for the server's own announcements, in
    [:data:`SERVER_IDS_FROM`, 2^53): no peer may write one (:func:`is_server_id`)."""
    return SERVER_IDS_FROM + secrets.randbits(52)


def is_server_id(client_id: int) -> bool:
    """Whether ``client_id`` is in the range kept for servers' announcements: a room
    takes no peer's entry for it, whether or not a server has announced under it yet."""
    return client_id >= SERVER_IDS_FROM


@dataclass
class _State:
    clock: int
    state: dict | None
    updated: float = field(default_factory=time.monotonic)


class Presence:
    """The newest awareness state of every client in one room."""

    def __init__(self) -> None:
        self._states: dict[int, _State] = {}

    def apply(self, update: bytes) -> tuple[set[int], set[int]]:
        """Apply a client's awareness update; return (client ids now present, ids removed).

        Raises :class:`collab.errors.MalformedMessage` for an undecodable update.
        """
        present, removed = set(), set()
        for entry in decode_awareness(update):
            current = self._states.get(entry.client_id)
            clock = current.clock if current else -1
            if entry.clock > clock or (entry.clock == clock and entry.state is None):
                self._states[entry.client_id] = _State(entry.clock, entry.state)
                (removed if entry.state is None else present).add(entry.client_id)
        return present, removed

    def take(self, entries: list[AwarenessEntry]) -> list[AwarenessEntry]:
        """Apply already decoded ``entries``; the ones that changed something (newer)."""
        taken = []
        for entry in entries:
            current = self._states.get(entry.client_id)
            clock = current.clock if current else -1
            if entry.clock > clock or (entry.clock == clock and entry.state is None
                                       and current is not None and current.state is not None):
                self._states[entry.client_id] = _State(entry.clock, entry.state)
                taken.append(entry)
        return taken

    def clock(self, client_id: int) -> tuple[int, bool] | None:
        """``(clock, present)`` of ``client_id`` (None if it was never seen)."""
        current = self._states.get(client_id)
        return None if current is None else (current.clock, current.state is not None)

    def free(self, client_id: int, now: float | None = None) -> bool:
        """Whether nobody holds ``client_id`` here: never seen, gone (null state), or
        not renewed for :data:`OUTDATED_SECONDS` (an owner on a server process that
        ended without saying so)."""
        current = self._states.get(client_id)
        if current is None or current.state is None:
            return True
        now = time.monotonic() if now is None else now
        return now - current.updated > OUTDATED_SECONDS

    def remove(self, client_ids: set[int]) -> bytes | None:
        """Forget ``client_ids``; the awareness update announcing it (None if nothing to say)."""
        entries = []
        for client_id in sorted(client_ids):
            current = self._states.get(client_id)
            if current is None or current.state is None:
                continue
            current.clock += 1
            current.state = None
            current.updated = time.monotonic()
            entries.append(AwarenessEntry(client_id, current.clock, None))
        return encode_awareness(entries) if entries else None

    def forget(self, keep: set[int], now: float | None = None) -> set[int]:
        """Forget the ids (but those in ``keep``) gone or not renewed for
        :data:`GONE_FORGET_SECONDS`; the ids forgotten."""
        now = time.monotonic() if now is None else now
        old = {client_id for client_id, current in self._states.items()
               if now - current.updated > GONE_FORGET_SECONDS and client_id not in keep}
        for client_id in old:
            del self._states[client_id]
        return old

    def encode_all(self) -> bytes | None:
        """An awareness update with every present client (None when nobody is present)."""
        entries = [AwarenessEntry(cid, s.clock, s.state) for cid, s in self._states.items()
                   if s.state is not None]
        return encode_awareness(entries) if entries else None

    def encode(self, client_ids: set[int]) -> bytes | None:
        """An awareness update with the present clients among ``client_ids`` (None when
        none of them is present)."""
        entries = [AwarenessEntry(cid, s.clock, s.state) for cid, s in self._states.items()
                   if cid in client_ids and s.state is not None]
        return encode_awareness(entries) if entries else None

    def states(self) -> dict[int, dict]:
        """``{client_id: state}`` of every present client."""
        return {cid: s.state for cid, s in self._states.items() if s.state is not None}
