"""An LV2 plug-in hosted in an isolated worker process, with a watchdog.

:class:`HostedPlugin` processes a track's block in place like an effect, but the
plug-in's code runs in :mod:`dsp_core.lv2_worker`: the block travels through a
shared memory file, and one 8-byte message each way starts and ends the run. When
the worker does not answer within ``deadline`` seconds (a hang), dies (a crash), or
answers with a NaN or infinite sample, the plug-in is **bypassed**: the block keeps
its dry signal (delayed by the plug-in's reported latency, so the timeline stays
aligned), ``failed`` says what happened, and nothing else stops. :meth:`restart`
starts a fresh worker. A plug-in's own LV2 state (``params["state"]``,
:mod:`dsp_core.lv2_state`) is restored when its worker starts and when it changes;
:meth:`save_state` reads it back.

>>> fx = HostedPlugin({"uri": "http://plugin.org.uk/swh-plugins/amp", "gain": -6.0},
...                   channels=2, sample_rate=48000, max_block=1024)
>>> fx.process(buffer, 1024)     # (2, >= 1024) float32, in place
>>> fx.close()
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import select
import subprocess
import sys
import time
import weakref
from pathlib import Path

import numpy as np

from . import lv2_catalog
from .errors import DspError
from .lv2_layout import (
    ANSWER,
    FAILED,
    FLOAT,
    MESSAGE,
    PRIME,
    QUIT,
    RESET,
    RESTORE,
    RUN,
    SAVE,
    Layout,
)
from .lv2_state import STATE_KEY

log = logging.getLogger(__name__)

#: Seconds a block may take before the worker counts as hung (``DAW_LV2_DEADLINE``).
DEFAULT_DEADLINE = float(os.environ.get("DAW_LV2_DEADLINE", "2.0"))
START_DEADLINE = 60.0  # loading lilv's world and the plug-in, on a busy machine
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
_TINY = np.finfo(np.float32).tiny  # the smallest normal float32
_MEASURED: dict[tuple, int] = {}
_BY_PLUGIN: dict[tuple, int] = {}  # (URI, rate): the last figure any instance measured
_MEASURED_CAP = 4096  # (URI, controls, rate) figures kept; the oldest go first
#: The variables a worker inherits (see :func:`worker_environment`).
WORKER_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "LV2_PATH",
              "LD_LIBRARY_PATH", "VIRTUAL_ENV", "PYTHONHOME", "DAW_LV2_MAX_MEMORY_MB")
_LIVE: weakref.WeakSet[HostedPlugin] = weakref.WeakSet()


class WorkerFailed(DspError):
    """The worker hung, crashed, refused to start or produced a non-finite sample."""


class DryDelay:
    """The bypass path: the input delayed by the plug-in's latency (kept primed)."""

    def __init__(self, channels: int, frames: int) -> None:
        self.history = np.zeros((channels, frames), dtype=np.float32)

    def push(self, block: np.ndarray) -> np.ndarray:
        """Take ``block`` (channels, n) in; return the n frames that leave the line."""
        if not self.history.shape[1]:
            return block.copy()
        joined = np.concatenate([self.history, block], axis=1)
        self.history = joined[:, -self.history.shape[1]:].copy()
        return joined[:, :block.shape[1]]


