"""Data regions: an account's rows land in its region's database and nowhere else.

Three databases per test: the main one (the default region), ``eu`` (SQLite, then a
real PostgreSQL database) and ``us`` (SQLite). After each flow the raw tables of
every database are read back and searched for the people's ids and addresses.
"""

from __future__ import annotations

import inspect
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
import pytest_asyncio
from accounts_helpers import PASSWORD, Person, accounts_server
from click.testing import CliRunner
from smtp_server import SmtpServer

from accounts.erasure import AccountErasure
from accounts.errors import Conflict, NotFound, UnknownRegion
from accounts.models import AccountKind
from accounts.passwords import Passwords
from accounts.regions import (
    RegionalAccountStore,
    RegionalSessions,
    new_account_id,
    open_regions,
    region_of,
)
from accounts.service import AccountService, Actor, MailLog, SignedIn
from accounts.sessions import Sessions, SessionStore
from accounts.store import AccountStore
from database import Database, open_database
from dawserver.cli import main
from dawserver.config import RegionConfig, ServerConfig, parse_regions

CHEAP = Passwords(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass
class Regions:
    """A service over three regions, and their databases to read back."""

    service: AccountService
    store: RegionalAccountStore
    databases: dict[str, Database]


@pytest_asyncio.fixture
async def regions(collab_database_url: str, tmp_path: Path) -> AsyncIterator[Regions]:
    main_url = f"sqlite://{tmp_path / 'main.sqlite3'}"
    urls = {"eu": collab_database_url, "us": f"sqlite://{tmp_path / 'us.sqlite3'}"}
    async with (open_database(main_url) as main,
                open_regions(main, main_url, urls, tmp_path) as databases):
        store = RegionalAccountStore.over(databases)
        await store.migrate()
        service = AccountService(store, Sessions(RegionalSessions.over(databases)), MailLog(),
                                 passwords=CHEAP, regions=store.regions)
        yield Regions(service, store, databases)


async def mentions(db: Database, *needles: str) -> dict[str, int]:
    """``{table: rows}`` of every table with a row whose text holds one of ``needles``."""
    found: dict[str, int] = {}
    for table in await db.tables():
        for row in await db.fetch(f"SELECT * FROM {table}"):
            text = " ".join(str(value) for value in row.values())
            if any(needle in text for needle in needles):
                found[table] = found.get(table, 0) + 1
    return found


def token_of(service: AccountService, kind: str, to: str) -> str:
    """The token of the last mail of ``kind`` to ``to``."""
    assert isinstance(service.notifier, MailLog)
    mail = [m for m in service.notifier.sent if m["kind"] == kind and m["to"] == to][-1]
    return parse_qs(urlsplit(mail["link"]).query)["token"][0]


async def signed_up(service: AccountService, email: str, region: str) -> SignedIn:
    """Sign up in ``region``, follow the verification link, sign in."""
    person = await service.sign_up(email, PASSWORD, email.split("@")[0], region=region)
    assert person is not None
    await service.verify_email(token_of(service, "verify", email))
    signed = await service.log_in(email, PASSWORD, address="203.0.113.9")
    assert isinstance(signed, SignedIn)
    return signed


async def everything_of_one_person(service: AccountService, signed: SignedIn) -> str:
    """Use sessions, a failed sign-in, two-step sign-in, a key, an organisation, a reset;
    the organisation's id."""
    person = signed.person
    email = person.email or ""
    actor = Actor(person.account_id, address="203.0.113.9")
    assert (await service.sessions.find(signed.secret)).person_id == person.account_id
    with pytest.raises(Exception, match="wrong email or password"):
        await service.log_in(email, "not the password", address="198.51.100.7")
    secret, _ = await service.begin_two_factor(actor)
    codes = await service.enable_two_factor(actor, pyotp.TOTP(secret).now())
    assert await service.store.recovery_codes_left(person.account_id) == len(codes)
    key, record = await service.create_key(actor, person.account_id, "ci", ["project.read"])
    assert (await service.authenticate_key(key))[1].account_id == person.account_id
    org = await service.create_organisation(actor, f"{person.name} Records")
    await service.store.own_project(org.account_id, f"song-of-{person.name}")
    await service.request_reset(email)
    await service.reset_password(token_of(service, "reset", email), PASSWORD + "!")
    assert await service.sessions.list(person.account_id) == []  # the reset ended them
    assert await service.store.audit_events(person.account_id)
    assert record.owner_id == person.account_id
    return org.account_id


@pytest.mark.asyncio
async def test_each_persons_rows_live_in_their_region_only(regions: Regions) -> None:
    service = regions.service
    eve = await signed_up(service, "eve@example.eu", "eu")
    uma = await signed_up(service, "uma@example.com", "us")
    assert eve.person.account_id.startswith("p_eu_") and eve.person.region == "eu"
    assert uma.person.account_id.startswith("p_us_") and uma.person.region == "us"
    eve_org = await everything_of_one_person(service, eve)
    uma_org = await everything_of_one_person(service, uma)
    assert eve_org.startswith("o_eu_") and uma_org.startswith("o_us_")

    eve_marks = (eve.person.account_id, "eve@example.eu", eve_org)
    uma_marks = (uma.person.account_id, "uma@example.com", uma_org)
    main, eu, us = (regions.databases[name] for name in ("default", "eu", "us"))
    in_eu = await mentions(eu, *eve_marks)
    assert {"accounts", "account_emails", "memberships", "link_tokens", "api_keys",
            "recovery_codes", "audit_log", "account_projects", "sign_in_failures"} <= set(in_eu)
    assert {"accounts", "account_emails", "api_keys"} <= set(await mentions(us, *uma_marks))
    assert await mentions(us, *eve_marks) == {}
    assert await mentions(main, *eve_marks) == {}
    assert await mentions(eu, *uma_marks) == {}
    assert await mentions(main, *uma_marks) == {}
    # counters by network address are nobody's: they stay in the default region
    assert await mentions(main, "198.51.100.7") == {"sign_in_failures": 1}


@pytest.mark.asyncio
async def test_a_person_in_another_regions_organisation(regions: Regions) -> None:
    service, store = regions.service, regions.store
    eve = await signed_up(service, "eve@example.eu", "eu")
    uma = await signed_up(service, "uma@example.com", "us")
    eve_actor, uma_actor = Actor(eve.person.account_id), Actor(uma.person.account_id)
    org = await service.create_organisation(eve_actor, "Eve Records")
    await store.own_project(org.account_id, "album")
    await store.own_project(uma.person.account_id, "demo")
    await service.invite(eve_actor, org.account_id, "uma@example.com", "member")
    membership = await service.accept_invitation(
        uma_actor, token_of(service, "invite", "uma@example.com"))
    assert membership.account_id == org.account_id
    marked = await service.sessions.find(uma.secret)  # joining is a role change: new id
    assert marked is not None and marked.rotate
    rotated = await service.sessions.rotate(marked)
    assert rotated is not None and await service.sessions.find(uma.secret) is None
    assert (await service.sessions.find(rotated[0])).person_id == uma.person.account_id
    await store.grant("demo", eve.person.account_id, "viewer", uma.person.account_id)

    assert [m.account_id for m in await store.memberships_of(uma.person.account_id)] == [
        org.account_id]
    assert await service.projects(uma.person.account_id) == {"album": "editor",
                                                             "demo": "owner"}
    assert await service.projects(eve.person.account_id) == {"album": "owner",
                                                             "demo": "viewer"}
    assert await service.project_role(uma.person.account_id, "album") == "editor"
    assert [g.grantee_id for g in await store.grants_on("demo")] == [eve.person.account_id]

    main, eu, us = (regions.databases[name] for name in ("default", "eu", "us"))
    uma_marks = (uma.person.account_id, "uma@example.com")
    eve_marks = (eve.person.account_id, "eve@example.eu")
    # what relates the two lives with the organisation (eu) or the project's owner (us)
    assert set(await mentions(eu, *uma_marks)) == {"invitations", "memberships", "audit_log"}
    assert set(await mentions(us, *eve_marks)) == {"project_grants"}
    assert await mentions(main, *uma_marks, *eve_marks) == {}
    # ... and never a person's own rows
    for db, marks in ((eu, uma_marks), (us, eve_marks)):
        for table in ("accounts", "account_emails", "sessions", "api_keys", "link_tokens"):
            assert table not in await mentions(db, *marks)
    assert await store.ungrant("demo", eve.person.account_id)
    assert await store.grants_on("demo") == []


@pytest.mark.asyncio
async def test_erasing_a_person_leaves_no_row_of_theirs_in_any_region(regions: Regions) -> None:
    service, store = regions.service, regions.store
    eve = await signed_up(service, "eve@example.eu", "eu")
    uma = await signed_up(service, "uma@example.com", "us")
    uma_id = uma.person.account_id
    org = await service.create_organisation(Actor(eve.person.account_id), "Eve Records")
    await service.invite(Actor(eve.person.account_id), org.account_id, "uma@example.com",
                         "member")
    await service.accept_invitation(Actor(uma_id), token_of(service, "invite",
                                                            "uma@example.com"))
    await store.own_project(uma_id, "demo")
    await store.grant("demo", eve.person.account_id, "viewer", uma_id)
    erasure = AccountErasure(service)
    pz = await erasure.pseudonymiser(uma_id)
    queued: list[str] = []

    async def queue(tx: object, pseudonym: str) -> None:
        queued.append(pseudonym)

    closed = await erasure.close(uma_id, queue)
    assert queued == [closed.pseudonym] and closed.sessions_ended == 1
    assert await service.sessions.find(uma.secret) is None
    changed = await erasure.erase(pz)
    assert changed["memberships"] == 1 and changed["accounts"] == 1
    for name, db in regions.databases.items():
        assert await mentions(db, uma_id, "uma@example.com") == {}, name
    assert [m.person_id for m in await store.members(org.account_id)] == [
        eve.person.account_id]  # the organisation (eu) keeps its other member
    assert await erasure.erase(pz) == {}  # a retried job changes nothing


@pytest.mark.asyncio
async def test_an_address_has_one_account_across_regions(regions: Regions) -> None:
    service, store = regions.service, regions.store
    await service.sign_up("eve@example.eu", PASSWORD, "Eve", region="eu")
    assert await service.sign_up("EVE@example.eu", PASSWORD, "Eve", region="us") is None
    assert isinstance(service.notifier, MailLog)
    assert service.notifier.sent[-1]["kind"] == "exists"
    with pytest.raises(Conflict, match="already has an account"):
        await store.create_account(AccountKind.PERSON, "Eve", email="eve@example.eu",
                                   region="us")
    assert [a.region for a in await store.accounts()] == ["eu"]
    assert await store.stores["us"].accounts() == []


@pytest.mark.asyncio
async def test_an_unknown_region_is_refused_and_names_the_known_ones(
        regions: Regions) -> None:
    service, store = regions.service, regions.store
    with pytest.raises(UnknownRegion, match=r"'mars'; use one of \['default', 'eu', 'us'\]"):
        await service.sign_up("eve@example.eu", PASSWORD, "Eve", region="mars")
    with pytest.raises(UnknownRegion, match="'mars'"):
        await service.create_person("eve@example.eu", PASSWORD, "Eve", region="mars")
    assert await store.accounts() == []
    eve = await service.create_person("eve@example.eu", PASSWORD, "Eve", region="eu")
    with pytest.raises(Conflict, match="moving an account to another region"):
        await store.update_account(eve.account_id, region="us")
    # an id naming a region that is not configured is nobody's
    with pytest.raises(NotFound):
        await store.require_account(eve.account_id.replace("_eu_", "_mars_"))


@pytest.mark.asyncio
async def test_the_default_region_keeps_todays_ids_and_older_rows(regions: Regions) -> None:
    plain = AccountStore(regions.databases["default"])  # as before regions
    old = await plain.create_account(AccountKind.PERSON, "Old", email="old@example.org",
                                     password_hash=CHEAP.hash(PASSWORD),
                                     email_verified_at=1.0)
    service = regions.service
    signed = await service.log_in("old@example.org", PASSWORD)
    assert isinstance(signed, SignedIn) and signed.person.account_id == old.account_id
    new = await service.create_person("new@example.org", PASSWORD, "New")
    assert re.fullmatch(r"p_[0-9a-f]{20}", new.account_id) and new.region == "default"
    org = await service.create_organisation(Actor(old.account_id), "Old Label")
    assert re.fullmatch(r"o_[0-9a-f]{20}", org.account_id)
    assert await mentions(regions.databases["eu"], old.account_id, new.account_id) == {}
    assert await mentions(regions.databases["us"], old.account_id, new.account_id) == {}


def test_ids_name_their_region() -> None:
    known = ("default", "eu", "us-east")
    assert region_of(new_account_id("p", "eu"), known) == "eu"
    assert region_of(new_account_id("o", "us-east"), known) == "us-east"
    assert region_of(new_account_id("p", "default"), known) == "default"
    assert region_of("p_0123456789abcdef0123", known) == "default"
    assert region_of("p_mars_0123456789abcdef0123", known) == "default"
    assert region_of("p_default_0123", known) == "default"


def test_the_facade_routes_every_method_of_the_store() -> None:
    """A method added to AccountStore must be routed in RegionalAccountStore too."""
    public = {name for name, _ in inspect.getmembers(AccountStore, inspect.isfunction)
              if not name.startswith("_")}
    missing = sorted(name for name in public if not hasattr(RegionalAccountStore, name))
    assert missing == [], f"route these in accounts/regions.py: {missing}"
    wanted = {name for name in dir(SessionStore) if not name.startswith("_")}
    assert sorted(wanted - set(dir(RegionalSessions))) == [], "route them in RegionalSessions"
    for name in public:
        ours = inspect.signature(getattr(RegionalAccountStore, name))
        theirs = inspect.signature(getattr(AccountStore, name))
        assert list(ours.parameters) == list(theirs.parameters), name


def test_region_settings_are_checked(tmp_path: Path) -> None:
    assert parse_regions(["eu=postgresql://db/eu"], ["eu=s3://bucket/eu"]) == {
        "eu": RegionConfig("postgresql://db/eu", "s3://bucket/eu")}
    for databases, storage, message in (
            (["EU=sqlite:///x"], (), "bad region name 'EU'"),
            (["default=sqlite:///x"], (), "is the main database"),
            (["eu"], (), "write NAME=VALUE"),
            (["eu=sqlite:///a", "eu=sqlite:///b"], (), "given twice"),
            (["eu=sqlite:///a"], ["us=/srv/us"], "names no data region"),
            (["eu=sqlite:///a"], ["eu=ftp://x"], "s3://BUCKET/PREFIX")):
        with pytest.raises(ValueError, match=re.escape(message)):
            parse_regions(databases, storage)
    with pytest.raises(ValueError, match="'default' and 'eu' name the same database"):
        ServerConfig(data_dir=tmp_path, regions={"eu": RegionConfig("sqlite://")})
    with pytest.raises(ValueError, match="'eu' and 'us' name the same database"):
        ServerConfig(data_dir=tmp_path, regions={"eu": RegionConfig("sqlite:///x.db"),
                                                 "us": RegionConfig("sqlite:///x.db")})


def rows_of(path: Path, *needles: str) -> dict[str, int]:
    """:func:`mentions` for an SQLite file, read while a server has it open."""
    found: dict[str, int] = {}
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f"SELECT * FROM {table}"):
                if any(needle in " ".join(map(str, row)) for needle in needles):
                    found[table] = found.get(table, 0) + 1
    return found


