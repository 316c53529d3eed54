"""The tempo map in the document: tempo and meter changes keyed by id.

Two roots, so that concurrent edits merge (a root never conflicts, and each change is
its own entry): ``tempos`` maps a change id to ``Map(id, beat, bpm[, ramp])`` (``ramp``
true: the tempo glides to the next change's; absent in older documents) and ``meters`` a
change id to ``Map(id, bar, numerator, denominator)``. Two people adding a change at
once both keep theirs; two changes at the same beat (or bar) resolve by id, the same on
every peer (:mod:`dsp_core.tempo`). A document with no changes plays at the transport's
``tempo`` in ``beats_per_bar``/``beat_unit`` (what documents held before the map).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from pycrdt import Map

from dsp_core.errors import ProjectError
from dsp_core.tempo import MeterChange, TempoChange, TempoMap

from .errors import MALFORMED, SchemaError

TEMPO_ROOTS = ("tempos", "meters")


#: What reading a value a peer wrote may raise: a malformed shape, or a value out of range.
_BAD_VALUE = (*MALFORMED, ProjectError)


def tempo_map_from_json(tempos: dict[str, Any], meters: dict[str, Any],
                        transport: dict[str, Any]) -> TempoMap:
    """The map the engine plays: entries a peer wrote badly are left out, and a bad
    transport tempo or meter reads as 120 BPM or 4/4."""
    changes = []
    for change_id, data in sorted(tempos.items()):
        try:
            changes.append(TempoChange(float(data["beat"]), float(data["bpm"]), change_id,
                                       data.get("ramp") is True))
            TempoMap([changes[-1]])
        except _BAD_VALUE:
            changes = changes[:-1] if changes and changes[-1].id == change_id else changes
    bars = []
    for change_id, data in sorted(meters.items()):
        try:
            meter = MeterChange(int(data["bar"]), int(data.get("numerator", 4)),
                                int(data.get("denominator", 4)), change_id)
            TempoMap([], [meter])
            bars.append(meter)
        except _BAD_VALUE:
            continue
    if not changes:
        try:
            changes = [TempoChange(0.0, float(transport.get("tempo", 120.0)), "")]
            TempoMap(changes)
        except _BAD_VALUE:
            changes = [TempoChange(0.0, 120.0, "")]
    if not bars:
        try:
            bars = [MeterChange(0, int(transport.get("beats_per_bar", 4)),
                                int(transport.get("beat_unit", 4)), "")]
            TempoMap([], bars)
        except _BAD_VALUE:
            bars = [MeterChange(0, 4, 4, "")]
    try:
        return TempoMap(changes, bars)
    except ProjectError:
        return TempoMap()


class TempoEdits:
    """Tempo-map helpers of :class:`collab.schema.ProjectDocument` (one call = one update)."""

    _roots: dict[str, Map]

    def transaction(self, origin: Any = None) -> AbstractContextManager[Any]:  # pragma: no cover
        raise NotImplementedError

    def tempo_map(self) -> TempoMap:
        """The document's tempo map (the transport's tempo and meter when it has none)."""
        return tempo_map_from_json(self._roots["tempos"].to_py() or {},
                                   self._roots["meters"].to_py() or {},
                                   self._roots["transport"].to_py() or {})

    def set_tempo_change(self, change_id: str, beat: float, bpm: float,
                         ramp: bool = False) -> None:
        """Add or move the tempo change ``change_id``: ``bpm`` from quarter-note ``beat``
        (``ramp``: gliding to the next change's tempo)."""
        try:
            TempoMap([TempoChange(float(beat), float(bpm), change_id)])
        except (ProjectError, TypeError, ValueError) as exc:
            raise SchemaError(str(exc)) from exc
        if not isinstance(ramp, bool):
            raise SchemaError(f"tempo change {change_id!r}: ramp must be true or false, "
                              f"got {ramp!r}")
        with self.transaction():
            self._roots["tempos"][change_id] = Map(_tempo_entry(change_id, float(beat),
                                                                float(bpm), ramp))

    def set_meter_change(self, change_id: str, bar: int, numerator: int,
                         denominator: int) -> None:
        """Add or move the meter change ``change_id``: from 0-based ``bar`` on."""
        try:
            TempoMap([], [MeterChange(bar, numerator, denominator, change_id)])
        except ProjectError as exc:
            raise SchemaError(str(exc)) from exc
        with self.transaction():
            self._roots["meters"][change_id] = Map({"id": change_id, "bar": bar,
                                                    "numerator": numerator,
                                                    "denominator": denominator})

    def remove_time_change(self, change_id: str) -> None:
        """Remove a tempo or meter change (an unknown id is a :class:`SchemaError`)."""
        for root in TEMPO_ROOTS:
            if change_id in self._roots[root]:
                with self.transaction():
                    del self._roots[root][change_id]
                return
        raise SchemaError(f"no tempo or meter change {change_id!r}")

    def _put_tempo(self, tempo: TempoMap) -> None:
        """Write every change of ``tempo`` (inside the caller's transaction)."""
        for change in tempo.tempos:
            change_id = change.id or f"tempo-{change.beat:g}"
            self._roots["tempos"][change_id] = Map(_tempo_entry(change_id, change.beat,
                                                                change.bpm, change.ramp))
        for meter in tempo.meters:
            change_id = meter.id or f"meter-{meter.bar}"
            self._roots["meters"][change_id] = Map({
                "id": change_id, "bar": meter.bar, "numerator": meter.numerator,
                "denominator": meter.denominator})

    def time_changes(self) -> Iterator[dict[str, Any]]:
        """Every stored change as plain data (the page's list)."""
        for root in TEMPO_ROOTS:
            yield from (self._roots[root].to_py() or {}).values()


def _tempo_entry(change_id: str, beat: float, bpm: float, ramp: bool) -> dict[str, Any]:
    """A tempo change as the document holds it (``ramp`` only when true, as before)."""
    return {"id": change_id, "beat": beat, "bpm": bpm} | ({"ramp": True} if ramp else {})
