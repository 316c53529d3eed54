"""Fader moves in the desktop client: the static value, and automation while playing.

A control move sets the track's static value (as the page's faders do) and, while
the transport plays and the lane's mode is touch, latch or write, feeds the pass's
:class:`collab.automation_write.LaneWriter` (the one writer the server uses for the
page) and applies its edit to the shared document, so the points sync to everyone.
The frame of a move is where the player is rendering.

``dawclient --controls`` reads moves from standard input, one per line
(:func:`parse_move`): ``TRACK PARAM VALUE [hold|release]``, e.g. ``t1 gain_db -12 hold``
while a fader is held and ``t1 gain_db -12 release`` when it is let go (a move without
``hold`` is a touch and release at once) — a scriptable control surface. ``TRACK`` may
be a bus (or ``master``) and ``PARAM`` any lane name: ``send:verb``, ``fx:eq1:freq``,
``object:azimuth`` (:mod:`dsp_core.automation_targets`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from collab.automation_write import WRITING_MODES, LaneWriter, apply_edit, lane_mode, writer_for
from collab.errors import SchemaError
from dsp_core.automation_targets import RESERVED

log = logging.getLogger(__name__)


class ControlError(ValueError):
    """A control line that cannot be understood; the message says the expected form."""


@dataclass(frozen=True)
class Move:
    """A control of ``track``'s ``param`` shows ``value``; ``held`` while the user holds it."""

    track: str
    param: str
    value: float
    held: bool


def parse_move(line: str) -> Move:
    """``TRACK PARAM VALUE [hold|release]`` as a :class:`Move`."""
    words = line.split()
    if len(words) not in (3, 4) or (len(words) == 4 and words[3] not in ("hold", "release")):
        raise ControlError(f"control line {line.strip()!r}: expected 'TRACK PARAM VALUE "
                           "[hold|release]', e.g. 't1 gain_db -12 hold'")
    track, param, text = words[:3]
    if RESERVED in param:
        raise ControlError(f"control line {line.strip()!r}: parameter {param!r} is not a lane "
                           "name, e.g. gain_db, pan, mute, send:BUS, fx:EFFECT:PARAM")
    try:
        value = float(text)
    except ValueError:
        raise ControlError(f"control line {line.strip()!r}: value {text!r} is not a number"
                           ) from None
    return Move(track, param, value, len(words) == 4 and words[3] == "hold")


class Controls:
    """Applies moves to a :class:`collab.schema.ProjectDocument`; passes end on stop.

    ``frame()`` answers the session frame the player is at now.
    """

    def __init__(self, document, frame: Callable[[], int]) -> None:  # noqa: ANN001
        self.document = document
        self.frame = frame
        self.passes: dict[tuple[str, str], LaneWriter] = {}
        #: The leading stretches of each pass written already: left to peers since
        #: (:meth:`~collab.automation_write.LaneWriter.edit`'s ``first``).
        self.settled: dict[tuple[str, str], int] = {}
        self.written: dict[str, set[str]] = {}  # pass id -> the point ids it holds now

    def move(self, move: Move) -> None:
        """Write the lane while playing in touch/latch/write; set the static value unless
        a touch or latch pass took the move (the engine plays that lane, not the fader)."""
        writer = self._writer(move) if self.document.transport().get("playing") else None
        if writer is None or writer.mode == "write":
            try:
                self.document.set_automation_static(move.track, move.param, move.value)
            except SchemaError as exc:
                raise ControlError(str(exc)) from None
        if writer is not None:
            now, key = self.frame(), (move.track, move.param)
            writer.feed(now, move.value, move.held)
            self._apply(key, writer.edit(now, self.settled.get(key, 0)))
            self.settled[key] = writer.closed

    def _writer(self, move: Move) -> LaneWriter | None:
        key = (move.track, move.param)
        writer = self.passes.get(key)
        if writer is not None and lane_mode(self.document, *key) not in WRITING_MODES:
            self._end(key, writer.last_frame)  # set to off or read meanwhile: it stops here
            writer = None
        if writer is None:
            try:
                writer = writer_for(self.document, move.track, move.param,
                                    start=int(self.document.transport().get("position", 0)),
                                    pass_id=f"d{uuid.uuid4().hex[:10]}")
            except SchemaError as exc:
                raise ControlError(str(exc)) from None
            if not writer.writes:
                return None
            self.passes[key] = writer
        return writer

    def transport_changed(self) -> None:
        """Follow the transport: a stop ends every pass where the player stopped."""
        if not self.document.transport().get("playing"):
            self.stop()

    def stop(self) -> None:
        """End every pass at the player's frame (leaving, or the transport stopped)."""
        now = self.frame()
        for key in list(self.passes):
            self._end(key, now)

    def _end(self, key: tuple[str, str], frame: int) -> None:
        """End the pass on ``key``'s lane at ``frame``."""
        writer = self.passes.pop(key)
        self._apply(key, writer.stop(frame, self.settled.pop(key, 0)))

    def _apply(self, key: tuple[str, str], edit) -> None:  # noqa: ANN001
        changed = apply_edit(self.document, key[0], key[1], edit)
        self.written[edit.pass_id] = set(edit.points)
        log.debug("%s %s: %d points of pass %s (%d changed)", key[0], key[1],
                  len(edit.points), edit.pass_id, changed)
