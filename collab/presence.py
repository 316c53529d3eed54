"""Awareness (presence) bookkeeping for one room: who is here, their cursor, colour...

Clients send y-protocols awareness updates; the room keeps the newest state
per Yjs client id, remembers which connection controls which client ids,
and, when a connection goes away, produces the "state is null" update that
tells everyone else to forget those clients.
"""

from __future__ import annotations

from dataclasses import dataclass

from .protocol import AwarenessEntry, decode_awareness, encode_awareness


@dataclass
class _State:
    clock: int
    state: dict | None


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

    def remove(self, client_ids: set[int]) -> bytes | None:
        """Forget ``client_ids``; the awareness update announcing it (None if nothing to say)."""
        entries = []
        for client_id in sorted(client_ids):
            current = self._states.get(client_id)
            if current is None or current.state is None:
                continue
            current.clock += 1
            current.state = None
            entries.append(AwarenessEntry(client_id, current.clock, None))
        return encode_awareness(entries) if entries else None

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
