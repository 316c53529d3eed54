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
  it; a sidechain key, taken when its source's chain has run, is delayed to meet
  its effect's input, and a key source whose consumer has latency after the keyed
  effect reads its clips earlier still and delays its own outputs to match;
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
    label: tuple = ()  # which line it is: a re-plan carries the contents of the same line


@dataclass
class KeyState:
    """A sidechain (``daw_key``): the source's post-insert buffer, delayed into ``key``."""

    source: np.ndarray  # (channels, max_block) float32: the source's buffer
    key: np.ndarray  # (2, max_block) float32: what the keyed effect reads
    delay: DelayState


@dataclass
class RunState:
    """One step: tracks ``[first, first + count)`` reading their clips ``offset`` frames
    early, or (``bus >= 0``) that aux bus. ``keys`` are the keys this step is the
    source of, filled after its chain; a key source track then delays its own outputs
    by ``out_delay``."""

    first: int
    count: int
    offset: int
    own_buffer: bool = False  # a key source: always through its buffer
    keys: list[KeyState] = field(default_factory=list)
    bus: int = -1
    out_delay: DelayState | None = None
    automation_offset: int = 0  # own_buffer: its fader's automation is read this far back


@dataclass
class Schedule:
    """Everything ``daw_schedule`` holds; ``latency`` is the graph's total."""

    latency: int
    runs: list[RunState]
    direct: DelayState
    bus_delays: list[DelayState]
    bus_sum: np.ndarray  # (2, max_block): the buses' outputs, added after the direct delay

    def delays(self) -> list[DelayState]:
        """Every delay line of the plan."""
        lines = [self.direct, *self.bus_delays]
        for run in self.runs:
            lines += [k.delay for k in run.keys]
            if run.out_delay is not None:
                lines.append(run.out_delay)
        return lines

    def reset(self) -> None:
        """Empty every delay line, as after a transport stop."""
        for line in self.delays():
            line.memory[:] = 0.0
            line.write[0] = 0

    def carry_from(self, previous: Schedule) -> None:
        """Take over the contents of the lines ``previous`` had with the same label and
        shape, so a re-plan after an edit does not drop what is on its way."""
        old = {line.label: line for line in previous.delays() if line.label}
        for line in self.delays():
            before = old.get(line.label)
            if before is not None and before.memory.shape == line.memory.shape:
                line.memory[:] = before.memory
                line.write[0] = before.write[0]


def new_delay(channels: int, delay: int, label: tuple = ()) -> DelayState:
    """A zeroed delay line of ``delay`` frames."""
    return DelayState(np.zeros((channels, max(delay, 0) + 1), dtype=np.float32), max(delay, 0),
                      label=label)


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


Node = tuple[int, int]  # (0, track index) or (1, bus index): tracks first, then buses


def _topological(nodes: list[Node], edges: dict[Node, set[Node]], names: dict[Node, str]
                 ) -> list[Node]:
    """Kahn's order (tracks before buses, lower indices first); a cycle is a ProjectError."""
    indegree = dict.fromkeys(nodes, 0)
    for targets in edges.values():
        for t in targets:
            indegree[t] += 1
    ready = [n for n in nodes if indegree[n] == 0]
    heapq.heapify(ready)
    order: list[Node] = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for t in sorted(edges.get(node, ())):
            indegree[t] -= 1
            if indegree[t] == 0:
                heapq.heappush(ready, t)
    if len(order) < len(nodes):
        done = set(order)
        stuck = [n for n in nodes if n not in done]
        kinds = {n[0] for n in stuck}
        if len(kinds) == 1:
            what = ("tracks " if 0 in kinds else "buses ") + ", ".join(
                repr(names[n]) for n in stuck)
        else:
            what = ", ".join(f"{'track' if n[0] == 0 else 'bus'} {names[n]!r}" for n in stuck)
        raise ProjectError(
            f"sidechain cycle between {what}: each keys or feeds another in a loop; remove "
            "one of these sidechains (or the send that closes the loop)"
        )
    return order


@dataclass
class _Keyed:
    """A keyed effect found in a chain."""

    consumer: Node  # (2, 0) for the master
    effect: int
    prefix: int  # latency before it in its chain
    source: Node
    spec: EffectSpec
    where: str


