"""Withdrawing a forgotten grant at its platform: what every plug-in's revoke job shares.

A plug-in that holds someone's grant at a third-party platform (OAuth tokens, sealed in
its own tables) deletes it at once when it is forgotten, in the transaction that queues
a job asking the platform to withdraw it. :func:`queue_withdrawal` queues that job once
per grant: its idempotency key names the grant by a digest of its sealed secrets
(:func:`grant_digest`), never by the secrets. When the platform does not confirm the
withdrawal, the account's owners and admins are told once each
(:func:`mail_each_once`), in a mail whose body :func:`unconfirmed_withdrawal` words.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pydantic import BaseModel

from jobs import JobQueue

#: ``await send_mail(to, subject, paragraphs, mail_id=..., link=..., action=...)``, as
#: ``PluginContext.send_mail``.
SendMail = Callable[..., Awaitable[None]]


def _nobody(address: str) -> bool:
    return False


def grant_digest(*secrets: str) -> str:
    """A short, stable name of the grant held as ``secrets`` (sealed), revealing none."""
    return hashlib.sha256("\0".join(secrets).encode()).hexdigest()[:24]


async def queue_withdrawal(queue: JobQueue, tx: Any, job: str, payload: BaseModel, *,
                           account_id: str, holder: str, secrets: Iterable[str]) -> None:
    """Queue job ``job`` withdrawing the grant that ``holder`` (the plug-in's row) held as
    ``secrets`` (sealed, as stored), in the caller's transaction ``tx``.

    The idempotency key is ``job`` (its dots as dashes), ``holder`` and
    :func:`grant_digest` of ``secrets``: the same grant of the same holder is queued once,
    a later grant of it again.
    """
    key = f"{job.replace('.', '-')}/{holder}/{grant_digest(*secrets)}"
    await queue.enqueue(job, payload.model_dump(mode="json"), account_id=account_id,
                        idempotency_key=key, tx=tx)


async def mail_each_once(send_mail: SendMail, found: Iterable[str], subject: str,
                         paragraphs: list[str], *, kind: str, event: str, link: str = "",
                         action: str = "",
                         excluded: Callable[[str], bool] = _nobody) -> list[str]:
    """Mail every address of ``found`` the same mail, once.

    Addresses are de-duplicated with case and surrounding spaces ignored; blank ones, and
    those for which ``excluded(address)`` (lower case, stripped) is true, are dropped.
    Each ``mail_id`` is ``kind``, a slash and a digest of ``event`` and the address, so
    the same event told again sends nothing more. The addresses mailed, sorted.
    """
    addresses = sorted({a.strip().lower() for a in found if a and a.strip()})
    addresses = [a for a in addresses if not excluded(a)]
    for address in addresses:
        digest = hashlib.sha256(f"{event}\0{address}".encode()).hexdigest()[:24]
        await send_mail(address, subject, paragraphs, mail_id=f"{kind}/{digest}", link=link,
                        action=action)
    return addresses


def unconfirmed_withdrawal(deleted: str, platform: str) -> list[str]:
    """The paragraphs telling owners and admins that ``platform`` did not confirm a
    withdrawal; ``deleted``: the sentence's start, what was deleted here ("The tokens of
    the x channel Ada were deleted here")."""
    return [f"{deleted}, but {platform} did not confirm that it withdrew the access they "
            "granted, after several tries.",
            f"To be sure nothing can use them, remove this app's access in the {platform} "
            "account's security or connected-apps settings.",
            "You get this mail as an owner or admin of the account."]
