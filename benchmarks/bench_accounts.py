"""Accounts: what a password costs a sign-in, and what a session lookup costs a request.

Hashing: one hash plus one verification (what a sign-up then a sign-in spend) on one core
(the process is pinned to one CPU while it runs), median of N, with the default parameters
of :class:`accounts.passwords.Passwords` (argon2id, RFC 9106 low-memory: t=3, 64 MiB, p=4),
as ratios to the OWASP minimum (argon2id, t=2, 19 MiB, p=1) and to bcrypt cost 12 measured
the same way in the same run, round by round (:func:`benchmarks.conftest.rounds_of`).

Sign-in: :meth:`accounts.service.AccountService.log_in` of 50 verified people at once (made
with :meth:`~accounts.service.AccountService.create_person`) on SQLite in a temporary file,
p50/p99 of each sign-in's latency, with the default hashing and, as the baseline, with the
cheap hashing the tests use (t=1, 1 MiB, p=1): the ratio is what hashing costs a sign-in.
The hashing runs in asyncio's default thread pool, as the server runs it.

Session lookup: :meth:`accounts.sessions.Sessions.find` of 100 sessions round-robin, p50/p99,
on :class:`~accounts.sessions.DatabaseSessions` (SQLite) and on
:class:`~accounts.sessions.RedisSessions` (a Redis on loopback), each as a ratio to awaiting
a coroutine that looks the secret up in a dict (the least any store could do).

Run by hand (``DAW_BENCH_SMOKE=1`` shortens it to a check that it runs: fewer rounds, 8
people at once instead of 50, which the recorded ``people`` says)::

    python -m pytest benchmarks/bench_accounts.py -s -p no:cacheprovider
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import bcrypt
import pytest

from accounts.passwords import Passwords
from accounts.service import AccountService, MailLog, SignedIn
from accounts.sessions import DatabaseSessions, RedisSessions, Sessions, SessionStore
from accounts.store import AccountStore
from benchmarks.conftest import SMOKE, record, rounds_of
from database import open_database

PASSWORD = "correct horse battery staple"
HASH_ROUNDS = 3 if SMOKE else 15
PEOPLE = 8 if SMOKE else 50
SIGN_IN_ROUNDS = 1 if SMOKE else 3
SESSIONS = 20 if SMOKE else 100
LOOKUPS = 300 if SMOKE else 5_000

#: OWASP Password Storage Cheat Sheet's minimum for argon2id (t, m KiB, p).
OWASP_MINIMUM = (2, 19 * 1024, 1)
#: The cheap argon2id the tests use (tests/accounts_helpers.py).
CHEAP = (1, 1024, 1)
BCRYPT_COST = 12


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@contextlib.contextmanager
def _one_core() -> Iterator[None]:
    """Pin this process to one of its CPUs for the duration (where the OS allows it)."""
    if not hasattr(os, "sched_setaffinity"):
        yield
        return
    allowed = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(allowed)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, allowed)


def _argon2(passwords: Passwords) -> Callable[[], object]:
    def sign_up_then_in() -> None:
        assert passwords.verify(passwords.hash(PASSWORD), PASSWORD).ok

    return sign_up_then_in


def _bcrypt() -> None:
    secret = PASSWORD.encode()
    assert bcrypt.checkpw(secret, bcrypt.hashpw(secret, bcrypt.gensalt(BCRYPT_COST)))


def test_password_hashing_cost_on_one_core(benchmark) -> None:
    default = Passwords()
    contenders = {"default": _argon2(default), "owasp": _argon2(Passwords(*OWASP_MINIMUM)),
                  "bcrypt12": _bcrypt}
    with _one_core():
        times = rounds_of(contenders, rounds=HASH_ROUNDS)
    ms = {name: statistics.median(t) * 1e3 for name, t in times.items()}

    def ratio(baseline: str) -> float:
        return statistics.median(d / b for d, b in zip(times["default"], times[baseline],
                                                          strict=True))

    p = default.parameters
    record(benchmark, rounds=len(times["default"]),
           default=f"argon2id t={p.time_cost} m={p.memory_cost // 1024}MiB p={p.parallelism}",
           default_ms=ms["default"], owasp_min_ms=ms["owasp"], bcrypt12_ms=ms["bcrypt12"],
           vs_owasp_min=ratio("owasp"), vs_bcrypt12=ratio("bcrypt12"))


async def _sign_in_latencies(tmp_path: Path, passwords: Passwords) -> list[float]:
    """Seconds each of PEOPLE simultaneous sign-ins took, over SIGN_IN_ROUNDS rounds."""
    async with open_database(f"sqlite://{tmp_path / 'accounts.db'}") as db:
        store = AccountStore(db)
        await store.migrate()
        service = AccountService(store, Sessions(DatabaseSessions(db)), MailLog(),
                                 passwords=passwords)
        emails = [f"person{i}@example.org" for i in range(PEOPLE)]
        await asyncio.gather(*(service.create_person(email, PASSWORD, email)
                               for email in emails))

        async def sign_in(email: str) -> float:
            start = time.perf_counter()
            outcome = await service.log_in(email, PASSWORD)
            elapsed = time.perf_counter() - start
            assert isinstance(outcome, SignedIn)
            return elapsed

        latencies: list[float] = []
        for _ in range(SIGN_IN_ROUNDS):
            latencies += await asyncio.gather(*(sign_in(email) for email in emails))
        return latencies


@pytest.mark.asyncio
async def test_sign_in_latency_of_simultaneous_sign_ins(benchmark, tmp_path: Path) -> None:
    cheap = await _sign_in_latencies(tmp_path / "cheap", Passwords(*CHEAP))
    ours = await _sign_in_latencies(tmp_path / "default", Passwords())
    ms = [t * 1e3 for t in ours]
    base_ms = [t * 1e3 for t in cheap]
    record(benchmark, people=PEOPLE, rounds=SIGN_IN_ROUNDS, cpus=os.cpu_count() or 0,
           hashing="default argon2id" + (" (smoke: 8 people)" if SMOKE else ""),
           p50_ms=statistics.median(ms), p99_ms=_percentile(ms, 0.99),
           cheap_p50_ms=statistics.median(base_ms), cheap_p99_ms=_percentile(base_ms, 0.99),
           p50_ratio=statistics.median(ms) / statistics.median(base_ms),
           p99_ratio=_percentile(ms, 0.99) / _percentile(base_ms, 0.99))


async def _lookup_latencies(find: Callable[[str], Awaitable[object]],
                            secrets: list[str]) -> list[float]:
    """Seconds each of LOOKUPS awaited lookups took, round-robin, after a warm-up of 50."""
    for i in range(50):
        assert await find(secrets[i % len(secrets)]) is not None
    times = []
    for i in range(LOOKUPS):
        start = time.perf_counter()
        found = await find(secrets[i % len(secrets)])
        times.append(time.perf_counter() - start)
        assert found is not None
    return times


@contextlib.asynccontextmanager
async def _store(storage: str, request: pytest.FixtureRequest, tmp_path: Path):
    if storage == "redis":
        store: SessionStore = RedisSessions.from_url(request.getfixturevalue("redis_url"))
        try:
            yield store
        finally:
            await store.close()
        return
    async with open_database(f"sqlite://{tmp_path / 'sessions.db'}") as db:
        await AccountStore(db).migrate()
        yield DatabaseSessions(db)


@pytest.mark.asyncio
@pytest.mark.parametrize("storage", ["sqlite", "redis"])
async def test_session_lookup_latency(benchmark, request: pytest.FixtureRequest,
                                      tmp_path: Path, storage: str) -> None:
    async with _store(storage, request, tmp_path) as store:
        sessions = Sessions(store)
        started = [await sessions.start(f"bench-person-{i}") for i in range(SESSIONS)]
        secrets = [secret for secret, _ in started]
        table = {secret: rec for secret, rec in started}

        async def baseline(secret: str) -> object:
            return table.get(secret)

        base = await _lookup_latencies(baseline, secrets)
        ours = await _lookup_latencies(sessions.find, secrets)
    us = [t * 1e6 for t in ours]
    base_us = [t * 1e6 for t in base]
    record(benchmark, lookups=LOOKUPS, sessions=SESSIONS,
           p50_us=statistics.median(us), p99_us=_percentile(us, 0.99),
           baseline_p50_us=statistics.median(base_us),
           baseline_p99_us=_percentile(base_us, 0.99),
           p50_ratio=statistics.median(us) / statistics.median(base_us),
           p99_ratio=_percentile(us, 0.99) / _percentile(base_us, 0.99))
