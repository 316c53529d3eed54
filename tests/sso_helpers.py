"""Organisations' single sign-on in tests: a server trusting a local provider and a
local DNS server, an organisation with its provider registered, a sign-in through it.

The organisation's provider is a second local provider (tests/fake_oidc.py) over TLS
with its own certificate, trusted through ``single_sign_on["ca_file"]``; domain checks
ask a DNS server on loopback (tests/dns_server.py) through ``dns_servers``.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from accounts_helpers import Person, accounts_server
from dns_server import DnsServer
from fake_oidc import FakeOidcProvider, FakeUser
from smtp_server import SmtpServer

#: How long a domain check waits for the DNS in tests (a silent server times out).
DNS_TIMEOUT = 0.5


@asynccontextmanager
async def sso_server(tmp_path: Path, smtp: SmtpServer, user: FakeUser | None = None, *,
                     allow_private: bool = True
                     ) -> AsyncIterator[tuple[Any, Any, FakeOidcProvider, DnsServer]]:
    """A server whose organisations may use ``provider`` (its CA trusted), checking
    domains with ``dns``."""
    async with FakeOidcProvider(client_id="label-sso.example", client_secret="label-secret",
                                user=user) as provider, DnsServer() as dns:
        assert provider.trust is not None
        ca_file = tmp_path / "org-provider-ca.pem"
        ca_file.write_text("".join(ssl.DER_cert_to_PEM_cert(der) for der in
                                   provider.trust.get_ca_certs(binary_form=True)))
        settings = {"ca_file": str(ca_file), "allow_private_issuers": allow_private,
                    "dns_servers": [dns.address], "dns_timeout": DNS_TIMEOUT}
        async with accounts_server(tmp_path, smtp, single_sign_on=settings) as (app, config):
            yield app, config, provider, dns


def settings_of(provider: FakeOidcProvider, **changes: Any) -> dict[str, Any]:
    return {"issuer": provider.issuer, "client_id": provider.client_id,
            "client_secret": provider.client_secret, "domains": ["example.com"], **changes}


def publish(dns: DnsServer, check: dict[str, Any]) -> None:
    """Publish the TXT record a domain's check (``domain_checks`` entry) asks for."""
    assert check["record_type"] == "TXT"
    dns.zone[check["record_name"]] = [check["record_value"]]


async def label_with_sso(config: Any, smtp: SmtpServer, provider: FakeOidcProvider,
                         dns: DnsServer | None = None) -> tuple[Person, str]:
    """Ada (owner) and her organisation, its provider registered (and with ``dns``, its
    domains proven by their TXT records)."""
    ada = Person(config.base_url, smtp, "ada@label.org")
    await ada.sign_up_and_in("Ada")
    _, org, _ = await ada.call("POST", "/accounts", {"name": "Label"})
    status, info, _ = await ada.call("PUT", f"/accounts/{org['id']}/sso", settings_of(provider))
    assert status == 200, info
    provider.redirect_uris = (info["redirect_uri"],)
    for check in info["domain_checks"] if dns is not None else ():
        publish(dns, check)
        status, proven, _ = await ada.call(
            "POST", f"/accounts/{org['id']}/sso/domains/{check['domain']}/verify", {})
        assert status == 200 and proven["status"] == "verified", proven
    return ada, org["id"]


async def through(person: Person, provider: FakeOidcProvider, org_id: str,
                  query: str = "", *, back_in: Person | None = None) -> tuple[int, Any, Any]:
    """Start the organisation's sign-in, pass the provider, come back (in ``back_in``'s
    browser when given, else ``person``'s): the callback's answer."""
    async with person.http.get(f"{person.base_url}/auth/sso/{org_id}/start{query}",
                               allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        authorize = response.headers["Location"]
    assert authorize.startswith(provider.issuer + "/authorize?")
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=provider.trust)) as b, \
            b.get(authorize, allow_redirects=False) as response:
        back = response.headers["Location"]
    async with (back_in or person).http.get(back, allow_redirects=False) as response:
        body = (await response.json() if response.content_type == "application/json"
                else await response.read())
        return response.status, body, response.headers
