"""Storefront templates (and licence contracts, :meth:`RenderPool.contract`) checked and
rendered in worker processes, never on the event loop.

A seller's template runs in :class:`~business.marketplace.sandbox.Sandbox` inside a worker
of a pebble process pool: each worker caps its own address space (``RLIMIT_AS``, the
memory allowance above what it used at start) and each render has a wall-clock limit. A
render past its limit has its worker killed (pebble starts a fresh one) and answers
:class:`TemplateRefused` saying so; a worker that dies (out of memory) answers the same.
The event loop only awaits the result, so one pathological template stalls nobody else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
import resource
from dataclasses import dataclass
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

    @classmethod
    def of(cls, settings: dict[str, Any]) -> RenderLimits:
        """The limits from the plug-in's ``render`` settings (defaults for missing keys)."""
        raw = dict(settings.get("render") or {})
        return cls(workers=int(raw.get("workers", cls.workers)),
                   timeout_s=float(raw.get("timeout_s", cls.timeout_s)),
                   memory_mb=int(raw.get("memory_mb", cls.memory_mb)),
                   max_tasks=int(raw.get("max_tasks", cls.max_tasks)))


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
            raise TemplateRefused(f"the template took more than {self.limits.timeout_s} s "
                                  "to render and was stopped: simplify its loops") from None
        except pebble.ProcessExpired as exc:
            logger.warning("a storefront template's worker died (%s)", exc)
            raise TemplateRefused("the template used more memory than a page may and was "
                                  "stopped: simplify it") from None
        except asyncio.CancelledError:
            future.cancel()  # pebble stops the worker running it
            raise

    async def render(self, source: str, data: dict[str, Any]) -> str:
        """``source`` rendered with ``data`` in a worker; :class:`TemplateRefused` on any
        failure, a time-out or a worker's death."""
        return str(await self._run(_render, source, data))

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
