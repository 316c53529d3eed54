"""``dawserver users``: create, list and disable the people who sign in."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from accounts.models import DEFAULT_REGION, PLANS, AccountKind
from accounts.service import AccountService

from ._accounts import (
    account_options,
    echo_table,
    find_person,
    run_with_accounts,
    target_of,
)


@click.group("users")
def users() -> None:
    """People: create, list, disable."""


@users.command("create")
@click.argument("email")
@click.option("--name", default="", help="Display name (default: the email address).")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
@click.option("--unverified", is_flag=True,
              help="Leave the address unverified (they must follow a verification link).")
@click.option("--plan", type=click.Choice(PLANS), default="free", show_default=True)
@click.option("--region", default=DEFAULT_REGION, show_default=True,
              help="The data region to keep their rows in (one given by --data-region).")
@account_options
def create(email: str, name: str, password_stdin: bool, unverified: bool, plan: str,
           region: str, data_dir: Path, database_url: str | None, redis_url: str | None,
           hashing: str | None) -> None:
    """Create a person signing in as EMAIL; print their account id."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def work(service: AccountService) -> str:
        person = await service.create_person(email, password, name, verified=not unverified,
                                             plan=plan, region=region)
        return person.account_id

    click.echo(run_with_accounts(target_of(data_dir, database_url, redis_url, hashing), work))


@users.command("list")
@account_options
def list_users(data_dir: Path, database_url: str | None, redis_url: str | None,
               hashing: str | None) -> None:
    """List every person: id, email, name, status, plan and whether 2FA is on."""

    async def work(service: AccountService) -> list[tuple[str, ...]]:
        people = await service.store.accounts(kind=AccountKind.PERSON)
        return [(p.account_id, p.email or "", p.name, p.status.value, p.plan,
                 "on" if p.two_factor else "off") for p in people]

    rows = run_with_accounts(target_of(data_dir, database_url, redis_url, hashing), work)
    echo_table(("id", "email", "name", "status", "plan", "2fa"), rows)


@users.command("disable")
@click.argument("email_or_id")
@account_options
def disable(email_or_id: str, data_dir: Path, database_url: str | None,
            redis_url: str | None, hashing: str | None) -> None:
    """Disable a person: their sessions end and their API keys stop working."""

    async def work(service: AccountService) -> str:
        person = await find_person(service, email_or_id)
        await service.disable(person.account_id, actor_id="cli")
        return f"disabled {person.account_id} ({person.email})"

    click.echo(run_with_accounts(target_of(data_dir, database_url, redis_url, hashing), work))
