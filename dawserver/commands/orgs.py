"""``dawserver orgs``: create and list organisations and teams, and add members."""

from __future__ import annotations

from pathlib import Path

import click

from accounts.models import BUILT_IN_ORG_ROLES, AccountKind
from accounts.service import AccountService, Actor

from ._accounts import (
    account_options,
    echo_table,
    find_person,
    run_with_accounts,
    target_of,
)

#: The kinds of account ``orgs create`` makes.
ORG_KINDS = (AccountKind.ORGANISATION.value, AccountKind.TEAM.value)


@click.group("orgs")
def orgs() -> None:
    """Organisations and teams: create, list, add and remove members."""


@orgs.command("create")
@click.argument("name")
@click.option("--owner", required=True, metavar="EMAIL", help="The person who owns it.")
@click.option("--kind", type=click.Choice(ORG_KINDS), default=AccountKind.ORGANISATION.value,
              show_default=True)
@account_options
def create(name: str, owner: str, kind: str, data_dir: Path, database_url: str | None,
           redis_url: str | None, hashing: str | None) -> None:
    """Create an organisation (or team) called NAME owned by --owner; print its id."""

    async def work(service: AccountService) -> str:
        person = await find_person(service, owner)
        org = await service.create_organisation(Actor(person.account_id), name,
                                                kind=AccountKind(kind))
        return org.account_id

    click.echo(run_with_accounts(target_of(data_dir, database_url, redis_url, hashing), work))


@orgs.command("list")
@account_options
def list_orgs(data_dir: Path, database_url: str | None, redis_url: str | None,
              hashing: str | None) -> None:
    """List every organisation and team: id, name, kind, status, plan, members."""

    async def work(service: AccountService) -> list[tuple[object, ...]]:
        found = [a for a in await service.store.accounts() if not a.is_person]
        return [(a.account_id, a.name, a.kind.value, a.status.value, a.plan,
                 len(await service.store.members(a.account_id))) for a in found]

    rows = run_with_accounts(target_of(data_dir, database_url, redis_url, hashing), work)
    echo_table(("id", "name", "kind", "status", "plan", "members"), rows)


@orgs.command("add-member")
@click.argument("org_id")
@click.argument("email")
@click.option("--role", type=click.Choice(BUILT_IN_ORG_ROLES), required=True,
              help="Their role in the organisation.")
@account_options
def add_member(org_id: str, email: str, role: str, data_dir: Path, database_url: str | None,
               redis_url: str | None, hashing: str | None) -> None:
    """Put the person EMAIL into ORG_ID with --role (a new role if already in).

    An administrator's shortcut past the invitation mail: the person must have
    an account already.
    """

    async def work(service: AccountService) -> str:
        org = await service.store.require_account(org_id)
        person = await find_person(service, email)
        await service.admin_set_member(org_id, person.account_id, role, actor_id="cli")
        return f"{person.email} is {role} of {org.account_id} ({org.name})"

    click.echo(run_with_accounts(target_of(data_dir, database_url, redis_url, hashing), work))


@orgs.command("remove-member")
@click.argument("org_id")
@click.argument("email")
@account_options
def remove_member(org_id: str, email: str, data_dir: Path, database_url: str | None,
                  redis_url: str | None, hashing: str | None) -> None:
    """Take the person EMAIL out of ORG_ID (the last owner stays)."""

    async def work(service: AccountService) -> str:
        org = await service.store.require_account(org_id)
        person = await find_person(service, email)
        await service.admin_remove_member(org_id, person.account_id, actor_id="cli")
        return f"{person.email} is no longer in {org.account_id} ({org.name})"

    click.echo(run_with_accounts(target_of(data_dir, database_url, redis_url, hashing), work))
