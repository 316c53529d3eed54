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

**MIDI into effects.** On a MIDI track an ``lv2`` effect with a MIDI input (x42's fat1
autotune, LSP's samplers and MIDI triggers) gets the track's notes and controllers at
their frames in each block, scheduled and chased on seeks as the track's instrument
gets them (:class:`~dsp_core.lv2_midi.MidiFeed`, :meth:`HostedChain.set_events`).  The
events line up with the **audio the effect receives**: an effect after latency-adding
elements of the chain (``P`` frames in all, built-in or hosted, enabled) hears the
timeline ``P`` frames late, so its events go ``P`` frames late too; its own latency is
its own (it delays its output, its MIDI and audio arrive together, as from a live
player).  After a seek the effect is not reset (its tail rings on): the notes it holds
are released, then the controllers and bends before the seek point and the notes
sounding across it are sent at the block's first frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .effects import HOSTED_KINDS, TICK, EffectSpec, EffectState
from .errors import ProjectError
from .lv2_host import HostedPlugin
from .lv2_midi import MidiFeed
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
    #: element index -> the MIDI its ``lv2`` effect plays (a MIDI track's, :meth:`set_events`)
    midi: dict[int, MidiFeed] = field(default_factory=dict)

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

    def set_events(self, events: np.ndarray | None) -> None:
        """Give the chain's ``lv2`` effects with a MIDI input the track's events (render
        frames, sorted; None: not a MIDI track).  Feeds of the same effects before carry
        on (:meth:`MidiFeed.take_over`): an edit of the notes is no seek."""
        old, self.midi = self.midi, {}
        if events is None:
            return
        for index, element in enumerate(self.elements):
            if isinstance(element, HostedPlugin) and element.info.midi_input is not None:
                feed = MidiFeed(events, f"lv2 effect {index} on track {self.track!r}")
                if index in old:
                    feed.take_over(old[index])
                self.midi[index] = feed

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
        yield from self.steps(backend, frames, frames_done % TICK, position)

    def run(self, backend: Any, frames: int, phase: int) -> None:
        """Run the chain in place on the buffer's first ``frames`` frames (``phase``: the
        tick phase of the first frame)."""
        run_in_turn([self.steps(backend, frames, phase)])

    def steps(self, backend: Any, frames: int, phase: int,
              position: int | None = None) -> Iterator[bool]:
        """:meth:`run` in steps: it yields ``True`` each time it has handed a plug-in its
        block (:meth:`HostedPlugin.start`); resumed, it collects that block
        (:meth:`HostedPlugin.finish`) and runs on to the next plug-in. Closed early, it
        still collects the block in flight, so the worker's pipe stays in step.
        ``position``: the block's timeline frame, for the effects that take MIDI."""
        buf = self.buffer
        delay = 0  # the latency of the elements run so far
        for index, (element, spec) in enumerate(zip(self.elements, self.specs, strict=True)):
            if isinstance(element, HostedPlugin):
                if not spec.enabled:
                    continue
                feed = self.midi.get(index) if position is not None else None
                if feed is None:
                    yield from _run(element, buf, frames, None)
                else:
                    yield from _play_midi(element, feed, buf, position - delay, frames)
                delay += element.latency
            else:
                backend.effect_process(element, buf[0], buf[1] if self.channels == 2 else None,
                                       frames, self.sample_rate, phase)
                delay += element.latency_frames if spec.enabled else 0

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
        failed = [i for i, e in enumerate(self.elements)
                  if isinstance(e, HostedPlugin) and e.failed]
        for index in failed:
            self.elements[index].restart()  # type: ignore[union-attr]
            if index in self.midi:  # a fresh plug-in: chase what sounds
                self.midi[index].next = -1
        return len(failed)

    def reset(self) -> None:
        """Clear every element's state, as after a transport stop."""
        for element in self.elements:
            element.reset()
        for feed in self.midi.values():  # the next block chases
            feed.next = -1

    def close(self) -> None:
        """Stop the chain's workers."""
        for element in self.elements:
            if isinstance(element, HostedPlugin):
                element.close()


def _run(element: HostedPlugin, buf: np.ndarray, frames: int,
         words: np.ndarray | None) -> Iterator[bool]:
    """One plug-in's run over ``buf[:, :frames]`` in steps (see :meth:`HostedChain.steps`)."""
    element.start(buf, frames, words)
    try:
        yield True
    finally:
        element.finish(buf, frames)


def _play_midi(element: HostedPlugin, feed: MidiFeed, buf: np.ndarray, at: int,
               frames: int) -> Iterator[bool]:
    """An effect's run with the events of [at, at + frames) (``at``: the timeline frame
    of the audio it receives), in pieces of at most ``MAX_EVENTS`` events; a block that
    does not follow the last one seeks (:meth:`MidiFeed.seek`, ``inline``)."""
    if at != feed.next:
        feed.seek(at, inline=True)
    for lo, hi, words in feed.pieces(at, frames):
        yield from _run(element, buf[:, lo:], hi - lo, words)
    feed.next = at + frames


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
