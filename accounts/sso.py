"""Organisations' own OpenID providers: single sign-on for the people of one organisation.

An organisation's admin registers one provider (:class:`SsoProvider`: issuer, client
id and secret, the email domains it covers, the role newcomers get). People then sign
in at ``/auth/sso/{org_id}/start``; :meth:`SingleSignOn.sign_in` takes the identity
the provider vouched for (checked by :class:`~accounts.oidc.OidcClient`) and:

- refuses an address the provider has not verified, or one outside the domains, or
  in a domain the organisation has not proven its own yet (a DNS record:
  :mod:`accounts.sso_domains`; a pending domain signs nobody in);
- signs in the person linked to the provider's ``(issuer, subject)``, else links the
  person who has that verified address, but only one already in the organisation (an
  organisation's admin controls its provider, and must not be able to take over the
  account of someone outside it by asserting their address), else creates a person;
- makes them a member with the provider's role if they are not in the organisation
  (their sessions rotate, :meth:`AccountService.roles_changed`), reading the domain's
  record again first when its proof is older than a week;
- asks for the second factor of a person who has one, as after a password.

The client secret is kept encrypted (:class:`SecretBox`: Fernet, keyed from the
server's secret) and never answered. Tables: ``sso_providers`` in
``accounts/migrations/0002_sso.sql``, ``sso_domains`` in ``0003_sso_domains.sql``.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from database import Database, Row

from .errors import AccountError, Conflict, Forbidden, NotFound
from .models import BUILT_IN_ORG_ROLES, Account, OrgRole
from .oidc import OidcIdentity
from .oidc_sign_in import finish_sign_in, link_or_create
from .service import AccountService, Actor, SecondFactorNeeded, SignedIn
from .sso_domains import (
    DOMAIN_ADDED,
    DOMAIN_LAPSED,
    DOMAIN_REMOVED,
    DOMAIN_VERIFIED,
    DomainNotProven,
    DomainProofs,
    SsoDomain,
)

#: Security-log actions.
SSO_CONFIGURED, SSO_REMOVED, SSO_JOINED = "sso.configured", "sso.removed", "sso.joined"
#: Roles a provider may give newcomers (never owner).
NEWCOMER_ROLES = tuple(r for r in BUILT_IN_ORG_ROLES if r != OrgRole.OWNER)
MAX_DOMAINS = 50
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


class SsoError(AccountError):
    """A provider's settings that cannot be used; the message says what to fix."""


@dataclass(frozen=True)
class SsoProvider:
    """An organisation's OpenID provider."""

    account_id: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    domains: tuple[str, ...]
    default_role: str
    updated_by: str
    created_at: float
    updated_at: float

    def covers(self, email: str | None) -> bool:
        """Whether ``email``'s domain is one the provider covers."""
        domain = (email or "").rpartition("@")[2].lower()
        return bool(domain) and domain in self.domains


def check_issuer(issuer: str) -> str:
    """``issuer`` if it is an https URL without query or fragment; else :class:`SsoError`."""
    parts = urlsplit(issuer.strip())
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise SsoError(f"issuer {issuer!r} is not the provider's https URL (like "
                       f"https://login.example.org); use the 'issuer' of its discovery "
                       f"document")
    return issuer.strip().rstrip("/")


def check_domains(domains: list[str]) -> tuple[str, ...]:
    """The domains, lower-cased and checked; :class:`SsoError` naming a bad one."""
    cleaned = sorted({d.strip().lower().lstrip("@") for d in domains})
    if not cleaned or len(cleaned) > MAX_DOMAINS:
        raise SsoError(f"give 1 to {MAX_DOMAINS} email domains the provider covers "
                       f"(like example.org)")
    for domain in cleaned:
        if not _DOMAIN.match(domain):
            raise SsoError(f"{domain!r} is not an email domain; give names like example.org")
    return tuple(cleaned)


