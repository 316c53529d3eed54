"""Moving an account to another data region: every row goes, writes wait, crashes resume.

Three databases per test as in test_accounts_regions.py: the main one, ``eu`` (SQLite,
then a real PostgreSQL database) and ``us`` (SQLite). A person made in ``us`` moves to
``eu``; the raw tables of every database are read back afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from accounts_helpers import PASSWORD
from click.testing import CliRunner
from test_accounts_regions import (
    CHEAP,
    everything_of_one_person,
    mentions,
    rows_of,
    signed_up,
)

from accounts.errors import AccountMoving, Conflict, UnknownRegion
from accounts.moving import AccountMover
from accounts.regions import RegionalAccountStore, RegionalSessions, open_regions
from accounts.service import AccountService, Actor, MailLog, SecondFactorNeeded
from accounts.sessions import Sessions
from database import Database, open_database
from dawserver.account_errors import api_error
from dawserver.cli import main
from jobs.regional import RegionalJobQueue


class Crash(Exception):
    """The process died here."""


class Files:
    """A move hook for stored files: ``ROOT/REGION/accounts/ID`` (fails when told)."""

    name = "files"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fail_copy = self.fail_drop = False

    def folder(self, region: str, account_id: str) -> Path:
        return self.root / region / "accounts" / account_id

    async def check(self, account_id: str, source: str, target: str) -> None:
        return None

    async def copy(self, account_id: str, source: str, target: str) -> None:
        if self.fail_copy:
            self.fail_copy = False
            raise Crash("killed while copying files")
        for path in self.folder(source, account_id).rglob("*"):
            dest = self.folder(target, account_id) / path.relative_to(
                self.folder(source, account_id))
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(path.read_bytes())

    async def drop(self, account_id: str, region: str) -> None:
        if self.fail_drop:
            self.fail_drop = False
            raise Crash("killed while dropping the old copy")
        for path in sorted(self.folder(region, account_id).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()


@dataclass
class World:
    service: AccountService
    store: RegionalAccountStore
    databases: dict[str, Database]
    mover: AccountMover
    files: Files
    sessions: RegionalSessions


@pytest_asyncio.fixture
async def world(collab_database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    main_url = f"sqlite://{tmp_path / 'main.sqlite3'}"
    urls = {"eu": collab_database_url, "us": f"sqlite://{tmp_path / 'us.sqlite3'}"}
    async with (open_database(main_url) as main,
                open_regions(main, main_url, urls, tmp_path) as databases):
        store = RegionalAccountStore.over(databases)
        await store.migrate()
        sessions = RegionalSessions.over(databases)
        service = AccountService(store, Sessions(sessions), MailLog(), passwords=CHEAP,
                                 regions=store.regions)
        files = Files(tmp_path / "files")
        mover = AccountMover(store, databases, sessions=sessions, hooks=[files],
                             settle_s=0.0, propagate_s=0.0)
        await mover.setup()
        yield World(service, store, databases, mover, files, sessions)


async def a_person_in_us(world: World) -> tuple[str, str]:
    """Uma in ``us`` with sessions, 2FA, a key, an organisation, a reset, a file; her id
    and her organisation's id."""
    uma = await signed_up(world.service, "uma@example.com", "us")
    org = await everything_of_one_person(world.service, uma)
    folder = world.files.folder("us", uma.person.account_id)
    folder.mkdir(parents=True)
    (folder / "take.wav").write_bytes(b"RIFF....")
    return uma.person.account_id, org


