"""API keys on the account routes: a key acts within its scopes and its maker's role.

A key holding only ``account.read`` changes no member's role and removes nobody; a
person's own key lets them leave; an organisation's key stops when its maker leaves the
organisation or drops below admin.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from accounts_helpers import Person, accounts_server
from public_api_helpers import Caller
from smtp_server import SmtpServer

from dawserver.keys import ACCOUNTS

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


async def org_key(person: Person, org_id: str, scopes: list[str], http: aiohttp.ClientSession
                  ) -> Caller:
    """A key of the organisation ``org_id`` made by ``person`` with ``scopes``."""
    status, made, _ = await person.call("POST", f"/accounts/{org_id}/keys",
                                        {"name": "tools", "scopes": scopes})
    assert status == 201, made
    return Caller(person.base_url, made["key"], person.id, http)


@asynccontextmanager
async def a_label(tmp_path: Path, smtp_server: SmtpServer, bo_role: str
                  ) -> AsyncIterator[tuple[Any, Any, aiohttp.ClientSession, Person, Person,
                                           dict[str, Any]]]:
    """A server where Ada owns the organisation "Label" and Bo holds ``bo_role`` in it:
    (app, config, http, ada, bo, org)."""
    async with accounts_server(tmp_path, smtp_server) as (app, config), \
            aiohttp.ClientSession() as http:
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        bo = Person(config.base_url, smtp_server, "bo@example.org")
        try:
            await ada.sign_up_and_in()
            await bo.sign_up_and_in()
            _, org, _ = await ada.call("POST", "/accounts", {"name": "Label"})
            await app[ACCOUNTS].admin_set_member(org["id"], bo.id, bo_role)
            await bo.call("GET", "/me")  # the rotated session's new id and CSRF token
            yield app, config, http, ada, bo, org
        finally:
            await ada.close()
            await bo.close()


async def test_a_read_only_key_changes_no_role_and_removes_nobody_but_its_maker(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with a_label(tmp_path, smtp_server, "viewer") as (app, config, http, ada, bo, org):
        member = f"/accounts/{org['id']}/members/{bo.id}"
        reader = await org_key(ada, org["id"], ["account.read"], http)
        status, body, _ = await reader.call("PUT", member, {"role": "admin"})
        assert status == 403 and "account.admin" in body["error"], body
        status, body, _ = await reader.call("DELETE", member)
        assert status == 403 and "account.admin" in body["error"], body
        roles = {m.person_id: m.role for m in await app[ACCOUNTS].store.members(org["id"])}
        assert roles[bo.id] == "viewer"
        # a key with account.admin may do both
        admin = await org_key(ada, org["id"], ["account.read", "account.admin"], http)
        status, body, _ = await admin.call("PUT", member, {"role": "member"})
        assert status == 200 and body["role"] == "member", body
        status, body, _ = await admin.call("DELETE", member)
        assert status == 200, body
        # leaving needs account.read only: Bo's own key takes Bo out
        await app[ACCOUNTS].admin_set_member(org["id"], bo.id, "member")
        _, own, _ = await bo.call("POST", f"/accounts/{bo.id}/keys",
                                  {"name": "mine", "scopes": ["account.read"]})
        leaver = Caller(config.base_url, own["key"], bo.id, http)
        status, body, _ = await leaver.call("DELETE", member)
        assert status == 200, body
        assert await app[ACCOUNTS].store.membership(org["id"], bo.id) is None


@pytest.mark.parametrize("change", ["removed", "demoted"])
async def test_an_admins_organisation_key_stops_when_they_leave_admin(
        tmp_path: Path, smtp_server: SmtpServer, change: str) -> None:
    async with a_label(tmp_path, smtp_server, "admin") as (app, _config, http, ada, bo, org):
        bos = await org_key(bo, org["id"], ["account.read", "projects.create"], http)
        adas = await org_key(ada, org["id"], ["account.read"], http)
        assert (await bos.call("GET", f"/accounts/{org['id']}/members"))[0] == 200
        member = f"/accounts/{org['id']}/members/{bo.id}"
        # the label's key acts for the label, not as Bo: it cannot make Bo leave
        status, body, _ = await bos.call("DELETE", member)
        assert status == 403 and "cannot make its maker leave" in body["error"], body
        assert await app[ACCOUNTS].store.membership(org["id"], bo.id) is not None
        if change == "removed":
            status, body, _ = await ada.call("DELETE", member)
        else:
            status, body, _ = await ada.call("PUT", member, {"role": "member"})
        assert status == 200, body
        status, body, _ = await bos.call("POST", f"/accounts/{org['id']}/projects",
                                         {"name": "bo was here"})
        assert status == 401, body
        keys = {k.created_by: k for k in await app[ACCOUNTS].store.keys_of(org["id"])}
        assert keys[bo.id].revoked_at is not None and keys[ada.id].revoked_at is None
        assert (await adas.call("GET", f"/accounts/{org['id']}/members"))[0] == 200
        status, log, _ = await ada.call("GET", f"/accounts/{org['id']}/audit")
        assert {"target": keys[bo.id].key_id, "action": "key.revoked"} in [
            {"target": e["target"], "action": e["action"]} for e in log]


async def test_an_organisation_key_is_refused_once_its_maker_is_no_admin(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    """A key left unrevoked (made before keys were revoked with their maker's role)."""
    async with a_label(tmp_path, smtp_server, "admin") as (app, _config, http, _ada, bo, org):
        bos = await org_key(bo, org["id"], ["account.read"], http)
        members = f"/accounts/{org['id']}/members"
        store = app[ACCOUNTS].store
        await store.set_member(org["id"], bo.id, "viewer")  # past the service's rules
        status, body, _ = await bos.call("GET", members)
        assert status == 401 and "no longer an admin" in body["error"], body
        await store.remove_member(org["id"], bo.id)
        assert (await bos.call("GET", members))[0] == 401
        await store.set_member(org["id"], bo.id, "admin")  # made admin again: it works
        assert (await bos.call("GET", members))[0] == 200


async def test_an_organisation_key_never_acts_on_its_makers_own_account(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    """``account.self`` routes act on the person the key names as its maker: an
    organisation's key holding that scope is refused there (403), so whoever holds the
    label's key cannot export, list or end its maker's own data and sessions. The
    maker's personal key keeps them."""
    async with accounts_server(tmp_path, smtp_server) as (_app, config), \
            aiohttp.ClientSession() as http:
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in()
            _, org, _ = await ada.call("POST", "/accounts", {"name": "Label"})
            label = await org_key(ada, org["id"], ["account.self", "account.read"], http)
            for method, path in (("GET", "/me/projects"), ("GET", "/me/sessions"),
                                 ("POST", "/me/export"), ("DELETE", "/me/sessions")):
                status, body, _ = await label.call(method, path)
                assert status == 403 and "organisation's API key" in body["error"], (path, body)
            status, _, _ = await label.call("GET", f"/accounts/{org['id']}/members")
            assert status == 200  # the organisation's own routes still answer it
            _, own, _ = await ada.call("POST", f"/accounts/{ada.id}/keys",
                                       {"name": "mine", "scopes": ["account.self"]})
            mine = Caller(config.base_url, own["key"], ada.id, http)
            status, body, _ = await mine.call("GET", "/me/projects")
            assert status == 200, body
            assert (await ada.call("GET", "/me"))[0] == 200  # her session still stands
        finally:
            await ada.close()
