"""Storefront templates (and licence contracts, :meth:`RenderPool.contract`) checked and
rendered in worker processes, never on the event loop.

A seller's template runs in :class:`~business.marketplace.sandbox.Sandbox` inside a worker
of a pebble process pool: each worker caps its own address space (``RLIMIT_AS``, the
memory allowance above what it used at start) and each render has a wall-clock limit. A
render past its limit has its worker killed (pebble starts a fresh one) and answers
:class:`TemplateRefused` saying so; a worker that dies (out of memory) answers the same.
The event loop only awaits the result.

Renders for visitors (:meth:`RenderPool.render` with a ``key``, the store) are admitted
so that one seller's slow template cannot stall every storefront:

- at most :attr:`RenderLimits.per_store` renders of one store run at once, and at most
  :attr:`RenderLimits.per_store_queue` more wait; beyond that the store's visitors get
  :class:`RenderBusy` (the route answers 503 with ``Retry-After``);
- at most :attr:`RenderLimits.queue` renders run or wait in all; beyond that any store's
  visitors get :class:`RenderBusy`;
- a circuit breaker: after :attr:`RenderLimits.breaker_timeouts` time-outs in a row of
  the same template, that template is refused at once (no worker is used, the caller
  serves the built-in page) for :attr:`RenderLimits.breaker_s` seconds, or until the
  seller saves another template (the breaker is keyed by the template's text).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import multiprocessing
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pebble

from business.marketplace.contract_pdf import render_contract
from business.marketplace.sandbox import Sandbox, TemplateRefused

logger = logging.getLogger(__name__)

_SANDBOX: Sandbox | None = None
_TEXT_SANDBOX: Sandbox | None = None


@dataclass(frozen=True)
class RenderLimits:
    """How many workers render, and what one render may take."""

    workers: int = 2
    #: Wall-clock seconds one check or render may take (its worker is killed after).
    timeout_s: float = 3.0
    #: MiB of address space a worker may grow by over what it used when it started.
    memory_mb: int = 256
    #: Renders a worker does before it is replaced (bounds its compiled-template cache).
    max_tasks: int = 1000
    #: Renders of one store that run at once, and that may wait besides.
    per_store: int = 1
    per_store_queue: int = 4
    #: Renders that may run or wait in all (every store).
    queue: int = 32
    #: Time-outs in a row after which a template is refused at once, and for how long.
    breaker_timeouts: int = 2
    breaker_s: float = 300.0
    #: Seconds a visitor turned away is asked to wait (``Retry-After``).
    retry_after_s: int = 5

    @classmethod
    def of(cls, settings: dict[str, Any]) -> RenderLimits:
        """The limits from the plug-in's ``render`` settings (defaults for missing keys)."""
        raw = dict(settings.get("render") or {})
        ints = ("workers", "memory_mb", "max_tasks", "per_store", "per_store_queue", "queue",
                "breaker_timeouts", "retry_after_s")
        floats = ("timeout_s", "breaker_s")
        return cls(**{name: int(raw[name]) for name in ints if name in raw},
                   **{name: float(raw[name]) for name in floats if name in raw})


class TemplateTimedOut(TemplateRefused):
    """A render ran past its time limit (its worker was replaced)."""


class RenderBusy(Exception):
    """Too many renders are running or waiting (for this store, or in all): try again in
    ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Store:
    """One store's renders: how many run or wait, and its template's time-outs."""

    slots: asyncio.Semaphore
    admitted: int = 0
    #: Template digest → (time-outs in a row, refused until).
    breaker: dict[str, tuple[int, float]] = field(default_factory=dict)


def _vm_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _start_worker(memory_mb: int) -> None:
    """Pool initializer: cap this worker's address space."""
    global _SANDBOX, _TEXT_SANDBOX
    _SANDBOX = Sandbox()
    _TEXT_SANDBOX = Sandbox(autoescape=False)
    limit = _vm_bytes() + memory_mb * 1024 * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def _render(source: str, data: dict[str, Any]) -> str:
    assert _SANDBOX is not None
    return _SANDBOX.render(source, data)


def _contract(source: str, data: dict[str, Any]) -> bytes:
    assert _TEXT_SANDBOX is not None
    return render_contract(_TEXT_SANDBOX, source, data)


def _check_contract(source: str, data: dict[str, Any]) -> None:
    assert _TEXT_SANDBOX is not None
    _TEXT_SANDBOX.check(source)
    render_contract(_TEXT_SANDBOX, source, data)


