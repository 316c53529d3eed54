"""Storefronts ("Pro Page"): a seller's handle, theme, template and custom domain.

A seller has one storefront (``mkt_storefronts``, by ``account_id``). Its **handle**
(``/store/{handle}``) and its **custom domain** are unique across sellers: each is a
claim in the reference table ``mkt_store_names`` (``kind`` ``handle`` or ``domain``), won
by an ``INSERT ... ON CONFLICT DO NOTHING`` whose holder is read back. A domain serves
the store only once proved: the seller publishes ::

    _maxbooster-store.example.com.  TXT  "maxbooster-store-verification=TOKEN"

and asks for the check (:meth:`Storefronts.verify_domain`), which reads the record with
dnspython's asynchronous resolver (or the ``txt_lookup`` the plug-in's settings give:
tests).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import dns.asyncresolver
import dns.exception
import dns.resolver

from business.marketplace.errors import CatalogueInvalid, NotForSale, NotFoundHere
from business.marketplace.render_pool import RenderPool
from business.marketplace.sandbox import TemplateRefused

HANDLE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{1,30}[a-z0-9])$")
RESERVED_HANDLES = frozenset({"admin", "api", "store", "stores", "www", "help", "support",
                              "maxbooster", "static", "account", "login", "embed"})
DOMAIN = re.compile(r"^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
CHALLENGE_LABEL = "_maxbooster-store"
RECORD_PREFIX = "maxbooster-store-verification="
#: Seconds a domain -> seller answer is cached by a server (claims change rarely).
HOST_CACHE_S = 30.0
DNS_TIMEOUT = 5.0

TxtLookup = Callable[[str], Awaitable[list[str] | None]]


def host_name(host: str) -> str:
    """A Host header's name as domains are kept: lower case, no port, no final dot."""
    return host.split(":", 1)[0].strip().lower().rstrip(".")


@dataclass
class Storefront:
    """One seller's storefront settings."""

    account_id: str
    handle: str
    name: str = ""
    bio: str = ""
    theme: dict[str, Any] = field(default_factory=dict)
    template: str | None = None
    domain: str | None = None
    domain_token: str | None = None
    domain_verified_at: float | None = None
    updated_at: float = 0.0

    @property
    def title(self) -> str:
        return self.name or self.handle

    def to_json(self) -> dict[str, Any]:
        return {"handle": self.handle, "name": self.name, "bio": self.bio,
                "theme": self.theme, "template": self.template, "domain": self.domain,
                "domain_record": self.domain_record(),
                "domain_verified": self.domain_verified_at is not None,
                "url": f"/store/{self.handle}"}

    def domain_record(self) -> dict[str, str] | None:
        """The TXT record that proves the domain (None: no domain claimed)."""
        if not self.domain or not self.domain_token:
            return None
        return {"name": f"{CHALLENGE_LABEL}.{self.domain}", "type": "TXT",
                "value": f"{RECORD_PREFIX}{self.domain_token}"}


def _from(row: dict[str, Any]) -> Storefront:
    return Storefront(row["account_id"], row["handle"], row["name"], row["bio"],
                      json.loads(row["theme"]), row["template"], row["domain"],
                      row["domain_token"], row["domain_verified_at"],
                      float(row["updated_at"]))


def check_handle(handle: str) -> str:
    """``handle`` lower-cased, or a 422 saying what a handle may be."""
    handle = handle.strip().lower()
    if not HANDLE.match(handle) or handle in RESERVED_HANDLES or "--" in handle:
        raise CatalogueInvalid(
            f"{handle!r} cannot be a store handle: use 3 to 32 lower-case letters, digits "
            "and single hyphens, starting and ending with a letter or digit (not a reserved "
            "word such as 'admin' or 'api')",
            [{"path": "body.handle", "message": "invalid handle"}])
    return handle


def check_domain(domain: str) -> str:
    """``domain`` as a lower-case host name, or a 422."""
    domain = domain.strip().lower().rstrip(".")
    if not DOMAIN.match(domain):
        raise CatalogueInvalid(
            f"{domain!r} is not a domain name: give a host such as beats.example.com "
            "(no scheme, port or path)", [{"path": "body.domain", "message": "invalid domain"}])
    return domain


