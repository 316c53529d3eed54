"""The public API through the full stack, against a bare aiohttp handler and GraphQL.

Requests per second of ``GET /api/v1/projects/{id}`` through everything a real call
passes (API key lookup, rate limit, permission and role check, query validation, the
store read, serialisation, ETag) against a bare aiohttp handler that answers the same
bytes with the same headers, served by the same process to the same client in the same
run: ``overhead`` is bare requests/s over full-stack requests/s (the issue's target:
under 2). Then GraphQL against REST for the same data (the project's id, name,
created_at and role): ``graphql_vs_rest`` is REST requests/s over GraphQL requests/s.

Client and servers share one event loop, so the figures are requests per second of
one core doing both sides; the ratios are what counts. The keys are paid-plan keys
(1,000 requests/s each) taken in turn so no request is refused.

Run by hand (``DAW_BENCH_SMOKE=1`` shortens it to a check that it runs)::

    python -m pytest benchmarks/bench_public_api.py -s -p no:cacheprovider
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from accounts.service import Actor
from benchmarks.conftest import SMOKE, record
from dawserver.app import create_app
from dawserver.config import ServerConfig
from dawserver.keys import ACCOUNTS, STORE
from dawserver.projects import import_session
from dsp_core.session import Session
from tests.loopback import free_port

REQUESTS = 60 if SMOKE else 3000
ROUNDS = 1 if SMOKE else 5
CONCURRENCY = 8
KEYS = 20
SCOPES = ["account.read", "project.read"]
QUERY = "query($id: ID!) { project(id: $id) { id name createdAt role } }"


async def _rate(call: Callable[[], Awaitable[int]], requests: int) -> float:
    """Requests per second of ``requests`` calls, ``CONCURRENCY`` in flight."""
    left = iter(range(requests))

    async def worker() -> None:
        for _ in left:
            status = await call()
            assert status == 200, status

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return requests / (time.perf_counter() - start)


@pytest.mark.asyncio
@pytest.mark.timeout(600)
async def test_full_stack_against_a_bare_handler_and_graphql(benchmark, tmp_path: Path
                                                             ) -> None:
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data",
                          password_hashing=(1, 1024, 1))
    app = create_app(config)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", config.port).start()
    bare_runner = None
    try:
        service = app[ACCOUNTS]
        person = await service.create_person("bench@example.org", "correct horse battery",
                                             "Bench", plan="paid")
        keys = [(await service.create_key(Actor(person.account_id), person.account_id,
                                          f"k{i}", SCOPES))[0] for i in range(KEYS)]
        info = await import_session(app[STORE], Session(name="Bench"), name="Bench")
        await service.store.own_project(person.account_id, info.project_id)
        base = config.base_url
        rest_url = f"{base}/api/v1/projects/{info.project_id}"
        turn = itertools.cycle(keys)

        async with aiohttp.ClientSession() as http:
            async with http.get(rest_url, headers={"Authorization": f"Bearer {keys[0]}"}
                                ) as answer:
                body, headers = await answer.read(), answer.headers
                assert answer.status == 200
            same = {name: headers[name] for name in ("ETag", "Cache-Control", "Vary")}

            async def bare(request: web.Request) -> web.Response:
                return web.Response(body=body, headers=same, content_type="application/json")

            bare_app = web.Application()
            bare_app.router.add_get("/api/v1/projects/{project_id}", bare)
            bare_runner = web.AppRunner(bare_app, handle_signals=False, access_log=None)
            await bare_runner.setup()
            bare_port = free_port()
            await web.TCPSite(bare_runner, "127.0.0.1", bare_port).start()
            bare_url = f"http://127.0.0.1:{bare_port}/api/v1/projects/{info.project_id}"

            async def get(url: str) -> int:
                async with http.get(url, headers={"Authorization": f"Bearer {next(turn)}"}
                                    ) as answer:
                    await answer.read()
                    return answer.status

            async def graphql() -> int:
                async with http.post(f"{base}/api/graphql",
                                     json={"query": QUERY, "variables": {"id": info.project_id}},
                                     headers={"Authorization": f"Bearer {next(turn)}"}
                                     ) as answer:
                    data = await answer.json()
                    assert data["data"]["project"]["id"] == info.project_id, data
                    return answer.status

            contenders = {"bare": lambda: get(bare_url), "rest": lambda: get(rest_url),
                          "graphql": graphql}
            for call in contenders.values():  # warm-up
                await _rate(call, CONCURRENCY * 2)
            rates: dict[str, list[float]] = {name: [] for name in contenders}
            for _ in range(ROUNDS):
                for name, call in contenders.items():
                    rates[name].append(await _rate(call, REQUESTS))
    finally:
        if bare_runner is not None:
            await bare_runner.cleanup()
        await runner.cleanup()

    overhead = statistics.median(b / r for b, r in zip(rates["bare"], rates["rest"],
                                                       strict=True))
    graphql_vs_rest = statistics.median(r / g for r, g in zip(rates["rest"], rates["graphql"],
                                                              strict=True))
    record(benchmark, bare_rps=statistics.median(rates["bare"]),
           rest_rps=statistics.median(rates["rest"]),
           graphql_rps=statistics.median(rates["graphql"]), overhead=overhead,
           graphql_vs_rest=graphql_vs_rest)
    assert overhead > 0 and graphql_vs_rest > 0
