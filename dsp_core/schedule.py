"""Render order and plug-in delay compensation of a graph (``daw_schedule``).

:func:`plan_schedule` looks at a session's sidechains and at the latency every
processor reports (:func:`dsp_core.effects.latency`) and decides:

- the order tracks and buses render in, so that a sidechain's key source is
  ready before the compressor or gate that listens to it (a cycle is refused);
- how every path is aligned.  Every track's post-insert signal is made to lag
  the timeline by the same ``A`` frames (the largest track chain latency) by
  reading its clips ``A - own latency`` frames early, which costs nothing;
  aux buses then see aligned inputs, the tracks' direct sum into the master is
  delayed by the largest bus chain latency and each bus by the difference to
  it; a sidechain key is delayed to meet its effect's input;
- the total latency, ``A`` + the largest bus latency + the master chain's:
  output frame ``f`` holds timeline frame ``f - latency``.

Both backends follow the same plan; its delay lines are numpy arrays.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from .effects import EffectSpec, latency
from .errors import ProjectError

if TYPE_CHECKING:  # graph imports this module
    from .graph import BusState, TrackState
    from .session import Session


@dataclass
class DelayState:
    """A delay line (``daw_delay``): channels rings of ``delay + 1`` frames."""

    memory: np.ndarray  # (channels, delay + 1) float32
    delay: int
    write: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))


@dataclass
class KeyState:
    """A sidechain (``daw_key``): the source's post-insert buffer, delayed into ``key``."""

    source: np.ndarray  # (channels, max_block) float32: the source's buffer
    key: np.ndarray  # (2, max_block) float32: what the keyed effect reads
    delay: DelayState


@dataclass
class RunState:
    """Tracks ``[first, first + count)`` reading their clips ``offset`` frames early."""

    first: int
    count: int
    offset: int
    own_buffer: bool = False  # a key source: always through its buffer
    keys: list[KeyState] = field(default_factory=list)


@dataclass
class Schedule:
    """Everything ``daw_schedule`` holds; ``latency`` is the graph's total."""

    latency: int
    runs: list[RunState]
    direct: DelayState
    bus_delays: list[DelayState]
    bus_order: list[int]
    bus_keys: list[list[KeyState]]
    master_keys: list[KeyState]


def new_delay(channels: int, delay: int) -> DelayState:
    """A zeroed delay line of ``delay`` frames."""
    return DelayState(np.zeros((channels, max(delay, 0) + 1), dtype=np.float32), max(delay, 0))


def chain_latency(effects: list[EffectSpec], sample_rate: int) -> int:
    """Frames a chain delays its input: the sum of its processors' latencies."""
    return sum(latency(spec, sample_rate) for spec in effects)


def needs_schedule(session: Session, sample_rate: int) -> bool:
    """True when the session has a sidechain or a processor with latency."""
    chains = [t.effects for t in session.tracks] + [b.effects for b in session.buses]
    chains.append(session.master.effects)
    return any(spec.sidechain or latency(spec, sample_rate) for chain in chains
               for spec in chain)


def plan_key(session: Session, sample_rate: int) -> tuple:
    """What the plan depends on: equal keys give the same schedule."""
    def chain(effects: list[EffectSpec]) -> tuple:
        return tuple((e.sidechain, latency(e, sample_rate)) for e in effects)

    return (
        tuple((t.id, chain(t.effects), tuple((s.bus, s.pre_fader) for s in t.sends))
              for t in session.tracks),
        tuple((b.id, chain(b.effects)) for b in session.buses),
        chain(session.master.effects),
    )


