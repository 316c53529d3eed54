"""Playing a live instrument block by block, for the live monitor's tests."""

from __future__ import annotations

import numpy as np

from dsp_core.live_instrument import LiveInstrument
from dsp_core.midi import Instrument

RATE, BLOCK = 48000, 256
SUSTAIN = 64
#: The built-in synth's amp envelope: at once up, then 100 ms release (linear, to 0).
SYNTH = Instrument("synth", {"attack_ms": 0.0, "decay_ms": 0.0, "sustain": 1.0,
                             "release_ms": 100.0})
#: :data:`SYNTH`'s release, in frames.
RELEASE = RATE // 10
#: In :func:`play`'s events: a panic rather than a MIDI message.
PANIC = "panic"


def play(live: LiveInstrument, blocks: int,
         events: dict[int, list[tuple[int, ...] | str]]) -> np.ndarray:
    """``blocks`` blocks of :data:`BLOCK` frames from ``live``, ``events[b]`` (MIDI
    messages as ``push`` takes them, or :data:`PANIC`) given before block ``b``."""
    out = []
    for b in range(blocks):
        for event in events.get(b, []):
            if event == PANIC:
                live.panic()
            else:
                live.push(*event)
        out.append(live.render(BLOCK).copy())
    return np.concatenate(out)
