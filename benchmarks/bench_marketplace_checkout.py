"""Marketplace checkout to delivery: one purchase end to end, against Stripe's part alone.

A real server (the marketplace plug-in on SQLite, a real socket) sells leases paid
through the fake Stripe (the unmodified stripe-python client, signed webhooks). **Ours**,
per purchase: ``POST /api/marketplace/checkout`` (order, Checkout Session), the buyer
pays on the hosted page, the signed ``checkout.session.completed`` is delivered and
fulfilled (ledger posting, licence), the buyer polls the order until paid, reads the
library and downloads the file through its signed link. **Baseline**, the same run:
Stripe's part alone, what any integration pays: a Checkout Session made with the same
client, paid on the same fake and its signed event delivered to an endpoint that
answers 200 at once. One buyer, then ``BUYERS`` buyers concurrently; the rounds
alternate. The fake delivers events one at a time in order (one endpoint's queue), so
with many buyers our figure includes each payment's wait behind the others' fulfilment.
Reported: p50 and p99 seconds per purchase of each, purchases per second, and the ratio
of our p50 to the baseline's. To tell a slow purchase's cause, the same run also reports
what paused the one event loop (server, fake Stripe and buyers share it) during our
rounds: its longest stall past a 10 ms tick, the garbage collector's full (generation 2)
collections and their longest pause, and how many of our purchases slower than four
times the p50 overlapped a stall of 100 ms or more (``slow_purchases``,
``slow_in_a_stall``). After the rounds, with the server still up, it times a full
collection as the process stands (``full_gc_pause_s``, median of 3) and again after
``gc.freeze()`` has moved every object alive then out of the collector's reach
(``full_gc_pause_frozen_s``), with the objects tracked once warm and at the end: a
process frozen once warm would traverse only the difference.

Run: ``python -m pytest benchmarks/bench_marketplace_checkout.py --benchmark-enable -s``
(``DAW_BENCH_SMOKE=1``: a few purchases, to check it works).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from benchmarks.conftest import SMOKE, record
from business.marketplace.fakes.stripe import FakeStripe, FakeStripeServer
from business.marketplace.stripe_gateway import StripeGateway, StripeSettings, idempotency_key
from dawserver.plugin_api import Principal
from dawserver.plugins import install, load_plugins

BUYERS = 2 if SMOKE else 8
PER_BUYER = 1 if SMOKE else 5
ROUNDS = 1 if SMOKE else 3
SECRET = "whsec_bench"
M = "/api/marketplace"


def _principal(request: web.Request) -> Principal | None:
    account = request.headers.get("X-Account")
    return Principal(account, "owner", account) if account else None


def _who(account: str) -> dict[str, str]:
    return {"X-Account": account}


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


class Stalls:
    """What paused the event loop while :meth:`watch` ran: ticks of 10 ms that came 100 ms
    or more late (their intervals), and the full garbage collections (their pauses)."""

    TICK_S = 0.01
    LATE_S = 0.1

    def __init__(self) -> None:
        self.stalls: list[tuple[float, float]] = []
        self.full_gc: list[float] = []
        self._gc_start = 0.0
        self.longest = 0.0

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_start = time.perf_counter()
        elif info["generation"] == 2:
            self.full_gc.append(time.perf_counter() - self._gc_start)

    async def _tick(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.TICK_S)
            late = time.perf_counter() - start - self.TICK_S
            self.longest = max(self.longest, late)
            if late >= self.LATE_S:
                self.stalls.append((start, start + self.TICK_S + late))

    async def watch(self, work: Any) -> Any:
        """Run ``work`` while watching the loop and the collector."""
        gc.callbacks.append(self._on_gc)
        ticker = asyncio.ensure_future(self._tick())
        try:
            return await work
        finally:
            ticker.cancel()
            gc.callbacks.remove(self._on_gc)

    def overlaps(self, start: float, end: float) -> bool:
        return any(s < end and start < e for s, e in self.stalls)


def _full_gc_pauses() -> tuple[float, float, int]:
    """A full collection's pause now and after ``gc.freeze()`` (medians of 3), and the
    objects it tracked."""
    def pause() -> float:
        start = time.perf_counter()
        gc.collect()
        return time.perf_counter() - start

    tracked = len(gc.get_objects())
    now = statistics.median(pause() for _ in range(3))
    gc.freeze()
    try:
        frozen = statistics.median(pause() for _ in range(3))
    finally:
        gc.unfreeze()
    return now, frozen, tracked


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _ok(answer: aiohttp.ClientResponse, *statuses: int) -> Any:
    body = await answer.json()
    assert answer.status in statuses, (answer.status, body)
    return body


async def _purchase(http: aiohttp.ClientSession, fake: FakeStripe, buyer: str,
                    beat_id: str) -> None:
    """Ours: checkout, payment, fulfilment, library and the download."""
    async with http.post(f"{M}/checkout", headers=_who(buyer), json={
            "seller": "seller", "beat_id": beat_id, "tier": "mp3_lease"}) as answer:
        started = await _ok(answer, 201)
    fake.complete_checkout(started["checkout_url"].rsplit("/", 1)[1], "pm_card_visa")
    order_id = started["order"]["order_id"]
    async with asyncio.timeout(30):
        while True:
            async with http.get(f"{M}/orders/{order_id}", headers=_who(buyer)) as answer:
                if (await _ok(answer, 200))["status"] == "paid":
                    break
            await asyncio.sleep(0.01)
    async with http.get(f"{M}/library", headers=_who(buyer)) as answer:
        library = await _ok(answer, 200)
    licence = next(lic for lic in library if lic["order_id"] == order_id)
    async with http.get(licence["links"][0]["url"]) as answer:
        assert answer.status == 200 and await answer.read()


async def _stripe_only(gateway: StripeGateway, fake: FakeStripe, stripe_account: str,
                       n: int, received: dict[str, asyncio.Event]) -> None:
    """The baseline: Stripe's part of a purchase, its event delivered to a bare endpoint."""
    session = await gateway.create_checkout_session(
        idempotency_key=idempotency_key("bench", str(n), str(time.time_ns())),
        mode="payment", line_items=[{"quantity": 1, "price_data": {
            "currency": "usd", "unit_amount": 2999, "product_data": {"name": "Beat"}}}],
        success_url="https://example.com/ok", metadata={"bench": str(n)},
        account=stripe_account)
    got = received.setdefault(session.id, asyncio.Event())
    fake.complete_checkout(session.id, "pm_card_visa")
    async with asyncio.timeout(30):
        await got.wait()