async def dns_txt(name: str) -> list[str] | None:
    """The TXT strings at ``name`` (None: the name does not exist or has none)."""
    resolver = dns.asyncresolver.Resolver()
    resolver.lifetime = DNS_TIMEOUT
    try:
        answer = await resolver.resolve(name, "TXT")
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return None
    except dns.exception.DNSException as exc:
        raise NotForSale(f"DNS did not answer for {name} ({type(exc).__name__}): try again "
                         "in a minute") from None
    return [b"".join(r.strings).decode("utf-8", "replace") for r in answer]


class Storefronts:
    """Reads and writes of storefronts; the template sandbox they render in."""

    def __init__(self, db: Any, txt_lookup: TxtLookup = dns_txt,
                 sample: Callable[[], dict[str, Any]] | None = None,
                 renderer: RenderPool | None = None) -> None:
        self.db = db
        self.txt_lookup = txt_lookup
        #: The worker processes seller templates are checked and rendered in.
        self.renderer = renderer or RenderPool()
        #: ``sample()``: the data a template is tried with when it is saved.
        self.sample = sample or (lambda: {})
        self._hosts: dict[str, tuple[float, str | None]] = {}
        self._handles: dict[str, tuple[float, Storefront | None]] = {}
        self._facets: dict[str, tuple[float, Any]] = {}
        #: The last error of each seller's template at render time (shown to the seller).
        self.errors: dict[str, str] = {}

    async def of(self, account_id: str) -> Storefront | None:
        row = await self.db.fetchrow("SELECT * FROM mkt_storefronts WHERE account_id = ?",
                                     account_id)
        return None if row is None else _from(row)

    async def mine(self, account_id: str) -> Storefront:
        found = await self.of(account_id)
        if found is None:
            raise NotFoundHere("this account has no storefront yet: PUT "
                               "/api/marketplace/storefront with a handle")
        return found

    async def _holder(self, kind: str, name: str) -> str | None:
        return await self.db.fetchval(
            "SELECT account_id FROM mkt_store_names WHERE kind = ? AND name = ?", kind, name)

    async def by_handle(self, handle: str) -> Storefront:
        """The storefront with ``handle`` (cached :data:`HOST_CACHE_S`; this server's own
        changes clear it), or :class:`NotFoundHere`."""
        handle = handle.lower()
        now = time.monotonic()
        cached = self._handles.get(handle)
        if cached is not None and cached[0] > now:
            found = cached[1]
        else:
            holder = await self._holder("handle", handle)
            found = None if holder is None else await self.of(holder)
            if found is not None and found.handle != handle:
                found = None
            if len(self._handles) > 10_000:
                self._handles.clear()
            self._handles[handle] = (now + HOST_CACHE_S, found)
        if found is None:
            raise NotFoundHere(f"no store {handle!r}")
        return found

    async def facets(self, account_id: str, read: Callable[[], Awaitable[Any]]) -> Any:
        """``await read()`` (the search form's choices), cached :data:`HOST_CACHE_S`."""
        now = time.monotonic()
        cached = self._facets.get(account_id)
        if cached is None or cached[0] <= now:
            if len(self._facets) > 10_000:
                self._facets.clear()
            cached = self._facets[account_id] = (now + HOST_CACHE_S, await read())
        return cached[1]

    def forget(self) -> None:
        """Drop the cached answers (after a change on this server)."""
        self._hosts.clear()
        self._handles.clear()

    async def by_host(self, host: str) -> Storefront | None:
        """The storefront a *proved* custom domain ``host`` serves (cached briefly)."""
        host = host_name(host)
        now = time.monotonic()
        cached = self._hosts.get(host)
        if cached is not None and cached[0] > now:
            account = cached[1]
        else:
            account = await self._holder("domain", host) if DOMAIN.match(host) else None
            if len(self._hosts) > 10_000:
                self._hosts.clear()
            self._hosts[host] = (now + HOST_CACHE_S, account)
        if account is None:
            return None
        found = await self.of(account)
        if found is None or found.domain != host or found.domain_verified_at is None:
            return None
        return found

    async def save(self, account_id: str, data: dict[str, Any]) -> Storefront:
        """Create or change the account's storefront (handle claimed, template checked)."""
        handle = check_handle(data["handle"])
        template = data.get("template")
        if template is not None:
            await self.check_template(template)
        theme = data.get("theme") or {}
        async with self.db.transaction() as tx:
            await tx.execute("INSERT INTO mkt_store_names (kind, name, account_id) "
                             "VALUES ('handle', ?, ?) ON CONFLICT (kind, name) DO NOTHING",
                             handle, account_id)
            holder = await tx.fetchval("SELECT account_id FROM mkt_store_names WHERE "
                                       "kind = 'handle' AND name = ?", handle)
            if holder != account_id:
                raise NotForSale(f"the handle {handle!r} is taken: choose another")
            old = await tx.fetchrow("SELECT * FROM mkt_storefronts WHERE account_id = ?",
                                    account_id)
            now = time.time()
            if old is None:
                await tx.execute(
                    "INSERT INTO mkt_storefronts (account_id, handle, name, bio, theme, "
                    "template, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)", account_id, handle,
                    data.get("name", ""), data.get("bio", ""), json.dumps(theme), template, now)
            else:
                if old["handle"] != handle:
                    await tx.execute("DELETE FROM mkt_store_names WHERE kind = 'handle' AND "
                                     "name = ? AND account_id = ?", old["handle"], account_id)
                await tx.execute(
                    "UPDATE mkt_storefronts SET handle = ?, name = ?, bio = ?, theme = ?, "
                    "template = ?, updated_at = ? WHERE account_id = ?", handle,
                    data.get("name", ""), data.get("bio", ""), json.dumps(theme), template,
                    now, account_id)
        self.forget()
        return await self.mine(account_id)

    async def check_template(self, template: str) -> None:
        """Compile ``template`` and try it on sample data in a render worker; a 422 with
        the sandbox's reason (or the time or memory limit it hit)."""
        try:
            await self.renderer.check(template, self.sample())
        except TemplateRefused as exc:
            raise CatalogueInvalid(f"the store template was refused: {exc}",
                                   [{"path": "body.template", "message": str(exc)}]) from None

    async def claim_domain(self, account_id: str, domain: str | None) -> Storefront:
        """Claim ``domain`` for the account's store (a fresh token to publish), or give up
        the one it has (``None``)."""
        store = await self.mine(account_id)
        domain = None if domain is None else check_domain(domain)
        if domain == store.domain:
            return store
        # A claim reserves nothing: anyone may claim a domain, and only the DNS proof
        # (verify_domain) takes it, from whoever held it before (the domain's owner is
        # whoever publishes its TXT record now), so nobody can squat a domain unproved.
        async with self.db.transaction() as tx:
            await tx.execute("DELETE FROM mkt_store_names WHERE kind = 'domain' AND "
                             "account_id = ?", account_id)
            await tx.execute(
                "UPDATE mkt_storefronts SET domain = ?, domain_token = ?, "
                "domain_verified_at = NULL, updated_at = ? WHERE account_id = ?", domain,
                None if domain is None else secrets.token_urlsafe(24), time.time(),
                account_id)
        self.forget()
        return await self.mine(account_id)

    async def verify_domain(self, account_id: str) -> Storefront:
        """Read the domain's TXT record; a match proves it (the store then answers there)."""
        store = await self.mine(account_id)
        record = store.domain_record()
        if record is None:
            raise NotForSale("claim a domain first: PUT /api/marketplace/storefront/domain")
        found = await self.txt_lookup(record["name"])
        if not found or record["value"] not in found:
            raise NotForSale(f"{record['name']} has no TXT record {record['value']!r} yet: "
                             "publish it at your DNS host and try again (DNS may take a few "
                             "minutes)")
        async with self.db.transaction() as tx:
            # the proof takes the domain over from any store that proved it before
            await tx.execute("UPDATE mkt_storefronts SET domain_verified_at = NULL "
                             "WHERE domain = ? AND account_id <> ?", store.domain, account_id)
            await tx.execute("DELETE FROM mkt_store_names WHERE kind = 'domain' AND "
                             "(name = ? OR account_id = ?)", store.domain, account_id)
            await tx.execute("INSERT INTO mkt_store_names (kind, name, account_id) "
                             "VALUES ('domain', ?, ?)", store.domain, account_id)
            await tx.execute("UPDATE mkt_storefronts SET domain_verified_at = ? "
                             "WHERE account_id = ? AND domain = ?", time.time(), account_id,
                             store.domain)
        self.forget()
        return await self.mine(account_id)
