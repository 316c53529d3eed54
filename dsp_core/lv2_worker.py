"""The isolated LV2 worker: one process that runs one plug-in (one or more instances).

Started by :class:`dsp_core.lv2_host.HostedPlugin` as
``python3 -m dsp_core.lv2_worker URI RATE MAX_BLOCK INSTANCES FD``, where ``FD`` is an
inherited memory file laid out as :class:`dsp_core.lv2_layout.Layout`. It answers one
8-byte message per command on stdout. A plug-in that crashes kills only this
process; one that hangs is killed by the engine's watchdog.
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import resource
import sys
from typing import Any

import numpy as np

from . import lv2_catalog, lv2_lilv, lv2_state
from .lv2_catalog import PluginInfo, plugin, plugin_pointer
from .lv2_layout import (
    ANSWER,
    FAILED,
    FLOAT,
    MESSAGE,
    OK,
    PRIME,
    QUIT,
    RESET,
    RESTORE,
    RUN,
    SAVE,
    Layout,
)
from .lv2_lilv import ffi, lib
from .lv2_work import WorkQueue

ATOM_CAPACITY = 65536  # bytes of an atom port's buffer, or its rsz:minimumSize if more
ATOM_SEQUENCE = "http://lv2plug.in/ns/ext/atom#Sequence"
ATOM_CHUNK = "http://lv2plug.in/ns/ext/atom#Chunk"
ATOM_FRAME_TIME = "http://lv2plug.in/ns/ext/atom#frameTime"
#: The most one-frame runs a ``PRIME`` makes (a plug-in scheduling work every run).
PRIME_RUNS = 8
#: One event of an ``atom:Sequence`` holding a MIDI message of up to 8 bytes: its
#: frame, then an atom header (size, type) and the message, padded to 8 bytes.
ATOM_EVENT = np.dtype([("frames", "<i8"), ("size", "<u4"), ("type", "<u4"),
                       ("data", "<u4"), ("pad", "<u4")])


class Features:
    """The features given to plug-ins: URID map/unmap, options, bounded block length
    (``array``, shared by every instance and passed to state save and restore), and
    per instance its ``worker:schedule`` (:meth:`with_worker`)."""

    def __init__(self, rate: float, max_block: int) -> None:
        self.ids: dict[str, int] = {}
        self.names: dict[int, Any] = {}

        @ffi.callback("LV2_URID(void*, const char*)")
        def urid_map(_handle: Any, uri: Any) -> int:
            return self.map(ffi.string(uri).decode())

        @ffi.callback("const char*(void*, LV2_URID)")
        def urid_unmap(_handle: Any, urid: int) -> Any:
            return self.names.get(urid, ffi.NULL)

        self._callbacks = (urid_map, urid_unmap)
        self.map_struct = ffi.new("LV2_URID_Map*", {"map": urid_map})
        self.unmap_struct = ffi.new("LV2_URID_Unmap*", {"unmap": urid_unmap})
        self.block = ffi.new("int32_t*", max_block)
        self.rate = ffi.new("float*", rate)
        bufsz = "http://lv2plug.in/ns/ext/buf-size#"
        int_type, float_type = "http://lv2plug.in/ns/ext/atom#Int", \
            "http://lv2plug.in/ns/ext/atom#Float"
        entries = [(bufsz + "maxBlockLength", int_type, self.block),
                   (bufsz + "nominalBlockLength", int_type, self.block),
                   ("http://lv2plug.in/ns/ext/parameters#sampleRate", float_type, self.rate)]
        self.options = ffi.new("LV2_Options_Option[]", len(entries) + 1)
        for option, (key, kind, value) in zip(self.options, entries, strict=False):
            option.key, option.size, option.type = self.map(key), 4, self.map(kind)
            option.value = value
        self.uris = [ffi.new("char[]", uri.encode()) for uri in (
            lv2_lilv.URID_MAP, lv2_lilv.URID_UNMAP, lv2_lilv.OPTIONS, lv2_lilv.BOUNDED_BLOCK)]
        datas = [self.map_struct, self.unmap_struct, self.options, ffi.NULL]
        self.features = [ffi.new("LV2_Feature*", {"URI": u, "data": d})
                         for u, d in zip(self.uris, datas, strict=True)]
        self.array = ffi.new("LV2_Feature*[]", [*self.features, ffi.NULL])

    def with_worker(self, queue: WorkQueue) -> Any:
        """The feature array one instance is instantiated with: ``array`` and the
        instance's own ``worker:schedule`` (kept alive by ``queue``)."""
        return ffi.new("LV2_Feature*[]", [*self.features, queue.feature, ffi.NULL])

    def map(self, uri: str) -> int:
        """The URID of ``uri`` (1, 2, ... in order of first use)."""
        if uri not in self.ids:
            self.ids[uri] = len(self.ids) + 1
            self.names[self.ids[uri]] = ffi.new("char[]", uri.encode())
        return self.ids[uri]


