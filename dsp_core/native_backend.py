"""The C backend: cffi structs pointing at the numpy-owned graph state.

Exposes the same names as :mod:`dsp_core.reference` (``mix``, ``render``,
``effect_process``, ``log2``, ``exp2``).  Every array goes through
:func:`dsp_core.arrays.checked_float32` and every status code through
:func:`check_status`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .arrays import checked_float32
from .effects import TICK, EffectState
from .errors import BackendUnavailable, NativeError
from .graph import AutomationState, BusState, Graph, LaneState, TrackState
from .instrument_graph import InstrumentState
from .schedule import DelayState, KeyState, Schedule

try:
    from native._engine import ffi, lib
except ImportError as exc:  # pragma: no cover - exercised only without a compiler
    raise BackendUnavailable(
        "the C engine is not built; run `pip install -e .` with a C compiler, "
        "or set DAW_BACKEND=reference"
    ) from exc

_STATUS = {
    lib.DAW_ERR_NULL: "a required buffer is missing",
    lib.DAW_ERR_FRAMES: "frame count out of range (more than the block size?)",
    lib.DAW_ERR_CHANNELS: "channel count must be 1 or 2",
    lib.DAW_ERR_KIND: "unknown effect kind",
    lib.DAW_ERR_BUS: "a send targets a bus that does not exist",
    lib.DAW_ERR_THREADS: f"thread count must be between 1 and {lib.DAW_MAX_THREADS}",
}


def check_status(function: str, code: int) -> None:
    """Turn a C status code into :class:`NativeError` (with the code in it)."""
    if code != lib.DAW_OK:
        raise NativeError(function, code, _STATUS.get(code, "unknown error"))


def _ptr(array: np.ndarray) -> Any:
    return ffi.cast("float *", ffi.from_buffer(array))


def mix(tracks: np.ndarray, gains: np.ndarray, pans: np.ndarray, threads: int = 1) -> np.ndarray:
    """Mix mono tracks ``(n, frames)`` to stereo ``(2, frames)`` with the pan law.

    The frames are split over up to ``threads`` threads; every count gives the same bits.
    """
    tracks = checked_float32(tracks, "tracks", (None, None))
    n_tracks, n_frames = tracks.shape
    gains = checked_float32(gains, "gains", (n_tracks,))
    pans = checked_float32(pans, "pans", (n_tracks,))
    out = np.empty((2, n_frames), dtype=np.float32)
    code = lib.daw_mix(_ptr(tracks), n_tracks, n_frames, _ptr(gains), _ptr(pans),
                       _ptr(out[0]), _ptr(out[1]), threads)
    check_status("daw_mix", code)
    return out


def log2(x: np.ndarray) -> np.ndarray:
    """Elementwise ``daw_log2`` (for tests of the approximation)."""
    x = np.asarray(x, dtype=np.float32)
    return np.array([lib.daw_log2(float(v)) for v in x.ravel()], dtype=np.float32).reshape(x.shape)


def exp2(x: np.ndarray) -> np.ndarray:
    """Elementwise ``daw_exp2`` (for tests of the approximation)."""
    x = np.asarray(x, dtype=np.float32)
    return np.array([lib.daw_exp2(float(v)) for v in x.ravel()], dtype=np.float32).reshape(x.shape)


def rfft(x: np.ndarray) -> np.ndarray:
    """``daw_rfft``: numpy's ``rfft`` of a power-of-two length (4..4096), as complex64."""
    x = checked_float32(x, "x", (None,))
    n = x.shape[0]
    re, im = np.empty(n // 2 + 1, np.float32), np.empty(n // 2 + 1, np.float32)
    work = np.empty(n, np.float32)
    check_status("daw_rfft", lib.daw_rfft(_ptr(x), _ptr(re), _ptr(im), _ptr(work), n))
    return re + 1j * im.astype(np.complex64)


def irfft(spectrum: np.ndarray, n: int) -> np.ndarray:
    """``daw_irfft``: numpy's ``irfft`` of ``n // 2 + 1`` bins to ``n`` frames, float32."""
    re = np.ascontiguousarray(np.real(spectrum), dtype=np.float32)
    im = np.ascontiguousarray(np.imag(spectrum), dtype=np.float32)
    if re.shape != (n // 2 + 1,):
        raise NativeError("daw_irfft", lib.DAW_ERR_FRAMES, f"needs {n // 2 + 1} bins")
    x, work = np.empty(n, np.float32), np.empty(n, np.float32)
    check_status("daw_irfft", lib.daw_irfft(_ptr(re), _ptr(im), _ptr(x), _ptr(work), n))
    return x


class _Builder:
    """Allocates cffi structs and keeps every referenced object alive."""

    def __init__(self) -> None:
        self.keep: list[Any] = []

    def hold(self, obj: Any) -> Any:
        self.keep.append(obj)
        return obj

    def floats(self, array: np.ndarray) -> Any:
        self.hold(array)
        return _ptr(array)

    def effects(self, states: list[EffectState]) -> Any:
        arr = self.hold(ffi.new("daw_effect[]", max(len(states), 1)))
        for i, fx in enumerate(states):
            arr[i].kind = fx.kind
            arr[i].enabled = int(fx.enabled)
            arr[i].slots = self.floats(fx.slots)
            if fx.memory.size:
                arr[i].memory = self.floats(fx.memory)
                arr[i].memory_len = fx.memory.shape[1]
            if fx.key is not None:
                arr[i].key = self.floats(fx.key)
                arr[i].key_stride = fx.key.shape[1]
        return arr

    def bus(self, bus: BusState, out: Any) -> None:
        out.n_effects = len(bus.effects)
        out.effects = self.effects(bus.effects)
        out.fader = self.floats(bus.fader)
        out.buffer = self.floats(bus.buffer)

    def track(self, tr: TrackState, out: Any) -> None:
        out.channels = tr.channels
        clips = self.hold(ffi.new("daw_clip[]", max(len(tr.clips), 1)))
        for i, clip in enumerate(tr.clips):
            c = clips[i]
            c.data = self.floats(clip.data)
            c.channels = clip.data.shape[0]
            c.stride = clip.data.shape[1]
            c.position, c.offset, c.length = clip.position, clip.offset, clip.length
            c.gain, c.fade_in, c.fade_out = clip.gain, clip.fade_in, clip.fade_out
            c.xfade_in_at, c.xfade_in = clip.xfade_in_at, clip.xfade_in
            c.xfade_out = clip.xfade_out
        out.n_clips, out.clips = len(tr.clips), clips
        out.n_effects, out.effects = len(tr.effects), self.effects(tr.effects)
        out.fader = self.floats(tr.fader)
        sends = self.hold(ffi.new("daw_send[]", max(len(tr.sends), 1)))
        for i, send in enumerate(tr.sends):
            sends[i].bus = send.bus
            sends[i].pre_fader = int(send.pre_fader)
            sends[i].fader = self.floats(send.fader)
        out.n_sends, out.sends = len(tr.sends), sends
        out.buffer = self.floats(tr.buffer)

    def lane(self, lane: LaneState, out: Any) -> None:
        out.n_points = lane.frames.shape[0]
        out.frames = ffi.cast("const int64_t *", self.hold(lane.frames).ctypes.data)
        out.values = ffi.cast("const double *", self.hold(lane.values).ctypes.data)
        out.hold = ffi.cast("const int32_t *", self.hold(lane.hold).ctypes.data)

    def automation(self, a: AutomationState) -> Any:
        out = self.hold(ffi.new("daw_automation *"))
        self.lane(a.gain, out.gain)
        self.lane(a.pan, out.pan)
        self.lane(a.mute, out.mute)
        out.scale = a.scale
        out.gains = self.floats(a.gains)
        return out

    def instrument(self, inst: InstrumentState) -> Any:
        out = self.hold(ffi.new("daw_instrument *"))
        out.kind = inst.kind
        out.n_voices = inst.voices.shape[0]
        out.n_events = inst.events.shape[0]
        out.events = ffi.cast("const daw_midi_event *", self.hold(inst.events).ctypes.data)
        zones = self.hold(ffi.new("daw_zone[]", max(len(inst.zones), 1)))
        for i, zone in enumerate(inst.zones):
            zones[i].data = self.floats(zone.data)
            zones[i].length = zone.data.shape[0]
            zones[i].root, zones[i].key_lo, zones[i].key_hi = zone.root, zone.key_lo, zone.key_hi
            zones[i].vel_lo, zones[i].vel_hi = zone.vel_lo, zone.vel_hi
        out.n_zones, out.zones = len(inst.zones), zones
        out.params = ffi.cast("const double *", self.hold(inst.params).ctypes.data)
        out.voices = ffi.cast("double *", self.hold(inst.voices).ctypes.data)
        out.state = ffi.cast("double *", self.hold(inst.state).ctypes.data)
        out.scratch = self.floats(inst.scratch)
        return out


    def delay(self, d: DelayState, out: Any) -> None:
        out.memory = self.floats(d.memory)
        out.length = d.memory.shape[1]
        out.delay = d.delay
        out.write = ffi.cast("int64_t *", self.hold(d.write).ctypes.data)

    def keys(self, keys: list[KeyState]) -> Any:
        arr = self.hold(ffi.new("daw_key[]", max(len(keys), 1)))
        for i, k in enumerate(keys):
            arr[i].source = self.floats(k.source)
            arr[i].channels = k.source.shape[0]
            arr[i].key = self.floats(k.key)
            self.delay(k.delay, arr[i].delay)
        return arr

    def schedule(self, s: Schedule) -> Any:
        out = self.hold(ffi.new("daw_schedule *"))
        out.latency = s.latency
        runs = self.hold(ffi.new("daw_run[]", max(len(s.runs), 1)))
        for i, run in enumerate(s.runs):
            runs[i].first, runs[i].count, runs[i].offset = run.first, run.count, run.offset
            runs[i].own_buffer, runs[i].bus = int(run.own_buffer), run.bus
            runs[i].automation_offset = run.automation_offset
            runs[i].n_keys, runs[i].keys = len(run.keys), self.keys(run.keys)
            if run.out_delay is not None:
                self.delay(run.out_delay, runs[i].out_delay)
        out.n_runs, out.runs = len(s.runs), runs
        self.delay(s.direct, out.direct)
        delays = self.hold(ffi.new("daw_delay[]", max(len(s.bus_delays), 1)))
        for i, d in enumerate(s.bus_delays):
            self.delay(d, delays[i])
        out.bus_delays = delays
        out.bus_sum = self.floats(s.bus_sum)
        return out


class NativeGraph:
    """A C ``daw_graph`` view of a :class:`Graph`; rebuild it after structural edits.

    It remembers the pointers of the last output buffer it rendered into, so a
    render into the same buffer (the engine's, block after block) costs one C call.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        b = _Builder()
        g = b.hold(ffi.new("daw_graph *"))
        g.sample_rate = graph.sample_rate
        g.max_block = graph.max_block
        tracks = b.hold(ffi.new("daw_track[]", max(len(graph.tracks), 1)))
        for i, tr in enumerate(graph.tracks):
            b.track(tr, tracks[i])
        g.n_tracks, g.tracks = len(graph.tracks), tracks
        if any(tr.automation is not None for tr in graph.tracks):
            automation = b.hold(ffi.new("daw_automation *[]", len(graph.tracks)))
            for i, tr in enumerate(graph.tracks):
                if tr.automation is not None:
                    automation[i] = b.automation(tr.automation)
            g.automation = automation
        if any(tr.instrument is not None for tr in graph.tracks):
            instruments = b.hold(ffi.new("daw_instrument *[]", len(graph.tracks)))
            for i, tr in enumerate(graph.tracks):
                if tr.instrument is not None:
                    instruments[i] = b.instrument(tr.instrument)
            g.instruments = instruments
        # where each track's plain blocks are, found by the engine (zeroed: none yet)
        g.plain = b.hold(ffi.new("daw_plain[]", max(len(graph.tracks), 1)))
        buses = b.hold(ffi.new("daw_bus[]", max(len(graph.buses), 1)))
        for i, bus in enumerate(graph.buses):
            b.bus(bus, buses[i])
        g.n_buses, g.buses = len(graph.buses), buses
        master = b.hold(ffi.new("daw_bus *"))
        b.bus(graph.master, master)
        g.master = master
        g.scratch = b.floats(graph.scratch)
        g.lane_scratch = b.floats(graph.lane_scratch)
        g.n_threads = graph.threads if graph.thread_scratch.size else 1
        if graph.schedule is not None:
            g.schedule = b.schedule(graph.schedule)
        if graph.thread_scratch.size:
            g.thread_scratch = b.floats(graph.thread_scratch)
        self._builder = b
        self._struct = g
        self._out: np.ndarray | None = None
        self._out_l = self._out_r = ffi.NULL
        self._out_frames = 0

    def place_clip(self, track: int, clip: int, position: int, length: int) -> None:
        """Move one clip of the C view (a hosted chain's feed, placed every block) and
        forget where that track's plain blocks were."""
        c = self._struct.tracks[track].clips[clip]
        c.position, c.length = position, length
        ffi.memmove(self._struct.plain + track, _PLAIN_ZERO, len(_PLAIN_ZERO))

    def _bind_output(self, out: np.ndarray) -> None:
        """Check ``out`` once and keep its channel pointers (and the array alive)."""
        checked = checked_float32(out, "out", (2, None), writable=True)
        self._out_l, self._out_r = _ptr(checked[0]), _ptr(checked[1])
        self._out, self._out_frames = out, checked.shape[1]

    def render(self, start: int, frames: int, out: np.ndarray) -> None:
        """Render one block into ``out`` (2, >= frames) float32."""
        if out is not self._out:
            self._bind_output(out)
        if frames > self._out_frames:
            raise NativeError("daw_render", lib.DAW_ERR_FRAMES, "frames beyond the output buffer")
        g, graph = self._struct, self.graph
        g.frames_done = graph.frames_done
        code = _daw_render(g, start, frames, self._out_l, self._out_r)
        if code:
            check_status("daw_render", code)
        graph.frames_done = g.frames_done


_daw_render = lib.daw_render
_PLAIN_ZERO = bytes(ffi.sizeof("daw_plain"))


def render(graph: Graph, start: int, frames: int, out: np.ndarray) -> None:
    """Render one block of ``graph`` with the C engine (same contract as the twin).

    The C view of the graph is cached on the graph and rebuilt when
    ``graph.version`` changes (structural edits: clips, chains, sends).
    """
    view = graph.native_view
    if view is None or graph.native_version != graph.version:
        view = NativeGraph(graph)
        graph.native_view, graph.native_version = view, graph.version
    view.render(start, frames, out)


def effect_process(fx: EffectState, ch0: np.ndarray, ch1: np.ndarray | None, frames: int,
                   sample_rate: float, phase: int) -> None:
    """Run one effect in place with ``daw_effect_process``."""
    ch0 = checked_float32(ch0, "ch0", (None,), writable=True)
    if ch1 is not None:
        ch1 = checked_float32(ch1, "ch1", (None,), writable=True)
    if frames > ch0.shape[0] or (ch1 is not None and frames > ch1.shape[0]):
        raise NativeError("daw_effect_process", lib.DAW_ERR_FRAMES, "frames beyond the buffer")
    b = _Builder()
    arr = b.effects([fx])
    scratch = np.empty(max(frames, 1), dtype=np.float32)
    code = lib.daw_effect_process(
        arr, _ptr(ch0), _ptr(ch1) if ch1 is not None else ffi.NULL, 1 if ch1 is None else 2,
        frames, float(sample_rate), phase % TICK, _ptr(scratch),
    )
    check_status("daw_effect_process", code)


def instrument_render(inst: InstrumentState, sample_rate: float, start: int, frames: int,
                      out: np.ndarray) -> None:
    """Render one instrument alone with ``daw_instrument_render`` (same contract as the twin)."""
    out = checked_float32(out, "out", (None,), writable=True)
    if frames > out.shape[0]:
        raise NativeError("daw_instrument_render", lib.DAW_ERR_FRAMES, "frames beyond the buffer")
    b = _Builder()
    code = lib.daw_instrument_render(b.instrument(inst), float(sample_rate), start, frames,
                                     _ptr(out))
    check_status("daw_instrument_render", code)
