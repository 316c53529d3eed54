"""``dawserver keys``: create, list and revoke API keys of a person or organisation."""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import click

from accounts.models import ApiKeyRecord
from accounts.service import AccountService, Actor
from dawserver.account_routes import ROLE_PREFIX
from dawserver.cli import CliError
from dawserver.plugins import PluginError, describe, load_plugins

from ._accounts import (
    account_options,
    echo_table,
    find_account,
    find_person,
    run_with_accounts,
    target_of,
)


def _check_scopes(data_dir: Path, scopes: tuple[str, ...]) -> None:
    """Refuse a scope that names no permission of this server (its core and plug-ins),
    as ``POST /accounts/{id}/keys`` does."""
    try:
        known = {p for info in describe(load_plugins({"data_dir": data_dir}))
                 for p in info.permissions if not p.startswith(ROLE_PREFIX)}
    except PluginError as exc:
        raise CliError(str(exc)) from exc
    unknown = sorted(set(scopes) - known)
    if unknown:
        raise CliError(f"unknown scopes {unknown}; scopes are permission names: "
                       f"{', '.join(sorted(known))}")


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M")


def _status(key: ApiKeyRecord) -> str:
    if key.revoked_at is not None:
        return "revoked"
    return "active" if key.usable_at(time.time()) else "expired"


@click.group("keys")
def keys() -> None:
    """API keys: create, list, revoke."""


@keys.command("create")
@click.argument("account_id")
@click.option("--name", required=True, help="What the key is for.")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="A scope the key holds (repeat for more).")
@click.option("--test", is_flag=True, help="A test key (mbk_test_...).")
@click.option("--by", "by", required=True, metavar="EMAIL",
              help="The person making it (an admin or owner of ACCOUNT_ID, or ACCOUNT_ID).")
@account_options
def create(account_id: str, name: str, scopes: tuple[str, ...], test: bool, by: str,
           data_dir: Path, database_url: str | None, redis_url: str | None,
           hashing: str | None) -> None:
    """Create a key acting for ACCOUNT_ID (an id, or a person's email); print its secret.

    The secret is shown this once only; the server keeps only its hash.
    """

    _check_scopes(data_dir, scopes)

    async def work(service: AccountService) -> tuple[str, ApiKeyRecord]:
        actor = await find_person(service, by)
        owner = await find_account(service, account_id)
        return await service.create_key(Actor(actor.account_id), owner.account_id, name,
                                        scopes, test=test)

    secret, record = run_with_accounts(target_of(data_dir, database_url, redis_url, hashing),
                                       work)
    click.echo(f"created key {record.key_id} ({', '.join(record.scopes)}); "
               "its secret, shown only now:", err=True)
    click.echo(secret)


@keys.command("list")
@click.argument("account_id")
@account_options
def list_keys(account_id: str, data_dir: Path, database_url: str | None,
              redis_url: str | None, hashing: str | None) -> None:
    """List ACCOUNT_ID's keys (never their secrets)."""

    async def work(service: AccountService) -> list[ApiKeyRecord]:
        owner = await find_account(service, account_id)
        return await service.store.keys_of(owner.account_id)

    found = run_with_accounts(target_of(data_dir, database_url, redis_url, hashing), work)
    echo_table(("id", "name", "prefix", "scopes", "test", "status", "created", "last used"),
               [(k.key_id, k.name, k.prefix, ",".join(k.scopes), "yes" if k.test else "no",
                 _status(k), _when(k.created_at), _when(k.last_used_at)) for k in found])


@keys.command("revoke")
@click.argument("account_id")
@click.argument("key_id")
@click.option("--by", "by", required=True, metavar="EMAIL",
              help="The person revoking it (an admin or owner of ACCOUNT_ID, or ACCOUNT_ID).")
@account_options
def revoke(account_id: str, key_id: str, by: str, data_dir: Path, database_url: str | None,
           redis_url: str | None, hashing: str | None) -> None:
    """Revoke ACCOUNT_ID's key KEY_ID; it stops working at once."""

    async def work(service: AccountService) -> ApiKeyRecord:
        actor = await find_person(service, by)
        owner = await find_account(service, account_id)
        return await service.revoke_key(Actor(actor.account_id), owner.account_id, key_id)

    record = run_with_accounts(target_of(data_dir, database_url, redis_url, hashing), work)
    click.echo(f"revoked {record.key_id} ({record.name})")