class Worker:
    """Instances of one plug-in, their ports connected to the shared area."""

    def __init__(self, info: PluginInfo, rate: float, max_block: int, instances: int,
                 fd: int) -> None:
        self.info = info
        self.layout = Layout.of(info, max_block, instances)
        size = self.layout.floats * FLOAT
        self.area = mmap.mmap(fd, size)
        self.features = Features(rate, max_block)
        self.keep: list[Any] = []
        self.atom_outputs: list[np.ndarray] = []  # each a uint32 view of its buffer
        self.atom_inputs: list[np.ndarray] = []  # inputs other than the MIDI one
        self.midi_inputs: list[np.ndarray] = []  # the MIDI input of each instance
        self.sequence = self.features.map(ATOM_SEQUENCE)
        self.chunk = self.features.map(ATOM_CHUNK)
        self.frame_time = self.features.map(ATOM_FRAME_TIME)
        self.midi_event = self.features.map(lv2_lilv.MIDI_EVENT)
        self.midi_port = info.midi_input.index if info.midi_input is not None else None
        self.events = np.frombuffer(self.area, dtype=np.uint32,
                                    count=1 + 2 * self.layout.events,
                                    offset=self.layout.midi * FLOAT) \
            if self.layout.events else None
        self.queues: list[WorkQueue] = []  # each instance's worker, for its lifetime
        self.instances = [self._instantiate(i, rate) for i in range(instances)]

    def _instantiate(self, number: int, rate: float) -> Any:
        p = plugin_pointer(self.info.uri)
        queue = WorkQueue(self.info.uri)
        array = self.features.with_worker(queue)
        self.keep.append(array)
        instance = lib().lilv_plugin_instantiate(p, rate, array)
        if instance == ffi.NULL:
            raise RuntimeError(f"{self.info.uri} refused to instantiate at {rate:g} Hz")
        queue.attach(instance)
        self.queues.append(queue)
        base = ffi.cast("float*", ffi.from_buffer(self.area))
        d = instance.lv2_descriptor
        for port in self.info.ports:
            d.connect_port(instance.lv2_handle, port.index, self._buffer(number, port, base))
        if d.activate != ffi.NULL:
            d.activate(instance.lv2_handle)
        queue.drain()  # work the plug-in scheduled while instantiating
        return instance

    def _buffer(self, number: int, port: Any, base: Any) -> Any:
        if port.kind == "control":
            return base + self.layout.control(number, port.index)
        if port.kind == "audio":
            return base + self.layout.audio(number, port.index)
        if port.kind == "atom":
            capacity = max(ATOM_CAPACITY, (port.minimum_size + 7) & ~7)
            buf = ffi.new("uint64_t[]", capacity // 8)  # 8-byte aligned, as events need
            words = np.frombuffer(ffi.buffer(buf), dtype=np.uint32)
            if port.output:
                self.atom_outputs.append(words)
            elif port.index == self.midi_port:
                self.midi_inputs.append(words)
            else:
                self.atom_inputs.append(words)
            self._empty(words)
            self.keep.append(buf)
            return buf
        buf = ffi.new("float[]", self.layout.max_block)  # CV and optional others
        self.keep.append(buf)
        return buf

    def _empty(self, words: np.ndarray) -> None:
        """An empty ``atom:Sequence`` in frame time: size 8 (its body), then the body."""
        words[:4] = (8, self.sequence, self.frame_time, 0)

    def _midi(self, words: np.ndarray, frames: int) -> None:
        """Write the block's MIDI events (from the shared area) into a MIDI input as an
        ``atom:Sequence`` of ``midi:MidiEvent``: frame stamps, 8-byte aligned events,
        ``atom.size`` the sequence body's size."""
        assert self.events is not None
        count = min(int(self.events[0]), self.layout.events)
        capacity = (words.shape[0] * 4 - 16) // ATOM_EVENT.itemsize
        if count > capacity:  # (never with the capacities this host gives)
            count = capacity
        pairs = self.events[1:1 + 2 * count].reshape(count, 2)
        events = np.zeros(count, dtype=ATOM_EVENT)
        events["frames"] = np.minimum(pairs[:, 0], max(frames - 1, 0))
        events["size"] = pairs[:, 1] >> 24
        events["type"] = self.midi_event
        events["data"] = pairs[:, 1] & 0xFFFFFF
        words[:4] = (8 + count * ATOM_EVENT.itemsize, self.sequence, self.frame_time, 0)
        words[4:4 + count * ATOM_EVENT.itemsize // 4] = events.view(np.uint32)

    def run(self, frames: int) -> None:
        """Run every instance over ``frames`` frames of the shared rows (and the MIDI
        events, when the plug-in takes them)."""
        for words in self.atom_outputs:  # an output's capacity is given before each run
            words[0], words[1] = words.shape[0] * 4 - 8, self.chunk
        for words in self.atom_inputs:
            self._empty(words)
        for words in self.midi_inputs:
            self._midi(words, frames)
        for instance, queue in zip(self.instances, self.queues, strict=True):
            instance.lv2_descriptor.run(instance.lv2_handle, frames)
            queue.finish_block()  # its work, then the responses, before the next run

    def prime(self) -> int:
        """Run one-frame runs (no MIDI; the host silenced the inputs' first frame) until
        one schedules no work, at most :data:`PRIME_RUNS`; return how many ran.  A
        plug-in may take a restored state in over several runs (LSP's samplers load the
        file a state names in one run's work, swap it in at the next, free the old one
        at the one after) and cut or miss the notes of those runs."""
        if self.events is not None:
            self.events[0] = 0
        for runs in range(1, PRIME_RUNS + 1):
            before = sum(queue.scheduled for queue in self.queues)
            self.run(1)
            if sum(queue.scheduled for queue in self.queues) == before:
                return runs
        return PRIME_RUNS

    def save_state(self) -> str:
        """The first instance's LV2 state as text (:func:`dsp_core.lv2_state.save`)."""
        return lv2_state.save(lv2_catalog.world(), plugin_pointer(self.info.uri),
                              self.instances[0], self.features)

    def restore_state(self, state: str) -> None:
        """Restore ``state`` into every instance (:class:`~dsp_core.lv2_state.StateRefused`
        leaves them as they were)."""
        lv2_state.restore(lv2_catalog.world(), self.info.uri, self.instances, self.features,
                          state)
        for queue in self.queues:  # a restore may schedule work (load the file it names)
            queue.drain()

    def reset(self) -> None:
        """Deactivate and activate every instance: the LV2 way to clear its state."""
        for instance in self.instances:
            d = instance.lv2_descriptor
            if d.deactivate != ffi.NULL:
                d.deactivate(instance.lv2_handle)
            if d.activate != ffi.NULL:
                d.activate(instance.lv2_handle)
        for queue in self.queues:
            queue.drain()


def _answer(out: Any, status: int, message: str = "") -> None:
    data = message.encode()
    out.write(ANSWER.pack(status, len(data)) + data)
    out.flush()


#: Address space a worker may map (``DAW_LV2_MAX_MEMORY_MB``, set by the host).
DEFAULT_MEMORY_MB = 4096
OPEN_FILES = 256
_PR_SET_NO_NEW_PRIVS = 38


def confine() -> None:
    """Limit this process before any plug-in code loads: its address space, open files,
    no core dumps, and no privilege gain through exec (``PR_SET_NO_NEW_PRIVS``).

    No CPU-time limit: a live engine's worker legitimately runs for hours; a plug-in
    that spins is caught by the host's per-block watchdog instead.
    """
    megabytes = int(os.environ.get("DAW_LV2_MAX_MEMORY_MB", DEFAULT_MEMORY_MB))
    for limit, value in ((resource.RLIMIT_AS, megabytes << 20),
                         (resource.RLIMIT_NOFILE, OPEN_FILES), (resource.RLIMIT_CORE, 0)):
        hard = resource.getrlimit(limit)[1]
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(limit, (value, value))
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the limits still hold
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def serve(argv: list[str]) -> int:
    """Load the plug-in, say so, then answer commands until QUIT or end of input."""
    uri, rate, max_block, instances, fd = argv
    # answers get a descriptor of their own; whatever a plug-in prints to stdout goes to
    # stderr instead of into the protocol
    out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    inp = sys.stdin.buffer
    try:
        confine()
        worker = Worker(plugin(uri), float(rate), int(max_block), int(instances), int(fd))
    except Exception as exc:  # noqa: BLE001 - any failure is reported, then we exit
        _answer(out, FAILED, f"{type(exc).__name__}: {exc}")
        return 1
    _answer(out, OK)
    while True:
        message = inp.read(MESSAGE.size)
        if len(message) < MESSAGE.size:
            return 0
        command, frames = MESSAGE.unpack(message)
        if command == RUN:
            worker.run(frames)
        elif command == RESET:
            worker.reset()
        elif command == PRIME:
            worker.prime()
        elif command == QUIT:
            return 0
        elif command in (SAVE, RESTORE):
            _answer(out, *_state_command(worker, command, frames, inp))
            continue
        _answer(out, OK)


def _state_command(worker: Worker, command: int, length: int, inp: Any) -> tuple[int, str]:
    """Save or restore the plug-in's state: (OK, the text) or (FAILED, why)."""
    try:
        if command == SAVE:
            return OK, worker.save_state()
        data = inp.read(length)
        if len(data) < length:
            return FAILED, "the state's text ended early"
        worker.restore_state(data.decode("utf-8"))
        return OK, ""
    except (lv2_state.StateRefused, UnicodeDecodeError) as exc:
        return FAILED, str(exc)


if __name__ == "__main__":
    sys.exit(serve(sys.argv[1:]))