class SecretBox:
    """Encrypts client secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256), with a key
    derived by HKDF-SHA256 from the server's secret."""

    def __init__(self, server_secret: bytes) -> None:
        if len(server_secret) < 16:
            raise ValueError("the server secret must be at least 16 bytes")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                   info=b"maxbooster sso client secrets").derive(server_secret)
        self._fernet = Fernet(base64.urlsafe_b64encode(key))

    def seal(self, text: str) -> str:
        """``text`` encrypted (and authenticated)."""
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        """What :meth:`seal` sealed; :class:`SsoError` if the server's secret changed."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode()
        except InvalidToken:
            raise SsoError("the stored client secret cannot be read with this server's "
                           "secret (was secret.key replaced?); set the provider again") from None


class SsoStore:
    """Organisations' providers in the ``sso_providers`` table, secrets sealed."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    def _provider(self, row: Row) -> SsoProvider:
        return SsoProvider(
            account_id=row["account_id"], issuer=row["issuer"], client_id=row["client_id"],
            client_secret=self.box.open(row["client_secret"]),
            domains=tuple(json.loads(row["domains"])), default_role=row["default_role"],
            updated_by=row["updated_by"], created_at=row["created_at"],
            updated_at=row["updated_at"])

    async def put(self, provider: SsoProvider) -> SsoProvider:
        """Keep ``provider`` (replacing the organisation's previous one)."""
        await self.db.execute(
            "INSERT INTO sso_providers (account_id, issuer, client_id, client_secret, domains,"
            " default_role, updated_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, "
            "?, ?) ON CONFLICT (account_id) DO UPDATE SET issuer = excluded.issuer, "
            "client_id = excluded.client_id, client_secret = excluded.client_secret, "
            "domains = excluded.domains, default_role = excluded.default_role, "
            "updated_by = excluded.updated_by, updated_at = excluded.updated_at",
            provider.account_id, provider.issuer, provider.client_id,
            self.box.seal(provider.client_secret), json.dumps(list(provider.domains)),
            provider.default_role, provider.updated_by, provider.created_at,
            provider.updated_at)
        return provider

    async def get(self, org_id: str) -> SsoProvider | None:
        """``org_id``'s provider (None: it has none)."""
        row = await self.db.fetchrow("SELECT * FROM sso_providers WHERE account_id = ?",
                                     org_id)
        return None if row is None else self._provider(row)

    async def delete(self, org_id: str) -> bool:
        """Forget ``org_id``'s provider; False if it had none."""
        return bool(await self.db.execute("DELETE FROM sso_providers WHERE account_id = ?",
                                          org_id))


