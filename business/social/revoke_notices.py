"""Telling an account's owners and admins that a channel grant could not be withdrawn.

When a ``social.revoke`` job fails for good (:mod:`.revocation`), the channel's tokens
are deleted here but the network may still hold a live grant for the app, so someone
should remove the app's access in the network's own settings. :class:`RevokeNotices`
mails the account's owners and admins (``PluginContext.admin_emails``) once per job:
the addresses are de-duplicated (case and spaces ignored), and each mail's ``mail_id``
is the job and the address, so a job run again after a crash sends nothing more.

Only a disconnect is told. An erased account's grant (:data:`.revocation.ERASED`) has
nobody left to tell but the erased person, who is never mailed; a person erased from an
organisation is no longer among its owners and admins.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from dawserver.plugin_api import SendMail, mail_each_once, unconfirmed_withdrawal

log = logging.getLogger(__name__)

#: ``await recipients(account_id)``: the account's owners' and admins' addresses.
Recipients = Callable[[str], Awaitable[list[str]]]


class RevokeNotices:
    """Mails an account's owners and admins that a grant outlived its channel here."""

    def __init__(self, send_mail: SendMail | None, recipients: Recipients | None,
                 *, base_url: str = "") -> None:
        self.send_mail = send_mail
        self.recipients = recipients
        self.base_url = base_url.rstrip("/")

    def link(self, account_id: str) -> str:
        """The account's social page (empty without a base URL)."""
        return f"{self.base_url}/social?account={account_id}" if self.base_url else ""

    async def revoke_failed(self, account_id: str, job_id: str, network: str,
                            channel_name: str) -> list[str]:
        """Mail the owners and admins of ``account_id`` that job ``job_id`` could not
        withdraw the ``network`` grant of channel ``channel_name``; the addresses mailed."""
        if self.send_mail is None or self.recipients is None:
            return []
        what = f"the {network} channel {channel_name}" if channel_name else \
            f"a {network} channel"
        return await mail_each_once(
            self.send_mail, await self.recipients(account_id), f"Remove our access at {network}",
            unconfirmed_withdrawal(
                f"The tokens of {what} were deleted here when it was disconnected", network),
            kind="social-revoke-failed", event=job_id, link=self.link(account_id),
            action="Open Social")

    async def revoke_failed_safely(self, account_id: str, job_id: str, network: str,
                                   channel_name: str) -> list[str]:
        """:meth:`revoke_failed`, a failure logged instead of raised (the audit entry
        stays either way)."""
        try:
            return await self.revoke_failed(account_id, job_id, network, channel_name)
        except Exception:
            log.exception("social: mailing that the %s grant of account %s could not be "
                          "withdrawn failed (job %s)", network, account_id, job_id)
            return []
