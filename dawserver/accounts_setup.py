"""Accounts in the server: the account service, its mail queue, sessions and rate limits.

:func:`setup_accounts` registers the ``mail`` and ``account_asks`` queues
(:mod:`dawserver.account_mail`) and a ``cleanup_ctx`` that, once the database is
open, migrates the accounts tables and builds the
:class:`~accounts.service.AccountService` (``app[ACCOUNTS]``): sessions in
Redis when ``config.redis_url`` is set, else in the database; mail through the
job queue to ``config.mail_url`` (SMTP), else into ``DATA/outbox``. The API
keys' rate limiter (``app[RATE_LIMITER]``) shares Redis the same way.

With ``config.regions`` each region's database (opened by
:func:`dawserver.regions.regions_context`) is migrated too, and the
service keeps accounts in a :class:`~accounts.regions.RegionalAccountStore` (the
main database is the default region); sessions kept in the database follow the
person's region (:class:`~accounts.regions.RegionalSessions`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import Any

from aiohttp import web

from accounts.mail import mail_transport
from accounts.moving import AccountMover, MoveHook
from accounts.passwords import Passwords
from accounts.ratelimit import RateLimiter
from accounts.regions import RegionalAccountStore, RegionalSessions
from accounts.service import AccountService
from accounts.sessions import RedisSessions, Sessions, SessionStore
from accounts.throttle import SIGN_UP_RULE
from collab.regional_store import RegionalCollabStore

from .account_mail import (
    ASKS_QUEUE,
    ASKS_SETTINGS,
    QUEUE,
    SETTINGS,
    AskHandler,
    MailSender,
    QueuedMail,
)
from .assets import REGION_ASSETS
from .bounces import PREFIX as BOUNCES
from .bounces import bounce_prefix
from .document_moves import DocumentMoveHook
from .file_moves import AssetMoveHook, ObjectMoveHook
from .keys import ACCOUNTS, BACKGROUND, CONFIG, RATE_LIMITER, ROOMS, STORE
from .oidc_routes import setup_oidc
from .privacy_export import QUEUE as EXPORT_QUEUE
from .privacy_export import export_prefix, legacy_export_key
from .regions import REGION_DATABASES
from .sso_routes import setup_sso
from .storage.service import OBJECT_STORES

log = logging.getLogger(__name__)

#: Where mail goes when no SMTP server is configured.
OUTBOX = "outbox"


#: Moves accounts between data regions (only when regions are configured).
ACCOUNT_MOVER = web.AppKey("account_mover", AccountMover)


def setup_accounts(app: web.Application) -> None:
    """Serve the ``mail`` and ``account_asks`` queues and open the account service with
    the app."""
    config = app[CONFIG]
    app[BACKGROUND].register(QUEUE, MailSender(mail_transport(config.mail_url,
                                                              config.data_dir / OUTBOX)),
                             SETTINGS)
    app[BACKGROUND].register(ASKS_QUEUE, AskHandler(lambda: app.get(ACCOUNTS)), ASKS_SETTINGS)
    app.cleanup_ctx.append(accounts_context)
    setup_oidc(app)
    setup_sso(app)


def plugin_membership(app: web.Application
                      ) -> Callable[[str, str], Awaitable[str | None]]:
    """``await membership(group_id, person_id)`` for the plug-ins' context: the person's
    role in an organisation or team, read from the account service (None before it
    started, or when they are not in it)."""
    async def membership(group_id: str, person_id: str) -> str | None:
        service = app.get(ACCOUNTS)
        return None if service is None else await service.role_in(group_id, person_id)

    return membership


async def _emails(app: web.Application, account_id: str,
                  roles: frozenset[str] | None) -> list[str]:
    """A person's address, or those of an organisation's or team's members (only those
    holding one of ``roles`` when given); empty before the account service started, or
    for an unknown account."""
    service = app.get(ACCOUNTS)
    if service is None:
        return []
    account = await service.store.account(account_id)
    if account is None:
        return []
    if account.is_person:
        return [account.email] if account.email else []
    found = []
    for member in await service.store.members(account_id):
        if roles is not None and member.role not in roles:
            continue
        person = await service.store.account(member.person_id)
        if person is not None and person.email:
            found.append(person.email)
    return found


def plugin_owner_emails(app: web.Application
                        ) -> Callable[[str], Awaitable[list[str]]]:
    """``await owner_emails(account_id)`` for the plug-ins' context: the address of a
    person, or of every owner of an organisation or team (empty before the account
    service started, or for an unknown account)."""
    async def owner_emails(account_id: str) -> list[str]:
        return await _emails(app, account_id, frozenset({"owner"}))

    return owner_emails


def plugin_admin_emails(app: web.Application
                        ) -> Callable[[str], Awaitable[list[str]]]:
    """``await admin_emails(account_id)`` for the plug-ins' context: the address of a
    person, or of every owner and admin of an organisation or team, who manage its
    connections (empty before the account service started, or for an unknown account)."""
    async def admin_emails(account_id: str) -> list[str]:
        return await _emails(app, account_id, frozenset({"owner", "admin"}))

    return admin_emails


def plugin_people_emails(app: web.Application
                         ) -> Callable[[str], Awaitable[list[str]]]:
    """``await people_emails(account_id)`` for the plug-ins' context: the address of a
    person, or of every member (any role) of an organisation or team (empty before the
    account service started, or for an unknown account)."""
    async def people_emails(account_id: str) -> list[str]:
        return await _emails(app, account_id, None)

    return people_emails


def _move_hooks(app: web.Application) -> list[MoveHook]:
    """What moves with an account besides its rows, in this order: its projects'
    documents (their rooms in this process are held closed meanwhile, so they reload from
    the new region), their audio, their bounces, and the account's export archives."""
    collab = app.get(STORE)
    if not isinstance(collab, RegionalCollabStore):
        return []

    def hold(project_id: str) -> AbstractAsyncContextManager[object]:
        rooms = app.get(ROOMS)
        if rooms is None:
            return contextlib.nullcontext()
        return rooms.held(project_id, "its document is moving to another data region")

    async def edit(project_id: str, change: Callable[[Any], None]) -> None:
        async with app[ROOMS].use(project_id) as room:
            await room.edit(change)

    def account_region(account_id: str) -> str:
        return app[ACCOUNTS].store.region_of(account_id)

    documents = DocumentMoveHook(collab, app[REGION_DATABASES], hold=hold)
    hooks: list[MoveHook] = [documents]
    if REGION_ASSETS in app:
        hooks.append(AssetMoveHook(app[REGION_ASSETS], documents.projects_of, edit=edit,
                                   region_of=account_region))
    if OBJECT_STORES in app:
        async def bounces(account_id: str) -> list[str]:
            projects = await documents.projects_of(account_id)
            return [f"{BOUNCES}/{bounce_prefix(project_id)}/" for project_id in projects]

        async def exports(account_id: str) -> list[str]:
            jobs = await app[BACKGROUND].queue.find(account_id=account_id, queue=EXPORT_QUEUE)
            return [export_prefix(account_id), *(legacy_export_key(job.id) for job in jobs)]

        for name, prefixes in (("bounces", bounces), ("exports", exports)):
            hooks.append(ObjectMoveHook(name, app[OBJECT_STORES], prefixes, account_region))
    return hooks


