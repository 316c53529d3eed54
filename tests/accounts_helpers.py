"""A running server with accounts, a real SMTP server to read its mail, and browsers-to-be.

:class:`Person` is one HTTP client with its own cookie jar: it signs up, reads
its mail from the SMTP server, follows links and sends the CSRF token on writes.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from loopback import free_port
from nodepeer import running_server
from smtp_server import SmtpServer, links_in

from accounts.passwords import Passwords
from accounts.service import AccountService, MailLog
from accounts.sessions import DatabaseSessions, Sessions
from accounts.store import AccountStore
from accounts.throttle import ThrottleRule
from database import open_database
from dawserver.config import ServerConfig

#: Cheap argon2id for tests (the default costs ~0.4 s of one core per sign-in).
TEST_HASHING = (1, 1024, 1)
PASSWORD = "correct horse battery"
#: Two free failures, then a wait long enough that no test outruns it.
THROTTLE = ThrottleRule(free_failures=2, base=60.0, cap=600.0)


@asynccontextmanager
async def mail_logged_service(database_url: str) -> AsyncIterator[AccountService]:
    """An :class:`AccountService` over a migrated store at ``database_url``.

    It mails to a :class:`MailLog`, hashes cheaply and throttles with :data:`THROTTLE`.
    """
    async with open_database(database_url) as db:
        store = AccountStore(db)
        await store.migrate()
        yield AccountService(store, Sessions(DatabaseSessions(db)), MailLog(),
                             passwords=Passwords(*TEST_HASHING), throttle=THROTTLE)


def server_config(tmp_path: Path, smtp: SmtpServer, **overrides: Any) -> ServerConfig:
    """A server on a free port mailing through ``smtp``, with cheap password hashing."""
    settings: dict[str, Any] = {"port": free_port(), "data_dir": tmp_path / "data",
                                "mail_url": smtp.url, "password_hashing": TEST_HASHING,
                                **overrides}
    return ServerConfig(**settings)


class Person:
    """One browser-like client: a cookie jar, the CSRF token once signed in."""

    def __init__(self, base_url: str, smtp: SmtpServer, email: str) -> None:
        self.base_url, self.smtp, self.email = base_url, smtp, email
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.csrf = ""
        self.id = ""

    async def call(self, method: str, path: str, json: Any = None, *, csrf: bool = True,
                   headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
        """``(status, body, headers)`` of one request; writes carry the CSRF token."""
        sent = dict(headers or {})
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            sent["X-CSRF-Token"] = self.csrf
        async with self.http.request(method, self.base_url + path, json=json,
                                     headers=sent) as response:
            # a rotated session (the person's roles changed) answers its new CSRF token
            self.csrf = response.headers.get("X-CSRF-Token", self.csrf)
            body = (await response.json() if response.content_type == "application/json"
                    else await response.read())
            return response.status, body, response.headers

    def mails(self, kind: str) -> list[Any]:
        """Mail of ``kind`` (verify, reset, exists, invite, notice) received for this person."""
        return [m for m in self.smtp.messages if self.email in m["To"]
                and str(m["Message-ID"]).startswith(f"<{kind}.")]

    async def mail(self, kind: str, count: int = 1, timeout: float = 20.0) -> Any:
        """The ``count``-th mail of ``kind`` to this person, once it has arrived."""
        async with asyncio.timeout(timeout):
            while len(self.mails(kind)) < count:
                await asyncio.sleep(0.05)
        return self.mails(kind)[count - 1]

    async def link_token(self, kind: str, count: int = 1) -> str:
        """The ``token`` of the link in the ``count``-th mail of ``kind``."""
        link = links_in(await self.mail(kind, count), "plain")[0]
        return urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]

    async def sign_up_and_in(self, name: str = "") -> dict[str, Any]:
        """Sign up, verify by the mailed link, sign in; the sign-in answer."""
        status, _, _ = await self.call("POST", "/auth/sign-up", {
            "email": self.email, "password": PASSWORD, "name": name or self.email})
        assert status == 202
        status, body, _ = await self.call("POST", "/auth/verify",
                                          {"token": await self.link_token("verify")})
        assert status == 200, body
        return await self.sign_in()

    async def sign_in(self, password: str = PASSWORD) -> dict[str, Any]:
        status, body, _ = await self.call("POST", "/auth/sign-in", {
            "email": self.email, "password": password})
        assert status == 200, body
        self.csrf, self.id = body.get("csrf_token") or "", (body.get("person") or {}).get(
            "id", "")
        return body

    async def close(self) -> None:
        await self.http.close()

    async def __aenter__(self) -> Person:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


@asynccontextmanager
async def accounts_server(tmp_path: Path, smtp: SmtpServer, **overrides: Any
                          ) -> AsyncIterator[tuple[Any, ServerConfig]]:
    """A running server with accounts, mailing through ``smtp``."""
    config = server_config(tmp_path, smtp, **overrides)
    async with running_server(config) as app:
        yield app, config


async def storage_overrides(storage: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """:func:`server_config` overrides that keep data on ``storage``: ``"local"`` disk,
    or ``"s3"``, a new bucket of the test session's S3 server."""
    if storage == "local":
        return {}
    from test_storage_http import make_bucket

    s3_server = request.getfixturevalue("s3_server")
    return {"storage_url": f"s3://{await make_bucket(s3_server)}/main",
            "storage_options": s3_server.settings()}