@pytest.mark.asyncio
async def test_moving_a_person_takes_every_row_and_file(world: World) -> None:
    uma, org = await a_person_in_us(world)
    queue = RegionalJobQueue.over(world.databases, world.store.region_of)
    await queue.setup()
    job = await queue.enqueue("mix", {"take": 1}, account_id=uma)
    main, eu, us = (world.databases[n] for n in ("default", "eu", "us"))
    before = await mentions(us, uma, "uma@example.com")
    assert {"accounts", "account_emails", "api_keys", "recovery_codes", "audit_log",
            "jobs"} <= set(before)

    notes: list[tuple[float, str]] = []
    await world.mover.move(uma, "eu", lambda f, n: notes.append((f, n)))

    assert notes[-1] == (1.0, "moved to eu")
    after = await mentions(eu, uma, "uma@example.com")
    assert set(before) - {"memberships"} <= set(after)  # her organisation stays in us
    # only the organisation's rows naming her (it stays in us) are left in us, and the
    # fence that refuses a late write there, naming where she went
    assert set(await mentions(us, uma, "uma@example.com")) <= {"memberships", "audit_log",
                                                                "account_fences"}
    assert [(r["account_id"], r["target"]) for r in
            await us.fetch("SELECT * FROM account_fences")] == [(uma, "eu")]
    assert not await us.fetch("SELECT * FROM accounts WHERE account_id = ?", uma)
    assert set(await mentions(main, uma)) == {"account_regions"}
    assert world.store.region_of(uma) == "eu" and world.store.region_of(org) == "us"
    assert (await world.store.require_account(uma)).region == "eu"
    assert (await queue.get(uma, job.id)).payload == {"take": 1}
    assert (world.files.folder("eu", uma) / "take.wav").read_bytes() == b"RIFF...."
    assert not world.files.folder("us", uma).exists() or not any(
        world.files.folder("us", uma).iterdir())
    # she signs in as before (her second factor is asked), her sessions land in eu
    assert isinstance(await world.service.log_in("uma@example.com", PASSWORD + "!"),
                      SecondFactorNeeded)
    person = await world.store.require_account(uma)
    signed = await world.service.start_session(person, "203.0.113.9", "test")
    assert (await world.service.sessions.find(signed.secret)).person_id == uma
    assert "sessions" in await mentions(eu, uma)
    await world.store.update_account(uma, name="Uma B")
    assert (await world.store.require_account(uma)).name == "Uma B"
    # another process learns where she lives
    other = RegionalAccountStore.over(world.databases)
    AccountMover(other, world.databases)
    assert other.region_of(uma) == "us"
    await AccountMover(other, world.databases).load()
    assert other.region_of(uma) == "eu"
    # and she can move back to the region her id names
    await world.mover.move(uma, "us")
    assert world.store.region_of(uma) == "us" and set(await mentions(main, uma)) == set()
    assert (await world.store.require_account(uma)).name == "Uma B"


@pytest.mark.asyncio
async def test_a_move_killed_midway_resumes_and_writes_wait_meanwhile(world: World) -> None:
    uma, _ = await a_person_in_us(world)
    world.files.fail_copy = True
    with pytest.raises(Crash):
        await world.mover.move(uma, "eu")
    move = await world.mover.move_of(uma)
    assert move is not None and move.step == "copying" and move.copied
    # writes are refused with a clear error, the HTTP answer a 409 with Retry-After
    with pytest.raises(AccountMoving, match="being moved") as refused:
        await world.service.create_organisation(Actor(uma), "Second Label")
    answer = api_error(refused.value)
    assert answer.status == 409 and answer.headers["Retry-After"] == "30"
    with pytest.raises(AccountMoving):
        await world.store.update_account(uma, name="changed")
    assert world.store.region_of(uma) == "us"  # not switched: reads still go to us

    # a write that got past the fence before the move began is not lost
    await world.store.stores["us"].audit(uma, uma, "late.write")

    # a fresh process resumes the move; it is killed again after the switch
    store = RegionalAccountStore.over(world.databases)
    mover = AccountMover(store, world.databases, hooks=[world.files], settle_s=0.0)
    await mover.setup()
    world.files.fail_drop = True
    with pytest.raises(Crash):
        await mover.run(uma)
    assert (await mover.move_of(uma)).step == "switched"
    assert store.region_of(uma) == "eu"
    with pytest.raises(AccountMoving):
        await store.update_account(uma, name="changed")

    await AccountMover(store, world.databases, hooks=[world.files], settle_s=0.0).run(uma)
    assert await mover.move_of(uma) is None
    eu, us = world.databases["eu"], world.databases["us"]
    assert "late.write" in {e.action for e in await store.audit_events(uma)}
    assert not await us.fetch("SELECT * FROM audit_log WHERE account_id = ?", uma)
    assert not await us.fetch("SELECT * FROM account_emails WHERE person_id = ?", uma)
    assert await eu.fetch("SELECT * FROM account_emails WHERE person_id = ?", uma)
    assert (world.files.folder("eu", uma) / "take.wav").exists()
    await store.update_account(uma, name="Uma Moved")


