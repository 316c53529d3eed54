"""One loopback server for all the fake sources, each under its own prefix."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from business.analytics.fakes.base import FakeSource


class FakeSources:
    """Serves fake sources on http://127.0.0.1:<port>/<source> (an async context manager);
    :meth:`base_url` is what a connector is built with, ``self["spotify"]`` the fake."""

    def __init__(self, fakes: Iterable[FakeSource], host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.fakes = {fake.source: fake for fake in fakes}
        self.host, self.port = host, port
        self._runner: web.AppRunner | None = None

    def __getitem__(self, source: str) -> FakeSource:
        return self.fakes[source]

    def base_url(self, source: str) -> str:
        if self._runner is None:
            raise RuntimeError("start the fake sources first (async with FakeSources(...))")
        return f"http://{self.host}:{self.port}/{source}"

    async def __aenter__(self) -> FakeSources:
        if self._runner is not None:
            raise RuntimeError("the fake sources are running already")
        root = web.Application()
        for name, fake in self.fakes.items():
            fake.prefix = f"/{name}"
            root.add_subapp(fake.prefix, fake.app())
        self._runner = web.AppRunner(root, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        for fake in self.fakes.values():
            fake.base_url = self.base_url(fake.source)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            for fake in self.fakes.values():
                fake.stop_holding()
            await self._runner.cleanup()
            self._runner = None
