"""``GET /api/v1/usage``: each API key of the account, per day: requests, errors, p50/p99.

What the developer dashboard (``/developer``) draws. The process's own unflushed counts
are flushed first, so a request the caller just made is in the answer (other server
processes' counts arrive within their flush period).
"""

from __future__ import annotations

import time

from pydantic import Field

from ...declarations import Model, Query
from ...keys import ACCOUNTS
from ...permissions import ACCOUNT_ADMIN
from ...plugin_api import Request, Route
from ..resources import V1
from ..state import api_state
from .histogram import BOUNDS_MS
from .store import Tally, day_of

USAGE = f"{V1}/usage"
DAY_S = 86400


class UsageQuery(Query):
    """Which days: the last ``days`` UTC days, today included."""

    days: int = Field(30, ge=1, le=90, description="how many days back, today included")


class DayUsage(Model):
    """One key's usage on one UTC day."""

    day: str = Field(description="YYYY-MM-DD, UTC")
    requests: int
    errors: int = Field(description="answers with a 4xx or 5xx status (429s included)")
    rejected: int = Field(description="requests refused by the rate limit (429)")
    mean_ms: float | None
    p50_ms: float | None = Field(description="median latency, from the histogram")
    p99_ms: float | None


class KeyUsage(Model):
    """One API key and its days with requests, oldest first."""

    id: str
    name: str
    prefix: str
    test: bool
    revoked: bool
    days: list[DayUsage]
    total: DayUsage = Field(description="the whole period (its `day` is the first day)")


#: A report flushes the process's counts first, unless a flush began this recently.
REPORT_FLUSH_AGE_S = 1.0


class UsageReport(Model):
    """The account's keys' usage over the last ``days`` days."""

    account_id: str
    since: str
    until: str
    latency_buckets_ms: list[float] = Field(description="the histogram's upper bounds")
    keys: list[KeyUsage]


def _day(day: str, tally: Tally) -> DayUsage:
    mean = tally.latency_ms_sum / tally.requests if tally.requests else None
    return DayUsage(day=day, requests=tally.requests, errors=tally.errors,
                    rejected=tally.rejected, mean_ms=mean, p50_ms=tally.quantile(0.5),
                    p99_ms=tally.quantile(0.99))


async def usage(request: Request) -> UsageReport:
    """Your account's API keys' usage per UTC day: requests, errors, rate-limit refusals
    and latency p50/p99 (administrators of the account)."""
    state = api_state(request.context)
    await state.usage.flush(max_age_s=REPORT_FLUSH_AGE_S)
    account = request.account_id
    now = time.time()
    since, until = day_of(now - (request.query.days - 1) * DAY_S), day_of(now)
    keys = await request.app[ACCOUNTS].store.keys_of(account)
    found = await state.usage.store.days(account, [k.key_id for k in keys], since)
    report = []
    for key in keys:
        days = sorted((day, tally) for (key_id, day), tally in found.items()
                      if key_id == key.key_id)
        total = Tally()
        for _, tally in days:
            total.merge(tally)
        report.append(KeyUsage(id=key.key_id, name=key.name, prefix=key.prefix, test=key.test,
                               revoked=key.revoked_at is not None,
                               days=[_day(d, t) for d, t in days], total=_day(since, total)))
    return UsageReport(account_id=account, since=since, until=until,
                       latency_buckets_ms=list(BOUNDS_MS), keys=report)


ROUTES = [Route(method="GET", path=USAGE, handler=usage, permission=ACCOUNT_ADMIN,
                response=UsageReport, query=UsageQuery, problem=True, name="v1_usage")]
