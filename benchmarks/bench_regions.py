"""Data regions: what asking every region costs a sign-in's lookups and a request's session.

A lookup by an address or a secret is asked of every region at once
(:mod:`accounts.regions`). Three set-ups of SQLite files in a temporary directory, each
holding the same people: the plain :class:`~accounts.store.AccountStore` (the baseline),
:class:`~accounts.regions.RegionalAccountStore` with the default region alone, and with
three regions (the people spread over them). Measured, interleaved call by call so a load
change hits all three alike, p50/p99:

- sign-in lookups: what :meth:`~accounts.service.AccountService.log_in` reads before the
  password check, the failure counter of the address and the person by address;
- session lookup: :meth:`accounts.sessions.Sessions.find` of a live session (every
  request signed in by cookie does one).

Run by hand (``DAW_BENCH_SMOKE=1`` shortens it)::

    python -m pytest benchmarks/bench_regions.py -s -p no:cacheprovider
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from accounts.models import AccountKind
from accounts.regions import RegionalAccountStore, RegionalSessions, open_regions
from accounts.sessions import DatabaseSessions, Sessions
from accounts.store import AccountStore
from benchmarks.conftest import SMOKE, record
from database import open_database

PEOPLE = 30 if SMOKE else 300
LOOKUPS = 300 if SMOKE else 4_000


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


Setup = tuple[AccountStore | RegionalAccountStore, Sessions, list[str], list[str]]


@contextlib.asynccontextmanager
async def _setup(tmp_path: Path, regions: list[str] | None) -> AsyncIterator[Setup]:
    """A store, sessions, PEOPLE addresses and one session secret per person."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    main_url = f"sqlite://{tmp_path / 'main.db'}"
    urls = {name: f"sqlite://{tmp_path / f'{name}.db'}" for name in regions or ()}
    async with (open_database(main_url) as main,
                open_regions(main, main_url, urls, tmp_path) as databases):
        if regions is None:
            store: AccountStore | RegionalAccountStore = AccountStore(main)
            sessions = Sessions(DatabaseSessions(main))
            names = ["default"]
        else:
            store = RegionalAccountStore.over(databases)
            sessions = Sessions(RegionalSessions.over(databases))
            names = list(store.regions)
        await store.migrate()
        emails, secrets = [], []
        for i in range(PEOPLE):
            email = f"person{i}@example.org"
            if isinstance(store, RegionalAccountStore):
                person = await store.create_account(AccountKind.PERSON, email, email=email,
                                                    region=names[i % len(names)])
            else:
                person = await store.create_account(AccountKind.PERSON, email, email=email)
            secret, _ = await sessions.start(person.account_id)
            emails.append(email)
            secrets.append(secret)
        yield store, sessions, emails, secrets


async def _interleaved(calls: dict[str, Callable[[int], Awaitable[object]]]
                       ) -> dict[str, list[float]]:
    """Seconds of each call per round ``i`` (LOOKUPS rounds, after a warm-up of 50)."""
    for i in range(50):
        for call in calls.values():
            await call(i)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(LOOKUPS):
        for name, call in calls.items():
            start = time.perf_counter()
            await call(i)
            times[name].append(time.perf_counter() - start)
    return times


def _figures(times: dict[str, list[float]]) -> dict[str, float]:
    us = {name: [t * 1e6 for t in values] for name, values in times.items()}
    figures: dict[str, float] = {}
    for name, values in us.items():
        figures[f"{name}_p50_us"] = statistics.median(values)
        figures[f"{name}_p99_us"] = _percentile(values, 0.99)
    figures["one_region_vs_plain_p50"] = (figures["one_p50_us"] / figures["plain_p50_us"])
    figures["three_vs_one_region_p50"] = (figures["three_p50_us"] / figures["one_p50_us"])
    figures["three_vs_one_region_p99"] = (figures["three_p99_us"] / figures["one_p99_us"])
    return figures


@pytest.mark.asyncio
async def test_fan_out_cost_of_sign_in_and_session_lookups(benchmark, tmp_path: Path) -> None:
    async with (_setup(tmp_path / "plain", None) as plain,
                _setup(tmp_path / "one", []) as one,
                _setup(tmp_path / "three", ["eu", "us"]) as three):
        setups = {"plain": plain, "one": one, "three": three}

        def sign_in_lookups(setup: Setup) -> Callable[[int], Awaitable[object]]:
            store, _, emails, _ = setup

            async def call(i: int) -> object:
                email = emails[i % len(emails)]
                await store.failures(f"email:{email}")
                found = await store.person_by_email(email)
                assert found is not None
                return found

            return call

        def session_lookup(setup: Setup) -> Callable[[int], Awaitable[object]]:
            _, sessions, _, secrets = setup

            async def call(i: int) -> object:
                found = await sessions.find(secrets[i % len(secrets)])
                assert found is not None
                return found

            return call

        sign_in = await _interleaved({n: sign_in_lookups(s) for n, s in setups.items()})
        session = await _interleaved({n: session_lookup(s) for n, s in setups.items()})
    record(benchmark, what="sign-in lookups (failures + person by email), SQLite",
           people=PEOPLE, lookups=LOOKUPS, **_figures(sign_in))
    record(benchmark, what="session lookup (Sessions.find), SQLite", people=PEOPLE,
           lookups=LOOKUPS, **_figures(session))
