"""Proof that an organisation's single sign-on domains are its own: a DNS TXT record.

Each email domain an organisation's provider covers gets a random token when it is
listed. An admin publishes it as ::

    _maxbooster-challenge.example.com.  TXT  "maxbooster-domain-verification=TOKEN"

and asks the server to check (:meth:`DomainProofs.verify`), which reads the record with
dnspython's asynchronous resolver (:class:`TxtLookup`: the system's resolvers, or the
servers configured, with a timeout). Until a domain is verified it is *pending*: an
address in it signs nobody in through the organisation's provider. A verification
holds for ``reverify_after`` seconds (a week by default); after that the record is
read again when a newcomer would join through the domain (:meth:`DomainProofs.stale`),
and a record that is gone puts the domain back to pending.

Table ``sso_domains`` (``accounts/migrations/0003_sso_domains.sql``), by ``account_id``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.resolver

from database import Database, Row

from .errors import AccountError

#: The label under the domain where its TXT record is published.
CHALLENGE_LABEL = "_maxbooster-challenge"
#: What the record's text starts with; the organisation's token follows.
RECORD_PREFIX = "maxbooster-domain-verification="
#: Security-log actions.
DOMAIN_ADDED, DOMAIN_VERIFIED = "sso.domain_added", "sso.domain_verified"
DOMAIN_REMOVED, DOMAIN_LAPSED = "sso.domain_removed", "sso.domain_lapsed"
#: How long a verification holds before a newcomer's join reads the record again.
REVERIFY_AFTER = 7 * 24 * 3600.0
DNS_TIMEOUT = 5.0


class DomainNotProven(AccountError):
    """The domain's TXT record is missing or holds another token.

    ``reason`` is ``nxdomain`` (the name does not exist), ``no_record`` (it has no TXT
    record) or ``wrong_token`` (its TXT records hold another value).
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class DnsUnavailable(AccountError):
    """The DNS could not answer (timeout, server failure): nothing was decided."""


@dataclass(frozen=True)
class SsoDomain:
    """An email domain of an organisation's provider and the state of its proof."""

    account_id: str
    domain: str
    token: str
    added_at: float
    verified_at: float | None = None
    checked_at: float | None = None
    last_error: str = ""

    @property
    def verified(self) -> bool:
        """Whether the domain is proven (a pending one signs nobody in)."""
        return self.verified_at is not None

    @property
    def status(self) -> str:
        """``verified`` or ``pending``."""
        return "verified" if self.verified else "pending"

    @property
    def record_name(self) -> str:
        """The name of the TXT record to publish."""
        return f"{CHALLENGE_LABEL}.{self.domain}"

    @property
    def record_value(self) -> str:
        """The text of the TXT record to publish."""
        return RECORD_PREFIX + self.token


def _domain(row: Row) -> SsoDomain:
    return SsoDomain(account_id=row["account_id"], domain=row["domain"], token=row["token"],
                     added_at=row["added_at"], verified_at=row["verified_at"],
                     checked_at=row["checked_at"], last_error=row["last_error"])


class SsoDomainStore:
    """Organisations' domains and their proofs in the ``sso_domains`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, org_id: str) -> list[SsoDomain]:
        """``org_id``'s domains, by name."""
        rows = await self.db.fetch(
            "SELECT * FROM sso_domains WHERE account_id = ? ORDER BY domain", org_id)
        return [_domain(row) for row in rows]

    async def get(self, org_id: str, domain: str) -> SsoDomain | None:
        """``org_id``'s ``domain`` (None: not one of its domains)."""
        row = await self.db.fetchrow(
            "SELECT * FROM sso_domains WHERE account_id = ? AND domain = ?", org_id, domain)
        return None if row is None else _domain(row)

    async def add(self, org_id: str, domain: str) -> SsoDomain:
        """Make ``domain`` one of ``org_id``'s, pending, with a new token."""
        added = SsoDomain(account_id=org_id, domain=domain, token=secrets.token_urlsafe(24),
                          added_at=time.time())
        await self.db.execute(
            "INSERT INTO sso_domains (account_id, domain, token, added_at) VALUES (?, ?, ?, ?)",
            added.account_id, added.domain, added.token, added.added_at)
        return added

    async def remove(self, org_id: str, domain: str) -> bool:
        """Forget ``org_id``'s ``domain``; False if it had no such domain."""
        return bool(await self.db.execute(
            "DELETE FROM sso_domains WHERE account_id = ? AND domain = ?", org_id, domain))

    async def record_check(self, checked: SsoDomain) -> None:
        """Keep the outcome of a check (``verified_at``, ``checked_at``, ``last_error``)."""
        await self.db.execute(
            "UPDATE sso_domains SET verified_at = ?, checked_at = ?, last_error = ? "
            "WHERE account_id = ? AND domain = ?", checked.verified_at, checked.checked_at,
            checked.last_error, checked.account_id, checked.domain)


