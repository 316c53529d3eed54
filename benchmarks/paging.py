"""The paging benchmarks' shared race: one page seeked on an index against the same page
cut from every row read into Python (what a list route did before it seeked).

(``bench_orders_page`` and ``bench_webhook_log`` race a marketplace and a webhook list;
the timing, the check that both ways agree and the figures are one.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from benchmarks.conftest import median_ratio, rounds_of

#: A way to fetch one page: the cursor in, the ids on the page out.
PageWay = Callable[[str | None], Awaitable[list[str]]]


@dataclass(frozen=True)
class PageRace:
    """What one race measured, per page fetched."""

    seek_ms: float
    read_all_ms: float
    read_all_over_seek: float


def race_pages(loop: asyncio.AbstractEventLoop, read_all: PageWay, seek: PageWay,
               middle_cursor: str, page: int) -> PageRace:
    """Time both ways on the first page and the one at ``middle_cursor``, after checking
    that they give the same ``page`` ids for each."""
    for cursor in (None, middle_cursor):
        old = loop.run_until_complete(read_all(cursor))
        assert old == loop.run_until_complete(seek(cursor)) and len(old) == page

    def both_pages(way: PageWay) -> Callable[[], object]:
        return lambda: [loop.run_until_complete(way(c)) for c in (None, middle_cursor)]

    times = rounds_of({"read_all": both_pages(read_all), "seek": both_pages(seek)})
    return PageRace(seek_ms=min(times["seek"]) / 2 * 1000,
                    read_all_ms=min(times["read_all"]) / 2 * 1000,
                    read_all_over_seek=median_ratio(times, "read_all", "seek"))
