"""The accounts store and sign-in sessions, on SQLite, a real PostgreSQL and a real Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import pytest_asyncio

from accounts.errors import Conflict, NotFound
from accounts.models import AccountKind, AccountStatus, ApiKeyRecord, Invitation, new_id
from accounts.sessions import (
    DatabaseSessions,
    RedisSessions,
    SessionPolicy,
    Sessions,
    hash_session,
)
from accounts.store import AccountStore
from database import open_database

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def store(collab_database_url: str) -> AsyncIterator[AccountStore]:
    async with open_database(collab_database_url) as db:
        accounts = AccountStore(db)
        await accounts.migrate()
        yield accounts


async def test_one_address_one_person_whatever_its_case(store: AccountStore) -> None:
    person = await store.create_account(AccountKind.PERSON, "Ada", email=" Ada@Example.org ")
    assert person.email == "ada@example.org" and person.active
    assert (await store.person_by_email("ADA@example.ORG")).account_id == person.account_id
    with pytest.raises(Conflict, match="already has an account"):
        await store.create_account(AccountKind.PERSON, "Eve", email="ada@example.org")
    # the refused sign-up left nothing behind
    assert [a.name for a in await store.accounts()] == ["Ada"]


async def test_updates_change_only_named_columns(store: AccountStore) -> None:
    person = await store.create_account(AccountKind.PERSON, "Bo", email="bo@example.org")
    updated = await store.update_account(person.account_id, status=AccountStatus.DISABLED,
                                         password_hash="h")
    assert updated.status is AccountStatus.DISABLED and updated.password_hash == "h"
    assert updated.name == "Bo" and updated.updated_at >= person.updated_at
    with pytest.raises(ValueError, match="cannot update"):
        await store.update_account(person.account_id, email="x@example.org")
    with pytest.raises(NotFound):
        await store.update_account("p_missing", name="x")


async def test_a_totp_step_is_claimed_once(store: AccountStore) -> None:
    person = await store.create_account(AccountKind.PERSON, "Cy", email="cy@example.org")
    assert await store.claim_totp_step(person.account_id, 100)
    assert not await store.claim_totp_step(person.account_id, 100)
    assert not await store.claim_totp_step(person.account_id, 99)
    assert await store.claim_totp_step(person.account_id, 101)


async def test_memberships_roles_and_removal(store: AccountStore) -> None:
    org = await store.create_account(AccountKind.ORGANISATION, "Label")
    ada = await store.create_account(AccountKind.PERSON, "Ada", email="ada@example.org")
    await store.set_member(org.account_id, ada.account_id, "owner")
    await store.set_member(org.account_id, ada.account_id, "admin")
    assert [(m.person_id, m.role) for m in await store.members(org.account_id)] == [
        (ada.account_id, "admin")]
    assert [m.account_id for m in await store.memberships_of(ada.account_id)] == [
        org.account_id]
    assert await store.remove_member(org.account_id, ada.account_id)
    assert not await store.remove_member(org.account_id, ada.account_id)


async def test_links_are_single_use_expiring_and_bound_to_their_purpose(
        store: AccountStore) -> None:
    now = time.time()
    await store.put_link("h1", "verify", "p_1", {"email": "a@example.org"}, now + 60)
    assert await store.take_link("h1", "reset", now) is None  # another purpose
    taken = await store.take_link("h1", "verify", now)
    assert taken is not None and taken.data == {"email": "a@example.org"}
    assert await store.take_link("h1", "verify", now) is None  # used
    await store.put_link("h2", "reset", "p_1", {}, now + 60)
    assert await store.take_link("h2", "reset", now + 61) is None  # expired
    await store.put_link("h3", "reset", "p_1", {}, now + 60)
    assert await store.void_links("p_1", "reset", now) == 2
    assert await store.take_link("h3", "reset", now) is None


async def test_invitations_close_once(store: AccountStore) -> None:
    now = time.time()
    invitation = Invitation(account_id="o_1", invitation_id=new_id("inv"),
                            email="x@example.org", role="member", invited_by="p_1",
                            expires_at=now + 60, created_at=now)
    await store.add_invitation(invitation)
    assert (await store.invitation("o_1", invitation.invitation_id)).open_at(now)
    assert await store.close_invitation("o_1", invitation.invitation_id, now=now,
                                        accepted_by="p_2")
    assert not await store.close_invitation("o_1", invitation.invitation_id, now=now)
    closed = await store.invitation("o_1", invitation.invitation_id)
    assert closed.accepted_by == "p_2" and not closed.open_at(now)


async def test_keys_are_found_by_hash_and_revoked_by_their_owner_only(
        store: AccountStore) -> None:
    now = time.time()
    key = ApiKeyRecord(key_hash="kh", key_id="k_1", owner_id="o_1", created_by="p_1",
                       name="ci", prefix="mbk_live_abc", scopes=("project.read",), test=False,
                       created_at=now)
    await store.add_key(key)
    assert await store.key_by_hash("kh") == key
    with pytest.raises(NotFound):
        await store.revoke_key("o_2", "k_1", now)
    revoked = await store.revoke_key("o_1", "k_1", now)
    assert revoked.revoked_at == now and not revoked.usable_at(now)
    assert not (await store.key_by_hash("kh")).usable_at(now)
    await store.touch_key("kh", now + 5)
    assert (await store.keys_of("o_1"))[0].last_used_at == now + 5


async def test_recovery_codes_are_used_once(store: AccountStore) -> None:
    await store.replace_recovery_codes("p_1", ["a", "b"])
    assert await store.use_recovery_code("p_1", "a", 1.0)
    assert not await store.use_recovery_code("p_1", "a", 2.0)
    assert await store.recovery_codes_left("p_1") == 1
    await store.replace_recovery_codes("p_1", ["c"])
    assert not await store.use_recovery_code("p_1", "b", 3.0)


async def test_failures_count_up_and_clear(store: AccountStore) -> None:
    assert [await store.record_failure("email:a", float(i)) for i in range(3)] == [1, 2, 3]
    assert await store.failures("email:a") == (3, 2.0)
    await store.clear_failures("email:a")
    assert await store.failures("email:a") == (0, 0.0)


async def test_audit_events_come_newest_first_per_account(store: AccountStore) -> None:
    first = await store.audit("o_1", "p_1", "key.created", target="k_1", detail={"n": 1})
    second = await store.audit("o_1", "p_1", "key.revoked", target="k_1")
    await store.audit("o_2", "p_1", "sign_in")
    events = await store.audit_events("o_1")
    assert [e.event_id for e in events] == [second.event_id, first.event_id]
    assert events[1].detail == {"n": 1}
    assert [e.event_id for e in await store.audit_events("o_1", limit=1)] == [second.event_id]
    older = [e.event_id for e in await store.audit_events("o_1", before=second.at)]
    assert older == ([first.event_id] if first.at < second.at else [])


async def test_projects_have_an_owner_and_grants(store: AccountStore) -> None:
    await store.own_project("o_1", "proj1")
    await store.own_project("p_1", "proj2")
    assert await store.project_owner("proj1") == "o_1"
    assert await store.projects_of(["o_1", "p_1"]) == {"proj1": "o_1", "proj2": "p_1"}
    await store.grant("proj1", "p_2", "viewer", "p_1")
    await store.grant("proj1", "p_2", "editor", "p_1")
    assert [(g.grantee_id, g.role) for g in await store.grants_on("proj1")] == [
        ("p_2", "editor")]
    assert [g.project_id for g in await store.grants_to(["p_2", "t_9"])] == ["proj1"]
    assert await store.ungrant("proj1", "p_2")
    assert await store.grants_on("proj1") == []


@pytest_asyncio.fixture(params=["database", "redis", "redis-cluster"])
async def sessions(request: pytest.FixtureRequest, store: AccountStore
                   ) -> AsyncIterator[Sessions]:
    if request.param == "database":
        backend = DatabaseSessions(store.db)
    else:
        backend = RedisSessions.from_url(request.getfixturevalue(
        "redis_url" if request.param == "redis" else "redis_cluster_url"))
        await backend.client.flushdb()
    yield Sessions(backend, SessionPolicy(idle_s=100.0, absolute_s=1000.0, touch_every_s=10))
    await backend.close()


async def test_a_session_is_found_by_its_secret_and_stored_hashed(sessions: Sessions) -> None:
    secret, record = await sessions.start("p_1", user_agent="Firefox", address="10.0.0.1")
    assert len(secret) >= 43 and record.key_hash == hash_session(secret)
    found = await sessions.find(secret)
    assert found.person_id == "p_1" and found.csrf_token == record.csrf_token
    assert await sessions.find(secret + "x") is None
    assert await sessions.find(None) is None
    stored = await sessions.store.get(record.key_hash)
    assert secret not in repr(stored)


async def test_idle_and_absolute_timeouts_end_sessions(sessions: Sessions) -> None:
    secret, record = await sessions.start("p_1")
    start = record.created_at
    assert await sessions.find(secret, now=start + 50) is not None  # touched at +50
    assert await sessions.find(secret, now=start + 140) is not None  # idle 90 < 100
    assert await sessions.find(secret, now=start + 260) is None  # idle 120 > 100
    assert await sessions.store.get(record.key_hash) is None
    secret, record = await sessions.start("p_1")
    when = record.created_at
    for step in range(1, 12):  # used every 90 s: never idle, but past 1000 s in all
        found = await sessions.find(secret, now=when + 90 * step)
        assert (found is not None) == (90 * step < 1000), step


async def test_a_person_lists_and_ends_sessions(sessions: Sessions) -> None:
    one, first = await sessions.start("p_1")
    two, second = await sessions.start("p_1")
    await sessions.start("p_2")
    assert [r.session_id for r in await sessions.list("p_1")] == [first.session_id,
                                                                    second.session_id]
    assert await sessions.end_by_id("p_1", first.session_id)
    assert not await sessions.end_by_id("p_2", second.session_id)  # not theirs
    assert await sessions.find(one) is None and await sessions.find(two) is not None
    _, third = await sessions.start("p_1")
    assert await sessions.end_all("p_1", keep=third.key_hash) == 1
    assert [r.session_id for r in await sessions.list("p_1")] == [third.session_id]
    assert len(await sessions.list("p_2")) == 1


async def test_a_stored_session_round_trips(sessions: Sessions) -> None:
    _, record = await sessions.start("p_1", user_agent="u" * 400)
    assert len(record.user_agent) == 300
    assert await sessions.store.touch(replace(record, last_seen_at=record.last_seen_at + 1),
                                      100)
    assert (await sessions.store.get(record.key_hash)).last_seen_at == record.last_seen_at + 1
