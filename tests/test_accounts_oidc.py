"""Sign-in with an OpenID provider: the whole flow against a local provider over TLS.

The provider (tests/fake_oidc.py) checks what a real one checks: the client's secret,
single-use codes that expire, the redirect URI and the PKCE verifier; it signs RS256 ID
tokens and publishes its keys. Each failure it can be switched to must end in a
:class:`ProviderError` that says what was wrong.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import socket
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
import pytest_asyncio
from fake_oidc import FakeOidcProvider, FakeUser

from accounts.errors import ProviderError
from accounts.oidc import (
    LOGIN_LIFETIME,
    OidcClient,
    OidcIdentity,
    PendingLogin,
    PendingLogins,
    ProviderConfig,
)
from accounts.store import AccountStore
from database import Database, open_database

pytestmark = pytest.mark.asyncio

REDIRECT = "https://studio.example/auth/callback"


@pytest_asyncio.fixture
async def provider():
    async with FakeOidcProvider() as fake:
        yield fake


@pytest_asyncio.fixture
async def http(provider: FakeOidcProvider):
    """One session for the browser and the client, trusting the provider's certificate."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=provider.trust)) as s:
        yield s


def config_for(provider: FakeOidcProvider, **changes: object) -> ProviderConfig:
    config = ProviderConfig("fake", provider.issuer, provider.client_id,
                            provider.client_secret)
    return dataclasses.replace(config, **changes)


@pytest_asyncio.fixture
async def client(provider: FakeOidcProvider, http: aiohttp.ClientSession):
    async with OidcClient(config_for(provider), session=http) as rp:
        yield rp


async def follow(http: aiohttp.ClientSession, url: str) -> dict[str, str]:
    """The browser: open the authorize URL; the query of the redirect back to us."""
    async with http.get(url, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        location = response.headers["Location"]
    assert location.startswith(REDIRECT + "?"), location
    return dict(parse_qsl(urlsplit(location).query))


async def sign_in(client: OidcClient, http: aiohttp.ClientSession
                  ) -> tuple[PendingLogin, dict[str, str]]:
    """Start a sign-in and pass the provider: what the server kept, and the callback query."""
    url, pending = await client.begin(REDIRECT)
    return pending, await follow(http, url)


async def finish(client: OidcClient, pending: PendingLogin,
                 callback: dict[str, str]) -> OidcIdentity:
    return await client.finish(pending, callback.get("state", ""), callback.get("code"),
                               error=callback.get("error"))


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


async def test_a_person_signs_in_with_pkce_state_and_nonce(
        provider: FakeOidcProvider, client: OidcClient, http: aiohttp.ClientSession) -> None:
    pending, callback = await sign_in(client, http)

    asked = provider.authorize_requests[-1].params
    assert asked["response_type"] == "code" and asked["client_id"] == provider.client_id
    assert asked["redirect_uri"] == REDIRECT and asked["scope"] == "openid email profile"
    assert asked["state"] == pending.state == callback["state"]
    assert asked["nonce"] == pending.nonce and len(pending.nonce) >= 32
    assert asked["code_challenge_method"] == "S256"
    assert asked["code_challenge"] == s256(pending.code_verifier)
    assert "code_verifier" not in asked and pending.code_verifier not in repr(pending)

    identity = await finish(client, pending, callback)
    user = provider.user
    assert identity == OidcIdentity(provider.issuer, user.subject, user.email, True, user.name)
    exchange = provider.token_requests[-1]
    assert exchange.form["code_verifier"] == pending.code_verifier
    assert exchange.form["redirect_uri"] == REDIRECT
    assert exchange.auth_method == "client_secret_basic"

    # A second sign-in reuses the discovery document and the keys.
    await finish(client, *await sign_in(client, http))
    assert (provider.discovery_requests, provider.jwks_requests) == (1, 1)


async def test_the_provider_refuses_a_code_without_its_pkce_verifier(
        client: OidcClient, http: aiohttp.ClientSession) -> None:
    pending, callback = await sign_in(client, http)
    other = dataclasses.replace(pending, code_verifier=pending.code_verifier[::-1])
    with pytest.raises(ProviderError, match="invalid_grant.*code verifier.*start the sign-in"):
        await finish(client, other, callback)


async def test_a_provider_offering_only_client_secret_post_gets_it() -> None:
    async with (
        FakeOidcProvider(auth_methods=("client_secret_post",)) as only_post,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=only_post.trust)) as http,
        OidcClient(config_for(only_post), session=http) as client,
    ):
        identity = await finish(client, *await sign_in(client, http))
    assert identity.subject == only_post.user.subject
    assert only_post.token_requests[-1].auth_method == "client_secret_post"


