"""More of issue 12's attacks, each over HTTP against a running server.

A valid session of the attacker planted in the victim's browser, an expired API key,
an expired reset link, an organisation's member reading its security log, and the
session cookie's attributes on http and behind an https address.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp
import pytest
from accounts_helpers import PASSWORD, Person, accounts_server
from loopback import free_port
from smtp_server import SmtpServer

from dawserver.keys import ACCOUNTS, DATABASE

pytestmark = pytest.mark.asyncio


def session_of(person: Person) -> str:
    return {c.key: c.value for c in person.http.cookie_jar}["mbs_session"]


async def test_a_valid_session_planted_by_an_attacker_is_never_the_victims(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        mallory = Person(config.base_url, smtp_server, "mallory@example.org")
        try:
            await mallory.sign_up_and_in("Mallory")
            planted = session_of(mallory)
            # Mallory's own, valid session id is set in Ada's browser before she signs in
            ada.http.cookie_jar.update_cookies({"mbs_session": planted},
                                               aiohttp.client.URL(config.base_url))
            status, me, _ = await ada.call("GET", "/me")
            assert status == 200 and me["person"]["id"] == mallory.id
            await ada.sign_up_and_in("Ada")
            assert session_of(ada) != planted  # signing in made a new session
            status, me, _ = await ada.call("GET", "/me")
            assert me["person"]["id"] == ada.id
            # the planted id still opens only Mallory's account: she learns nothing of Ada
            status, me, _ = await mallory.call("GET", "/me")
            assert status == 200 and me["person"]["id"] == mallory.id
            status, sessions, _ = await mallory.call("GET", "/me/sessions")
            assert len(sessions) == 1
        finally:
            await ada.close()
            await mallory.close()


async def test_an_expired_key_and_an_expired_reset_link_are_refused_clearly(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        try:
            await ada.sign_up_and_in()
            status, made, _ = await ada.call("POST", f"/accounts/{ada.id}/keys", {
                "name": "ci", "scopes": ["account.read"], "expires_in_days": 1})
            assert status == 201 and made["expires_at"] > time.time()
            key = {"Authorization": f"Bearer {made['key']}"}
            async with aiohttp.ClientSession() as http:
                mine = f"{config.base_url}/accounts/{ada.id}"
                async with http.get(mine, headers=key) as answer:
                    assert answer.status == 200
                # a day later
                await app[DATABASE].execute(
                    "UPDATE api_keys SET expires_at = ? WHERE key_id = ?", time.time() - 1,
                    made["id"])
                async with http.get(mine, headers=key) as answer:
                    assert answer.status == 401
                    assert "expired" in (await answer.json())["error"]
            status, keys, _ = await ada.call("GET", f"/accounts/{ada.id}/keys")
            listed = next(k for k in keys if k["id"] == made["id"])  # listed, as lapsed
            assert listed["expires_at"] < time.time() and listed["revoked_at"] is None

            await ada.call("POST", "/auth/reset", {"email": ada.email})
            token = await ada.link_token("reset")
            await app[DATABASE].execute("UPDATE link_tokens SET expires_at = ? WHERE "
                                        "purpose = 'reset'", time.time() - 1)
            status, body, _ = await ada.call("POST", "/auth/reset/confirm", {
                "token": token, "password": "a brand new one 2"})
            assert status == 400 and "expired" in body["error"], body
            await ada.sign_in(PASSWORD)  # the password is unchanged
        finally:
            await ada.close()


async def test_only_an_organisations_admins_read_its_security_log(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (app, config):
        ada = Person(config.base_url, smtp_server, "ada@example.org")
        bo = Person(config.base_url, smtp_server, "bo@example.org")
        cy = Person(config.base_url, smtp_server, "cy@example.org")
        try:
            for person in (ada, bo, cy):
                await person.sign_up_and_in()
            _, org, _ = await ada.call("POST", "/accounts", {"name": "Label"})
            service = app[ACCOUNTS]
            await service.admin_set_member(org["id"], bo.id, "member")
            await service.admin_set_member(org["id"], cy.id, "admin")
            path = f"/accounts/{org['id']}/audit"
            status, body, _ = await bo.call("GET", path)
            assert status == 403 and "account.admin" in body["error"], body
            for admin in (ada, cy):
                status, events, _ = await admin.call("GET", path)
                assert status == 200
                assert {(e["action"], e["target"]) for e in events} >= {
                    ("role.changed", bo.id), ("role.changed", cy.id)}
        finally:
            for person in (ada, bo, cy):
                await person.close()


async def test_the_session_cookie_is_httponly_lax_and_secure_behind_https(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    for public_url in (None, "https://studio.example"):
        port = free_port()
        async with accounts_server(tmp_path / str(port), smtp_server, port=port,
                                   public_url=public_url) as (app, config):
            await app[ACCOUNTS].create_person("ada@example.org", PASSWORD, "Ada")
            host = {"Host": "studio.example"} if public_url else {}
            async with aiohttp.ClientSession() as http, http.post(
                    f"http://127.0.0.1:{port}/auth/sign-in", headers=host,
                    json={"email": "ada@example.org", "password": PASSWORD}) as answer:
                assert answer.status == 200, await answer.text()
                cookie = next(v for v in answer.headers.getall("Set-Cookie")
                              if v.startswith("mbs_session="))
            attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
            assert {"httponly", "path", "max-age", "samesite"} <= attributes
            assert "SameSite=Lax" in cookie
            secret = cookie.split(";")[0].split("=", 1)[1]
            assert len(secret) >= 43  # 256 random bits, base64url
            assert ("secure" in attributes) == (public_url is not None)
