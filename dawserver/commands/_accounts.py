"""What ``dawserver users``, ``orgs`` and ``keys`` share: options, the service, errors.

:func:`account_options` adds the server's ``--data`` / ``--database`` (and
``--redis``, for sessions kept there) so these commands open the same accounts
as ``dawserver serve``, and ``--data-region`` for the data regions' databases.
:func:`run_with_accounts` opens the databases, migrates the accounts tables, builds
an :class:`~accounts.service.AccountService` (mail only logged, never sent) and runs
one coroutine with it; an :class:`~accounts.errors.AccountError` becomes a one-line
:class:`CliError`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import click

from accounts.errors import AccountError, NotFound
from accounts.models import Account
from accounts.moving import AccountMover
from accounts.passwords import Passwords
from accounts.regions import RegionalAccountStore, RegionalSessions, check_distinct, open_regions
from accounts.service import AccountService, MailLog
from accounts.sessions import RedisSessions, Sessions, SessionStore
from database import open_database
from database.errors import DatabaseError
from dawserver.cli import CliError

from ._server_options import configured_regions, data_options, region_options

T = TypeVar("T")


@dataclass(frozen=True)
class AccountsTarget:
    """Where the accounts live and how passwords are hashed (from the options)."""

    data_dir: Path
    database_url: str | None
    redis_url: str | None
    hashing: tuple[int, int, int] | None
    #: ``{region: database URL}`` besides the default region (``database_url``).
    regions: dict[str, str] = field(default_factory=dict)


def parse_hashing(value: str | None) -> tuple[int, int, int] | None:
    """``"TIME,MEMORY_KIB,LANES"`` -> argon2id parameters; None or "" -> the default."""
    if not value:
        return None
    try:
        time_cost, memory_cost, parallelism = (int(part) for part in value.split(","))
    except ValueError:
        raise CliError(f"--hashing must be TIME,MEMORY_KIB,LANES (three integers), "
                       f"not {value!r}") from None
    return time_cost, memory_cost, parallelism


def account_options(command: Callable) -> Callable:
    """Add ``--data``, ``--database``, the data regions, ``--redis`` and the hidden
    ``--hashing``."""
    command = click.option(
        "--hashing", envvar="DAW_PASSWORD_HASHING", default=None, hidden=True,
        help="argon2id TIME,MEMORY_KIB,LANES (tests use cheap ones).")(command)
    command = click.option(
        "--redis", "redis_url", metavar="URL", envvar="DAW_REDIS_URL", default=None,
        help="redis://HOST:PORT/DB (or redis+cluster://HOST:PORT,HOST:PORT) when the "
        "server keeps sessions in Redis.")(command)
    return data_options(region_options(command))


def target_of(data_dir: Path, database_url: str | None, redis_url: str | None,
              hashing: str | None) -> AccountsTarget:
    """The :class:`AccountsTarget` of a command's option values (the regions' too)."""
    regions = {name: region.database_url for name, region in configured_regions().items()}
    try:
        check_distinct(database_url, regions, data_dir)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return AccountsTarget(data_dir, database_url, redis_url, parse_hashing(hashing), regions)


async def _with_service(target: AccountsTarget,
                        work: Callable[[AccountService], Awaitable[T]]) -> T:
    return await _with_accounts(target, lambda service, mover: work(service))


async def _with_accounts(
        target: AccountsTarget,
        work: Callable[[AccountService, AccountMover | None], Awaitable[T]]) -> T:
    """``work(service, mover)``; the mover (None without regions) knows moved accounts."""
    target.data_dir.mkdir(parents=True, exist_ok=True)
    async with (open_database(target.database_url, target.data_dir) as db,
                open_regions(db, target.database_url, target.regions,
                             target.data_dir) as databases):
        store = RegionalAccountStore.over(databases)
        await store.migrate()
        backend: SessionStore = (RedisSessions.from_url(target.redis_url) if target.redis_url
                                 else RegionalSessions.over(databases))
        mover = None
        if len(databases) > 1:
            mover = AccountMover(store, databases, sessions=backend
                                 if isinstance(backend, RegionalSessions) else None)
            await mover.setup()
        try:
            service = AccountService(
                store, Sessions(backend), MailLog(), regions=store.regions,
                passwords=Passwords(*target.hashing) if target.hashing else None)
            return await work(service, mover)
        finally:
            await backend.close()


def run_with_mover(target: AccountsTarget,
                   work: Callable[[AccountService, AccountMover | None], Awaitable[T]]) -> T:
    """:func:`run_with_accounts` with the regions' :class:`AccountMover` as well."""
    try:
        return asyncio.run(_with_accounts(target, work))
    except (AccountError, DatabaseError, OSError) as exc:
        raise CliError(str(exc)) from exc


def run_with_accounts(target: AccountsTarget,
                      work: Callable[[AccountService], Awaitable[T]]) -> T:
    """Run ``work(service)`` on the accounts of ``target``; errors become :class:`CliError`."""
    try:
        return asyncio.run(_with_service(target, work))
    except (AccountError, DatabaseError, OSError) as exc:
        raise CliError(str(exc)) from exc


async def find_person(service: AccountService, email_or_id: str) -> Account:
    """The person with this email address or account id; :class:`NotFound` if none."""
    person = (await service.store.person_by_email(email_or_id) if "@" in email_or_id
              else await service.store.account(email_or_id))
    if person is None or not person.is_person:
        raise NotFound(f"there is no person {email_or_id!r}; see 'dawserver users list'")
    return person


async def find_account(service: AccountService, email_or_id: str) -> Account:
    """An account by id, or a person by email address; :class:`NotFound` if none."""
    if "@" in email_or_id:
        return await find_person(service, email_or_id)
    return await service.store.require_account(email_or_id)


def echo_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Print ``rows`` under ``headers`` in left-aligned columns."""
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
