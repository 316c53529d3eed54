"""``dawserver users / orgs / keys``: administer the accounts the server reads.

Each command runs on a data directory's SQLite database; the checks open that
database the way the server does (:func:`database.open_database`) and ask the
:class:`~accounts.service.AccountService` whether keys and sessions work.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from click.testing import CliRunner, Result

from accounts.errors import InvalidCredentials
from accounts.models import AccountStatus
from accounts.passwords import Passwords
from accounts.service import AccountService, MailLog
from accounts.sessions import DatabaseSessions, Sessions
from accounts.store import AccountStore
from database import open_database
from dawserver.cli import main

T = TypeVar("T")
PASSWORD = "correct horse battery"
#: Cheap argon2id, as the server's tests use.
ENV = {"DAW_PASSWORD_HASHING": "1,1024,1"}


def cli(data: Path, *args: str, stdin: str | None = None) -> Result:
    """Run ``dawserver ARGS --data DATA`` with cheap password hashing."""
    return CliRunner(env=ENV).invoke(main, [*args, "--data", str(data)], input=stdin)


def ok(result: Result) -> str:
    """The standard output of a command that must have succeeded."""
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def on_server_db(data: Path, work: Callable[[AccountService], Awaitable[T]]) -> T:
    """Run ``work`` with a service over the database a server on ``data`` opens."""

    async def run() -> T:
        async with open_database(None, data) as db:
            service = AccountService(AccountStore(db), Sessions(DatabaseSessions(db)),
                                     MailLog(), passwords=Passwords(1, 1024, 1))
            return await work(service)

    return asyncio.run(run())


def make_user(data: Path, email: str, *extra: str) -> str:
    """Create a person with :data:`PASSWORD`; their account id."""
    return ok(cli(data, "users", "create", email, "--password-stdin", *extra,
                  stdin=PASSWORD + "\n"))


def test_a_created_user_is_listed_and_can_sign_in(tmp_path: Path) -> None:
    person_id = make_user(tmp_path, "Ada@Example.com", "--name", "Ada", "--plan", "paid")
    listing = ok(cli(tmp_path, "users", "list")).splitlines()
    assert listing[0].split() == ["id", "email", "name", "status", "plan", "2fa"]
    assert listing[1].split() == [person_id, "ada@example.com", "Ada", "active", "paid", "off"]

    async def sign_in(service: AccountService) -> str:
        signed = await service.log_in("ada@example.com", PASSWORD)
        return signed.person.account_id

    assert on_server_db(tmp_path, sign_in) == person_id


def test_the_password_prompt_asks_twice_and_unverified_users_wait(tmp_path: Path) -> None:
    result = cli(tmp_path, "users", "create", "bo@example.com", "--unverified",
                 stdin=f"{PASSWORD}\n{PASSWORD}\n")
    person_id = ok(result).splitlines()[-1]

    async def person(service: AccountService) -> tuple[str | None, float | None]:
        found = await service.store.require_account(person_id)
        return found.email, found.email_verified_at

    assert on_server_db(tmp_path, person) == ("bo@example.com", None)


def test_orgs_keys_and_revocation(tmp_path: Path) -> None:
    owner_id = make_user(tmp_path, "owner@example.com")
    member_id = make_user(tmp_path, "member@example.com")
    org_id = ok(cli(tmp_path, "orgs", "create", "Night Records", "--owner",
                    "owner@example.com", "--kind", "team"))
    ok(cli(tmp_path, "orgs", "add-member", org_id, "member@example.com", "--role", "member"))
    listing = ok(cli(tmp_path, "orgs", "list")).splitlines()
    assert listing[1].split() == [org_id, "Night", "Records", "team", "active", "free", "2"]

    async def roles(service: AccountService) -> tuple[str | None, str | None]:
        return (await service.role_in(org_id, owner_id),
                await service.role_in(org_id, member_id))

    assert on_server_db(tmp_path, roles) == ("owner", "member")
    demoted = cli(tmp_path, "orgs", "add-member", org_id, "owner@example.com", "--role",
                  "member")
    assert demoted.exit_code == 1 and "keeps at least one owner" in demoted.output
    assert on_server_db(tmp_path, roles) == ("owner", "member")
    # taken out again (and put back); the last owner stays
    last = cli(tmp_path, "orgs", "remove-member", org_id, "owner@example.com")
    assert last.exit_code == 1 and "keeps at least one owner" in last.output
    assert ok(cli(tmp_path, "orgs", "remove-member", org_id, "member@example.com")) == (
        f"member@example.com is no longer in {org_id} (Night Records)")
    assert on_server_db(tmp_path, roles) == ("owner", None)
    again = cli(tmp_path, "orgs", "remove-member", org_id, "member@example.com")
    assert again.exit_code == 1 and "not a member" in again.output
    ok(cli(tmp_path, "orgs", "add-member", org_id, "member@example.com", "--role", "member"))

    # a scope must be a permission of this server (its core's or a plug-in's)
    wrong = cli(tmp_path, "keys", "create", org_id, "--name", "ci", "--scope", "projects:read",
                "--by", "owner@example.com")
    assert wrong.exit_code == 1 and "unknown scopes ['projects:read']" in wrong.output
    assert "project.read" in wrong.output and "distribution.read" in wrong.output
    made = cli(tmp_path, "keys", "create", org_id, "--name", "ci", "--scope", "project.read",
               "--scope", "distribution.read", "--by", "owner@example.com")
    secret = ok(made)
    assert "shown only now" in made.stderr

    async def authenticate(service: AccountService) -> tuple[str, tuple[str, ...], str]:
        record, owner = await service.authenticate_key(secret)
        return record.key_id, record.scopes, owner.account_id

    key_id, scopes, key_owner = on_server_db(tmp_path, authenticate)
    assert (scopes, key_owner) == (("distribution.read", "project.read"), org_id)
    # the organisation goes on the paid plan: its keys may send 1,000 requests a second
    assert ok(cli(tmp_path, "accounts", "plan", org_id, "paid")) == (
        f"{org_id}: plan free -> paid (1000 requests/s per key)")
    assert cli(tmp_path, "accounts", "plan", org_id, "gold").exit_code == 2

    async def plan_and_log(service: AccountService) -> tuple[str, list[tuple[str, str]]]:
        _, owner = await service.authenticate_key(secret)
        events = await service.store.audit_events(org_id)
        return owner.plan, [(e.action, e.actor_id) for e in events
                            if e.action == "plan.changed"]

    assert on_server_db(tmp_path, plan_and_log) == ("paid", [("plan.changed", "cli")])
    row = ok(cli(tmp_path, "keys", "list", org_id)).splitlines()[1].split()
    assert row[:6] == [key_id, "ci", row[2], "distribution.read,project.read", "no", "active"]
    assert secret not in ok(cli(tmp_path, "keys", "list", org_id))

    refused = cli(tmp_path, "keys", "revoke", org_id, key_id, "--by", "member@example.com")
    assert refused.exit_code == 1
    assert refused.output.startswith("error: role member may not do this")
    ok(cli(tmp_path, "keys", "revoke", org_id, key_id, "--by", "owner@example.com"))
    assert ok(cli(tmp_path, "keys", "list", org_id)).splitlines()[1].split()[5] == "revoked"
    with pytest.raises(InvalidCredentials):
        on_server_db(tmp_path, authenticate)


def test_disabling_a_user_ends_sessions_and_stops_their_keys(tmp_path: Path) -> None:
    person_id = make_user(tmp_path, "cy@example.com")
    secret = ok(cli(tmp_path, "keys", "create", "cy@example.com", "--name", "mine",
                    "--scope", "project.read", "--test", "--by", "cy@example.com"))
    assert secret.startswith("mbk_test_")

    async def start_session(service: AccountService) -> str:
        return (await service.log_in("cy@example.com", PASSWORD)).secret

    cookie = on_server_db(tmp_path, start_session)
    assert ok(cli(tmp_path, "users", "disable", "CY@example.com")).startswith(
        f"disabled {person_id}")

    async def after(service: AccountService) -> tuple[AccountStatus, bool, str]:
        person = await service.store.require_account(person_id)
        session = await service.sessions.find(cookie)
        try:
            await service.authenticate_key(secret)
        except InvalidCredentials as exc:
            return person.status, session is None, str(exc)
        return person.status, session is None, "key still works"

    assert on_server_db(tmp_path, after) == (
        AccountStatus.DISABLED, True, "this API key's account is disabled")
    assert ok(cli(tmp_path, "users", "list")).splitlines()[1].split()[3] == "disabled"


@pytest.mark.parametrize(("args", "stdin", "message"), [
    (["users", "create", "x@example.com", "--password-stdin"], "short\n",
     "error: choose a password of at least 10 characters; this one has 5"),
    (["users", "disable", "nobody@example.com"], None,
     "error: there is no person 'nobody@example.com'; see 'dawserver users list'"),
    (["orgs", "create", "Org", "--owner", "ghost@example.com"], None,
     "error: there is no person 'ghost@example.com'"),
    (["orgs", "add-member", "o_missing", "a@example.com", "--role", "admin"], None,
     "error: there is no account 'o_missing'"),
    (["keys", "list", "p_missing"], None, "error: there is no account 'p_missing'"),
    (["users", "list", "--hashing", "1,2"], None,
     "error: --hashing must be TIME,MEMORY_KIB,LANES"),
])
def test_bad_input_is_one_error_line(tmp_path: Path, args: list[str], stdin: str | None,
                                     message: str) -> None:
    result = cli(tmp_path, *args, stdin=stdin)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith(message), result.output


def test_a_taken_email_is_refused(tmp_path: Path) -> None:
    make_user(tmp_path, "dup@example.com")
    result = cli(tmp_path, "users", "create", "DUP@example.com", "--password-stdin",
                 stdin=PASSWORD + "\n")
    assert result.exit_code == 1
    assert result.output == ("error: that email address already has an account; sign in or "
                             "reset the password\n")