@pytest.mark.asyncio
async def test_bad_moves_are_refused(world: World) -> None:
    uma, _ = await a_person_in_us(world)
    with pytest.raises(UnknownRegion, match="unknown data region 'mars'"):
        await world.mover.move(uma, "mars")
    with pytest.raises(Conflict, match="in region 'us' already"):
        await world.mover.move(uma, "us")
    with pytest.raises(Exception, match="no account"):
        await world.mover.move("p_us_nobody", "eu")
    world.files.fail_copy = True
    with pytest.raises(Crash):
        await world.mover.move(uma, "eu")
    with pytest.raises(Conflict, match="already moving to region 'eu'"):
        await world.mover.begin(uma, "default")


def test_dawserver_accounts_move(tmp_path: Path) -> None:
    eu_url = f"sqlite://{tmp_path / 'eu.sqlite3'}"
    runner = CliRunner(env={"DAW_PASSWORD_HASHING": "1,1024,1",
                            "DAW_DATA_REGIONS": f"eu={eu_url}"})
    made = runner.invoke(main, ["users", "create", "eve@example.eu", "--password-stdin",
                                "--data", str(tmp_path)], input=PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    eve = made.stdout.strip()
    moved = runner.invoke(main, ["accounts", "move", "eve@example.eu", "--to", "eu",
                                 "--data", str(tmp_path)])
    assert moved.exit_code == 0, moved.output
    assert f"moved {eve} from default to eu" in moved.stdout
    assert "100% moved to eu" in moved.stderr
    assert rows_of(tmp_path / "eu.sqlite3", eve) == {"accounts": 1, "account_emails": 1}
    # the main database keeps where she went, and the fence of her old rows there
    assert rows_of(tmp_path / "collab.sqlite3", eve) == {"account_regions": 1,
                                                         "account_fences": 1}
    # the other commands find her where she lives now
    disabled = runner.invoke(main, ["users", "disable", eve, "--data", str(tmp_path)])
    assert disabled.exit_code == 0, disabled.output
    again = runner.invoke(main, ["accounts", "move", eve, "--to", "eu",
                                 "--data", str(tmp_path)])
    assert again.exit_code != 0 and "is in region 'eu' already" in again.output
    mars = runner.invoke(main, ["accounts", "move", eve, "--to", "mars",
                                "--data", str(tmp_path)])
    assert "unknown data region 'mars'" in mars.output
    plain = CliRunner(env={"DAW_PASSWORD_HASHING": "1,1024,1", "DAW_DATA_REGIONS": ""})
    alone = plain.invoke(main, ["accounts", "move", eve, "--to", "eu",
                                "--data", str(tmp_path / "other")])
    assert alone.exit_code != 0 and "no data regions are configured" in alone.output


@pytest.mark.asyncio
async def test_an_administrator_moves_an_account_over_http(tmp_path: Path) -> None:
    import aiohttp
    from loopback import free_port
    from nodepeer import running_server

    from dawserver.account_moves import MOVE_ACCOUNT, QUEUE
    from dawserver.accounts_setup import ACCOUNT_MOVER
    from dawserver.config import RegionConfig, ServerConfig
    from dawserver.keys import ACCOUNTS, BACKGROUND, TOKENS

    eu_file = tmp_path / "eu.sqlite3"
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data",
                          password_hashing=(1, 1024, 1),
                          regions={"eu": RegionConfig(f"sqlite://{eu_file}")})
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        service = app[ACCOUNTS]
        ana = (await service.create_person("ana@example.com", PASSWORD, "Ana")).account_id
        # a key makes keys within its own scopes only
        key, _ = await service.create_key(Actor(ana), ana, "ci",
                                          ["account.admin", "project.read"])
        root = {"Authorization": f"Bearer {app[TOKENS].issue('*', 'owner', 'root')}"}
        mine = {"Authorization": f"Bearer {key}"}
        url = f"{config.base_url}/admin/accounts/{ana}/region-move"

        async def call(method: str, to: str, headers: dict[str, str],
                       body: object = None) -> tuple[int, dict, dict]:
            async with http.request(method, to, json=body, headers=headers) as answer:
                return answer.status, await answer.json(), dict(answer.headers)

        status, view, _ = await call("GET", url, root)
        assert status == 200 and view["region"] == "default" and not view["moving"]
        status, _, _ = await call("POST", url, mine, {"region": "eu"})
        assert status == 403
        status, body, _ = await call("POST", url, root, {"region": "mars"})
        assert status == 422 and "unknown data region 'mars'" in body["error"]

        mover = app[ACCOUNT_MOVER]
        copied, let_job_end = asyncio.Event(), asyncio.Event()
        carry = mover.run

        async def carry_then_hold(*args: Any) -> Any:  # the job's end, held open
            done = await carry(*args)
            copied.set()
            await let_job_end.wait()
            return done

        mover.run = carry_then_hold
        # a move begun (its job not run yet): her writes wait, with a retry time
        await mover.begin(ana, "eu")
        status, body, headers = await call("POST", f"{config.base_url}/accounts/{ana}/keys",
                                           mine, {"name": "two", "scopes": ["project.read"]})
        assert status == 409 and "being moved" in body["error"]
        assert headers["Retry-After"] == "30"

        status, view, _ = await call("POST", url, root, {"region": "eu"})
        assert status == 202 and view["moving"] and view["target"] == "eu"
        job_id = view["job_id"]
        status, view, _ = await call("POST", url, root, {"region": "eu"})
        assert view["job_id"] == job_id  # asked again: the same move, the same job
        status, body, _ = await call("POST", url, root, {"region": "default"})
        assert status == 409 and "already moving to region 'eu'" in body["error"]

        async with asyncio.timeout(120):
            await copied.wait()
        # the rows have moved, but its job has not ended yet: still moving, so whoever
        # waits for "moving" to clear reads the job's end along with it
        status, view, _ = await call("GET", url, root)
        assert view["region"] == "eu" and view["moving"] and view["state"] == "running"
        let_job_end.set()
        async with asyncio.timeout(120):
            while (await call("GET", url, root))[1]["moving"]:
                await asyncio.sleep(0.1)
        status, view, _ = await call("GET", url, root)
        assert view["region"] == "eu" and view["state"] == "done" and view["progress"] == 1
        # the job is the server's (in the main database's queue), not the moved account's
        assert (await app[BACKGROUND].queue.get(MOVE_ACCOUNT, job_id)).queue == QUEUE
        status, _, _ = await call("POST", f"{config.base_url}/accounts/{ana}/keys", mine,
                                  {"name": "two", "scopes": ["project.read"]})
        assert status == 201
    assert {"accounts", "account_emails", "api_keys"} <= set(rows_of(eu_file, ana))
    # the main database keeps where she lives, and what is not kept per region yet (the
    # job queue, the public API's usage counters: docs/accounts.md, "Moving an account")
    left = set(rows_of(config.data_dir / "collab.sqlite3", ana))
    assert "account_regions" in left
    assert not left & {"accounts", "account_emails", "api_keys", "audit_log", "sessions"}


