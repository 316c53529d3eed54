"""The shared-memory layout between the engine and an LV2 worker, and the wire format.

One float32 area per worker: for each instance, one control slot per port index
(control ports are connected straight to theirs, so the engine sets a parameter by
writing a float), then one row of ``max_block`` frames per audio port. The engine
writes the audio inputs and reads the outputs; the worker only runs the plug-in.

A plug-in with a MIDI input (:attr:`~dsp_core.lv2_catalog.PluginInfo.midi_input`) has,
after the instances, the block's MIDI events as ``uint32`` words: their count, then
two words per event, its frame in the block and its bytes packed little-endian
(status, data 1, data 2, then the message's length in the top byte). The worker
builds the ``atom:Sequence`` the plug-in reads from them before each run.

Commands are 8 bytes on the worker's stdin, ``(command, frames)``; ``RESTORE``'s
second field is instead the length of the UTF-8 state text that follows it;
``PRIME`` runs one-frame runs with no MIDI until a run schedules no work (see
:meth:`dsp_core.lv2_worker.Worker.prime`). Every answer is 8 bytes on its stdout,
``(status, length)`` followed by ``length`` bytes of UTF-8 text (an error message, or
the state text ``SAVE`` asked for).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .lv2_catalog import PluginInfo

RUN, RESET, QUIT, SAVE, RESTORE, PRIME = 1, 2, 3, 4, 5, 6
OK, FAILED = 0, 1
MESSAGE = struct.Struct("<II")
ANSWER = struct.Struct("<iI")
FLOAT = 4
#: MIDI events one run can carry (a block with more is run in pieces).
MAX_EVENTS = 2048


@dataclass(frozen=True)
class Layout:
    """Offsets, in floats, of every instance's control slots and audio rows."""

    ports: int
    max_block: int
    instances: int
    audio_ports: tuple[int, ...]  # port indices with a row, in row order
    events: int = 0  # MIDI events a run can carry (0: the plug-in has no MIDI input)

    @classmethod
    def of(cls, info: PluginInfo, max_block: int, instances: int) -> Layout:
        """The layout for ``instances`` copies of ``info`` in blocks of ``max_block``."""
        return cls(len(info.ports), max_block, instances,
                   tuple(p.index for p in info.ports if p.kind == "audio"),
                   MAX_EVENTS if info.midi_input is not None else 0)

    @property
    def per_instance(self) -> int:
        """Floats one instance takes."""
        return self.ports + len(self.audio_ports) * self.max_block

    @property
    def floats(self) -> int:
        """Floats (4-byte words) of the whole area."""
        return self.midi + (1 + 2 * self.events if self.events else 0)

    @property
    def midi(self) -> int:
        """Offset, in words, of the MIDI events' count (the events follow it)."""
        return self.instances * self.per_instance

    def control(self, instance: int, port: int) -> int:
        """Offset of a control port's slot."""
        return instance * self.per_instance + port

    def audio(self, instance: int, port: int) -> int:
        """Offset of an audio port's row."""
        row = self.audio_ports.index(port)
        return instance * self.per_instance + self.ports + row * self.max_block


def pack_midi(frames: np.ndarray, status: np.ndarray, data1: np.ndarray,
              data2: np.ndarray) -> np.ndarray:
    """Three-byte MIDI messages at frames of a block as the ``(n, 2)`` uint32 words
    :meth:`dsp_core.lv2_host.HostedPlugin.process` takes."""
    words = np.empty((len(frames), 2), dtype=np.uint32)
    words[:, 0] = frames
    words[:, 1] = ((np.asarray(status, np.uint32) & 0xFF)
                   | (np.asarray(data1, np.uint32) & 0x7F) << 8
                   | (np.asarray(data2, np.uint32) & 0x7F) << 16 | 3 << 24)
    return words