class HostedPlugin:
    """One ``lv2`` effect: a plug-in in a worker process, processing blocks in place.

    Parameters
    ----------
    params:
        ``{"uri": ..., symbol: value, ...}``, checked against discovery.
    channels:
        The track's channels (1 or 2). A mono plug-in on a stereo track runs as two
        instances (one per channel); a stereo plug-in on a mono track gets the mono
        signal on both inputs and its outputs averaged.
    deadline:
        Seconds one block may take before the worker counts as hung.
    instrument:
        Play a MIDI track (:mod:`dsp_core.lv2_instrument`): the plug-in must take MIDI
        (:attr:`~dsp_core.lv2_catalog.PluginInfo.playable`), runs as one instance, its
        audio inputs get silence and :meth:`process` writes its output over the buffer.
    """

    def __init__(self, params: dict[str, float | str], channels: int, sample_rate: int,
                 max_block: int, deadline: float | None = None,
                 instrument: bool = False) -> None:
        self.info = lv2_catalog.validate_spec(params, instrument)
        self.instrument = instrument
        self.params = dict(params)
        self.channels = channels
        self.sample_rate = sample_rate
        self.max_block = max_block
        self.deadline = DEFAULT_DEADLINE if deadline is None else deadline
        ins, outs = self.info.audio(False), self.info.audio(True)
        self.instances = 2 if (len(ins), len(outs), channels) == (1, 1, 2) and (
            not instrument) else 1
        self.layout = Layout.of(self.info, max_block, self.instances)
        self._fd = os.memfd_create("lv2-" + self.info.uri.rsplit("/", 1)[-1][:40], 0)
        os.ftruncate(self._fd, self.layout.floats * FLOAT)
        self._map = mmap.mmap(self._fd, self.layout.floats * FLOAT)
        self.area = np.frombuffer(self._map, dtype=np.float32)
        self._events = np.frombuffer(self._map, dtype=np.uint32,
                                     count=1 + 2 * self.layout.events,
                                     offset=self.layout.midi * FLOAT) \
            if self.layout.events else None
        self.failed: str | None = None
        self.latency = 0
        #: How often the main audio rows were worked out (once per shared-memory area)
        self.row_builds = 0
        self._layout_cache: _Rows | None = None
        self._process: subprocess.Popen | None = None
        self._dry = DryDelay(channels, 0)
        self._pending_dry = np.zeros((channels, 0), dtype=np.float32)
        self._running = False  # a block handed to the worker by start(), not yet finished
        self._started = 0.0  # when start() handed it over: finish() waits until + deadline
        self._finalizer = weakref.finalize(self, _stop, [None], self._map, self._fd)
        self._start()
        _LIVE.add(self)

    # ------------------------------------------------------------ life cycle

    def _start(self) -> None:
        env = worker_environment()
        self.area[:] = 0.0
        self._write_controls()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "dsp_core.lv2_worker", self.info.uri, str(self.sample_rate),
             str(self.max_block), str(self.instances), str(self._fd)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(self._fd,), env=env)
        self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _stop, [self._process], self._map, self._fd)
        try:
            status, message = self._wait(START_DEADLINE, "starting")
            if status == FAILED:
                raise WorkerFailed(f"lv2 {self.info.uri} did not start: {message}")
            self._restore_state()
            self.latency = self._measure_latency()
            self._prime()
        except WorkerFailed as exc:
            self._fail(str(exc))
        self._dry = DryDelay(self.channels, self.latency)
        _remember(self.params, self.sample_rate, self.latency)

    def _measure_latency(self) -> int:
        """Run silent blocks until the latency port holds still (0 without one)."""
        port = self.info.latency_port
        if port is None:
            return 0
        readings: list[float] = []
        while len(readings) < 8 and (len(readings) < 2 or readings[-1] != readings[-2]):
            self._command(RUN, self.max_block, "measuring its latency")
            readings.append(float(self.area[self.layout.control(0, port)]))
        self._command(RESET, 0, "resetting")
        frames = readings[-1]
        return max(int(round(frames)), 0) if np.isfinite(frames) else 0

    def _prime(self, reset: bool = True) -> None:
        """Run silent one-frame runs until the plug-in schedules no more work (then reset,
        unless ``reset`` is False) when it takes MIDI: some (LSP's samplers) take a
        restored state in over their next runs and miss or cut those runs' MIDI, and the
        first block's notes (a chase from the playhead) must be heard.  Done after every
        restore: at start-up and when the state changes in a running worker (without a
        reset there, so what sounds plays on; a seek resets anyway)."""
        if self._events is None:
            return
        self._events[0] = 0
        for row, _ in self._rows().inputs:  # the runs hear silence, not a stale frame
            row[:1] = 0.0
        self._command(PRIME, 1, "priming")
        if reset:
            self._command(RESET, 0, "resetting")

    def _restore_state(self) -> None:
        """Hand ``params["state"]`` (when there is one) to the worker to restore."""
        state = self.params.get(STATE_KEY)
        if not isinstance(state, str):
            return
        data = state.encode("utf-8")
        status, message = self._request(RESTORE, len(data), "restoring its state", data)
        if status == FAILED:
            raise WorkerFailed(message)

    def save_state(self) -> str:
        """The plug-in's LV2 state now, as the text ``params["state"]`` takes.

        Store it in the document with ``set_effect_params(track, index, state=text)``;
        it is restored whenever the effect is instantiated (a render, the live mix).
        Raises :class:`WorkerFailed` when the plug-in is bypassed or cannot save.
        """
        if self.failed is not None or self._process is None:
            raise WorkerFailed(f"lv2 {self.info.uri} is bypassed ({self.failed or 'closed'});"
                               " restart it before saving its state")
        status, message = self._request(SAVE, 0, "saving its state")
        if status == FAILED:
            raise WorkerFailed(f"lv2 {self.info.uri} could not save its state: {message}")
        return message

    @property
    def alive(self) -> bool:
        """True while the worker runs (not failed, not closed)."""
        return self._process is not None and self.failed is None

    def restart(self) -> None:
        """Start a fresh worker (after a failure, or to clear the plug-in's state)."""
        self._stop()
        self.failed = None
        self._start()

    def close(self) -> None:
        """Stop the worker and free the shared memory."""
        self._stop()
        self.area = np.zeros(0, dtype=np.float32)
        self._layout_cache = None  # its rows are views into the map: they would keep it
        self._finalizer()

    def _stop(self) -> None:
        if self._process is not None:
            _stop([self._process], None, None)
            self._process = None

    def _fail(self, message: str) -> None:
        self.failed = message + "; the plug-in is bypassed until it is restarted"
        log.error("%s", self.failed)
        self._stop()

    # ------------------------------------------------------------ talking to the worker

    def _wait(self, deadline: float, doing: str,
              since: float | None = None) -> tuple[int, str]:
        """Read one answer within ``deadline`` seconds of ``since`` (a ``monotonic`` time,
        the request's; default now), or raise :class:`WorkerFailed`. An answer already
        there is read even when the deadline has passed."""
        assert self._process is not None and self._process.stdout is not None
        fd = self._process.stdout.fileno()
        data = b""
        until = (time.monotonic() if since is None else since) + deadline
        while len(data) < ANSWER.size:
            left = until - time.monotonic()
            if not select.select([fd], [], [], max(left, 0.0))[0]:
                self._process.kill()  # at once: a hung worker never reads its QUIT
                raise WorkerFailed(f"lv2 {self.info.uri} hung while {doing}: no answer "
                                   f"within {deadline:g} s")
            chunk = os.read(fd, ANSWER.size - len(data))
            if not chunk:
                code = self._process.wait(timeout=5)
                raise WorkerFailed(f"lv2 {self.info.uri} crashed while {doing} "
                                   f"(worker exit status {code})")
            data += chunk
        status, length = ANSWER.unpack(data)
        body = b""
        while len(body) < length:  # a saved state may be larger than one pipe read
            left = until - time.monotonic()
            if not select.select([fd], [], [], max(left, 0.0))[0]:
                self._process.kill()
                raise WorkerFailed(f"lv2 {self.info.uri} hung while {doing}: its answer "
                                   f"stopped after {len(body)} of {length} bytes")
            chunk = os.read(fd, length - len(body))
            if not chunk:
                code = self._process.wait(timeout=5)
                raise WorkerFailed(f"lv2 {self.info.uri} crashed while {doing} "
                                   f"(worker exit status {code})")
            body += chunk
        return status, body.decode("utf-8", "replace")

    def _command(self, command: int, frames: int, doing: str) -> None:
        self._request(command, frames, doing)

    def _request(self, command: int, frames: int, doing: str,
                 payload: bytes = b"") -> tuple[int, str]:
        """Send one command (and its payload); return the worker's answer."""
        self._send(command, frames, doing, payload)
        return self._wait(self.deadline if command == RUN else START_DEADLINE, doing)

    def _send(self, command: int, frames: int, doing: str, payload: bytes = b"") -> None:
        """Send one command (and its payload) without waiting for the answer."""
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(MESSAGE.pack(command, frames) + payload)
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            code = self._process.poll()
            raise WorkerFailed(f"lv2 {self.info.uri} crashed before {doing} "
                               f"(worker exit status {code})") from None

    # ------------------------------------------------------------ parameters and audio

    def set_params(self, params: dict[str, float | str]) -> None:
        """New control values (the same ``uri``); the plug-in reads them at its next run."""
        if params.get("uri") != self.info.uri:
            raise DspError("lv2: a different 'uri' needs a new hosted plug-in")
        lv2_catalog.validate_spec(params, self.instrument)
        state_changed = params.get(STATE_KEY) != self.params.get(STATE_KEY)
        self.params = dict(params)
        self._write_controls()
        if state_changed and self.failed is None and self._process is not None:
            if STATE_KEY not in params:  # back to the plug-in's own start-up state
                self.restart()
                return
            try:
                self._restore_state()
                self._prime(reset=False)
            except WorkerFailed as exc:
                self._fail(str(exc))

    def _write_controls(self) -> None:
        for index, value in lv2_catalog.control_values(self.info, self.params,
                                                          self.sample_rate).items():
            for instance in range(self.instances):
                self.area[self.layout.control(instance, index)] = value

    def reset(self) -> None:
        """Clear the plug-in's state (deactivate, activate) and the bypass line."""
        self._dry = DryDelay(self.channels, self.latency)
        if self.failed is None and self._process is not None:
            try:
                self._command(RESET, 0, "resetting")
            except WorkerFailed as exc:
                self._fail(str(exc))

    def process(self, buffer: np.ndarray, frames: int,
                events: np.ndarray | None = None) -> bool:
        """Process ``buffer[:, :frames]`` in place; False when the block was bypassed.

        ``events`` (``(n, 2)`` uint32: frame in the block, packed MIDI bytes, see
        :mod:`dsp_core.lv2_layout`; sorted by frame, at most ``MAX_EVENTS``) go to the
        plug-in's MIDI input in this block.
        """
        self.start(buffer, frames, events)
        return self.finish(buffer, frames)

    def start(self, buffer: np.ndarray, frames: int,
              events: np.ndarray | None = None) -> None:
        """The first half of :meth:`process`: hand the block to the worker and return at
        once, so several workers run their blocks at the same time; :meth:`finish` (the
        same ``buffer`` and ``frames``) collects it. The deadline counts from here, so
        waiting for another worker first does not stretch this one's."""
        block = buffer[:, :frames]
        self._pending_dry = self._dry.push(block)
        self._running = False
        if self.failed is not None:
            return
        for row, channel in self._rows().inputs:
            if self.instrument:  # an instrument's audio inputs hear silence
                row[:frames] = 0.0
            else:
                row[:frames] = block[channel]
        if self._events is not None:
            self._write_events(events, frames)
        try:
            self._started = time.monotonic()
            self._send(RUN, frames, "processing a block")
        except WorkerFailed as exc:
            self._fail(str(exc))
            return
        self._running = True

    def finish(self, buffer: np.ndarray, frames: int) -> bool:
        """The second half of :meth:`process`: wait for the worker's block and write it
        over ``buffer[:, :frames]`` (the dry signal when bypassed); False when bypassed."""
        block, dry = buffer[:, :frames], self._pending_dry
        if not self._running:
            block[:] = dry
            return False
        self._running = False
        try:
            self._wait(self.deadline, "processing a block", self._started)
        except WorkerFailed as exc:
            self._fail(str(exc))
            block[:] = dry
            return False
        wet = self._gather(self._rows(), frames)
        if not np.isfinite(wet).all():
            self._fail(f"lv2 {self.info.uri} produced a NaN or infinite sample")
            block[:] = dry
            return False
        wet[np.abs(wet) < _TINY] = 0.0  # subnormals stop here, as the C engine's FTZ does
        block[:] = wet
        return True

    def _write_events(self, events: np.ndarray | None, frames: int) -> None:
        """Put a block's MIDI events where the worker reads them."""
        assert self._events is not None
        if events is None or not events.shape[0]:
            self._events[0] = 0
            return
        count, last = events.shape[0], int(events[-1, 0])
        if count > self.layout.events:
            raise DspError(f"lv2 {self.info.uri}: {count} MIDI events in one run, more "
                           f"than {self.layout.events}; run the block in pieces")
        if not 0 <= last < frames:
            raise DspError(f"lv2 {self.info.uri}: a MIDI event at frame {last} lies "
                           f"outside the {frames}-frame block")
        self._events[0] = count
        self._events[1:1 + 2 * count] = events.reshape(-1)

    def _rows(self) -> _Rows:
        """The main input and output rows, worked out once per shared-memory area (they
        depend only on the plug-in's ports, the channels and the layout, none of which a
        parameter change touches); a profile found rebuilding them each block costly."""
        cache = self._layout_cache
        if cache is None or cache.area is not self.area:
            cache = self._layout_cache = _Rows.of(self)
            self.row_builds += 1
        return cache

    def _gather(self, rows: _Rows, frames: int) -> np.ndarray:
        wet = rows.output(frames)
        if wet.shape[0] == self.channels:
            return wet
        if self.channels == 1:  # a stereo plug-in on a mono track
            return (wet.sum(axis=0, keepdims=True) * np.float32(0.5)).astype(np.float32)
        return np.repeat(wet, 2, axis=0)  # a mono-output plug-in on a stereo track