def parse_server(text: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6]:port`` as (address, port); ValueError if bad."""
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = int(rest.removeprefix(":"))
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = int(number)
    if not host or not 0 < port < 65536:
        raise ValueError(f"DNS server {text!r}: give an address, optionally with :PORT")
    return host, port


class TxtLookup:
    """Reads TXT records with dnspython's asynchronous resolver.

    ``servers`` are ``host`` or ``host:port`` (none: the system's resolvers, from
    ``/etc/resolv.conf``); a lookup gives up after ``timeout`` seconds.
    """

    def __init__(self, servers: Sequence[str] = (), timeout: float = DNS_TIMEOUT) -> None:
        self.resolver = dns.asyncresolver.Resolver(configure=not servers)
        if servers:
            self.resolver.nameservers = [dns.nameserver.Do53Nameserver(*parse_server(s))
                                         for s in servers]
        self.resolver.timeout = self.resolver.lifetime = float(timeout)
        self.resolver.cache = None

    async def txt(self, name: str) -> list[str]:
        """The texts of ``name``'s TXT records; :class:`DomainNotProven` when it has
        none, :class:`DnsUnavailable` when the DNS does not answer."""
        try:
            answer = await self.resolver.resolve(dns.name.from_text(name), "TXT",
                                                 search=False)
        except dns.resolver.NXDOMAIN:
            raise DomainNotProven(f"{name} does not exist in the DNS: publish the TXT "
                                  f"record there (changes may take a while to show)",
                                  "nxdomain") from None
        except dns.resolver.NoAnswer:
            raise DomainNotProven(f"{name} has no TXT record: publish the TXT record "
                                  f"there (changes may take a while to show)",
                                  "no_record") from None
        except dns.exception.Timeout:
            raise DnsUnavailable(f"the DNS did not answer for {name} within "
                                 f"{self.resolver.lifetime:g} s; nothing was verified, try "
                                 f"again later") from None
        except dns.exception.DNSException as exc:
            raise DnsUnavailable(f"the DNS could not be asked about {name} ({exc}); "
                                 f"nothing was verified, try again later") from None
        return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


async def check_record(lookup: TxtLookup, domain: SsoDomain) -> None:
    """Return when ``domain``'s TXT record holds its token; else raise why not."""
    found = await lookup.txt(domain.record_name)
    if domain.record_value in (text.strip() for text in found):
        return
    ours = [text for text in found if text.startswith(RECORD_PREFIX)]
    shown = ", ".join(repr(text[:80]) for text in (ours or found)[:3])
    raise DomainNotProven(f"the TXT record of {domain.record_name} holds {shown}, not "
                          f"{domain.record_value!r}: publish that value (the token is "
                          f"this organisation's own)", "wrong_token")


class DomainProofs:
    """The domains of organisations' providers: listing them, proving them, asking
    whether one lets newcomers in."""

    def __init__(self, store: SsoDomainStore, lookup: TxtLookup, *,
                 reverify_after: float = REVERIFY_AFTER) -> None:
        self.store = store
        self.lookup = lookup
        self.reverify_after = reverify_after

    async def sync(self, org_id: str, domains: Sequence[str]) -> tuple[list[str], list[str]]:
        """Make ``domains`` ``org_id``'s: new ones pending, dropped ones forgotten (the
        others keep their token and proof); the domains (added, removed)."""
        have = {d.domain for d in await self.store.list(org_id)}
        added = sorted(set(domains) - have)
        removed = sorted(have - set(domains))
        for domain in added:
            await self.store.add(org_id, domain)
        for domain in removed:
            await self.store.remove(org_id, domain)
        return added, removed

    async def verify(self, found: SsoDomain) -> SsoDomain:
        """Read ``found``'s TXT record now and keep the outcome: the proven domain, or
        :class:`DomainNotProven` (pending from now on) or :class:`DnsUnavailable`
        (its proof unchanged)."""
        now = time.time()
        try:
            await check_record(self.lookup, found)
        except DomainNotProven as exc:
            await self.store.record_check(replace(found, verified_at=None, checked_at=now,
                                                  last_error=str(exc)))
            raise
        except DnsUnavailable as exc:
            await self.store.record_check(replace(found, checked_at=now, last_error=str(exc)))
            raise
        proven = replace(found, verified_at=now, checked_at=now, last_error="")
        await self.store.record_check(proven)
        return proven

    def stale(self, found: SsoDomain) -> bool:
        """Whether ``found``'s proof is older than ``reverify_after`` (read it again)."""
        return found.verified_at is not None and (
            time.time() - found.verified_at > self.reverify_after)