@pytest.mark.asyncio
async def test_a_second_process_follows_a_move(world: World) -> None:
    """Another server (its own stores, loaded before the move) routes the moved account's
    writes to the new region at once, and its reads after its next reload."""
    uma, _ = await a_person_in_us(world)
    other = RegionalAccountStore.over(world.databases)
    theirs = AccountMover(other, world.databases, settle_s=0.0, propagate_s=0.0)
    await theirs.setup()
    assert other.region_of(uma) == "us"
    await world.mover.move(uma, "eu")
    await other.update_account(uma, name="Uma E.")  # through its fence: learns the move
    assert other.region_of(uma) == "eu"
    assert (await world.store.require_account(uma)).name == "Uma E."
    assert await rows_of_db(world.databases["us"], uma) == 0
    third = RegionalAccountStore.over(world.databases)
    refreshing = AccountMover(third, world.databases)
    task = asyncio.create_task(refreshing.refresh(every_s=0.01))
    try:
        async with asyncio.timeout(30):
            while third.region_of(uma) != "eu":
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert (await third.require_account(uma)).name == "Uma E."


@pytest.mark.asyncio
async def test_a_write_in_flight_when_a_move_begins_is_moved_not_lost(world: World) -> None:
    """A write that passed the main database's fence and holds its transaction on the
    source (slow, or waiting for a connection) when the move begins: the move waits for
    it to commit before copying, so the write goes with the account."""
    ana = (await signed_up(world.service, "ana@example.com", "eu")).person.account_id
    source = world.store.stores["eu"]
    real_audit, inside, release = source.audit, asyncio.Event(), asyncio.Event()

    async def slow_audit(*args: object, **kwargs: object) -> object:
        inside.set()
        await release.wait()
        return await real_audit(*args, **kwargs)

    source.audit = slow_audit  # type: ignore[method-assign]
    late = asyncio.create_task(world.store.audit(ana, ana, "late.write"))
    async with asyncio.timeout(30):
        await inside.wait()
    moving = asyncio.create_task(world.mover.move(ana, "us"))
    await asyncio.sleep(0.5)
    # begun (writes refused) but not copying: the fence waits for the open write
    assert not moving.done()
    move = await world.mover.move_of(ana)
    assert move is not None and move.copied == ()
    with pytest.raises(AccountMoving):
        await world.store.update_account(ana, name="refused")
    release.set()
    await late
    await moving
    assert world.store.region_of(ana) == "us"
    assert "late.write" in {e.action for e in await world.store.audit_events(ana)}
    eu = world.databases["eu"]
    assert not await eu.fetch("SELECT * FROM audit_log WHERE account_id = ?", ana)
    assert (await world.store.require_account(ana)).name == "ana"


