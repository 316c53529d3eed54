"""The shared-memory layout between the engine and an LV2 worker, and the wire format.

One float32 area per worker: for each instance, one control slot per port index
(control ports are connected straight to theirs, so the engine sets a parameter by
writing a float), then one row of ``max_block`` frames per audio port. The engine
writes the audio inputs and reads the outputs; the worker only runs the plug-in.

Commands are 8 bytes on the worker's stdin, ``(command, frames)``; ``RESTORE``'s
second field is instead the length of the UTF-8 state text that follows it. Every
answer is 8 bytes on its stdout, ``(status, length)`` followed by ``length`` bytes of
UTF-8 text (an error message, or the state text ``SAVE`` asked for).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .lv2_catalog import PluginInfo

RUN, RESET, QUIT, SAVE, RESTORE = 1, 2, 3, 4, 5
OK, FAILED = 0, 1
MESSAGE = struct.Struct("<II")
ANSWER = struct.Struct("<iI")
FLOAT = 4


@dataclass(frozen=True)
class Layout:
    """Offsets, in floats, of every instance's control slots and audio rows."""

    ports: int
    max_block: int
    instances: int
    audio_ports: tuple[int, ...]  # port indices with a row, in row order

    @classmethod
    def of(cls, info: PluginInfo, max_block: int, instances: int) -> Layout:
        """The layout for ``instances`` copies of ``info`` in blocks of ``max_block``."""
        return cls(len(info.ports), max_block, instances,
                   tuple(p.index for p in info.ports if p.kind == "audio"))

    @property
    def per_instance(self) -> int:
        """Floats one instance takes."""
        return self.ports + len(self.audio_ports) * self.max_block

    @property
    def floats(self) -> int:
        """Floats of the whole area."""
        return self.instances * self.per_instance

    def control(self, instance: int, port: int) -> int:
        """Offset of a control port's slot."""
        return instance * self.per_instance + port

    def audio(self, instance: int, port: int) -> int:
        """Offset of an audio port's row."""
        row = self.audio_ports.index(port)
        return instance * self.per_instance + self.ports + row * self.max_block