class _Rows:
    """A hosted plug-in's main audio rows in its shared-memory area, as numpy views."""

    def __init__(self, area: np.ndarray, ins: list[tuple[int, int]],
                 outs: list[tuple[int, int]], max_block: int) -> None:
        self.area = area
        #: (view of max_block frames, track channel) per input row
        self.inputs = [(area[o:o + max_block], channel) for o, channel in ins]
        self._outs = [area[o:o + max_block] for o, _ in outs]
        steps = {b - a for (a, _), (b, _) in zip(outs, outs[1:], strict=False)}
        self._strided: np.ndarray | None = None
        if outs and len(steps) <= 1:  # evenly spaced: one (rows, frames) view
            step = steps.pop() if steps else max_block
            self._strided = np.lib.stride_tricks.as_strided(
                area[outs[0][0]:], shape=(len(outs), max_block),
                strides=(step * area.itemsize, area.itemsize), writeable=False)

    @classmethod
    def of(cls, plugin: HostedPlugin) -> _Rows:
        """Work out ``plugin``'s rows: (area offset, track channel) of each main input
        and output."""
        layout = plugin.layout
        ins, outs = plugin.info.audio(False), plugin.info.audio(True)
        if plugin.instances == 2:
            return cls(plugin.area, [(layout.audio(c, ins[0].index), c) for c in range(2)],
                       [(layout.audio(c, outs[0].index), c) for c in range(2)],
                       plugin.max_block)
        last = plugin.channels - 1
        return cls(plugin.area,
                   [(layout.audio(0, p.index), min(j, last)) for j, p in enumerate(ins)],
                   [(layout.audio(0, p.index), j) for j, p in enumerate(outs)],
                   plugin.max_block)

    def output(self, frames: int) -> np.ndarray:
        """A fresh (outputs, frames) copy of the output rows' first ``frames`` frames."""
        if self._strided is not None:
            return self._strided[:, :frames].copy()
        return np.stack([row[:frames] for row in self._outs])


