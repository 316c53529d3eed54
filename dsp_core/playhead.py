"""The playhead: where a live player is on the timeline, following the shared transport.

The document's transport holds ``playing``, ``position`` (frames at the
project's sample rate: where playback starts, or a seek target), the loop
and ``recording``.  A player calls :meth:`Playhead.follow` with every new
transport snapshot and :meth:`Playhead.advance` once per block; ``advance``
returns the timeline spans (render-rate frames) to render, split at the loop
end.  The live WebRTC mix and the desktop client both use it, so they play
the same frames for the same document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Playhead:
    """A playhead at ``render_rate`` following a transport in ``session_rate`` frames."""

    session_rate: int
    render_rate: int
    position: int = 0
    playing: bool = False
    recording: bool = False
    loop: tuple[int, int] | None = None
    _seen_position: int | None = None

    def to_render(self, frames: float) -> int:
        """Session-rate frames to render-rate frames."""
        return int(round(float(frames) * self.render_rate / self.session_rate))

    def to_session(self, frames: float) -> int:
        """Render-rate frames to session-rate frames."""
        return int(round(float(frames) * self.session_rate / self.render_rate))

    def follow(self, transport: dict[str, Any]) -> None:
        """Take a transport snapshot: start, stop, seek, loop and record changes."""
        position = int(transport.get("position", 0))
        playing = bool(transport.get("playing", False))
        if position != self._seen_position or (playing and not self.playing):
            self.position = self.to_render(position)
        self._seen_position = position
        self.playing = playing
        self.recording = bool(transport.get("recording", False))
        start, end = int(transport.get("loop_start", 0)), int(transport.get("loop_end", 0))
        enabled = bool(transport.get("loop_enabled", False)) and end > start
        self.loop = (self.to_render(start), self.to_render(end)) if enabled else None

    def advance(self, frames: int) -> list[tuple[int, int, int]]:
        """Move on ``frames`` frames; returns ``(out_offset, timeline_start, count)`` spans.

        Empty while stopped (the caller plays silence).
        """
        if not self.playing:
            return []
        spans: list[tuple[int, int, int]] = []
        done = 0
        while done < frames:
            count = frames - done
            if self.loop is not None and self.position < self.loop[1]:
                count = min(count, self.loop[1] - self.position)
            spans.append((done, self.position, count))
            self.position += count
            done += count
            if self.loop is not None and self.position == self.loop[1]:
                self.position = self.loop[0]
        return spans
