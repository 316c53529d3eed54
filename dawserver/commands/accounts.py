"""``dawserver accounts``: move an account to another data region, set its plan."""

from __future__ import annotations

from pathlib import Path

import click

from accounts.moving import AccountMover
from accounts.ratelimit import PLANS
from accounts.service import AccountService
from dawserver.cli import CliError

from ._accounts import (
    account_options,
    find_account,
    run_with_accounts,
    run_with_mover,
    target_of,
)


@click.group("accounts")
def accounts() -> None:
    """Accounts: move one to another data region, put one on a plan (docs/accounts.md)."""


@accounts.command("move")
@click.argument("email_or_id")
@click.option("--to", "target", required=True, metavar="REGION",
              help="The configured data region to move the account to.")
@account_options
def move(email_or_id: str, target: str, data_dir: Path, database_url: str | None,
         redis_url: str | None, hashing: str | None) -> None:
    """Copy an account's rows and files to REGION, switch it there, delete the old copy.

    A move that was interrupted is resumed (from where it stopped) by running the same
    command again; meanwhile writes to the account are refused with a retry time.
    """

    async def work(service: AccountService, mover: AccountMover | None) -> str:
        if mover is None:
            raise CliError("no data regions are configured: give --data-region NAME=URL "
                           "(or DAW_DATA_REGIONS) as 'dawserver serve' has them")
        account = await find_account(service, email_or_id)
        under_way = await mover.move_of(account.account_id)
        if under_way is None:
            await mover.begin(account.account_id, target)
        elif under_way.target != target:
            raise CliError(f"account {account.account_id} is already moving to "
                           f"{under_way.target!r}; run this with --to {under_way.target}")
        done = await mover.run(
            account.account_id,
            lambda fraction, note: click.echo(f"{fraction:4.0%} {note}", err=True))
        return f"moved {account.account_id} from {done.source} to {done.target}"

    click.echo(run_with_mover(target_of(data_dir, database_url, redis_url, hashing), work))


@accounts.command("plan")
@click.argument("email_or_id")
@click.argument("plan", type=click.Choice(sorted(PLANS)))
@account_options
def plan(email_or_id: str, plan: str, data_dir: Path, database_url: str | None,
         redis_url: str | None, hashing: str | None) -> None:
    """Put a person or organisation on PLAN: what each of its API keys may send."""

    async def work(service: AccountService) -> str:
        account = await find_account(service, email_or_id)
        was = account.plan
        account = await service.set_plan(account.account_id, plan, actor_id="cli")
        limit = PLANS[plan]
        return (f"{account.account_id}: plan {was} -> {account.plan} "
                f"({int(limit.amount / limit.get_expiry())} requests/s per key)")

    click.echo(run_with_accounts(target_of(data_dir, database_url, redis_url, hashing), work))