def worker_environment(source: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a worker starts with: only what Python and lilv need
    (:data:`WORKER_ENV`), never the server's secrets (database URL, payment, mail and
    storage keys); ``PYTHONPATH`` leads with this package."""
    source = dict(os.environ) if source is None else source
    env = {name: source[name] for name in WORKER_ENV if name in source}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, source.get("PYTHONPATH")]))
    return env


def _latency_key(params: dict[str, float | str], sample_rate: int) -> tuple:
    values = {k: hashlib.sha256(str(v).encode()).hexdigest() if k == STATE_KEY else str(v)
              for k, v in params.items()}  # a state's text is large: its digest stands in
    return (params.get("uri"), tuple(sorted(values.items())), sample_rate)


def measured_latency(params: dict[str, float | str], sample_rate: int) -> int:
    """Frames of latency an ``lv2`` effect reports at ``sample_rate``.

    0 for a plug-in without a latency port; otherwise the figure a hosted instance
    with these parameters measured, else what a running instance of the plug-in
    measured when it started (a control edit does not re-measure: a restart does),
    else a short-lived worker's measurement.
    """
    info = lv2_catalog.validate_spec(params)
    if info.latency_port is None:
        return 0
    key = _latency_key(params, sample_rate)
    if key in _MEASURED:
        return _MEASURED[key]
    for live in list(_LIVE):
        if live.info.uri == info.uri and live.sample_rate == sample_rate and live.alive:
            return live.latency
    known = _BY_PLUGIN.get((info.uri, sample_rate))
    if known is not None:  # a control edit: no new worker just to measure
        return known
    probe = HostedPlugin(params, 1, sample_rate, 1024)
    probe.close()
    return probe.latency


def _remember(params: dict[str, float | str], sample_rate: int, latency: int) -> None:
    """Keep a measured figure (bounded: the oldest figures are forgotten first)."""
    key = _latency_key(params, sample_rate)
    _MEASURED.pop(key, None)
    while len(_MEASURED) >= _MEASURED_CAP:
        del _MEASURED[next(iter(_MEASURED))]
    _MEASURED[key] = latency
    _BY_PLUGIN[(params.get("uri"), sample_rate)] = latency


def _stop(processes: list[subprocess.Popen | None], area: mmap.mmap | None,
          fd: int | None) -> None:
    """Ask a worker to quit, kill it if it does not, and free the memory file."""
    for process in processes:
        if process is None or process.poll() is not None:
            continue
        try:
            assert process.stdin is not None
            process.stdin.write(MESSAGE.pack(QUIT, 0))
            process.stdin.flush()
            process.wait(timeout=1.0)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()
    for process in processes:
        if process is not None:
            for pipe in (process.stdin, process.stdout):
                if pipe is not None:
                    with contextlib.suppress(OSError):
                        pipe.close()
    if area is not None:
        with contextlib.suppress(BufferError):  # a numpy view still lives: freed with it
            area.close()
    if fd is not None:
        os.close(fd)