def _check(source: str, data: dict[str, Any]) -> None:
    assert _SANDBOX is not None
    _SANDBOX.check(source)
    _SANDBOX.render(source, data)


class RenderPool:
    """Worker processes that check and render seller templates (:class:`RenderLimits`).

    Started lazily by the first call; :meth:`close` stops the workers.
    """

    def __init__(self, limits: RenderLimits | None = None) -> None:
        self.limits = limits or RenderLimits()
        self._pool: pebble.ProcessPool | None = None
        self._stores: dict[str, _Store] = {}
        self._admitted = 0

    def _started(self) -> pebble.ProcessPool:
        if self._pool is None:
            self._pool = pebble.ProcessPool(
                max_workers=self.limits.workers, max_tasks=self.limits.max_tasks,
                initializer=_start_worker, initargs=(self.limits.memory_mb,),
                context=multiprocessing.get_context("forkserver"))
        return self._pool

    async def _run(self, function: Any, source: str, data: dict[str, Any]) -> Any:
        future = self._started().schedule(function, args=(source, data),
                                          timeout=self.limits.timeout_s)
        try:
            return await asyncio.wrap_future(future)
        except TemplateRefused:
            raise
        except concurrent.futures.TimeoutError:
            logger.warning("a storefront template ran past %s s; its worker was replaced",
                           self.limits.timeout_s)
            raise TemplateTimedOut(f"the template took more than {self.limits.timeout_s} s "
                                  "to render and was stopped: simplify its loops") from None
        except pebble.ProcessExpired as exc:
            logger.warning("a storefront template's worker died (%s)", exc)
            raise TemplateRefused("the template used more memory than a page may and was "
                                  "stopped: simplify it") from None
        except asyncio.CancelledError:
            future.cancel()  # pebble stops the worker running it
            raise

    async def render(self, source: str, data: dict[str, Any], *, key: str = "") -> str:
        """``source`` rendered with ``data`` in a worker; :class:`TemplateRefused` on any
        failure, a time-out, a worker's death or an open breaker. With ``key`` (the store)
        the render is admitted as the module says (:class:`RenderBusy` when full)."""
        if not key:
            return str(await self._run(_render, source, data))
        store = self._stores.get(key)
        if store is None:
            store = self._stores[key] = _Store(asyncio.Semaphore(self.limits.per_store))
        digest = hashlib.sha256(source.encode()).hexdigest()
        timeouts, until = store.breaker.get(digest, (0, 0.0))
        if until > time.monotonic():
            raise TemplateRefused("the template ran past its time limit repeatedly and is "
                                  "paused: simplify its loops and save it again")
        with self._admission(key, store):
            async with store.slots:
                try:
                    html = str(await self._run(_render, source, data))
                except TemplateTimedOut:
                    timeouts += 1
                    refused = (time.monotonic() + self.limits.breaker_s
                               if timeouts >= self.limits.breaker_timeouts else 0.0)
                    store.breaker = {digest: (timeouts, refused)}
                    raise
                store.breaker.pop(digest, None)
                return html

    @contextlib.contextmanager
    def _admission(self, key: str, store: _Store) -> Iterator[None]:
        limits = self.limits
        if self._admitted >= limits.queue:
            raise RenderBusy("every storefront render slot is busy: try again in a moment",
                             limits.retry_after_s)
        if store.admitted >= limits.per_store + limits.per_store_queue:
            raise RenderBusy(f"this store's pages are busy rendering ({key}): try again in a "
                             "moment", limits.retry_after_s)
        self._admitted += 1
        store.admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1
            store.admitted -= 1
            if store.admitted == 0 and not store.breaker:
                self._stores.pop(key, None)

    async def check(self, source: str, data: dict[str, Any]) -> None:
        """Compile ``source`` and try it on ``data`` in a worker (:class:`TemplateRefused`
        saying what to fix)."""
        await self._run(_check, source, data)

    async def contract(self, source: str, data: dict[str, Any]) -> bytes:
        """A licence contract's PDF: ``source`` rendered as text with ``data`` in a
        worker's text sandbox and laid out there (:mod:`.contract_pdf`);
        :class:`TemplateRefused` as :meth:`render`."""
        return bytes(await self._run(_contract, source, data))

    async def check_contract(self, source: str, data: dict[str, Any]) -> None:
        """Compile a contract template and make a PDF of ``data`` with it, in a worker."""
        await self._run(_check_contract, source, data)

    async def close(self) -> None:
        """Stop the workers (running renders are killed)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.stop()
            await asyncio.to_thread(pool.join, 5)
