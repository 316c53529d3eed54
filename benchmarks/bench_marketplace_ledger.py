"""Marketplace ledger: postings per second on SQLite and PostgreSQL.

Each round posts the same batch of sales (four entries each, two of them on balances
that may not go negative) twice: through :meth:`Ledger.post` (idempotency key, entries,
the conditional balance UPDATEs, one transaction per posting) and, as the same-run
baseline, as plain INSERTs of the same posting and entry rows in one transaction per
posting without the balance check. Both run as ``CONCURRENCY`` concurrent writers on one
seller's books, the case the balance check serialises. The figure is the median over
rounds of ours / baseline throughput.

Run: ``python -m pytest benchmarks/bench_marketplace_ledger.py --benchmark-enable -s``.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import pytest

from benchmarks.conftest import SMOKE, record
from business.marketplace import bookings
from business.marketplace.ledger import MIGRATIONS, Ledger
from database import open_database

POSTINGS = 60 if SMOKE else 600
ROUNDS = 1 if SMOKE else 5
CONCURRENCY = 10
_serial = itertools.count()


async def _in_parallel(make: Callable[[int], Awaitable[None]], count: int) -> None:
    queue = iter(range(count))

    async def writer() -> None:
        for n in queue:
            await make(n)

    await asyncio.gather(*(writer() for _ in range(CONCURRENCY)))


async def _measure(url: str) -> dict[str, float]:
    async with open_database(url) as db:
        await db.migrate(MIGRATIONS)
        ledger = Ledger(db)

        async def ours(n: int) -> None:
            await ledger.post("ada", bookings.sale(
                f"b{next(_serial)}", "usd", gross=1_000 + n % 7, stripe_fee=59,
                platform_fee=100, stripe_txn=f"txn_{n}"))

        async def plain(n: int) -> None:
            posting = bookings.sale(f"p{next(_serial)}", "usd", gross=1_000 + n % 7,
                                    stripe_fee=59, platform_fee=100, stripe_txn=f"txn_{n}")
            posting_id = uuid.uuid4().hex
            async with db.transaction() as tx:
                await tx.execute(
                    "INSERT INTO mkt_ledger_postings (account_id, posting_id, "
                    "idempotency_key, kind, stripe_txn, memo, fingerprint, posted_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", "plain", posting_id, posting.key,
                    posting.kind, posting.stripe_txn, "", posting.fingerprint, time.time())
                await tx.executemany(
                    "INSERT INTO mkt_ledger_entries (account_id, posting_id, seq, "
                    "ledger_account, currency, amount) VALUES (?, ?, ?, ?, ?, ?)",
                    [("plain", posting_id, seq, e.account, e.currency, e.amount)
                     for seq, e in enumerate(posting.entries)])

        await _in_parallel(ours, 10)  # warm up both paths
        await _in_parallel(plain, 10)
        rates: dict[str, list[float]] = {"ours": [], "plain": []}
        for _ in range(ROUNDS):
            for name, fn in (("ours", ours), ("plain", plain)):
                start = time.perf_counter()
                await _in_parallel(fn, POSTINGS)
                rates[name].append(POSTINGS / (time.perf_counter() - start))
        assert await ledger.audit("ada") == []
        return {"postings_per_s": statistics.median(rates["ours"]),
                "plain_inserts_per_s": statistics.median(rates["plain"]),
                "ratio_to_plain": statistics.median(
                    o / p for o, p in zip(rates["ours"], rates["plain"], strict=True))}


async def _fresh_schema(server: str, name: str = "bench_ledger") -> str:
    import asyncpg

    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")
    finally:
        await conn.close()
    return f"{server}?options=-csearch_path%3D{name}"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_ledger_postings_per_second(benchmark, request, tmp_path, backend: str) -> None:  # noqa: ANN001
    if backend == "sqlite":
        url = f"sqlite://{tmp_path / 'ledger.sqlite3'}"
    else:
        url = asyncio.run(_fresh_schema(request.getfixturevalue("postgres_url")))
    figures = asyncio.run(_measure(url))
    record(benchmark, backend=backend, postings=POSTINGS, writers=CONCURRENCY, **figures)
