"""Storefront page latency under 50 concurrent shoppers, against the JSON catalogue.

A real server (the marketplace plug-in on SQLite, a real socket) holds one store of
``BEATS`` beats (5 tiers each). ``SHOPPERS`` aiohttp clients each load pages one after
another: the store page ``/store/{handle}`` (first page and a filtered one, in turn:
query, the search form's facets, the template render, the layout) and, as the same-run
baseline, the JSON catalogue route of the same seller and filters
(``/api/marketplace/catalogue``: the same query and rows, no HTML). The two alternate
round by round. Reported per kind: p50 and p99 latency, pages per second, and the ratio
of the store page's p50 to the catalogue's.

Where Debian Chromium is installed, Playwright also opens the store page once in a
fresh context: first contentful paint (``performance`` paint timing) and the page's
size (HTML bytes, and every resource's transfer size).

Run: ``python -m pytest benchmarks/bench_storefront.py --benchmark-enable -s``
(``DAW_BENCH_SMOKE=1``: a small store and few requests, to check it works).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from benchmarks.conftest import SMOKE, record
from business.marketplace.services import services
from dawserver.plugin_api import Principal
from dawserver.plugins import PLUGIN_CONTEXT_KEY, install, load_plugins

BEATS = 40 if SMOKE else 500
SHOPPERS = 5 if SMOKE else 50
PER_SHOPPER = 2 if SMOKE else 20
ROUNDS = 1 if SMOKE else 3
CHROMIUM = Path("/usr/bin/chromium")
GENRES, MOODS = ("trap", "drill", "pop", "rnb", "lofi"), ("dark", "happy", "chill")
KEYS = ("A minor", "C major", "F# minor", "Eb major")


class Preview:
    """The platform's asset store, for the bench: every asset is one small file."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def file(self, account_id: str, asset_id: str) -> str:
        """The marketplace's ``asset_file`` resolver (a setting)."""
        return self.path


async def _seed(app: web.Application) -> str:
    module = services(app[PLUGIN_CONTEXT_KEY])
    for n in range(BEATS):
        await module.catalogue.create("seller", {
            "title": f"Beat {n:04d}", "bpm": 70 + n % 90, "key": KEYS[n % len(KEYS)],
            "genre": GENRES[n % len(GENRES)], "mood": MOODS[n % len(MOODS)],
            "tags": ["808", f"tag{n % 13}"], "currency": "usd",
            "files": [{"kind": k, "asset_id": f"{k}-{n}"}
                      for k in ("tagged_mp3", "mp3", "wav", "stems")]})
    await module.storefronts.save("seller", {"handle": "benchstore", "name": "Bench Store",
                                             "bio": "500 beats", "theme": {}})
    return "seller"


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _shoppers(base: str, paths: list[str]) -> tuple[list[float], float]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=SHOPPERS)
    async with aiohttp.ClientSession(base, connector=connector) as session:

        async def shopper(k: int) -> None:
            for n in range(PER_SHOPPER):
                start = time.perf_counter()
                async with session.get(paths[(k + n) % len(paths)]) as answer:
                    body = await answer.read()
                    assert answer.status == 200 and body, answer.status
                latencies.append(time.perf_counter() - start)

        start = time.perf_counter()
        await asyncio.gather(*(shopper(k) for k in range(SHOPPERS)))
        return latencies, time.perf_counter() - start


async def _paint(url: str) -> dict[str, float]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM),
                                           args=["--no-sandbox"])
        try:
            page = await (await browser.new_context()).new_page()
            await page.goto(url, wait_until="load")
            return await page.evaluate("""() => {
                const fcp = performance.getEntriesByName('first-contentful-paint')[0];
                const nav = performance.getEntriesByType('navigation')[0];
                const res = performance.getEntriesByType('resource');
                return {fcp_ms: fcp ? fcp.startTime : -1,
                        html_bytes: nav.decodedBodySize,
                        transfer_bytes: nav.transferSize +
                            res.reduce((s, r) => s + r.transferSize, 0),
                        dom_nodes: document.getElementsByTagName('*').length};
            }""")
        finally:
            await browser.close()


async def _measure(tmp: Path) -> dict[str, Any]:
    (tmp / "preview.mp3").write_bytes(b"ID3" + bytes(1024))
    config = {"data_dir": tmp / "data", "database_url": f"sqlite://{tmp / 'bench.sqlite3'}",
              "plugins": {"marketplace": {"asset_file": Preview(tmp / "preview.mp3").file}}}
    manager = load_plugins(config)
    app = web.Application()
    install(app, config, manager=manager, identify=lambda request: Principal("", "", ""))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        seller = await _seed(app)
        kinds = {
            "store": ["/store/benchstore", "/store/benchstore?genre=trap&bpm_min=90"],
            "catalogue": [f"/api/marketplace/catalogue?seller={seller}&limit=24",
                          f"/api/marketplace/catalogue?seller={seller}&limit=24&genre=trap"
                          "&bpm_min=90"],
        }
        for paths in kinds.values():  # warm up both
            await _shoppers(base, paths)
        found: dict[str, list[float]] = {k: [] for k in kinds}
        rates: dict[str, list[float]] = {k: [] for k in kinds}
        for n in range(ROUNDS):
            for kind in (list(kinds) if n % 2 == 0 else list(reversed(kinds))):
                latencies, took = await _shoppers(base, kinds[kind])
                found[kind] += latencies
                rates[kind].append(len(latencies) / took)
        figures: dict[str, Any] = {}
        for kind, latencies in found.items():
            figures[f"{kind}_p50_ms"] = statistics.median(latencies) * 1000
            figures[f"{kind}_p99_ms"] = _quantile(latencies, 0.99) * 1000
            figures[f"{kind}_per_s"] = statistics.median(rates[kind])
        figures["store_to_catalogue_p50"] = (figures["store_p50_ms"]
                                             / figures["catalogue_p50_ms"])
        if CHROMIUM.exists():
            figures.update(await _paint(f"{base}/store/benchstore"))
        return figures
    finally:
        await runner.cleanup()


@pytest.mark.timeout(600)
@pytest.mark.alone  # paints the store in Chromium and times shoppers
def test_store_page_under_concurrent_shoppers(benchmark, tmp_path: Path) -> None:  # noqa: ANN001
    figures = asyncio.run(_measure(tmp_path))
    assert figures["store_p50_ms"] > 0 and figures["catalogue_p50_ms"] > 0
    if "fcp_ms" in figures:
        assert figures["html_bytes"] > 0 and figures["dom_nodes"] > 24
    record(benchmark, beats=BEATS, shoppers=SHOPPERS,
           **{k: v for k, v in figures.items() if isinstance(v, int | float)})
