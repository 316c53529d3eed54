"""The routes the browser pages lean on: who is signed in without a 401, the security log in
pages, and collaboration tokens of the configured lifetime."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from accounts_helpers import Person, accounts_server
from smtp_server import SmtpServer

from collab.tokens import TokenSigner
from dawserver.keys import TOKENS

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]


async def test_the_session_state_answers_visitors_without_a_401(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        ada = Person(config.base_url, smtp_server, "ada@example.com")
        try:
            status, body, headers = await ada.call("GET", "/auth/session")
            assert (status, body) == (200, {"signed_in": False})
            assert "Set-Cookie" not in headers  # no cookie, nothing to clear
            assert (await ada.call("GET", "/me"))[0] == 401  # API clients keep their 401
            await ada.sign_up_and_in("Ada")
            status, body, _ = await ada.call("GET", "/auth/session")
            assert status == 200 and body["signed_in"] is True
            _, me, _ = await ada.call("GET", "/me")
            assert body["me"] == me and body["me"]["csrf_token"] == ada.csrf
            # a link naming an organisation she is not in neither signs her out nor 404s
            status, body, headers = await ada.call("GET", "/auth/session?account=o_nobody")
            assert status == 200 and body["signed_in"] is True
            assert "Set-Cookie" not in headers
            assert (await ada.call("GET", "/me"))[0] == 200
            # a session that ended: not signed in, and the dead cookie is cleared
            assert (await ada.call("POST", "/auth/sign-out", {}))[0] == 200
            ada.http.cookie_jar.update_cookies({"mbs_session": "ended-or-made-up"})
            status, body, headers = await ada.call("GET", "/auth/session")
            assert (status, body) == (200, {"signed_in": False})
            cleared = headers["Set-Cookie"]
            assert cleared.startswith('mbs_session="";') and "Max-Age=0" in cleared
        finally:
            await ada.close()


async def test_the_security_log_pages_back_with_before(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server) as (_, config):
        ada = Person(config.base_url, smtp_server, "ada@example.com")
        try:
            await ada.sign_up_and_in("Ada")
            for _ in range(3):  # more events: sign-ins and a failed one
                await ada.sign_in()
            await ada.call("POST", "/auth/sign-in", {"email": ada.email, "password": "nope"})
            _, whole, _ = await ada.call("GET", f"/accounts/{ada.id}/audit")
            assert len(whole) >= 6
            assert [e["at"] for e in whole] == sorted((e["at"] for e in whole), reverse=True)
            pages, before = [], ""
            while True:
                status, page, _ = await ada.call(
                    "GET", f"/accounts/{ada.id}/audit?limit=2{before}")
                assert status == 200 and len(page) <= 2
                pages.extend(page)
                if len(page) < 2:
                    break
                before = f"&before={page[-1]['at']!r}"
            assert [e["id"] for e in pages] == [e["id"] for e in whole]
            status, body, _ = await ada.call("GET", f"/accounts/{ada.id}/audit?limit=500")
            assert status == 422 and "limit" in str(body)
        finally:
            await ada.close()


async def test_a_collaboration_token_lasts_the_configured_lifetime(
        tmp_path: Path, smtp_server: SmtpServer) -> None:
    async with accounts_server(tmp_path, smtp_server, collab_token_seconds=90.0) as (app,
                                                                                     config):
        ada = Person(config.base_url, smtp_server, "ada@example.com")
        try:
            await ada.sign_up_and_in("Ada")
            _, project, _ = await ada.call("POST", f"/accounts/{ada.id}/projects",
                                           {"name": "Song"})
            status, made, _ = await ada.call("POST", f"/projects/{project['id']}/collab-token",
                                             {})
            assert status == 201, made
            signer: TokenSigner = app[TOKENS]
            grant = signer.verify(made["token"])
            assert grant.expires_at is not None
            assert grant.expires_at - grant.issued_at == pytest.approx(90.0)
            assert made["expires_at"] == pytest.approx(grant.expires_at)
            assert abs(made["expires_at"] - (time.time() + 90.0)) < 30
            with pytest.raises(Exception, match="expired"):
                signer.verify(made["token"], now=grant.expires_at + 1)
        finally:
            await ada.close()
