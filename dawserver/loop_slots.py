"""A limit on how many heavy jobs (renders) run at once, per event loop.

An ``asyncio.Semaphore`` belongs to the loop it first waits on; a server (and each test)
may run several loops, so each loop gets its own semaphore of the same size.
"""

from __future__ import annotations

import asyncio
import weakref


class LoopSlots:
    """``async with slots():`` waits for one of ``size`` slots of the running loop."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop,
                                                  asyncio.Semaphore] = weakref.WeakKeyDictionary()

    def __call__(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        slots = self._by_loop.get(loop)
        if slots is None:
            slots = self._by_loop[loop] = asyncio.Semaphore(self.size)
        return slots
