"""Failed sign-ins fade with time: the count halves per quiet ``half_life``.

The policy (:func:`accounts.throttle.decayed`), the store's counters on SQLite and
PostgreSQL (a new failure counts on what is left, racing failures all count), and
the service with an injected clock: last week's mistakes delay nobody.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from accounts.errors import InvalidCredentials, Throttled
from accounts.passwords import Passwords
from accounts.service import AccountService, MailLog, SignedIn
from accounts.sessions import DatabaseSessions, Sessions
from accounts.store import AccountStore
from accounts.throttle import ThrottleRule
from database import open_database

pytestmark = pytest.mark.asyncio
HOUR = 3600.0
PASSWORD = "correct horse battery"


@pytest_asyncio.fixture
async def store(collab_database_url: str) -> AsyncIterator[AccountStore]:
    async with open_database(collab_database_url) as db:
        accounts = AccountStore(db)
        await accounts.migrate()
        yield accounts


async def test_a_new_failure_counts_on_what_is_left(store: AccountStore) -> None:
    for i in range(8):
        assert await store.record_failure("email:a", float(i), half_life=HOUR) == i + 1
    assert await store.failures("email:a", now=7.0, half_life=HOUR) == (8, 7.0)
    assert await store.failures("email:a", now=7.0 + 2 * HOUR, half_life=HOUR) == (2, 7.0)
    # two quiet hours later: 8 -> 2, and the new failure makes 3 (not 9)
    assert await store.record_failure("email:a", 7.0 + 2 * HOUR, half_life=HOUR) == 3
    assert await store.failures("email:a", now=8.0 + 2 * HOUR, half_life=HOUR) == (
        3, 7.0 + 2 * HOUR)
    assert (await store.failures("email:a"))[0] == 3  # no half-life: the stored count


async def test_racing_failures_all_count(store: AccountStore) -> None:
    counts = await asyncio.gather(*(store.record_failure("address:x", 1.0, half_life=HOUR)
                                    for _ in range(12)))
    assert sorted(counts) == list(range(1, 13))
    assert (await store.failures("address:x", now=1.0, half_life=HOUR))[0] == 12


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


async def ada_on_a_clock(store: AccountStore, clock: Clock) -> AccountService:
    """A service on ``clock`` (3 free failures, then 60 s doubling; an hour's half-life)
    that knows Ada."""
    rule = ThrottleRule(free_failures=3, base=60.0, cap=6000.0, half_life=HOUR)
    service = AccountService(store, Sessions(DatabaseSessions(store.db)), MailLog(),
                             passwords=Passwords(time_cost=1, memory_cost=1024, parallelism=1),
                             throttle=rule, clock=clock)
    await service.create_person("ada@example.org", PASSWORD, "Ada")
    return service


async def test_a_person_who_mistyped_an_hour_ago_waits_less_and_last_week_not_at_all(
        store: AccountStore) -> None:
    clock = Clock()
    service = await ada_on_a_clock(store, clock)

    async def mistype(times: int) -> None:
        for _ in range(times):
            with pytest.raises(InvalidCredentials):
                await service.log_in("ada@example.org", "wrong password!")
            clock.now += 1.0

    await mistype(4)  # the fourth failure costs a 60 s wait
    with pytest.raises(Throttled) as throttled:
        await service.log_in("ada@example.org", PASSWORD)
    assert 50 < throttled.value.retry_after <= 60
    clock.now += HOUR  # an hour's quiet: 4 -> 2 failures left
    await mistype(1)  # 2 + 1 = 3: still free (without fading 5 would wait 120 s)
    assert isinstance(await service.log_in("ada@example.org", PASSWORD), SignedIn)
    await mistype(4)
    with pytest.raises(Throttled):
        await service.log_in("ada@example.org", PASSWORD)
    clock.now += 7 * 24 * HOUR  # last week's mistakes cost nothing now
    await mistype(3)  # and three fresh ones are free again
    assert isinstance(await service.log_in("ada@example.org", PASSWORD), SignedIn)


async def test_right_passwords_from_an_address_let_its_old_failures_fade(
        store: AccountStore) -> None:
    """A shared address (an office NAT) with old failures: people signing in there with
    the right password, one after another, neither add a failure nor restart the
    fading, so the address's count keeps halving and three fresh typos there are free."""
    clock = Clock()
    service = await ada_on_a_clock(store, clock)
    last_guess = clock.now
    for _ in range(10):  # guesses at other people's passwords from there
        await store.record_failure("address:10.0.0.1", last_guess, half_life=HOUR)
    clock.now += 3 * HOUR  # 10 -> 1 left
    for _ in range(6):  # half an hour apart: three more hours of right passwords
        assert isinstance(await service.log_in("ada@example.org", PASSWORD,
                                               address="10.0.0.1"), SignedIn)
        clock.now += HOUR / 2
    assert await store.failures("address:10.0.0.1", now=clock.now, half_life=HOUR) == (
        0, last_guess)
    for n in range(3):
        with pytest.raises(InvalidCredentials):
            await service.log_in(f"typo{n}@example.org", "guess", address="10.0.0.1")
    assert isinstance(await service.log_in("ada@example.org", PASSWORD,
                                           address="10.0.0.1"), SignedIn)


async def test_a_right_password_keeps_a_failure_counted_meanwhile(
        store: AccountStore) -> None:
    """A failure counted between an attempt's check and its success stays counted."""
    attempt = await store.take_attempt("address:y", 10.0, half_life=HOUR,
                                       wait_after=lambda _: 0.0)
    await store.take_attempt("address:y", 11.0, half_life=HOUR, wait_after=lambda _: 0.0)
    await store.release_attempt(attempt)  # the first one succeeded
    assert await store.failures("address:y", now=11.0, half_life=HOUR) == (1, 11.0)
    alone = await store.take_attempt("address:z", 10.0, half_life=HOUR,
                                     wait_after=lambda _: 0.0)
    await store.release_attempt(alone)
    assert await store.failures("address:z", now=10.0, half_life=HOUR) == (0, 0.0)