def _topological(n: int, edges: dict[int, set[int]], name: list[str], what: str) -> list[int]:
    """Kahn's order over ``n`` nodes (smallest index first); a cycle is a ProjectError."""
    indegree = [0] * n
    for targets in edges.values():
        for t in targets:
            indegree[t] += 1
    ready = [i for i in range(n) if indegree[i] == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for t in sorted(edges.get(i, ())):
            indegree[t] -= 1
            if indegree[t] == 0:
                heapq.heappush(ready, t)
    if len(order) < n:
        stuck = [name[i] for i in range(n) if i not in set(order)]
        raise ProjectError(
            f"sidechain cycle between {what} {', '.join(repr(s) for s in stuck)}: each keys "
            "another in a loop; remove one of these sidechains"
        )
    return order


def plan_schedule(session: Session, tracks: list[TrackState], buses: list[BusState],
                  master: BusState, sample_rate: int, max_block: int) -> Schedule | None:
    """The render order and alignment of a built graph, or None when it needs none.

    Raises :class:`ProjectError` for a sidechain naming an unknown id or its own
    track or bus, a cycle of sidechains, and the cases not compensated yet (a track
    keyed by a bus; a key that would have to arrive before its source plays).
    """
    if not needs_schedule(session, sample_rate):
        return None
    track_index = {t.id: i for i, t in enumerate(session.tracks)}
    bus_index = {b.id: i for i, b in enumerate(session.buses)}
    track_lat = [chain_latency(t.effects, sample_rate) for t in session.tracks]
    bus_lat = [chain_latency(b.effects, sample_rate) for b in session.buses]
    aligned = max(track_lat, default=0)  # every track's post-insert lag
    bus_max = max(bus_lat, default=0)
    total = aligned + bus_max + chain_latency(session.master.effects, sample_rate)

    def keys_of(effects: list[EffectSpec], states, where: str, own: str, point_lag: int,
                allow_bus: bool) -> list[tuple[int, EffectSpec, int, str, int]]:
        """(effect index, spec, key delay, source kind, source index) of each keyed effect."""
        found = []
        prefix = 0
        for k, spec in enumerate(effects):
            if spec.sidechain:
                source = spec.sidechain
                if source == own:
                    raise ProjectError(f"{where}: {spec.kind} {spec.id or k!r} is keyed by "
                                       f"its own {where.split()[0]}; leave sidechain empty "
                                       "to detect on its input")
                if source in track_index:
                    kind, index, key_lag = "track", track_index[source], aligned
                elif source in bus_index:
                    if not allow_bus:
                        raise ProjectError(
                            f"{where}: {spec.kind} keyed by bus {source!r}: a track's "
                            "compressor or gate can be keyed by a track; key it by one of "
                            "the bus's tracks, or put the effect on a bus")
                    kind, index, key_lag = "bus", bus_index[source], aligned + bus_max
                else:
                    raise ProjectError(f"{where}: sidechain {source!r} is neither a track "
                                       "nor a bus; name an existing track or bus id")
                delay = point_lag + prefix - key_lag
                if delay < 0:
                    raise ProjectError(
                        f"{where}: the {spec.kind} keyed by {source!r} would need its key "
                        f"{-delay} frames early (latency after it in the chain, or before "
                        "its key); move latency-adding effects before the keyed effect")
                found.append((k, spec, delay, kind, index))
            prefix += latency(spec, sample_rate)
        return found

    # tracks: the key sources render first, consumers after
    track_edges: dict[int, set[int]] = {}
    track_keys: dict[int, list] = {}
    sources: set[int] = set()
    for i, t in enumerate(session.tracks):
        found = keys_of(t.effects, tracks[i].effects, f"track {t.id!r}", t.id,
                        aligned - track_lat[i], allow_bus=False)
        if found:
            track_keys[i] = found
        for _, _, _, _, src in found:
            track_edges.setdefault(src, set()).add(i)
            sources.add(src)
    order = _topological(len(session.tracks), track_edges, [t.id for t in session.tracks],
                         "tracks")
    bus_edges: dict[int, set[int]] = {}
    bus_found: dict[int, list] = {}
    for b, bus in enumerate(session.buses):
        found = keys_of(bus.effects, buses[b].effects, f"bus {bus.id!r}", bus.id, aligned,
                        allow_bus=True)
        bus_found[b] = found
        for _, _, _, kind, src in found:
            if kind == "track":
                sources.add(src)
            else:
                bus_edges.setdefault(src, set()).add(b)
    bus_order = _topological(len(session.buses), bus_edges, [b.id for b in session.buses],
                             "buses")
    master_found = keys_of(session.master.effects, master.effects, "bus 'master'", "master",
                           aligned + bus_max, allow_bus=True)
    for _, _, _, kind, src in master_found:
        if kind == "track":
            sources.add(src)

    def key_states(found, effect_states) -> list[KeyState]:
        states = []
        for k, _spec, delay, kind, src in found:
            source = tracks[src].buffer if kind == "track" else buses[src].buffer
            key = KeyState(source, np.zeros((2, max_block), dtype=np.float32),
                           new_delay(2, delay))
            effect_states[k].key = key.key
            states.append(key)
        return states

    runs: list[RunState] = []
    for i in order:
        offset = aligned - track_lat[i]
        single = i in sources or i in track_keys
        last = runs[-1] if runs else None
        if (not single and last is not None and not last.own_buffer and not last.keys
                and last.first + last.count == i and last.offset == offset):
            last.count += 1
            continue
        runs.append(RunState(i, 1, offset, own_buffer=i in sources,
                             keys=key_states(track_keys.get(i, []), tracks[i].effects)))
    return Schedule(
        latency=total,
        runs=runs,
        direct=new_delay(2, bus_max),
        bus_delays=[new_delay(2, bus_max - lat) for lat in bus_lat],
        bus_order=bus_order,
        bus_keys=[key_states(bus_found[b], buses[b].effects) for b in range(len(buses))],
        master_keys=key_states(master_found, master.effects),
    )