def plan_schedule(session: Session, tracks: list[TrackState], buses: list[BusState],
                  master: BusState, sample_rate: int, max_block: int) -> Schedule | None:
    """The render order and alignment of a built graph, or None when it needs none.

    Raises :class:`ProjectError` for a sidechain naming an unknown id or its own
    track or bus, a cycle of sidechains (with the sends), and a key that would have
    to arrive before its source plays (a track keyed by a bus with latency, or with
    latency after the keyed effect: not compensated yet).
    """
    if not needs_schedule(session, sample_rate):
        return None
    track_index = {t.id: i for i, t in enumerate(session.tracks)}
    bus_index = {b.id: i for i, b in enumerate(session.buses)}
    track_lat = [chain_latency(t.effects, sample_rate) for t in session.tracks]
    bus_lat = [chain_latency(b.effects, sample_rate) for b in session.buses]
    aligned = max(track_lat, default=0)  # every track's post-insert lag, once delayed
    bus_max = max(bus_lat, default=0)
    total = aligned + bus_max + chain_latency(session.master.effects, sample_rate)

    keyed: list[_Keyed] = []

    def find_keys(effects: list[EffectSpec], consumer: Node, where: str, own: str) -> None:
        prefix = 0
        for k, spec in enumerate(effects):
            if spec.sidechain:
                source = spec.sidechain
                if source == own:
                    raise ProjectError(f"{where}: {spec.kind} {spec.id or k!r} is keyed by "
                                       f"its own {where.split()[0]}; leave sidechain empty "
                                       "to detect on its input")
                if source in track_index:
                    node: Node = (0, track_index[source])
                elif source in bus_index:
                    node = (1, bus_index[source])
                else:
                    raise ProjectError(f"{where}: sidechain {source!r} is neither a track "
                                       "nor a bus; name an existing track or bus id")
                keyed.append(_Keyed(consumer, k, prefix, node, spec, where))
            prefix += latency(spec, sample_rate)

    for i, t in enumerate(session.tracks):
        find_keys(t.effects, (0, i), f"track {t.id!r}", t.id)
    for b, bus in enumerate(session.buses):
        find_keys(bus.effects, (1, b), f"bus {bus.id!r}", bus.id)
    find_keys(session.master.effects, (2, 0), "bus 'master'", "master")

    nodes: list[Node] = [(0, i) for i in range(len(tracks))] + [(1, b) for b in range(len(buses))]
    names = {(0, i): t.id for i, t in enumerate(session.tracks)}
    names.update({(1, b): bus.id for b, bus in enumerate(session.buses)})
    edges: dict[Node, set[Node]] = {}
    for i, t in enumerate(session.tracks):
        for send in t.sends:
            edges.setdefault((0, i), set()).add((1, bus_index[send.bus]))
    for key in keyed:
        if key.consumer[0] != 2:
            edges.setdefault(key.source, set()).add(key.consumer)
    order = _topological(nodes, edges, names)

    # A key source track reads its clips `lead` frames earlier still and delays its own
    # outputs by as much: its key can then meet a consumer whose keyed effect has
    # latency after it. Consumers come after their sources: plan them first.
    lead = [0] * len(tracks)

    def point_lag(key: _Keyed) -> int:
        kind, i = key.consumer
        if kind == 0:
            return aligned - track_lat[i] - lead[i] + key.prefix
        return aligned + key.prefix + (bus_max if kind == 2 else 0)

    for kind, i in reversed(order):
        if kind == 0:
            need = [aligned - point_lag(k) for k in keyed if k.source == (0, i)]
            lead[i] = max([0, *need])

    pushed: dict[Node, list[KeyState]] = {}
    for key in keyed:
        kind, src = key.source
        key_lag = aligned - lead[src] if kind == 0 else aligned + bus_lat[src]
        delay = point_lag(key) - key_lag
        if delay < 0:
            raise ProjectError(
                f"{key.where}: the {key.spec.kind} keyed by bus {names[key.source]!r} would "
                f"need its key {-delay} frames early (latency on that bus, or after the keyed "
                "effect: not compensated yet); move latency-adding effects before the keyed "
                "effect or off that bus")
        state = KeyState(tracks[src].buffer if kind == 0 else buses[src].buffer,
                         np.zeros((2, max_block), dtype=np.float32),
                         new_delay(2, delay, ("key", key.consumer, key.effect)))
        chain = (tracks[key.consumer[1]].effects if key.consumer[0] == 0 else
                 buses[key.consumer[1]].effects if key.consumer[0] == 1 else master.effects)
        chain[key.effect].key = state.key
        pushed.setdefault(key.source, []).append(state)

    runs: list[RunState] = []
    for kind, i in order:
        if kind == 1:
            runs.append(RunState(0, 0, 0, keys=pushed.get((1, i), []), bus=i))
            continue
        offset = aligned - track_lat[i] - lead[i]
        last = runs[-1] if runs else None
        if (0, i) in pushed or (tracks[i].automation is not None and offset != aligned):
            # alone: a key source, or an automated fader whose output lags its clip reads
            runs.append(RunState(i, 1, offset, own_buffer=True, keys=pushed.get((0, i), []),
                                 out_delay=new_delay(tracks[i].channels, lead[i],
                                                     ("out", i)),
                                 automation_offset=aligned))
        elif (last is not None and last.bus < 0 and not last.own_buffer
              and last.first + last.count == i and last.offset == offset):
            last.count += 1
        else:
            runs.append(RunState(i, 1, offset))
    return Schedule(
        latency=total,
        runs=runs,
        direct=new_delay(2, bus_max, ("direct",)),
        bus_delays=[new_delay(2, bus_max - lat, ("bus", b)) for b, lat in enumerate(bus_lat)],
        bus_sum=np.zeros((2, max_block), dtype=np.float32),
    )