@pytest.mark.asyncio
async def test_the_source_refuses_writes_past_a_stale_fence_and_takes_them_back(
        world: World) -> None:
    """Inside the write's own transaction the source region refuses an account that
    moves, or moved, out of it, even when the main database's answer was stale; moving
    back lifts that."""
    ana = (await signed_up(world.service, "ana@example.com", "eu")).person.account_id
    world.files.fail_copy = True
    with pytest.raises(Crash):  # stopped after the tables' copy: fenced, not switched
        await world.mover.move(ana, "us")

    async def stale(account_id: str) -> None:
        """A process whose check ran just before the move began."""

    main_fence, world.store.fence = world.store.fence, stale
    with pytest.raises(AccountMoving, match="being moved"):
        await world.store.audit(ana, ana, "late.write")
    with pytest.raises(AccountMoving):
        async with world.store.transaction(ana) as tx:
            await tx.execute("UPDATE accounts SET name = 'x' WHERE account_id = ?", ana)
    eu = world.databases["eu"]
    assert not await eu.fetch("SELECT * FROM audit_log WHERE action = 'late.write'")
    assert (await world.store.require_account(ana)).name == "ana"

    world.store.fence = main_fence
    await world.mover.run(ana)
    world.store.fence = stale
    world.store.moved.pop(ana)  # a process that has not heard of the move at all
    with pytest.raises(AccountMoving):
        await world.store.update_account(ana, name="lost in eu")
    world.store.fence = main_fence
    await world.store.update_account(ana, name="Ana in us")  # routed to us again
    await world.mover.move(ana, "eu")  # and back: eu takes her writes once more
    assert not await eu.fetch("SELECT * FROM account_fences WHERE account_id = ?", ana)
    assert await world.databases["us"].fetch(
        "SELECT * FROM account_fences WHERE account_id = ?", ana)
    await world.store.update_account(ana, name="Ana home")
    assert (await world.store.require_account(ana)).name == "Ana home"
    assert world.store.region_of(ana) == "eu"


