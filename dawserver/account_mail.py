"""Account mail on the one job queue: the service queues it, a job sends it over SMTP.

:class:`QueuedMail` is the :class:`accounts.service.Notifier` the server gives
the account service: each mail becomes a job on the ``mail`` queue, keyed by
an idempotency key, whose handler builds the message (:mod:`accounts.mail`)
and sends it. A retried job sends the same ``Message-ID``; a permanent SMTP
refusal (5xx) ends the job, a temporary one (4xx, no connection) retries it.

What an address someone typed asks for (a password reset, a new verification link)
is an ``account_asks`` job too (:func:`queue_ask`), queued the same way for any
address, so the answer neither waits for nor fails with the address's lookup, links
and mail, and tells nobody whether the address has an account; :class:`AskHandler`
does that work, retried until it is done (a crash after the answer loses nothing).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from accounts import mail
from accounts.service import AccountService
from jobs import JobContext, Permanent, QueueSettings, Retry

from .background import Background

QUEUE = "mail"
SETTINGS = QueueSettings(max_attempts=8, concurrency=2, lease_s=60.0)
#: The account mail is queued under (mail is not any account's business data).
MAIL_ACCOUNT = "mail"
#: The queue of what an address asks for, and what each ask runs on the account service.
ASKS_QUEUE = "account_asks"
ASKS_SETTINGS = QueueSettings(max_attempts=8, concurrency=2, lease_s=60.0)
ASKS = ("reset", "resend", "sign_up")


class QueuedMail:
    """Queues each account mail as a job (``notify``, the accounts Notifier)."""

    def __init__(self, background: Background) -> None:
        self.background = background

    async def notify(self, kind: str, to: str, *, link: str = "", **fields: Any) -> None:
        payload = mail_payload(kind, to, link=link, **fields)
        await self.background.queue.enqueue(QUEUE, payload, account_id=MAIL_ACCOUNT,
                                            idempotency_key=payload["mail_id"])


def mail_payload(kind: str, to: str, *, link: str = "", mail_id: str | None = None,
                 **fields: Any) -> dict[str, Any]:
    """A ``mail`` job's payload (enqueue it under :data:`MAIL_ACCOUNT`, key ``mail_id``)."""
    return {"kind": kind, "to": to, "link": link, "fields": fields,
            "mail_id": mail_id or secrets.token_hex(12)}


def build(payload: dict[str, Any], sender: str) -> Any:
    """The message a mail job's payload describes."""
    kind, to, link = payload["kind"], payload["to"], payload["link"]
    fields, common = payload.get("fields", {}), {"mail_id": payload["mail_id"],
                                                 "sender": sender}
    if kind == "verify":
        return mail.verification_mail(to, link, **common)
    if kind == "reset":
        return mail.reset_mail(to, link, **common)
    if kind == "exists":
        return mail.account_exists_mail(to, link, **common)
    if kind == "invite":
        return mail.invitation_mail(to, fields.get("inviter", ""),
                                    fields.get("organisation", ""), link, **common)
    if kind == "webhook_disabled":
        return mail.webhook_disabled_mail(to, fields.get("url", ""), fields.get("reason", ""),
                                          link, **common)
    if kind == "plugin":
        return mail.plugin_mail(to, fields.get("subject", ""), list(fields.get("paragraphs", [])),
                                link=link, action=fields.get("action", ""), **common)
    if kind == "notice":
        return mail.security_notice(to, fields.get("what", ""), link=link or None, **common)
    raise Permanent(f"unknown kind of account mail {kind!r}")


class MailSender:
    """The ``mail`` queue's handler: build the message, send it through the transport."""

    def __init__(self, transport: mail.MailTransport) -> None:
        self.transport = transport

    async def __call__(self, ctx: JobContext) -> dict[str, Any]:
        message = build(ctx.payload, self.transport.sender)
        try:
            await self.transport.send(message)
        except mail.MailError as exc:
            if exc.permanent:
                raise Permanent(str(exc)) from exc
            raise
        return {"message_id": message["Message-ID"]}


async def queue_ask(background: Background, ask: str, email: str, **fields: str) -> None:
    """Queue ``ask`` (one of :data:`ASKS`) for ``email``, with its ``fields`` (a
    sign-up's name, region and password hash): one job under :data:`MAIL_ACCOUNT`, the
    same whether the address has an account or not."""
    ask_id = secrets.token_hex(12)
    await background.queue.enqueue(
        ASKS_QUEUE, {"ask": ask, "email": email, "ask_id": ask_id, **fields},
        account_id=MAIL_ACCOUNT, idempotency_key=ask_id)


class AskHandler:
    """The ``account_asks`` queue's handler: a reset, a verification resend or the rest
    of a sign-up for the address, done by the account service (``accounts()``; None
    until it has started)."""

    def __init__(self, accounts: Callable[[], AccountService | None]) -> None:
        self.accounts = accounts

    async def __call__(self, ctx: JobContext) -> None:
        ask, email = ctx.payload.get("ask"), ctx.payload.get("email")
        if ask not in ASKS or not isinstance(email, str):
            raise Permanent(f"unknown ask {ask!r} for an address")
        service = self.accounts()
        if service is None:
            raise Retry("the account service has not started yet", after=1.0)
        if ask == "reset":
            await service.request_reset(email)
        elif ask == "resend":
            await service.resend_verification(email)
        else:
            payload = ctx.payload
            await service.finish_sign_up(email, payload["password_hash"], payload["name"],
                                         region=payload["region"])