async def test_a_wrong_client_secret_is_reported_as_a_configuration_problem(
        provider: FakeOidcProvider, http: aiohttp.ClientSession) -> None:
    async with OidcClient(config_for(provider, client_secret="wrong"), session=http) as client:
        pending, callback = await sign_in(client, http)
        with pytest.raises(ProviderError, match="invalid_client.*client id and secret"):
            await finish(client, pending, callback)


async def test_an_expired_code_is_refused(
        provider: FakeOidcProvider, client: OidcClient, http: aiohttp.ClientSession) -> None:
    pending, callback = await sign_in(client, http)
    provider.expire_codes()
    with pytest.raises(ProviderError, match="refused the code: invalid_grant"):
        await finish(client, pending, callback)


async def test_a_code_works_once(client: OidcClient, http: aiohttp.ClientSession) -> None:
    pending, callback = await sign_in(client, http)
    await finish(client, pending, callback)
    with pytest.raises(ProviderError, match="invalid_grant"):
        await finish(client, pending, callback)


@pytest_asyncio.fixture
async def database(collab_database_url: str) -> AsyncIterator[Database]:
    """The server's database (SQLite, then PostgreSQL) with the accounts' tables."""
    async with open_database(collab_database_url) as db:
        await AccountStore(db).migrate()
        yield db


async def test_a_replayed_or_unknown_state_finds_no_pending_sign_in(
        client: OidcClient, http: aiohttp.ClientSession, database: Database) -> None:
    logins: PendingLogins[PendingLogin] = PendingLogins(database)
    first, first_callback = await sign_in(client, http)
    second, _ = await sign_in(client, http)
    await logins.put(first)
    await logins.put(second)
    assert first.state != second.state and await logins.count() == 2
    # kept by the hash of the state: the table never holds a usable state
    assert not await database.fetch("SELECT * FROM oidc_pending_logins WHERE lookup_key = ?",
                                    first.state)

    # another server process (its own object, the same database) takes it, once
    elsewhere: PendingLogins[PendingLogin] = PendingLogins(database)
    assert await elsewhere.take(first_callback["state"]) == first
    assert await logins.take(first_callback["state"]) is None
    assert await logins.take("made-up") is None and await logins.count() == 1

    # A callback whose state belongs to another sign-in is refused before any exchange.
    with pytest.raises(ProviderError, match="state does not match"):
        await finish(client, second, first_callback)
    with pytest.raises(ProviderError, match="state does not match"):
        await client.finish(second, "", first_callback["code"])


async def test_pending_sign_ins_expire_after_ten_minutes(
        client: OidcClient, http: aiohttp.ClientSession, database: Database) -> None:
    now = [1000.0]
    logins = PendingLogins(database, clock=lambda: now[0])
    fresh = PendingLogin("s1", "n1", "v" * 43, REDIRECT, created_at=now[0])
    stale = PendingLogin("s2", "n2", "v" * 43, REDIRECT, created_at=now[0])
    await logins.put(fresh)
    await logins.put(stale)
    now[0] += LOGIN_LIFETIME - 1
    assert await logins.take("s1") == fresh
    now[0] += 2
    assert await logins.take("s2") is None
    # an expired one is dropped when the next sign-in starts
    await logins.put(PendingLogin("s3", "n3", "v" * 43, REDIRECT, created_at=now[0]))
    await logins.put(PendingLogin("s4", "n4", "v" * 43, REDIRECT, created_at=now[0] - 700))
    now[0] += 1
    await logins.put(PendingLogin("s5", "n5", "v" * 43, REDIRECT, created_at=now[0]))
    assert await logins.count() == 2

    # The client refuses a callback for a sign-in that was kept too long, too.
    pending, callback = await sign_in(client, http)
    async with OidcClient(client.config, session=http,
                          clock=lambda: time.time() + LOGIN_LIFETIME + 1) as late:
        with pytest.raises(ProviderError, match="took longer than 600 s"):
            await finish(late, pending, callback)