class SingleSignOn:
    """The rules of organisations' providers over the account service and :class:`SsoStore`."""

    def __init__(self, service: AccountService, store: SsoStore, domains: DomainProofs
                 ) -> None:
        self.service = service
        self.store = store
        self.domains = domains

    async def require_admin(self, actor: Actor, org_id: str) -> Account:
        """The organisation ``org_id`` if ``actor`` administers it (404 outside, 403 below)."""
        await self.service.require_role(org_id, actor.person_id, OrgRole.ADMIN)
        org = await self.service.store.require_account(org_id)
        if org.is_person:
            raise Conflict("a person's own account has no single sign-on; set it on an "
                           "organisation")
        return org

    async def configure(self, actor: Actor, org_id: str, *, issuer: str, client_id: str,
                        client_secret: str | None, domains: list[str],
                        default_role: str = OrgRole.MEMBER.value,
                        check_host: Callable[[str], Awaitable[None]] | None = None
                        ) -> SsoProvider:
        """Register (or change) ``org_id``'s provider (its admins and owners).

        ``client_secret`` None keeps the one stored (a first registration needs one);
        ``check_host`` may refuse the checked issuer (the server's address rules).
        """
        await self.require_admin(actor, org_id)
        if default_role not in NEWCOMER_ROLES:
            raise SsoError(f"default_role {default_role!r}: use one of {list(NEWCOMER_ROLES)}")
        old = await self.store.get(org_id)
        if client_secret is None and old is None:
            raise SsoError("give the client_secret the provider issued for this client")
        checked_issuer, checked_domains = check_issuer(issuer), check_domains(domains)
        if check_host is not None:
            await check_host(checked_issuer)
        now = time.time()
        provider = SsoProvider(
            account_id=org_id, issuer=checked_issuer, client_id=client_id.strip(),
            client_secret=client_secret if client_secret is not None else old.client_secret,
            domains=checked_domains, default_role=default_role,
            updated_by=actor.person_id, created_at=old.created_at if old else now,
            updated_at=now)
        await self.store.put(provider)
        await self.service.store.audit(org_id, actor.person_id, SSO_CONFIGURED,
                                       target=provider.issuer, address=actor.address,
                                       detail={"domains": list(provider.domains)})
        await self._sync_domains(actor, org_id, provider.domains)
        return provider

    async def _sync_domains(self, actor: Actor, org_id: str, domains: tuple[str, ...]) -> None:
        added, removed = await self.domains.sync(org_id, domains)
        for action, changed in ((DOMAIN_ADDED, added), (DOMAIN_REMOVED, removed)):
            for domain in changed:
                await self.service.store.audit(org_id, actor.person_id, action, target=domain,
                                               address=actor.address)

    async def domains_of(self, actor: Actor, org_id: str) -> list[SsoDomain]:
        """``org_id``'s domains and their proofs, for its admins."""
        await self.require_admin(actor, org_id)
        return await self.domains.store.list(org_id)

    async def verify_domain(self, actor: Actor, org_id: str, domain: str) -> SsoDomain:
        """Check ``domain``'s TXT record now (its admins): the proven domain;
        :class:`~accounts.sso_domains.DomainNotProven` or
        :class:`~accounts.sso_domains.DnsUnavailable` saying why not."""
        await self.require_admin(actor, org_id)
        found = await self.domains.store.get(org_id, domain.strip().lower().rstrip("."))
        if found is None:
            raise NotFound(f"{domain!r} is not one of this organisation's single sign-on "
                           f"domains; list it in the provider's domains first")
        proven = await self.domains.verify(found)
        await self.service.store.audit(org_id, actor.person_id, DOMAIN_VERIFIED,
                                       target=proven.domain, address=actor.address)
        return proven

    async def describe(self, actor: Actor, org_id: str) -> SsoProvider:
        """``org_id``'s provider, for its admins; :class:`NotFound` if it has none."""
        await self.require_admin(actor, org_id)
        return await self.provider(org_id)

    async def remove(self, actor: Actor, org_id: str) -> None:
        """Stop single sign-on for ``org_id`` (people linked keep their accounts)."""
        await self.require_admin(actor, org_id)
        if not await self.store.delete(org_id):
            raise NotFound(f"organisation {org_id!r} has no single sign-on provider")
        await self.service.store.audit(org_id, actor.person_id, SSO_REMOVED,
                                       address=actor.address)
        await self._sync_domains(actor, org_id, ())

    async def provider(self, org_id: str) -> SsoProvider:
        """The provider to sign in with for ``org_id`` (an active organisation's)."""
        org = await self.service.store.account(org_id)
        provider = await self.store.get(org_id) if org is not None and org.active else None
        if provider is None:
            raise NotFound(f"organisation {org_id!r} has no single sign-on here; sign in "
                           f"with your password or another provider")
        return provider

    async def sign_in(self, org_id: str, identity: OidcIdentity, *, address: str = "",
                      user_agent: str = "") -> SignedIn | SecondFactorNeeded:
        """Sign in (and if need be, make a member of ``org_id``) the person ``identity``,
        which ``org_id``'s provider vouched for, names."""
        provider = await self.provider(org_id)
        if identity.issuer != provider.issuer:
            raise Forbidden("this identity comes from another provider than the "
                            "organisation's; start the sign-in again")
        if not identity.email or not identity.email_verified:
            raise Forbidden("the organisation's provider has not verified your email "
                            "address; verify it there first")
        if not provider.covers(identity.email):
            raise Forbidden(f"{identity.email} is outside the domains this organisation's "
                            f"provider covers ({', '.join(provider.domains)}); sign in "
                            f"another way")
        domain = identity.email.rpartition("@")[2].lower()
        proof = await self.domains.store.get(org_id, domain)
        if proof is None or not proof.verified:
            raise Forbidden(f"{domain} is waiting for the organisation to prove it is "
                            f"theirs (a DNS record an admin publishes and verifies); until "
                            f"then sign in another way")
        store = self.service.store
        person = await store.person_by_identity(identity.issuer, identity.subject)
        known = person or await store.person_by_email(identity.email)
        in_org = known is not None and await store.membership(
            org_id, known.account_id) is not None
        if person is None and known is not None and not in_org:
            raise Forbidden(f"an account with {identity.email} exists and is not in "
                            f"this organisation; sign in with your password and ask an "
                            f"admin to invite you")
        if not in_org and self.domains.stale(proof):
            await self._prove_again(proof, address)
        if person is None:
            person = await link_or_create(self.service, identity, address)
        if person.active and await store.membership(org_id, person.account_id) is None:
            await store.set_member(org_id, person.account_id, provider.default_role)
            await store.audit(org_id, person.account_id, SSO_JOINED,
                              target=person.account_id, address=address,
                              detail={"role": provider.default_role})
            await self.service.roles_changed(person.account_id)
        return await finish_sign_in(self.service, person, identity, address=address,
                                    user_agent=user_agent)

    async def _prove_again(self, proof: SsoDomain, address: str) -> None:
        """Read an old proof's record again before a newcomer joins through it; a record
        that is gone makes the domain pending (:class:`Forbidden`)."""
        try:
            await self.domains.verify(proof)
        except DomainNotProven as exc:
            await self.service.store.audit(proof.account_id, "", DOMAIN_LAPSED,
                                           target=proof.domain, address=address,
                                           detail={"reason": exc.reason})
            raise Forbidden(f"{proof.domain} no longer carries this organisation's DNS "
                            f"record, so nobody new joins through it; an admin must "
                            f"publish the record and verify the domain again") from None
