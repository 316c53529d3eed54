"""Two real ``dawserver serve`` processes sharing one Redis (and one PostgreSQL) hold one
free-plan key to its 100 requests a second together.

The smoke version of ``benchmarks/bench_ratelimit.py``'s two-process run: 300 requests a
second for 3 s, dealt to both in turn.  It asserts only what holds at any pace of the
machine: no one-second interval holds more than 100 admissions, neither by Redis's own
stamps nor among requests sent and answered inside it; all the admissions together fit
the time they took; every request let through is one Redis counted; both processes let
some through; every refusal is a 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import pytest
from database_helpers import postgres_schema_url
from ratelimit_servers import WindowStamps, most_certainly_within, offer, served

pytestmark = [pytest.mark.timeout(300)]

PLAN = 100


@pytest.fixture
def database_url(postgres_url: str) -> str:
    """A fresh schema of the test PostgreSQL, for both servers."""
    return postgres_schema_url(postgres_url, "ratelimit_servers")


@pytest.mark.asyncio
@pytest.mark.alone  # two servers taking 300 requests a second fill both cores
async def test_two_server_processes_on_one_redis_admit_a_free_key_at_most_its_plan_a_second(
        tmp_path: Path, database_url: str, redis_url: str) -> None:
    async with served(tmp_path, database_url, redis_url, servers=2) as servers:
        with WindowStamps(redis_url, servers.key_id) as stamps:
            answers = await offer(servers.urls, servers.secret, per_s=300, seconds=3)
    assert len(answers) == 900
    assert {a.status for a in answers} <= {200, 429}, Counter(a.status for a in answers)
    accepted = [a for a in answers if a.accepted]
    # Redis stamped every request it let through, and only those
    assert len(stamps.stamps) == len(accepted) >= PLAN
    assert stamps.busiest_second() <= PLAN
    assert most_certainly_within(answers) <= PLAN
    took = max(a.done for a in answers) - min(a.sent for a in answers)
    assert len(accepted) <= PLAN * math.ceil(took)
    assert set(Counter(a.server for a in accepted)) == {0, 1}, "one process admitted none"
    refused = [a for a in answers if not a.accepted]
    assert all(a.retry_after is not None and int(a.retry_after) >= 1 for a in refused)
    assert all(a.rate_limit.startswith('"free";r=0;') for a in refused)
