"""Offline bounce: render a whole session to an audio file, with progress.

A hosted plug-in that fails during the render (hangs, crashes, outputs NaN) plays
bypassed in the file, as in the live engines; :attr:`BounceStats.plugin_errors` names
each one, so whoever asked for the bounce can say so (docs/lv2.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .audio_io import AudioWriter
from .engine import Engine
from .lv2_chain import PluginError


@dataclass(frozen=True)
class BounceStats:
    """What a bounce did: frames written, time taken, real-time factor, peak, clipping,
    and the hosted plug-ins that failed during it (bypassed in the file)."""

    frames: int
    sample_rate: int
    wall_seconds: float
    peak: float
    clipped: int
    plugin_errors: tuple[PluginError, ...] = ()

    @property
    def audio_seconds(self) -> float:
        """Length of the rendered audio."""
        return self.frames / self.sample_rate

    @property
    def realtime_factor(self) -> float:
        """Seconds of audio rendered per second of wall time."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 else float("inf")


def bounce(
    engine: Engine,
    path: str | os.PathLike[str],
    bit_depth: str = "32f",
    tail_seconds: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
    seed: int | None = 0,
) -> BounceStats:
    """Render ``engine``'s session from frame 0 to its end (+ tail) into ``path``.

    ``progress(done_frames, total_frames)`` is called after every block.  The
    file appears only when the whole render succeeded.  A hosted plug-in that fails
    stays bypassed (until restarted), so the engine's :meth:`Engine.plugin_errors` after
    the last block are the stats' ``plugin_errors``.
    """
    total = engine.length + int(round(tail_seconds * engine.sample_rate))
    peak = 0.0
    started = time.perf_counter()
    with AudioWriter(path, engine.sample_rate, 2, bit_depth, seed=seed,
                     frames=total) as writer:
        for offset, block in engine.blocks(0, total):
            peak = max(peak, float(np.max(np.abs(block))) if block.size else 0.0)
            writer.write(block)
            if progress is not None:
                progress(offset + block.shape[1], total)
    return BounceStats(total, engine.sample_rate, time.perf_counter() - started, peak,
                       writer.clipped, tuple(engine.plugin_errors()))
