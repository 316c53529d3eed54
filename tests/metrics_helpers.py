"""Reading a running server's ``/metrics`` in tests."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Every sample of a text exposition, keyed by name and labels."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def scrape(http: aiohttp.ClientSession, base_url: str) -> Samples:
    """The samples ``GET /metrics`` serves now."""
    async with http.get(f"{base_url}/metrics") as response:
        assert response.status == 200, await response.text()
        return parse(await response.text())


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when it is not there yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