async def accounts_context(app: web.Application) -> AsyncIterator[None]:
    """Migrate the accounts tables in every region's database, then build the service
    and the rate limiter."""
    config = app[CONFIG]
    databases = app[REGION_DATABASES]
    store = RegionalAccountStore.over(databases)
    await store.migrate()
    backend: SessionStore = (RedisSessions.from_url(config.redis_url) if config.redis_url
                             else RegionalSessions.over(databases))
    if len(databases) > 1:  # moved accounts are routed, moving ones fenced
        mover = AccountMover(store, databases, sessions=backend
                             if isinstance(backend, RegionalSessions) else None,
                             hooks=_move_hooks(app))
        await mover.setup()
        app[ACCOUNT_MOVER] = mover
    passwords = Passwords(*config.password_hashing) if config.password_hashing else None
    app[ACCOUNTS] = AccountService(
        store, Sessions(backend), QueuedMail(app[BACKGROUND]),
        base_url=config.base_url, passwords=passwords, regions=store.regions,
        require_verified_email=config.require_verified_email,
        sign_up_rule=replace(SIGN_UP_RULE, free_failures=config.sign_ups_per_client - 1))
    app[RATE_LIMITER] = RateLimiter.from_url(config.redis_url)
    log.info("accounts ready (regions %s, sessions in %s)", ", ".join(store.regions),
             type(backend).__name__)
    # reads follow moves other processes make (writes learn them at the fence)
    refresh = (asyncio.create_task(app[ACCOUNT_MOVER].refresh(), name="moved-accounts")
               if ACCOUNT_MOVER in app else None)
    try:
        yield
    finally:
        if refresh is not None:
            refresh.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refresh
        await app[RATE_LIMITER].close()
        await backend.close()
