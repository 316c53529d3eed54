"""A new session id after a role change, in the database and in Redis, and over HTTP.

When a person's roles change (organisation role set or removed, a project grant,
an accepted invitation), their sessions are marked; the next request with one gets
a new id and CSRF token and the old id stops working, whichever request wins a race.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from accounts_helpers import Person, accounts_server
from smtp_server import SmtpServer
from yarl import URL

from accounts.sessions import DatabaseSessions, RedisSessions, SessionPolicy, Sessions
from accounts.store import AccountStore
from database import open_database

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


@pytest_asyncio.fixture(params=["database", "redis", "redis-cluster"])
async def sessions(request: pytest.FixtureRequest, collab_database_url: str
                   ) -> AsyncIterator[Sessions]:
    async with open_database(collab_database_url) as db:
        await AccountStore(db).migrate()
        if request.param == "database":
            backend = DatabaseSessions(db)
        else:
            backend = RedisSessions.from_url(request.getfixturevalue(
            "redis_url" if request.param == "redis" else "redis_cluster_url"))
            await backend.client.flushdb()
        yield Sessions(backend, SessionPolicy(idle_s=100.0, absolute_s=1000.0,
                                              touch_every_s=10.0))
        await backend.close()


async def test_a_marked_session_gets_a_new_id_and_the_old_one_ends(sessions: Sessions) -> None:
    old_secret, record = await sessions.start("p_1")
    other_secret, _ = await sessions.start("p_2")
    assert await sessions.mark_for_rotation("p_1") == 1
    marked = await sessions.find(old_secret)
    assert marked is not None and marked.rotate
    assert not (await sessions.find(other_secret)).rotate  # someone else's stays
    rotated = await sessions.rotate(marked)
    assert rotated is not None
    secret, new = rotated
    assert secret != old_secret and new.key_hash != record.key_hash
    assert new.csrf_token != record.csrf_token and not new.rotate
    # the same session in the list (its public id, sign-in time and absolute expiry)
    assert (new.session_id, new.created_at, new.expires_at) == (
        record.session_id, record.created_at, record.expires_at)
    assert await sessions.find(old_secret) is None
    found = await sessions.find(secret)
    assert found is not None and not found.rotate
    assert [r.key_hash for r in await sessions.list("p_1")] == [new.key_hash]


async def test_of_two_racing_rotations_one_wins(sessions: Sessions) -> None:
    secret, _ = await sessions.start("p_1")
    await sessions.mark_for_rotation("p_1")
    marked = await sessions.find(secret)
    results = await asyncio.gather(*(sessions.rotate(marked) for _ in range(4)))
    won = [r for r in results if r is not None]
    assert len(won) == 1
    assert await sessions.find(secret) is None
    assert [r.key_hash for r in await sessions.list("p_1")] == [won[0][1].key_hash]


async def test_a_touch_keeps_the_mark_and_new_sessions_are_not_marked(
        sessions: Sessions) -> None:
    secret, record = await sessions.start("p_1")
    await sessions.mark_for_rotation("p_1")
    later = await sessions.find(secret, now=record.created_at + 50)  # rewrites last-seen
    assert later.rotate and later.last_seen_at == record.created_at + 50
    assert (await sessions.find(secret, now=record.created_at + 60)).rotate
    fresh, _ = await sessions.start("p_1")  # signed in after the change
    assert not (await sessions.find(fresh)).rotate


async def test_an_ended_session_cannot_be_rotated(sessions: Sessions) -> None:
    secret, _ = await sessions.start("p_1")
    await sessions.mark_for_rotation("p_1")
    marked = await sessions.find(secret)
    await sessions.end(marked.key_hash)
    assert await sessions.rotate(marked) is None
    assert await sessions.list("p_1") == []


async def test_a_late_touch_never_brings_back_a_rotated_or_ended_session(
        sessions: Sessions) -> None:
    """A request that read the session before it was rotated (or signed out) and writes
    its last-seen time after must not resurrect the old id."""
    secret, record = await sessions.start("p_1")
    await sessions.mark_for_rotation("p_1")
    read_by_b = await sessions.store.get(record.key_hash)  # request B reads ...
    rotated = await sessions.rotate(read_by_b)  # ... request A rotates ...
    assert rotated is not None
    late = replace(read_by_b, last_seen_at=record.created_at + 50)
    assert not await sessions.store.touch(late, 100)  # ... then B's touch lands
    assert await sessions.store.get(record.key_hash) is None
    assert await sessions.find(secret, now=record.created_at + 50) is None
    new_secret, _ = rotated
    assert (await sessions.find(new_secret)).person_id == "p_1"
    assert await sessions.end_all("p_1") == 1
    assert not await sessions.store.touch(late, 100)
    assert await sessions.list("p_1") == []


def cookie_of(person: Person) -> str:
    return person.http.cookie_jar.filter_cookies(URL(person.base_url))["mbs_session"].value


async def with_cookie(base_url: str, secret: str, method: str, path: str,
                      csrf: str = "") -> int:
    """The status of one request made with a bare cookie (a copy of an old id)."""
    headers = {"Cookie": f"mbs_session={secret}"}
    if csrf:
        headers["X-CSRF-Token"] = csrf
    async with aiohttp.ClientSession() as http, \
            http.request(method, base_url + path, headers=headers, json={}) as response:
        return response.status


@pytest.mark.parametrize("where", ["database", "redis", "redis-cluster"])
async def test_a_role_change_rotates_the_session_over_http(
        tmp_path: Path, smtp_server: SmtpServer, request: pytest.FixtureRequest,
        where: str) -> None:
    fixture = {"redis": "redis_url", "redis-cluster": "redis_cluster_url"}.get(where)
    overrides = {"redis_url": request.getfixturevalue(fixture)} if fixture else {}
    async with accounts_server(tmp_path, smtp_server, **overrides) as (_, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        bo = Person(config.base_url, smtp_server, "bo@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            _, org, _ = await ada.call("POST", "/accounts", {"name": "Label"})
            await ada.call("POST", f"/accounts/{org['id']}/invitations",
                           {"email": bo.email, "role": "viewer"})
            await bo.sign_up_and_in("Bo")
            before_join = cookie_of(bo)
            status, _, headers = await bo.call("POST", "/invitations/accept",
                                               {"token": await bo.link_token("invite")})
            assert status == 200 and "X-CSRF-Token" not in headers  # marked, not yet rotated
            status, me, headers = await bo.call("GET", "/me")  # the next request rotates
            assert status == 200 and headers["X-CSRF-Token"] == me["csrf_token"] == bo.csrf
            assert cookie_of(bo) != before_join
            assert await with_cookie(config.base_url, before_join, "GET", "/me") == 401

            # Ada makes Bo an admin: Bo's id changes again, the old CSRF token goes with it
            old_cookie, old_csrf = cookie_of(bo), bo.csrf
            status, _, _ = await ada.call("PUT", f"/accounts/{org['id']}/members/{bo.id}",
                                          {"role": "admin"})
            assert status == 200
            status, made, headers = await bo.call("POST", f"/accounts/{org['id']}/projects",
                                                  {"name": "Song"})
            assert status == 201, made  # the write that rotates is served (old token)
            assert headers["X-CSRF-Token"] != old_csrf and cookie_of(bo) != old_cookie
            assert await with_cookie(config.base_url, old_cookie, "GET", "/me") == 401
            assert await with_cookie(config.base_url, cookie_of(bo), "DELETE", "/me/sessions",
                                     old_csrf) == 403
            assert (await bo.call("GET", "/me/sessions"))[0] == 200
            assert len((await bo.call("GET", "/me/sessions"))[1]) == 1

            # a project grant rotates too; Ada's own session is untouched throughout
            ada_cookie = cookie_of(ada)
            _, project, _ = await ada.call("POST", f"/accounts/{ada.id}/projects",
                                           {"name": "Solo"})
            old_cookie = cookie_of(bo)
            status, _, _ = await ada.call("PUT", f"/projects/{project['id']}/grants/{bo.id}",
                                          {"role": "viewer"})
            assert status == 200
            assert (await bo.call("GET", "/me/projects"))[0] == 200
            assert cookie_of(bo) != old_cookie and cookie_of(ada) == ada_cookie
            assert await with_cookie(config.base_url, old_cookie, "GET", "/me") == 401

            # leaving the organisation rotates, and a sign-out's answer still clears
            status, _, _ = await ada.call("DELETE", f"/accounts/{org['id']}/members/{bo.id}")
            assert status == 200
            status, ended, headers = await bo.call("POST", "/auth/sign-out", {})
            assert status == 200 and ended == {"ended": 1}
            assert headers.getall("Set-Cookie")[0].startswith('mbs_session=""')
            assert (await bo.call("GET", "/me"))[0] == 401
        finally:
            await ada.close()
            await bo.close()
