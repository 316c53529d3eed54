"""Accounts in the server: the account service, its mail queue, sessions and rate limits.

:func:`setup_accounts` registers the ``mail`` queue and a ``cleanup_ctx`` that,
once the database is open, migrates the accounts tables and builds the
:class:`~accounts.service.AccountService` (``app[ACCOUNTS]``): sessions in
Redis when ``config.redis_url`` is set, else in the database; mail through the
job queue to ``config.mail_url`` (SMTP), else into ``DATA/outbox``. The API
keys' rate limiter (``app[RATE_LIMITER]``) shares Redis the same way.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from accounts.mail import mail_transport
from accounts.passwords import Passwords
from accounts.ratelimit import RateLimiter
from accounts.service import AccountService
from accounts.sessions import Sessions, session_store
from accounts.store import AccountStore

from .account_mail import QUEUE, SETTINGS, MailSender, QueuedMail
from .keys import ACCOUNTS, BACKGROUND, CONFIG, DATABASE, RATE_LIMITER
from .oidc_routes import setup_oidc
from .sso_routes import setup_sso

log = logging.getLogger(__name__)

#: Where mail goes when no SMTP server is configured.
OUTBOX = "outbox"


def setup_accounts(app: web.Application) -> None:
    """Serve the ``mail`` queue and open the account service with the app."""
    config = app[CONFIG]
    app[BACKGROUND].register(QUEUE, MailSender(mail_transport(config.mail_url,
                                                              config.data_dir / OUTBOX)),
                             SETTINGS)
    app.cleanup_ctx.append(accounts_context)
    setup_oidc(app)
    setup_sso(app)


async def accounts_context(app: web.Application) -> AsyncIterator[None]:
    """Migrate the accounts tables, then build the service and the rate limiter."""
    config = app[CONFIG]
    store = AccountStore(app[DATABASE])
    await store.migrate()
    backend = session_store(app[DATABASE], config.redis_url)
    passwords = Passwords(*config.password_hashing) if config.password_hashing else None
    app[ACCOUNTS] = AccountService(
        store, Sessions(backend), QueuedMail(app[BACKGROUND]),
        base_url=config.base_url, passwords=passwords,
        require_verified_email=config.require_verified_email)
    app[RATE_LIMITER] = RateLimiter.from_url(config.redis_url)
    log.info("accounts ready (sessions in %s)", type(backend).__name__)
    try:
        yield
    finally:
        await app[RATE_LIMITER].close()
        await backend.close()