async def test_pending_sign_ins_are_bounded(database: Database) -> None:
    logins = PendingLogins(database, max_entries=3)
    for n in range(5):
        await logins.put(PendingLogin(f"s{n}", "n", "v" * 43, REDIRECT,
                                      created_at=time.time() + n))
    assert await logins.count() == 3
    assert await logins.take("s0") is None and await logins.take("s4") is not None


async def test_an_id_token_for_another_audience_is_refused(
        provider: FakeOidcProvider, client: OidcClient, http: aiohttp.ClientSession) -> None:
    provider.id_token_overrides["aud"] = "someone-else.apps.example"
    with pytest.raises(ProviderError, match="audience 'someone-else.apps.example'"):
        await finish(client, *await sign_in(client, http))


async def test_several_audiences_need_this_client_as_authorized_party(
        provider: FakeOidcProvider, client: OidcClient, http: aiohttp.ClientSession) -> None:
    provider.id_token_overrides.update(aud=[provider.client_id, "other"], azp="other")
    with pytest.raises(ProviderError, match="authorized party"):
        await finish(client, *await sign_in(client, http))
    provider.id_token_overrides["azp"] = None
    with pytest.raises(ProviderError, match="lacks the claim 'azp'"):
        await finish(client, *await sign_in(client, http))
    provider.id_token_overrides["azp"] = provider.client_id
    identity = await finish(client, *await sign_in(client, http))
    assert identity.subject == provider.user.subject


async def test_an_id_token_with_a_bad_signature_is_refused(
        provider: FakeOidcProvider, client: OidcClient, http: aiohttp.ClientSession) -> None:
    provider.sign_with_foreign_key = True
    with pytest.raises(ProviderError, match="bad signature"):
        await finish(client, *await sign_in(client, http))


async def test_an_id_token_with_another_nonce_is_refused(
        provider: FakeOidcProvider, client: OidcClient, http: aiohttp.ClientSession) -> None:
    provider.id_token_overrides["nonce"] = "a-nonce-from-another-sign-in"
    with pytest.raises(ProviderError, match="nonce other than the one this sign-in sent"):
        await finish(client, *await sign_in(client, http))
    provider.id_token_overrides["nonce"] = None
    with pytest.raises(ProviderError, match="lacks the claim 'nonce'"):
        await finish(client, *await sign_in(client, http))


