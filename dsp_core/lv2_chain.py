"""A track's insert chain that holds a hosted (``lv2``) effect.

The C engine renders the whole graph in one call per block and cannot wait for
another process in the middle of a track. So a track whose chain holds an ``lv2``
effect is rendered **ahead, in Python-driven segments**, just before that call:
its clips are read into a buffer (the numpy twin's ``clip_read``), each run of
built-in effects goes through the backend's ``effect_process`` (C with the native
backend), each ``lv2`` effect through its worker (:class:`~dsp_core.lv2_host.HostedPlugin`),
in chain order. The C graph sees that track as a track without inserts whose one
clip, the *feed*, is that buffer placed at the block the engine is about to read,
so its fader, pan, sends, automation and delay compensation work as for any track.
Every other track is untouched: one C call per block.

The chains of different tracks run **side by side** (:func:`run_side_by_side`): each
chain's next plug-in gets its block before any worker is awaited, so the workers run on
all cores at once; within a chain the elements still run in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .effects import HOSTED_KINDS, TICK, EffectSpec, EffectState
from .errors import ProjectError
from .lv2_host import HostedPlugin
from .reference import clip_read


@dataclass(frozen=True)
class PluginError:
    """A hosted plug-in that failed and is bypassed: where it is and what happened."""

    owner: str  # the track's or bus's id ('master' for the master)
    effect: str  # the effect id ('' when the document gave none)
    index: int  # its place in the chain
    message: str


def has_hosted(effects: list[EffectSpec]) -> bool:
    """True when a chain holds an effect that runs outside the C engine."""
    return any(spec.kind in HOSTED_KINDS for spec in effects)


def _hosted_structure(effects: list[EffectSpec]) -> tuple:
    return tuple((e.kind, e.enabled, e.params.get("uri")) for e in effects)


@dataclass
class HostedChain:
    """The chain of one track, run segment by segment into the feed clip's buffer."""

    track: str
    channels: int
    sample_rate: int
    elements: list[EffectState | HostedPlugin]
    specs: list[EffectSpec]
    buffer: np.ndarray  # (channels, max_block): the feed clip's data
    clips: list[Any] = field(default_factory=list)  # the track's own ClipStates
    #: a bus's or the master's own fader when the chain is theirs (dsp_core/lv2_bus.py)
    fader: np.ndarray | None = None
    #: a MIDI track's built-in instrument (synth, sampler), played into the buffer with
    #: the backend's ``instrument_render`` before the chain, as the C track input would
    instrument: Any = None

    @classmethod
    def build(cls, track: Any, sample_rate: int, max_block: int, load: Any) -> HostedChain:
        """Start the chain's workers and build its built-in effects (``track``: anything
        with ``id``, ``channels`` and ``effects``; a bus's gives ``where``)."""
        where = getattr(track, "where", f"track {track.id!r}")
        elements: list[EffectState | HostedPlugin] = []
        try:
            for spec in track.effects:
                if spec.sidechain:
                    raise ProjectError(
                        f"{where}: a keyed {spec.kind} cannot share a chain with an lv2 "
                        "plug-in yet; move it or clear its sidechain")
                if spec.kind in HOSTED_KINDS:
                    elements.append(HostedPlugin(spec.params, track.channels, sample_rate,
                                                 max_block))
                else:
                    elements.append(EffectState(spec, track.channels, sample_rate, load))
        except Exception:
            for element in elements:
                if isinstance(element, HostedPlugin):
                    element.close()
            raise
        return cls(track.id, track.channels, sample_rate, elements, list(track.effects),
                   np.zeros((track.channels, max_block), dtype=np.float32))

    @property
    def structure(self) -> tuple:
        """What the workers depend on: equal structures can share them."""
        return _hosted_structure(self.specs)

    def fill(self, backend: Any, position: int, frames: int, frames_done: int) -> None:
        """Render the track's clips at ``position`` through the chain into the buffer."""
        run_in_turn([self.fill_steps(backend, position, frames, frames_done)])

    def fill_steps(self, backend: Any, position: int, frames: int,
                   frames_done: int) -> Iterator[bool]:
        """:meth:`fill` in steps (see :meth:`steps`): nothing runs before the first
        ``next``."""
        buf = self.buffer
        buf[:, :frames] = 0.0
        for clip in self.clips:
            if clip.position >= position + frames:
                break
            clip_read(clip, self.channels, position, frames, buf)
        if self.instrument is not None:  # mono, added to every channel (as in C)
            scratch = self.instrument.scratch
            backend.instrument_render(self.instrument, float(self.sample_rate), position,
                                      frames, scratch)
            buf[:, :frames] += scratch[:frames]
        yield from self.steps(backend, frames, frames_done % TICK)

    def run(self, backend: Any, frames: int, phase: int) -> None:
        """Run the chain in place on the buffer's first ``frames`` frames (``phase``: the
        tick phase of the first frame)."""
        run_in_turn([self.steps(backend, frames, phase)])

    def steps(self, backend: Any, frames: int, phase: int) -> Iterator[bool]:
        """:meth:`run` in steps: it yields ``True`` each time it has handed a plug-in its
        block (:meth:`HostedPlugin.start`); resumed, it collects that block
        (:meth:`HostedPlugin.finish`) and runs on to the next plug-in. Closed early, it
        still collects the block in flight, so the worker's pipe stays in step."""
        buf = self.buffer
        for element, spec in zip(self.elements, self.specs, strict=True):
            if isinstance(element, HostedPlugin):
                if spec.enabled:
                    element.start(buf, frames)
                    try:
                        yield True
                    finally:
                        element.finish(buf, frames)
            else:
                backend.effect_process(element, buf[0], buf[1] if self.channels == 2 else None,
                                       frames, self.sample_rate, phase)

    def set_params(self, specs: list[EffectSpec]) -> None:
        """Follow parameter edits (same structure): built-ins glide, plug-ins get values."""
        for element, spec in zip(self.elements, specs, strict=True):
            if isinstance(element, HostedPlugin):
                if spec.params != element.params:
                    element.set_params(spec.params)
            else:
                element.set_params(spec.params, replace=True)
        self.specs = list(specs)

    def errors(self) -> list[PluginError]:
        """The chain's failed plug-ins."""
        return [PluginError(self.track, spec.id, i, element.failed)
                for i, (element, spec) in enumerate(zip(self.elements, self.specs, strict=True))
                if isinstance(element, HostedPlugin) and element.failed]

    def restart(self) -> int:
        """Restart every failed plug-in; returns how many were restarted."""
        failed = [e for e in self.elements if isinstance(e, HostedPlugin) and e.failed]
        for element in failed:
            element.restart()
        return len(failed)

    def reset(self) -> None:
        """Clear every element's state, as after a transport stop."""
        for element in self.elements:
            element.reset()

    def close(self) -> None:
        """Stop the chain's workers."""
        for element in self.elements:
            if isinstance(element, HostedPlugin):
                element.close()


def run_in_turn(runs: Iterable[Iterator[bool]]) -> None:
    """Run chains' steps (:meth:`HostedChain.steps`) one chain after another, each
    plug-in's block awaited before the next is handed over."""
    for run in runs:
        for _ in run:
            pass


def run_side_by_side(runs: Iterable[Iterator[bool]]) -> None:
    """Run chains' steps (:meth:`HostedChain.steps`) side by side: each chain is
    advanced to its first plug-in's hand-off as it comes from ``runs``, then, round after
    round, every chain collects its plug-in's block and hands its next plug-in its own,
    so the workers of all chains run at the same time. The chains must not depend on
    each other (different tracks, or aux buses, which feed only the master); each
    chain's output is exactly what :func:`run_in_turn` gives."""
    pending: list[Iterator[bool]] = []
    try:
        for run in runs:
            pending.append(run)
            if not next(run, False):
                pending.pop()
        while pending:
            pending = [run for run in pending if next(run, False)]
    except BaseException:
        for run in pending:  # collect the blocks still in flight
            run.close()
        raise
