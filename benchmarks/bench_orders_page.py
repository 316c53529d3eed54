"""A page of a seller's orders (``GET /api/v1/orders``): seeking on the seller's
``(account_id, created_at, order_id)`` index against reading every order and paging it
in Python (what the route did before), same SQLite file, same page, same run.

The seller has ``ORDERS`` orders (a busy producer's years of leases) beside another
seller's; each contender fetches the first page and one from the middle, 50 orders each.
``read_all_over_seek`` is the old way's time over the new one's.

Run by hand (``DAW_BENCH_SMOKE=1`` shortens it to a check that it runs)::

    python -m pytest benchmarks/bench_orders_page.py -s -p no:cacheprovider
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from benchmarks.conftest import SMOKE, record
from benchmarks.paging import race_pages
from business.marketplace.ledger import MIGRATIONS
from business.marketplace.models import Order
from business.marketplace.store import MarketStore
from database import Database, open_database
from dawserver.public_api.cursor import Cursors

ORDERS = 2_000 if SMOKE else 30_000
PAGE = 50
SCOPE = "/api/v1/orders"


def _key(order: Order) -> tuple[float, str]:
    return order.created_at, order.order_id


async def _fill(db: Database, store: MarketStore) -> None:
    await db.migrate(MIGRATIONS)
    async with db.transaction() as tx:
        for seller, count in (("seller_busy", ORDERS), ("seller_other", ORDERS // 10)):
            for n in range(count):
                at = 1_700_000_000.0 + n // 2  # two orders a second: ties by id
                await store.insert_order(tx, Order(
                    seller, f"order-{n:06d}", f"beat-{n % 40}", "mp3_lease", f"buyer-{n}",
                    2999, "usd", False, "paid" if n % 9 else "refunded", "acct_1",
                    f"cs_{seller}_{n}", f"pi_{seller}_{n}", "", at, at))


def test_a_page_of_orders_seeks_instead_of_reading_them_all(benchmark, tmp_path: Path
                                                            ) -> None:
    loop = asyncio.new_event_loop()
    cursors = Cursors(bytes(32))
    try:
        db_cm = open_database(f"sqlite://{tmp_path / 'orders.sqlite3'}")
        db = loop.run_until_complete(db_cm.__aenter__())
        store = MarketStore(db)
        loop.run_until_complete(_fill(db, store))

        async def read_all(cursor: str | None) -> list[str]:
            found = await store.orders_of("seller_busy")
            page, _ = cursors.page(SCOPE, found, _key, PAGE, cursor)
            return [o.order_id for o in page]

        async def seek(cursor: str | None) -> list[str]:
            after = cursors.after(SCOPE, cursor, ((int, float), str))
            found = await store.orders_page("seller_busy", limit=PAGE + 1, after=after)
            page, _ = cursors.cut(SCOPE, found, _key, PAGE)
            return [o.order_id for o in page]

        middle = loop.run_until_complete(store.orders_page(
            "seller_busy", limit=ORDERS // 2))[-1]
        middle_cursor = cursors.encode(SCOPE, _key(middle))
        race = race_pages(loop, read_all, seek, middle_cursor, PAGE)
        loop.run_until_complete(db_cm.__aexit__(None, None, None))
    finally:
        loop.close()
    record(benchmark, orders=ORDERS, seek_ms_per_page=round(race.seek_ms, 2),
           read_all_ms_per_page=round(race.read_all_ms, 1),
           read_all_over_seek=round(race.read_all_over_seek, 1))
    print(f"\na page of {PAGE} from {ORDERS} orders: seek {race.seek_ms:.2f} ms, "
          f"read all {race.read_all_ms:.1f} ms ({race.read_all_over_seek:.1f}x)")
    assert race.read_all_over_seek > 0