async def _measure(tmp: Path, buyers: int) -> dict[str, Any]:
    (tmp / "beat.mp3").write_bytes(b"ID3" + bytes(64 * 1024))
    stalls = Stalls()
    fake = FakeStripe(webhook_secret=SECRET)
    received: dict[str, asyncio.Event] = {}

    async def bare(request: web.Request) -> web.Response:
        event = await request.json()
        session_id = event["data"]["object"].get("id", "")
        received.setdefault(session_id, asyncio.Event()).set()
        return web.json_response({"received": True})

    bare_app = web.Application()
    bare_app.router.add_post("/hook", bare)
    async with FakeStripeServer(fake) as stripe_server:
        config = {"data_dir": tmp / "data", "database_url": f"sqlite://{tmp / 'b.sqlite3'}",
                  "plugins": {"marketplace": {
                      "stripe": {"api_key": fake.api_key, "api_base": stripe_server.url,
                                 "webhook_secret": SECRET, "max_network_retries": 0},
                      "asset_file": lambda account, asset: str(tmp / "beat.mp3")}}}
        app = web.Application()
        install(app, config, manager=load_plugins(config), identify=_principal)
        runner, base = await _serve(app)
        bare_runner, bare_base = await _serve(bare_app)
        try:
            async with aiohttp.ClientSession(base) as http, StripeGateway(StripeSettings(
                    fake.api_key, api_base=stripe_server.url)) as gateway:
                async with http.post(f"{M}/seller/stripe", headers=_who("seller"), json={
                        "return_url": "https://example.com/b",
                        "refresh_url": "https://example.com/r"}) as answer:
                    stripe_account = (await _ok(answer, 200))["stripe_account"]
                fake.complete_onboarding(stripe_account)
                beats = []
                for n in range(buyers * PER_BUYER * (ROUNDS + 1)):
                    async with http.post(f"{M}/beats", headers=_who("seller"), json={
                            "title": f"Beat {n}", "bpm": 140, "key": "A minor",
                            "currency": "usd", "files": [
                                {"kind": "tagged_mp3", "asset_id": f"p{n}"},
                                {"kind": "mp3", "asset_id": f"m{n}"},
                                {"kind": "wav", "asset_id": f"w{n}"},
                                {"kind": "stems", "asset_id": f"s{n}"}]}) as answer:
                        beats.append((await _ok(answer, 201))["beat_id"])
                spare = iter(beats)
                times: dict[str, list[float]] = {"ours": [], "stripe": []}
                rates: dict[str, list[float]] = {"ours": [], "stripe": []}
                spans: list[tuple[float, float]] = []

                async def timed(kind: str, work: Any) -> None:
                    start = time.perf_counter()
                    await work
                    times[kind].append(time.perf_counter() - start)
                    if kind == "ours":
                        spans.append((start, time.perf_counter()))

                async def ours_round(record_it: bool) -> None:
                    fake.webhooks.url = f"{base}{M}/stripe/webhook"
                    jobs = [(f"buyer{b}", next(spare)) for b in range(buyers)
                            for _ in range(PER_BUYER)]

                    async def buyer(name: str) -> None:
                        for who, beat in jobs:
                            if who == name:
                                await timed("ours", _purchase(http, fake, who, beat))

                    start = time.perf_counter()
                    await asyncio.gather(*(buyer(f"buyer{b}") for b in range(buyers)))
                    if record_it:
                        rates["ours"].append(len(jobs) / (time.perf_counter() - start))
                    await fake.webhooks.settled()

                async def stripe_round(record_it: bool) -> None:
                    fake.webhooks.url = f"{bare_base}/hook"

                    async def buyer(b: int) -> None:
                        for k in range(PER_BUYER):
                            await timed("stripe", _stripe_only(
                                gateway, fake, stripe_account, b * PER_BUYER + k, received))

                    start = time.perf_counter()
                    await asyncio.gather(*(buyer(b) for b in range(buyers)))
                    if record_it:
                        rates["stripe"].append(buyers * PER_BUYER
                                               / (time.perf_counter() - start))
                    await fake.webhooks.settled()

                await ours_round(False)  # warm up both
                await stripe_round(False)
                started_with = len(gc.get_objects())  # alive once warm: start-up's
                times = {"ours": [], "stripe": []}
                spans.clear()
                for _ in range(ROUNDS):
                    await stalls.watch(ours_round(True))
                    await stripe_round(True)
                pause, pause_frozen, tracked = _full_gc_pauses()
        finally:
            await runner.cleanup()
            await bare_runner.cleanup()
    ours, stripe = times["ours"], times["stripe"]
    slow = [(s, e) for s, e in spans if e - s > 4 * statistics.median(ours)]
    return {"purchases": len(ours), "buyers": buyers,
            "ours_p50_s": statistics.median(ours), "ours_p99_s": _quantile(ours, 0.99),
            "stripe_p50_s": statistics.median(stripe),
            "stripe_p99_s": _quantile(stripe, 0.99),
            "ours_per_s": statistics.median(rates["ours"]),
            "stripe_per_s": statistics.median(rates["stripe"]),
            "ratio_p50_to_stripe": statistics.median(ours) / statistics.median(stripe),
            "loop_stall_max_s": stalls.longest, "loop_stalls": len(stalls.stalls),
            "full_gc": len(stalls.full_gc), "full_gc_max_s": max(stalls.full_gc, default=0.0),
            "slow_purchases": len(slow),
            "slow_in_a_stall": sum(stalls.overlaps(s, e) for s, e in slow),
            "tracked_after_warm_up": started_with, "tracked_objects": tracked,
            "full_gc_pause_s": pause,
            "full_gc_pause_frozen_s": pause_frozen}


@pytest.mark.parametrize("buyers", [1, BUYERS])
def test_checkout_to_delivery(benchmark, tmp_path: Path, buyers: int) -> None:  # noqa: ANN001
    figures = asyncio.run(_measure(tmp_path, buyers))
    assert figures["purchases"] == buyers * PER_BUYER * ROUNDS
    record(benchmark, **figures)
