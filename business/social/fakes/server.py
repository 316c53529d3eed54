"""One loopback server for all the fake networks, each under its own prefix."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from business.social.fakes.base import FakeNetwork


class FakeNetworks:
    """Serves fake networks on http://127.0.0.1:<port>/<network> (an async context manager).

    ``FakeNetworks([FakeX(), FakeYouTube()])``; :meth:`base_url` is what a connector is
    built with; ``self["x"]`` is the fake, for switches and inspection.
    """

    def __init__(self, fakes: Iterable[FakeNetwork], host: str = "127.0.0.1",
                 port: int = 0) -> None:
        self.fakes = {fake.network: fake for fake in fakes}
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    def __getitem__(self, network: str) -> FakeNetwork:
        return self.fakes[network]

    def base_url(self, network: str) -> str:
        """Where the connector for ``network`` should send its calls."""
        if self._runner is None:
            raise RuntimeError("start the fake networks first (async with FakeNetworks(...))")
        return f"http://{self.host}:{self.port}/{network}"

    async def __aenter__(self) -> FakeNetworks:
        if self._runner is not None:
            raise RuntimeError("the fake networks are running already")
        root = web.Application()
        for network, fake in self.fakes.items():
            fake.prefix = f"/{network}"
            root.add_subapp(fake.prefix, fake.app())
        self._runner = web.AppRunner(root, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        for fake in self.fakes.values():
            fake.base_url = self.base_url(fake.network)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            for fake in self.fakes.values():
                fake.stop_holding()
            await self._runner.cleanup()
            self._runner = None