@pytest.mark.asyncio
async def test_sign_up_over_http_lands_in_the_region(tmp_path: Path,
                                                     smtp_server: SmtpServer) -> None:
    eu_file, us_file = tmp_path / "eu.sqlite3", tmp_path / "us.sqlite3"
    regions_config = {"eu": RegionConfig(f"sqlite://{eu_file}"),
                      "us": RegionConfig(f"sqlite://{us_file}")}
    async with accounts_server(tmp_path, smtp_server, regions=regions_config) as (_, config):
        eve = Person(config.base_url, smtp_server, "eve@example.eu")
        try:
            status, body, _ = await eve.call("POST", "/auth/sign-up", {
                "email": eve.email, "password": PASSWORD, "name": "Eve", "region": "mars"})
            assert status == 422 and "unknown data region 'mars'" in body["error"]
            status, _, _ = await eve.call("POST", "/auth/sign-up", {
                "email": eve.email, "password": PASSWORD, "name": "Eve", "region": "eu"})
            assert status == 202
            status, _, _ = await eve.call("POST", "/auth/verify",
                                          {"token": await eve.link_token("verify")})
            assert status == 200
            await eve.sign_in()
            status, me, _ = await eve.call("GET", "/me")
            assert status == 200 and me["person"]["region"] == "eu"
            assert me["person"]["id"] == eve.id and eve.id.startswith("p_eu_")
            status, sessions, _ = await eve.call("GET", "/me/sessions")
            assert status == 200 and len(sessions) == 1
            status, made, _ = await eve.call("POST", f"/accounts/{eve.id}/keys", {
                "name": "ci", "scopes": ["project.read"]})
            assert status == 201
            status, project, _ = await eve.call("POST", f"/accounts/{eve.id}/projects", {})
            assert status in (200, 201)
        finally:
            await eve.close()
    main_file = config.data_dir / "collab.sqlite3"
    assert {"accounts", "account_emails", "sessions", "api_keys", "audit_log",
            "account_projects", "link_tokens"} <= set(rows_of(eu_file, eve.id, eve.email))
    assert rows_of(us_file, eve.id, eve.email) == {}
    # not routed yet: the mail queue's jobs (address and link) pass through the main
    # database (docs/accounts.md, "Data regions")
    assert set(rows_of(main_file, eve.id, eve.email)) <= {"jobs"}


def test_users_create_takes_a_configured_region(tmp_path: Path) -> None:
    eu_url = f"sqlite://{tmp_path / 'eu.sqlite3'}"
    runner = CliRunner(env={"DAW_PASSWORD_HASHING": "1,1024,1",
                            "DAW_DATA_REGIONS": f"eu={eu_url}"})
    made = runner.invoke(main, ["users", "create", "eve@example.eu", "--region", "eu",
                                "--password-stdin", "--data", str(tmp_path)],
                         input=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    person_id = made.stdout.strip()
    assert person_id.startswith("p_eu_")
    assert rows_of(tmp_path / "eu.sqlite3", person_id) == {"accounts": 1, "account_emails": 1}
    assert rows_of(tmp_path / "collab.sqlite3", person_id, "eve@example.eu") == {}
    listed = runner.invoke(main, ["users", "list", "--data", str(tmp_path)])
    assert person_id in listed.stdout
    refused = runner.invoke(main, ["users", "create", "bo@example.com", "--region", "mars",
                                   "--password-stdin", "--data", str(tmp_path)],
                            input=PASSWORD + "\n")
    assert refused.exit_code != 0
    assert "unknown data region 'mars'; use one of ['default', 'eu']" in refused.output
