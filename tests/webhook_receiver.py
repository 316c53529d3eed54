"""A real webhook receiver on loopback (aiohttp) that keeps what it gets and answers as told."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from loopback import free_port


@dataclass
class Received:
    """One request the receiver got: when, its headers and raw body."""

    at: float
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Serves ``POST /hook``; each request takes the next planned answer (default 200).

    A plan entry is ``(status, headers)`` or ``"hang"`` (never answers until the
    receiver stops).
    """

    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    plan: list[Any] = field(default_factory=list)
    always: Any = (200, {})
    _runner: web.AppRunner | None = None
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(time.time(), dict(request.headers), await request.read()))
        step = self.plan.pop(0) if self.plan else self.always
        if step == "hang":
            await self._stop.wait()
            return web.Response(status=200)
        status, headers = step
        return web.Response(status=status, headers=headers, text=f"answer {status}")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        """The first ``count`` requests, once they have arrived."""
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                await asyncio.sleep(0.02)
        return self.received[:count]
