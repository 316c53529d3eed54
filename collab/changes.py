"""Typed change events of a project document: what engines follow instead of raw Yjs maps.

A transaction on the document (a peer's update, a server edit) becomes a list
of events, in the schema's terms:

* :class:`TrackFieldsChanged` - scalar fields of one track were set (a fader,
  pan, mute, solo, name, colour, ...), with their new values;
* :class:`TransportChanged` - transport fields were set, with their new values;
* :class:`StructureChanged` - anything else in one root (clips moved, an effect
  or a send edited, a track added or removed, buses, meta): a reader that
  cannot patch it rebuilds what it derived from that root.

Consumers subscribe with :meth:`collab.schema.ProjectDocument.watch` and never
see pycrdt events or map paths.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pycrdt import Array, Map

__all__ = ["Change", "DocumentWatch", "StructureChanged", "TrackFieldsChanged",
           "TransportChanged"]

#: Roots whose changes are reported (markers, comments, transcripts and jobs change
#: nothing an engine renders).
WATCHED_ROOTS = ("tracks", "transport", "clips", "buses", "meta", "midi_clips",
                 "tempos", "meters")


@dataclass(frozen=True)
class TrackFieldsChanged:
    """Scalar fields of one track were set; ``fields`` maps each to its new value
    (None when the field was removed)."""

    track_id: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TransportChanged:
    """Transport fields were set; ``fields`` maps each to its new value."""

    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StructureChanged:
    """Something in ``root`` changed that no finer event describes."""

    root: str


Change = TrackFieldsChanged | TransportChanged | StructureChanged


class DocumentWatch:
    """A subscription: calls ``callback(changes)`` once per transaction, until closed."""

    def __init__(self, roots: dict[str, Map], callback: Callable[[list[Change]], None]
                 ) -> None:
        self._callback = callback
        # partial, not a lambda with a default: pycrdt passes the transaction too to a
        # callback that takes two parameters.
        self._subscriptions = [(roots[name], roots[name].observe_deep(partial(self._deliver, name)))
                               for name in WATCHED_ROOTS]

    def close(self) -> None:
        """Stop calling back (idempotent)."""
        for root, subscription in self._subscriptions:
            root.unobserve(subscription)
        self._subscriptions = []

    def _deliver(self, root: str, events: list) -> None:
        changes = list(_translate(root, events))
        if changes:
            self._callback(changes)


def _translate(root: str, events: list) -> list[Change]:
    if root == "transport":
        fields: dict[str, Any] = {}
        for event in events:
            if event.path:
                return [StructureChanged(root)]
            fields.update({k: c.get("newValue") for k, c in event.keys.items()})
        return [TransportChanged(fields)]
    if root != "tracks":
        return [StructureChanged(root)]
    changes: list[Change] = []
    for event in events:
        keys = getattr(event, "keys", None)
        if len(event.path) != 1 or keys is None or any(
                isinstance(c.get("newValue"), Map | Array) for c in keys.values()):
            return [StructureChanged(root)]  # a track added or removed, effects, sends
        changes.append(TrackFieldsChanged(str(event.path[0]),
                                          {k: c.get("newValue") for k, c in keys.items()}))
    return changes