async def rows_of_db(db: Database, account_id: str) -> int:
    """How many ``accounts`` rows of ``account_id`` ``db`` has."""
    return len(await db.fetch("SELECT * FROM accounts WHERE account_id = ?", account_id))


@pytest.mark.asyncio
async def test_one_runner_at_a_time_carries_a_move(world: World) -> None:
    uma, _ = await a_person_in_us(world)
    await world.mover.begin(uma, "eu")
    other = RegionalAccountStore.over(world.databases)
    second = AccountMover(other, world.databases, hooks=[world.files], settle_s=0.0,
                          propagate_s=0.0)
    started, release = asyncio.Event(), asyncio.Event()

    class Slow:
        name = "slow"

        async def check(self, account_id: str, source: str, target: str) -> None:
            return None

        async def copy(self, account_id: str, source: str, target: str) -> None:
            started.set()
            await release.wait()

        async def drop(self, account_id: str, region: str) -> None:
            """Nothing kept."""

    world.mover.hooks.append(Slow())
    second.hooks.append(Slow())
    first = asyncio.create_task(world.mover.run(uma))
    async with asyncio.timeout(30):
        await started.wait()
    with pytest.raises(Conflict, match="carried by another runner"):
        await second.run(uma)
    release.set()
    assert (await first).target == "eu"
    assert await world.mover.move_of(uma) is None
    # a runner whose lease lapsed (another took over) records nothing more
    await world.mover.begin(uma, "us")
    move = await world.mover.move_of(uma)
    assert move is not None
    await world.databases["default"].execute(
        "UPDATE account_moves SET runner = 'them', lease_until = 1e18 WHERE account_id = ?",
        uma)
    with pytest.raises(Conflict, match="taken over by another runner"):
        await world.mover._mark(move, "me", "copied", "accounts")


@pytest.mark.asyncio
async def test_projects_follow_a_moved_account_and_wait_while_it_moves(
        tmp_path: Path) -> None:
    import aiohttp
    from loopback import free_port
    from nodepeer import running_server

    from dawserver.accounts_setup import ACCOUNT_MOVER
    from dawserver.config import RegionConfig, ServerConfig
    from dawserver.keys import ACCOUNTS, STORE
    from dawserver.regions import project_region
    from dawserver.storage.service import OBJECT_STORES, account_objects

    eu_file = tmp_path / "eu.sqlite3"
    config = ServerConfig(port=free_port(), data_dir=tmp_path / "data",
                          password_hashing=(1, 1024, 1),
                          regions={"eu": RegionConfig(f"sqlite://{eu_file}")})
    async with running_server(config) as app, aiohttp.ClientSession() as http:
        service = app[ACCOUNTS]
        ana = (await service.create_person("ana@example.com", PASSWORD, "Ana")).account_id
        key, _ = await service.create_key(Actor(ana), ana, "ci", ["projects.create"])
        mine = {"Authorization": f"Bearer {key}"}
        mover = app[ACCOUNT_MOVER]
        mover.settle_s = mover.propagate_s = 0.0
        await mover.move(ana, "eu")
        url = f"{config.base_url}/accounts/{ana}/projects"
        async with http.post(url, json={"name": "after"}, headers=mine) as answer:
            assert answer.status == 201, await answer.text()
            made = (await answer.json())["id"]
        assert await project_region(app, made) == "eu"
        assert "collab_projects" in rows_of(eu_file, made)
        assert account_objects(app, ana) is app[OBJECT_STORES]["eu"]

        # while she moves (back), making a project is refused and leaves no document
        await mover.begin(ana, "default")
        before = {p.project_id for p in await app[STORE].list_projects()}
        async with http.post(url, json={"name": "during"}, headers=mine) as answer:
            assert answer.status == 409 and "being moved" in (await answer.json())["error"]
        assert {p.project_id for p in await app[STORE].list_projects()} == before