async def test_an_id_token_that_does_not_match_its_access_token_is_refused(
        provider: FakeOidcProvider, client: OidcClient, http: aiohttp.ClientSession) -> None:
    provider.id_token_overrides["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA"
    with pytest.raises(ProviderError, match="at_hash"):
        await finish(client, *await sign_in(client, http))


async def test_an_expired_id_token_is_refused(
        provider: FakeOidcProvider, http: aiohttp.ClientSession) -> None:
    ahead = OidcClient(config_for(provider), session=http, clock=lambda: time.time() + 7200)
    with pytest.raises(ProviderError, match="expired.*check this server's clock"):
        await finish(ahead, *await sign_in(ahead, http))
    behind = OidcClient(config_for(provider), session=http, clock=lambda: time.time() - 600)
    with pytest.raises(ProviderError, match="issued in the future"):
        await finish(behind, *await sign_in(behind, http))


async def test_a_discovery_document_naming_another_issuer_is_refused(
        provider: FakeOidcProvider, client: OidcClient) -> None:
    provider.discovery_overrides["issuer"] = "https://accounts.impostor.example"
    with pytest.raises(ProviderError, match="names the issuer 'https://accounts.impostor"):
        await client.begin(REDIRECT)


async def test_a_wrong_issuer_url_finds_no_discovery_document(
        provider: FakeOidcProvider, http: aiohttp.ClientSession) -> None:
    async with OidcClient(config_for(provider, issuer=provider.issuer + "/tenant"),
                          session=http) as client:
        with pytest.raises(ProviderError, match="HTTP 404 .*check the issuer URL"):
            await client.begin(REDIRECT)


async def test_a_discovery_document_with_plain_http_endpoints_is_refused(
        provider: FakeOidcProvider, client: OidcClient) -> None:
    provider.discovery_overrides["token_endpoint"] = "http://accounts.example/token"
    with pytest.raises(ProviderError, match="token_endpoint.*https"):
        await client.discover()


async def test_an_id_token_from_another_issuer_is_refused_unless_configured(
        provider: FakeOidcProvider, client: OidcClient, http: aiohttp.ClientSession) -> None:
    provider.id_token_overrides["iss"] = "fake.example"
    with pytest.raises(ProviderError, match="issuer 'fake.example'"):
        await finish(client, *await sign_in(client, http))
    config = config_for(provider, id_token_issuers=("fake.example",))
    async with OidcClient(config, session=http) as lenient:
        identity = await finish(lenient, *await sign_in(lenient, http))
    assert identity.issuer == provider.issuer


async def test_rotated_keys_are_fetched_again_once(
        provider: FakeOidcProvider, client: OidcClient, http: aiohttp.ClientSession) -> None:
    await finish(client, *await sign_in(client, http))
    assert provider.jwks_requests == 1
    old = provider.published_keys
    provider.rotate_keys()
    identity = await finish(client, *await sign_in(client, http))
    assert identity.subject == provider.user.subject and provider.jwks_requests == 2

    # A kid the provider still does not publish after one more fetch is refused.
    provider.rotate_keys()
    provider.published_keys = old
    with pytest.raises(ProviderError, match="key its key set does not publish"):
        await finish(client, *await sign_in(client, http))
    assert provider.jwks_requests == 3


async def test_the_email_comes_from_userinfo_when_the_id_token_lacks_it(
        provider: FakeOidcProvider, client: OidcClient, http: aiohttp.ClientSession) -> None:
    provider.user = FakeUser(subject="42", email="grace@example.com", email_verified=False,
                             name="Grace Hopper")
    provider.claims_in_id_token = False
    identity = await finish(client, *await sign_in(client, http))
    assert identity == OidcIdentity(provider.issuer, "42", "grace@example.com", False,
                                    "Grace Hopper")
    provider.userinfo_overrides["sub"] = "43"
    with pytest.raises(ProviderError, match="describes '43', not the signed-in '42'"):
        await finish(client, *await sign_in(client, http))


async def test_a_person_who_declines_comes_back_with_an_error(
        provider: FakeOidcProvider, client: OidcClient, http: aiohttp.ClientSession) -> None:
    provider.auto_approve = False
    url, pending = await client.begin(REDIRECT)
    async with http.get(url, allow_redirects=False) as page:
        assert page.status == 200 and "Sign in" in await page.text()
    declined = dict(parse_qsl(urlsplit(provider.deny(pending.state)).query))
    with pytest.raises(ProviderError, match="access_denied"):
        await finish(client, pending, declined)

    url, pending = await client.begin(REDIRECT)
    async with http.get(url, allow_redirects=False) as page:
        assert page.status == 200
    approved = dict(parse_qsl(urlsplit(provider.approve(pending.state)).query))
    assert (await finish(client, pending, approved)).subject == provider.user.subject


async def test_an_unreachable_provider_is_reported() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = ProviderConfig("down", f"https://127.0.0.1:{port}", "id", "secret")
    async with OidcClient(config, timeout=5) as client:
        with pytest.raises(ProviderError, match="could not reach the discovery document"):
            await client.discover()


async def test_a_configuration_without_https_or_openid_is_refused() -> None:
    with pytest.raises(ValueError, match="must be an https URL"):
        OidcClient(ProviderConfig("x", "http://accounts.example", "id", "secret"))
    with pytest.raises(ValueError, match="lack 'openid'"):
        OidcClient(ProviderConfig("x", "https://accounts.example", "id", "secret",
                                  scopes=("email",)))
    google = ProviderConfig.google("id.apps.googleusercontent.com", "GOCSPX-secret")
    assert google.issuer == "https://accounts.google.com" and "GOCSPX" not in repr(google)
