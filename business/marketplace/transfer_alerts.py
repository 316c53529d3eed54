"""Transfer alerts: mail a seller's owners and admins when a split line cannot be paid.

When a split line's ``marketplace.split_transfers`` job gives up (:mod:`.split_sales`;
its last attempt, or its dead-letter notice when its workers were killed every time),
the line's collaborators are not all paid and the money stays on the platform's
account: somebody must act (a collaborator finishes their Stripe onboarding, then the
job is requeued). :meth:`TransferAlerts.notify` mails the seller's account recipients
(``PluginContext.admin_emails``: a person's own address, or every owner and admin of an
organisation) through the platform's mail queue (``PluginContext.send_mail``), once per
line: the ``mail_id`` is the seller, the order and the address.

When a reversal of a split line (a refund, a lost dispute) gives up waiting for the
line's transfers, :meth:`TransferAlerts.notify_reversal` mails them (a mail id per
seller, order, cause and address): the line's transfer job is stuck (or was
cancelled), or died and was told already.

When a reversal's job dies with no end recorded (Stripe refused it for good, or its
workers were killed on every attempt), :meth:`TransferAlerts.notify_reversal_died`
mails them under a mail id of its own (seller, order, cause and address).

When a held part's payout fails for good (:mod:`.split_holds`),
:meth:`TransferAlerts.notify_held` mails them too, under a ``mail_id`` of its own (the
seller, the order, the collaborator it was held for, the payout's attempt and the
address): mail ids dedupe sending, so neither mail ever suppresses the other, and a
part failing again after it went back to ``held`` is told again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: ``await send_mail(to, subject, paragraphs, mail_id=..., link=..., action=...)``.
SendMail = Callable[..., Awaitable[None]]
#: ``await recipients(account_id)`` -> the addresses told of the account's sales.
Recipients = Callable[[str], Awaitable[list[str]]]


class TransferAlerts:
    """Mails a seller's owners and admins that a split line's transfers failed."""

    def __init__(self, send_mail: SendMail | None, recipients: Recipients | None,
                 *, base_url: str = "") -> None:
        self.send_mail = send_mail
        self.recipients = recipients
        self.base_url = base_url.rstrip("/")

    async def notify(self, seller: str, order_id: str, reason: str) -> list[str]:
        """Mail ``seller``'s recipients that order ``order_id``'s transfers to its payees
        failed for ``reason``; the addresses mailed (none without a mailer). A failure to
        mail is logged, never raised: the line's failure is recorded either way."""
        return await self._mail(
            seller, order_id, ("marketplace-transfer-failed", seller, order_id),
            f"Collaborators of sale {order_id} could not be paid",
            [f"The transfers paying the collaborators of sale {order_id} failed "
             f"for good: {reason}",
             "The money is kept on the platform's account and no collaborator is "
             "paid twice. Ask the collaborators to finish their Stripe onboarding, "
             "then have the sale's transfer job requeued; what a refund or lost "
             "dispute of the sale takes meanwhile is withheld from the transfers "
             "then made."])

    async def notify_held(self, seller: str, order_id: str, collaborator: str,
                          attempt: int, reason: str) -> list[str]:
        """Mail ``seller``'s recipients that paying out ``collaborator``'s held part of
        order ``order_id`` (its ``attempt``) failed for good with ``reason``; the
        addresses mailed. Logged, never raised, like :meth:`notify`."""
        return await self._mail(
            seller, order_id,
            ("marketplace-held-part-failed", seller, order_id, collaborator, str(attempt)),
            f"The part of sale {order_id} held for {collaborator} could not be paid out",
            [f"Paying out {collaborator}'s held part of sale {order_id} failed for "
             f"good: {reason}",
             "The part is held again, on the platform's account, and is never paid "
             "twice; it is tried again hourly. Check that whoever it goes to (the "
             "collaborator who accepted, or you when the invitation ended) can receive "
             "Stripe transfers."])

    async def notify_reversal(self, seller: str, order_id: str, cause: str,
                              reason: str) -> list[str]:
        """Mail ``seller``'s recipients that the reversal of ``cause`` (a refund or lost
        dispute) of order ``order_id`` gave up waiting for the line's transfers
        (``reason``); the addresses mailed. Logged, never raised, like :meth:`notify`."""
        return await self._mail(
            seller, order_id, ("marketplace-reversal-gave-up", seller, order_id, cause),
            f"A refund of sale {order_id} is waiting for its collaborators' transfers",
            [f"Taking back the collaborators' part of {cause} of sale {order_id} gave up: "
             f"the sale's transfers to its collaborators were still not made ({reason}).",
             "The sale's transfer job is stuck or failed: have it requeued. The "
             "transfers it makes then withhold what this refund or dispute takes, and "
             "what it paid before is taken back, so no collaborator keeps refunded "
             "money."])

    async def notify_reversal_died(self, seller: str, order_id: str, cause: str,
                                   reason: str) -> list[str]:
        """Mail ``seller``'s recipients that taking back the collaborators' part of
        ``cause`` of order ``order_id`` failed for good (``reason``: Stripe's refusal or
        the queue's words); the addresses mailed. Logged, never raised."""
        return await self._mail(
            seller, order_id, ("marketplace-reversal-died", seller, order_id, cause),
            f"A refund of sale {order_id} was not taken back from its collaborators",
            [f"Taking back the collaborators' part of {cause} of sale {order_id} failed "
             f"for good: {reason}",
             "The refund itself went through; the collaborators' transfers still hold "
             "that part. Fix what Stripe refused (for example a collaborator's balance), "
             "then have the reversal job requeued: it takes back each transfer once."])

    async def _mail(self, seller: str, order_id: str, key: tuple[str, ...], subject: str,
                    paragraphs: list[str]) -> list[str]:
        """Mail ``subject`` to ``seller``'s recipients, one ``mail_id`` per ``key`` (its
        first element names the kind of mail) and address."""
        if self.send_mail is None or self.recipients is None:
            return []
        kind, *parts = key
        try:
            addresses = sorted({a.strip().lower() for a in await self.recipients(seller)
                                if a and a.strip()})
            for address in addresses:
                digest = hashlib.sha256("\0".join((*parts, address)).encode())
                await self.send_mail(
                    address, subject,
                    [*paragraphs, "You get this mail as an owner or admin of the selling "
                     "account."],
                    mail_id=f"{kind}/{digest.hexdigest()[:24]}",
                    link=f"{self.base_url}/sales-reports" if self.base_url else "",
                    action="Open your sales" if self.base_url else "")
            return addresses
        except Exception:
            log.exception("marketplace: mailing %s's recipients about order %s (%s) did "
                          "not work", seller, order_id, kind)
            return []
