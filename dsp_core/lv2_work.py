"""The LV2 Worker extension (``worker:schedule``), run in the worker process's thread.

A plug-in hands slow, non-realtime jobs (loading an impulse response or a sample,
freeing memory) to its host with ``schedule_work``; the host later calls the
plug-in's ``work()`` with that request, ``work()`` answers through ``respond``, and the
host hands each answer back with ``work_response()`` before the plug-in's next
``run()``. Our render is offline, block by block, so this host uses the extension's
non-realtime mode in one thread (no worker thread, no locks, renders reproducible):

- ``schedule_work`` copies the request into a queue (the plug-in may reuse its buffer)
  and returns at once; the queue is bounded (:data:`MAX_ITEMS` requests and
  :data:`MAX_BYTES` bytes waiting at once), and a request past the bound gets
  ``LV2_WORKER_ERR_NO_SPACE``. Responses are queued and bounded the same way.
- After each ``run()`` (:meth:`WorkQueue.finish_block`), and after instantiation and a
  state restore (:meth:`WorkQueue.drain`), the host calls ``work()`` for every waiting
  request in order, then ``work_response()`` for every response, and repeats while a
  response scheduled more work, at most :data:`MAX_ROUNDS` times (what is left waits for
  the next block); then ``end_run()`` when the plug-in has one (after a ``run()`` only).

>>> queue = WorkQueue("urn:example")       # before instantiating
>>> features = [..., queue.feature, NULL]  # the plug-in's instantiate() gets it
>>> queue.attach(instance)                 # the LilvInstance*, once instantiated
>>> queue.finish_block()                   # after every run()
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from .lv2_lilv import WORKER_INTERFACE, WORKER_SCHEDULE, ffi

log = logging.getLogger(__name__)

#: ``LV2_Worker_Status`` values.
SUCCESS, ERR_UNKNOWN, ERR_NO_SPACE = 0, 1, 2
#: Requests (and, apart, responses) one instance may have waiting at once.
MAX_ITEMS = 256
#: Bytes those waiting requests (and, apart, responses) may hold together.
MAX_BYTES = 1 << 20
#: work()/work_response() rounds after one block; more work waits for the next block.
MAX_ROUNDS = 8


class BoundedQueue:
    """A FIFO of byte strings holding at most ``items`` entries and ``size`` bytes."""

    def __init__(self, items: int = MAX_ITEMS, size: int = MAX_BYTES) -> None:
        self.items, self.size = items, size
        self.entries: deque[bytes] = deque()
        self.bytes = 0

    def put(self, size: int, data: Any) -> int:
        """Copy ``size`` bytes at ``data`` in: ``SUCCESS``, or ``ERR_NO_SPACE`` past the bound."""
        if len(self.entries) >= self.items or self.bytes + size > self.size:
            return ERR_NO_SPACE
        if size and data == ffi.NULL:
            return ERR_UNKNOWN
        payload = bytes(ffi.buffer(data, size)) if size else b""
        self.entries.append(payload)
        self.bytes += size
        return SUCCESS

    def take(self) -> list[bytes]:
        """Every waiting entry, oldest first, leaving the queue empty."""
        taken = list(self.entries)
        self.entries.clear()
        self.bytes = 0
        return taken

    def __len__(self) -> int:
        return len(self.entries)


class WorkQueue:
    """One plug-in instance's worker: its ``worker:schedule`` feature and its queues.

    The cffi callbacks and the structs the plug-in keeps pointers to live as long as
    this object, which the LV2 worker process keeps for the instance's lifetime.
    """

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.requests = BoundedQueue()
        self.responses = BoundedQueue()
        self.refused = 0  # requests and responses refused for lack of space
        self.scheduled = 0  # requests the plug-in made, ever (a run that made none: idle)
        self.instance: Any = None
        self.interface: Any = None

        @ffi.callback("int(void*, uint32_t, const void*)", error=ERR_UNKNOWN)
        def schedule_work(_handle: Any, size: int, data: Any) -> int:
            self.scheduled += 1
            return self._count(self.requests.put(size, data))

        @ffi.callback("LV2_Worker_Respond_Function", error=ERR_UNKNOWN)
        def respond(_handle: Any, size: int, data: Any) -> int:
            return self._count(self.responses.put(size, data))

        self._callbacks = (schedule_work, respond)
        self.respond = respond
        self.schedule = ffi.new("LV2_Worker_Schedule*", {"schedule_work": schedule_work})
        self._uri = ffi.new("char[]", WORKER_SCHEDULE.encode())
        self.feature = ffi.new("LV2_Feature*", {"URI": self._uri, "data": self.schedule})

    def _count(self, status: int) -> int:
        if status == ERR_NO_SPACE:
            if not self.refused:
                log.warning("lv2 %s: its work queue is full (%d requests or %d bytes); "
                            "further requests are refused until it drains",
                            self.uri, MAX_ITEMS, MAX_BYTES)
            self.refused += 1
        return status

    def attach(self, instance: Any) -> None:
        """Bind the instantiated ``LilvInstance*`` and its ``worker:interface`` (if any)."""
        self.instance = instance
        d = instance.lv2_descriptor
        data = ffi.NULL
        if d.extension_data != ffi.NULL:
            data = d.extension_data(WORKER_INTERFACE.encode())
        self.interface = None if data == ffi.NULL else ffi.cast("LV2_Worker_Interface*", data)

    def drain(self) -> None:
        """Run waiting requests through ``work()`` and deliver the responses, in order,
        for at most :data:`MAX_ROUNDS` rounds."""
        if self.instance is None or not (self.requests or self.responses):
            return
        if self.interface is None or self.interface.work == ffi.NULL:
            dropped = len(self.requests.take())
            log.warning("lv2 %s scheduled %d work requests but has no worker interface; "
                        "they are dropped", self.uri, dropped)
            return
        handle = self.instance.lv2_handle
        for _ in range(MAX_ROUNDS):
            for request in self.requests.take():
                self.interface.work(handle, self.respond, ffi.NULL, len(request),
                                    ffi.new("char[]", request))
            for response in self.responses.take():
                if self.interface.work_response != ffi.NULL:
                    self.interface.work_response(handle, len(response),
                                                 ffi.new("char[]", response))
            if not self.requests:  # a response may have scheduled more work
                return

    def finish_block(self) -> None:
        """What follows a ``run()``: :meth:`drain`, then the plug-in's ``end_run()``."""
        self.drain()
        if self.interface is not None and self.interface.end_run != ffi.NULL:
            self.interface.end_run(self.instance.lv2_handle)
