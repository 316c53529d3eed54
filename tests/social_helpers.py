"""The social plug-in in tests: a small in-test network connector, a server with it, and
databases on SQLite and PostgreSQL.

:class:`InTestNetwork` speaks the connector contract the way OAuth 2.0 networks behave:
codes work once and only with the PKCE verifier of their challenge; refresh tokens
rotate, and a used or revoked one is an invalid grant. It stands in until the
networks' fakes (``business/social/fakes``) replace it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from business.social.errors import NetworkError, Rejected
from business.social.networks.base import OAuthTokens, Published, code_challenge
from dawserver.plugin_api import Principal, hookimpl
from dawserver.plugins import install, load_plugins


class InTestNetwork:
    """One network: OAuth with PKCE, rotating refresh tokens, failures on command."""

    def __init__(self, network: str = "x", *, lifetime_s: float = 3600.0,
                 rotate: bool = True) -> None:
        self.network = network
        self.lifetime_s = lifetime_s
        self.rotate = rotate
        self.challenges: dict[str, str] = {}     # state -> challenge
        self.codes: dict[str, tuple[str, str]] = {}  # code -> (challenge, account)
        self.live_refresh: set[str] = set()
        self.refresh_calls = 0
        self.delays: list[float] = []            # per refresh call, answered late
        self.revoke_used = True
        self.fail_refresh: NetworkError | None = None
        self.account = "remote-1"

    def authorize_url(self, state: str, code_challenge: str, redirect_uri: str) -> str:
        self.challenges[state] = code_challenge
        query = urllib.parse.urlencode({"state": state, "code_challenge": code_challenge,
                                        "code_challenge_method": "S256",
                                        "redirect_uri": redirect_uri})
        return f"https://{self.network}.example/authorize?{query}"

    def grant(self, state: str) -> str:
        """The user allows the app: the code the network sends back."""
        code = secrets.token_hex(8)
        self.codes[code] = (self.challenges.pop(state), self.account)
        return code

    def _tokens(self) -> OAuthTokens:
        refresh = f"rt-{secrets.token_hex(6)}"
        self.live_refresh.add(refresh)
        return OAuthTokens(f"at-{secrets.token_hex(6)}", refresh,
                           time.time() + self.lifetime_s, "post")

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str
                            ) -> OAuthTokens:
        challenge, _ = self.codes.pop(code, (None, None))
        if challenge is None or challenge != code_challenge(code_verifier):
            raise Rejected("invalid_grant: code or verifier wrong", network=self.network,
                           status=400)
        return self._tokens()

    async def refresh(self, refresh_token: str) -> OAuthTokens:
        self.refresh_calls += 1
        delay = self.delays.pop(0) if self.delays else 0.0
        if self.fail_refresh is not None:
            raise self.fail_refresh
        if refresh_token not in self.live_refresh:
            raise Rejected("invalid_grant: refresh token is invalid", network=self.network,
                           status=400)
        if not self.rotate:
            answer = OAuthTokens(f"at-{secrets.token_hex(6)}", None,
                                 time.time() + self.lifetime_s)
        else:
            if self.revoke_used:
                self.live_refresh.discard(refresh_token)
            answer = self._tokens()
        await asyncio.sleep(delay)   # processed now, answered late
        return answer

    async def profile(self, access_token: str) -> dict:
        return {"id": self.account, "name": "Ada Music", "handle": "@ada"}

    async def publish(self, access_token: str, publication: Any) -> Published:
        raise NotImplementedError("publishing is not part of these tests")

    async def find_published(self, access_token: str, dedupe_key: str) -> Published | None:
        return None

    async def quota(self, access_token: str) -> None:
        return None

    async def metrics(self, access_token: str, remote_id: str) -> dict[str, int]:
        return {}


class Networks:
    """A plug-in that gives the social plug-in in-test connectors."""

    PLUGIN_NAME = "test-networks"

    def __init__(self, *connectors: InTestNetwork) -> None:
        self.connectors = list(connectors)

    @hookimpl
    def social_connectors(self, context: Any) -> list[Any]:
        return self.connectors


def header_principal(request: web.Request) -> Principal | None:
    """``X-Account``'s principal with ``X-Role`` (owner) as person ``X-User``."""
    account = request.headers.get("X-Account")
    if not account:
        return None
    return Principal(account, request.headers.get("X-Role", "owner"),
                     request.headers.get("X-User", account))


def who(account: str, user: str, role: str = "owner") -> dict[str, str]:
    """Headers of a request by ``user`` acting on ``account`` with ``role``."""
    return {"X-Account": account, "X-User": user, "X-Role": role}



async def migrated(db: Any) -> None:
    """The social tables, after the job queue's and the event bus's (as the server does)."""
    from business.social.plugin import MIGRATIONS
    from events import MIGRATIONS as EVENTS
    from jobs import MIGRATIONS as JOBS

    await db.migrate([*JOBS, *EVENTS])
    await db.migrate(MIGRATIONS)


class Recorder:
    """A ``publish`` that keeps what it was given (for services built without a server)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, tx: Any, name: str, payload: dict[str, Any],
                       account_id: str) -> str:
        self.events.append((name, payload))
        return name


@contextlib.asynccontextmanager
async def social_app(tmp_path: Path, db_url: str, *networks: InTestNetwork,
                     memberships: dict[tuple[str, str], str] | None = None,
                     people: dict[str, list[str]] | None = None,
                     settings: dict[str, Any] | None = None
                     ) -> AsyncIterator[tuple[TestClient, Any]]:
    """The plug-ins installed on ``db_url`` with ``networks``; (client, plug-in context).

    ``memberships`` maps (organisation or team, person) to a role; ``people`` an account
    to its people's addresses (``context.people_emails``).
    """
    config = {"data_dir": tmp_path / "data", "database_url": db_url,
              "plugins": {"social": {"refresh_check_s": 3600, "expiry_check_s": 3600,
                                     "base_url": "https://studio.example",
                                     **(settings or {})}}}
    app = web.Application()
    context = install(app, config, manager=load_plugins(config, extra=[Networks(*networks)]),
                      identify=header_principal)
    found = dict(memberships or {})

    async def membership(group: str, person: str) -> str | None:
        return found.get((group, person))

    context.membership = membership
    addresses = dict(people or {})

    async def people_emails(account_id: str) -> list[str]:
        return addresses.get(account_id, [])

    context.people_emails = people_emails
    async with TestClient(TestServer(app)) as client:
        yield client, context


async def connect(client: TestClient, network: InTestNetwork, account: str, user: str,
                  **query: str) -> dict[str, Any]:
    """Connect a channel through the OAuth routes, as the browser would; the channel."""
    start = await client.get(f"/api/social/channels/connect/{network.network}",
                             params=query, headers=who(account, user), allow_redirects=False)
    assert start.status == 302, await start.text()
    location = urllib.parse.urlsplit(start.headers["Location"])
    state = urllib.parse.parse_qs(location.query)["state"][0]
    back = await client.get(f"/api/social/channels/callback/{network.network}",
                            params={"state": state, "code": network.grant(state)},
                            allow_redirects=False)
    assert back.status == 302, await back.text()
    channel_id = back.headers["Location"].split("social_channel=")[1]
    answer = await client.get(f"/api/social/channels/{channel_id}", headers=who(account, user))
    assert answer.status == 200
    return await answer.json()
