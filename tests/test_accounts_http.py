"""Accounts over HTTP on a running server, mail read from a real SMTP server.

The whole path a newcomer takes (sign up, verify by mail, sign in, make an
organisation and a project, invite a second person who accepts and edits),
and the attacks of issue 12: CSRF, enumeration, throttling, fixation, keys.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from accounts_helpers import PASSWORD, Person, accounts_server
from limits import parse
from smtp_server import SmtpServer

from collab.client import SyncClient
from dawclient.channel import connect
from dawserver.keys import PLUGIN_CONTEXT_KEY, RATE_LIMITER, TOKENS

pytestmark = pytest.mark.asyncio


async def people(config, smtp: SmtpServer, *emails: str) -> list[Person]:
    return [Person(config.base_url, smtp, email) for email in emails]


async def test_sign_up_verify_project_invite_and_a_second_person_edits(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        ada, bo = await people(config, smtp_server, "ada@example.org", "bo@example.org")
        try:
            await ada.sign_up_and_in("Ada")
            status, org, _ = await ada.call("POST", "/accounts", {"name": "Ada's Label"})
            assert status == 201 and org["kind"] == "organisation"
            status, project, _ = await ada.call("POST", f"/accounts/{org['id']}/projects",
                                                {"name": "Single"})
            assert status == 201
            status, invitation, _ = await ada.call(
                "POST", f"/accounts/{org['id']}/invitations",
                {"email": "bo@example.org", "role": "member"})
            assert status == 201 and invitation["role"] == "member"
            await bo.sign_up_and_in("Bo")
            assert (await bo.call("GET", f"/projects/{project['id']}"))[0] == 404
            status, joined, _ = await bo.call("POST", "/invitations/accept",
                                              {"token": await bo.link_token("invite")})
            assert status == 200 and joined == {"account_id": org["id"], "role": "member"}
            status, listed, _ = await bo.call("GET", "/me/projects")
            assert [(e["id"], e["role"]) for e in listed] == [(project["id"], "editor")]
            status, derived, _ = await bo.call("POST",
                                               f"/projects/{project['id']}/collab-token", {})
            assert status == 201 and derived["role"] == "editor"
            # the derived token opens the collaboration WebSocket, and Bo's edit lands
            async with connect(derived["websocket"], derived["token"]) as channel, \
                    SyncClient(channel) as client:
                await client.wait_synced()
                client.document.rename("Single (Bo's edit)")
                await asyncio.sleep(0.5)
            status, document, _ = await ada.call("GET", f"/projects/{project['id']}")
            assert document["document"]["meta"]["name"] == "Single (Bo's edit)"
            assert status == 200
        finally:
            await ada.close()
            await bo.close()


async def test_sign_up_and_reset_never_tell_whether_an_address_is_known(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        (ada, eve) = await people(config, smtp_server, "ada@example.org", "eve@example.org")
        try:
            await ada.sign_up_and_in()
            again = await ada.call("POST", "/auth/sign-up", {
                "email": "ADA@example.org", "password": "another password 1"})
            fresh = await eve.call("POST", "/auth/sign-up", {
                "email": "eve@example.org", "password": "another password 1"})
            assert again[:2] == fresh[:2] == (202, fresh[1])
            assert (await ada.mail("exists"))["To"] == "ada@example.org"
            known = await ada.call("POST", "/auth/reset", {"email": "ada@example.org"})
            unknown = await eve.call("POST", "/auth/reset", {"email": "nobody@example.org"})
            assert known[:2] == unknown[:2]
            wrong = await eve.call("POST", "/auth/sign-in", {"email": "ada@example.org",
                                                             "password": "wrong password!"})
            nobody = await eve.call("POST", "/auth/sign-in", {"email": "no@example.org",
                                                              "password": "wrong password!"})
            assert wrong[0] == nobody[0] == 401 and wrong[1] == nobody[1]
        finally:
            await ada.close()
            await eve.close()


async def test_an_email_with_a_lone_surrogate_is_refused_with_422_naming_it(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    """Valid JSON (``\\ud800``) that is no Unicode text: a clear 422, never a 500."""
    email = '"a\\ud800@example.org"'
    cases = [("/auth/sign-in", f'{{"email": {email}, "password": "whatever whatever"}}'),
             ("/auth/sign-up", f'{{"email": {email}, "password": "whatever whatever"}}'),
             ("/auth/reset", f'{{"email": {email}}}'),
             ("/auth/verify/resend", f'{{"email": {email}}}')]
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in()
            _, org, _ = await ada.call("POST", "/accounts", {"name": "Label"})
            cases.append((f"/accounts/{org['id']}/invitations", f'{{"email": {email}}}'))
            for path, raw in cases:
                async with ada.http.post(config.base_url + path, data=raw, headers={
                        "Content-Type": "application/json", "X-CSRF-Token": ada.csrf}) as answer:
                    body = await answer.json()
                    assert answer.status == 422, (path, body)
                    assert "body.email" in body["error"] and "surrogate" in body["error"], body
        finally:
            await ada.close()


async def test_writes_by_cookie_need_the_csrf_token(tmp_path: Path,
                                                   smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        (ada,) = await people(config, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in()
            status, body, _ = await ada.call("POST", "/accounts", {"name": "X"}, csrf=False)
            assert status == 403 and "X-CSRF-Token" in body["error"]
            status, _, _ = await ada.call("POST", "/accounts", {"name": "X"},
                                          headers={"X-CSRF-Token": "forged"}, csrf=False)
            assert status == 403
            assert (await ada.call("GET", "/me"))[0] == 200  # reads need none
        finally:
            await ada.close()


async def test_a_new_session_id_at_each_sign_in_and_reset_ends_every_session(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        ada, other = await people(config, smtp_server, "ada@example.org", "ada@example.org")
        try:
            await ada.sign_up_and_in()
            first = {c.key: c.value for c in ada.http.cookie_jar}["mbs_session"]
            await ada.sign_in()
            second = {c.key: c.value for c in ada.http.cookie_jar}["mbs_session"]
            assert first != second
            # a fixed (planted) session id is worthless: the server never adopts one
            other.http.cookie_jar.update_cookies({"mbs_session": "planted"},
                                                 aiohttp.client.URL(config.base_url))
            assert (await other.call("GET", "/me"))[0] == 401
            status, sessions, _ = await ada.call("GET", "/me/sessions")
            assert status == 200 and len(sessions) == 2
            await ada.call("POST", "/auth/reset", {"email": ada.email})
            status, _, _ = await ada.call("POST", "/auth/reset/confirm", {
                "token": await ada.link_token("reset"), "password": "a brand new one 2"})
            assert status == 200
            assert (await ada.call("GET", "/me"))[0] == 401
            await ada.sign_in("a brand new one 2")
            assert (await ada.call("GET", "/me"))[0] == 200
        finally:
            await ada.close()
            await other.close()


async def test_failed_sign_ins_are_throttled_with_retry_after(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        (ada,) = await people(config, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in()
            statuses = []
            for _ in range(5):
                status, _, headers = await ada.call("POST", "/auth/sign-in", {
                    "email": ada.email, "password": "not the password"})
                statuses.append(status)
            assert statuses[:3] == [401, 401, 401] and 429 in statuses
            status, body, headers = await ada.call("POST", "/auth/sign-in", {
                "email": ada.email, "password": PASSWORD})
            assert status == 429 and int(headers["Retry-After"]) >= 1
        finally:
            await ada.close()


async def test_api_keys_scopes_rate_headers_and_revocation(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        ada, eve = await people(config, smtp_server, "ada@example.org", "eve@example.org")
        try:
            await ada.sign_up_and_in()
            await eve.sign_up_and_in()
            _, project, _ = await ada.call("POST", f"/accounts/{ada.id}/projects", {})
            status, made, _ = await ada.call("POST", f"/accounts/{ada.id}/keys", {
                "name": "ci", "scopes": ["project.read"]})
            assert status == 201 and made["key"].startswith("mbk_live_")
            key = {"Authorization": f"Bearer {made['key']}"}
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{config.base_url}/projects/{project['id']}",
                                    headers=key) as answer:
                    assert answer.status == 200
                    assert answer.headers["RateLimit-Policy"] == '"free";q=100;w=1'
                    assert answer.headers["RateLimit"].startswith('"free";r=')
                async with http.patch(f"{config.base_url}/projects/{project['id']}",
                                      json={"name": "x"}, headers=key) as answer:
                    assert answer.status == 403  # outside the key's scopes
                    assert "project.manage" in (await answer.json())["error"]
                tampered = made["key"][:-1] + ("A" if made["key"][-1] != "A" else "B")
                async with http.get(f"{config.base_url}/projects/{project['id']}",
                                    headers={"Authorization": f"Bearer {tampered}"}) as answer:
                    assert answer.status == 401
                status, _, _ = await ada.call("DELETE", f"/accounts/{ada.id}/keys/{made['id']}")
                assert status == 200
                async with http.get(f"{config.base_url}/projects/{project['id']}",
                                    headers=key) as answer:
                    assert answer.status == 401  # revoked: at once
            # another account's ids: Eve sees neither Ada's project nor her keys
            assert (await eve.call("GET", f"/projects/{project['id']}"))[0] == 404
            assert (await eve.call("GET", f"/accounts/{ada.id}/keys"))[0] == 404
            assert (await eve.call("POST", f"/accounts/{ada.id}/keys", {
                "name": "x", "scopes": ["project.read"]}))[0] == 404
            status, log, _ = await ada.call("GET", f"/accounts/{ada.id}/audit")
            assert {"key.created", "key.revoked", "sign_in"} <= {e["action"] for e in log}
        finally:
            await ada.close()
            await eve.close()


async def test_a_key_past_its_plan_gets_429_with_retry_after_and_its_headers(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        # a plan of 3 requests a minute, so the test never races the clock
        app[RATE_LIMITER].plans = {"free": parse("3/minute"), "paid": parse("1000/second")}
        (ada,) = await people(config, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in()
            _, project, _ = await ada.call("POST", f"/accounts/{ada.id}/projects", {})
            _, made, _ = await ada.call("POST", f"/accounts/{ada.id}/keys", {
                "name": "ci", "scopes": ["project.read"]})
            key = {"Authorization": f"Bearer {made['key']}"}
            url = f"{config.base_url}/projects/{project['id']}"
            async with aiohttp.ClientSession() as http:
                for left in (2, 1, 0):
                    async with http.get(url, headers=key) as answer:
                        assert answer.status == 200
                        assert answer.headers["RateLimit"].startswith(f'"free";r={left};')
                async with http.get(url, headers=key) as answer:
                    assert answer.status == 429
                    assert answer.headers["RateLimit-Policy"] == '"free";q=3;w=60'
                    assert int(answer.headers["Retry-After"]) >= 1
                    assert "rate limit" in (await answer.json())["error"]
                # a server administrator puts her on the paid plan: it holds at once
                plan_url = f"{config.base_url}/admin/accounts/{ada.id}/plan"
                root = {"Authorization": f"Bearer {app[TOKENS].issue('*', 'owner', 'root')}"}
                async with http.put(plan_url, json={"plan": "gold"}, headers=root) as answer:
                    assert answer.status == 422
                async with http.put(plan_url, json={"plan": "paid"}, headers=root) as answer:
                    assert answer.status == 200
                    assert await answer.json() == {"account_id": ada.id, "plan": "paid",
                                                   "requests_per_second": 1000}
                async with http.get(url, headers=key) as answer:
                    assert answer.status == 200
                    assert answer.headers["RateLimit-Policy"] == '"paid";q=1000;w=1'
            # not hers to change; the change is in her security log
            status, _, _ = await ada.call("PUT", f"/admin/accounts/{ada.id}/plan",
                                          {"plan": "paid"})
            assert status == 403
            _, audit, _ = await ada.call("GET", f"/accounts/{ada.id}/audit")
            assert [(e["action"], e["actor"], e["detail"]) for e in audit
                    if e["action"] == "plan.changed"] == [
                ("plan.changed", "root", {"from": "free", "to": "paid"})]
        finally:
            await ada.close()


async def test_the_scopes_a_key_may_hold_are_listed_for_the_keys_page(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        ada, eve = await people(config, smtp_server, "ada@example.org", "eve@example.org")
        try:
            await ada.sign_up_and_in()
            await eve.sign_up_and_in()
            status, scopes, _ = await ada.call("GET", f"/accounts/{ada.id}/keys/scopes")
            assert status == 200
            names = [s["name"] for s in scopes]
            permissions = app[PLUGIN_CONTEXT_KEY].permissions
            # every permission, but an organisation role a plug-in declares is no scope
            assert "role:approver" in permissions and "role:approver" not in names
            assert names == sorted(p for p in permissions if not p.startswith("role:"))
            assert {"project.read", "account.read"} <= set(names)
            assert all(s["description"] for s in scopes)
            # each listed scope is one a key may be made with
            status, _, _ = await ada.call("POST", f"/accounts/{ada.id}/keys", {
                "name": "all", "scopes": names})
            assert status == 201
            assert (await eve.call("GET", f"/accounts/{ada.id}/keys/scopes"))[0] == 404
        finally:
            await ada.close()
            await eve.close()
