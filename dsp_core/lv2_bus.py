"""Aux buses and the master whose chain holds a hosted (``lv2``) effect.

The C engine runs a bus's chain inside its one call per block and cannot wait for a
worker process there. So when an aux bus's chain holds an ``lv2`` effect, the graph
the C engine sees gives that bus **no inserts and a silent fader**: the call still sums
the sends into the bus's buffer (and, with a delay-compensation schedule, delays it by
the bus's alignment, computed from the plug-in's reported latency as for any bus), but
adds nothing of it to the master. The master's chain and fader move out of the call
too (the call's master has no inserts and a settled unity fader, so its output is the
master's input sum). Right after the call, :func:`finish` runs, in Python:

1. each such bus's chain (:class:`~dsp_core.lv2_chain.HostedChain`: built-ins through
   the backend's ``effect_process``, plug-ins through their workers) on its buffer, the
   buses' chains side by side (they feed only the master, never each other), then each
   bus's own fader (gain, pan, automation) into the master's sum, in the buses' order;
2. the master's chain, the same way, then the master's fader into the output.

Faders glide with the numpy twin's ``fader_apply`` on the same tick grid as the C
engine, so both backends give the same output. Still one C call per block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .effects import HOSTED_KINDS, TICK
from .errors import ProjectError
from .lv2_chain import HostedChain, run_in_turn, run_side_by_side
from .reference import fader_apply, tick_alpha


@dataclass
class _HostedBus:
    """What :meth:`HostedChain.build` needs of a bus."""

    id: str
    where: str
    effects: list
    channels: int = 2


def has_hosted_bus(session: Any) -> bool:
    """True when an aux bus's or the master's chain holds a hosted effect."""
    return any(spec.kind in HOSTED_KINDS
               for bus in [*session.buses, session.master] for spec in bus.effects)


def build_chain(bus: Any, sample_rate: int, max_block: int, load: Any,
                fader: np.ndarray) -> HostedChain:
    """Start the workers of a bus's chain; ``fader`` is the bus's own (the C call's
    copy of the bus gets a silent one)."""
    where = f"bus {bus.id!r}"
    if bus.id == "master" and not any(s.kind in HOSTED_KINDS for s in bus.effects):
        where += " (its chain runs after the aux buses' lv2 plug-ins)"
    chain = HostedChain.build(_HostedBus(bus.id, where, list(bus.effects)), sample_rate,
                              max_block, load)
    chain.fader = fader
    return chain


def check_keys(session: Any, hosted_ids: set[str]) -> None:
    """Refuse a sidechain keyed by a bus whose chain runs after the C call."""
    for owner in [*session.tracks, *session.buses, session.master]:
        for spec in owner.effects:
            if spec.sidechain in hosted_ids:
                raise ProjectError(
                    f"{owner.id!r}: the {spec.kind} keyed by bus {spec.sidechain!r} cannot "
                    "hear it: that bus hosts an lv2 plug-in, which runs after the engine's "
                    "sidechains; key it from a track, or move the plug-in to a track")


def finish(graph: Any, backend: Any, out: np.ndarray, frames: int,
           side_by_side: bool = True) -> None:
    """The step after the C call (see the module): hosted buses, then the master.

    Aux buses feed only the master, never each other, so their chains run side by side
    (:func:`~dsp_core.lv2_chain.run_side_by_side`; ``side_by_side=False``: one after
    another); their faders then add them to the master's sum in the buses' order, so
    the sum is the same either way."""
    master = graph.master.hosted
    phase = (graph.frames_done - frames) % TICK  # the call has counted the block
    alpha = tick_alpha(graph.sample_rate)
    mix = master.buffer
    mix[:, :frames] = out[:, :frames]
    chains = [bus.hosted for bus in graph.buses if bus.hosted is not None]
    for bus in graph.buses:
        if bus.hosted is not None:
            bus.hosted.buffer[:, :frames] = bus.buffer[:, :frames]
    runs = (chain.steps(backend, frames, phase) for chain in chains)
    (run_side_by_side if side_by_side else run_in_turn)(runs)
    for chain in chains:
        fader_apply(chain.fader, chain.buffer[0], chain.buffer[1], mix[0], mix[1], frames,
                    phase, alpha)
    master.run(backend, frames, phase)
    out[:, :frames] = 0.0
    fader_apply(master.fader, mix[0], mix[1], out[0], out[1], frames, phase, alpha)
