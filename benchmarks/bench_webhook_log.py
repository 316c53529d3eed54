"""A page of a webhook's delivery log: seeking on the log's index against reading the
whole log and paging it in Python (what ``GET /api/v1/webhooks/{id}/deliveries`` did
before), same SQLite file, same page, same run.

The log holds a busy endpoint's month (``DELIVERIES`` rows with 1 KB bodies) beside
another endpoint's; each contender fetches the first page and one from the middle, 50
deliveries each. ``read_all_over_seek`` is the old way's time over the new one's.

Run by hand (``DAW_BENCH_SMOKE=1`` shortens it to a check that it runs)::

    python -m pytest benchmarks/bench_webhook_log.py -s -p no:cacheprovider
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from benchmarks.conftest import SMOKE, record
from benchmarks.paging import race_pages
from database import Database, open_database
from dawserver.public_api.cursor import Cursors
from dawserver.public_api.idempotency import MIGRATIONS
from dawserver.public_api.webhooks.store import Delivery, WebhookStore

DELIVERIES = 2_000 if SMOKE else 30_000
PAGE = 50
SCOPE = "webhook-deliveries:hook_busy"


def _key(found: Delivery) -> tuple[float, str]:
    return -found.created_at, found.id


def test_a_page_of_the_log_seeks_instead_of_reading_it_all(benchmark, tmp_path: Path
                                                           ) -> None:
    loop = asyncio.new_event_loop()
    cursors = Cursors(bytes(32))
    try:
        db_cm = open_database(f"sqlite://{tmp_path / 'hooks.sqlite3'}")
        db = loop.run_until_complete(db_cm.__aenter__())
        loop.run_until_complete(_fill(db))
        store = WebhookStore(db, None)  # type: ignore[arg-type]  (reads the log only)

        async def read_all(cursor: str | None) -> list[str]:
            found = await store.deliveries("acct_a", "hook_busy")
            page, _ = cursors.page(SCOPE, found, _key, PAGE, cursor)
            return [d.id for d in page]

        async def seek(cursor: str | None) -> list[str]:
            after = cursors.after(SCOPE, cursor, ((int, float), str))
            found = await store.deliveries(
                "acct_a", "hook_busy", limit=PAGE + 1,
                after=None if after is None else (-after[0], after[1]))
            page, _ = cursors.cut(SCOPE, found, _key, PAGE)
            return [d.id for d in page]

        middle = loop.run_until_complete(store.deliveries(
            "acct_a", "hook_busy", limit=DELIVERIES // 2))[-1]
        middle_cursor = cursors.encode(SCOPE, _key(middle))
        race = race_pages(loop, read_all, seek, middle_cursor, PAGE)
        loop.run_until_complete(db_cm.__aexit__(None, None, None))
    finally:
        loop.close()
    record(benchmark, deliveries=DELIVERIES, seek_ms_per_page=round(race.seek_ms, 2),
           read_all_ms_per_page=round(race.read_all_ms, 1),
           read_all_over_seek=round(race.read_all_over_seek, 1))
    print(f"\na page of {PAGE} from {DELIVERIES} deliveries: seek {race.seek_ms:.2f} ms, "
          f"read all {race.read_all_ms:.1f} ms ({race.read_all_over_seek:.1f}x)")
    assert race.read_all_over_seek > 0


async def _fill(db: Database) -> None:
    """The busy hook's log and a quieter neighbour's, in one transaction."""
    await db.migrate(MIGRATIONS)
    body, start = "x" * 1024, time.time() - 30 * 86400
    async with db.transaction() as tx:
        for n in range(DELIVERIES + DELIVERIES // 10):
            hook = "hook_busy" if n % 11 else "hook_quiet"
            await tx.execute(
                "INSERT INTO webhook_deliveries (account_id, id, subscription_id, event_id, "
                "event_type, body, state, attempts, created_at, replays) VALUES (?, ?, ?, ?, "
                "'marketplace.sale', ?, 'delivered', 1, ?, 0)", "acct_a", f"msg_{n:08d}",
                hook, f"evt_{n}", body, start + n // 3 * 86.4)
