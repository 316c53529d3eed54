"""``on_response_prepare``: meter every answer to an API key (its 429s included)."""

from __future__ import annotations

import time

from aiohttp import web

from ...identity import KEY_USE
from ...keys import PLUGIN_CONTEXT_KEY
from ..state import api_state


async def meter_response(request: web.Request, response: web.StreamResponse) -> None:
    """Count the answer of a request made with an API key in the process's usage meter."""
    use = request.get(KEY_USE)
    context = request.app.get(PLUGIN_CONTEXT_KEY)
    if use is None or context is None:
        return
    latency_ms = (time.perf_counter() - use.started) * 1000.0
    api_state(context).usage.record(use.account_id, use.key_id, response.status, latency_ms)
