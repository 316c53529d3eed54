"""Reconnect notices: mail an account's owners and admins once when a source of theirs needs
reconnecting.

A source turns ``needs_reconnect`` in two ways: the erasure of the person who granted its
credentials forgets them (:func:`.connections.forget_grants_of`), or its token dies during
ingestion (:mod:`.ingest`, a :class:`.errors.TokenRevoked`). Both call
:meth:`ReconnectNotices.notify` once the flag is written, and only when the flag is new
(a source already flagged sends nothing more), so each source gets one mail per event,
never one per poll. The mail goes to the account's recipients (the account's owners and
admins, ``PluginContext.admin_emails``), never to an address of the erased person, and links
to the sources list where the source is reconnected. Its ``mail_id`` is the account,
the source and the moment it was flagged: a repeated notice of the same event is not
sent twice.

The same recipients are told when a forgotten grant could not be withdrawn at its
platform (:meth:`ReconnectNotices.revoke_failed`, from :mod:`.revocation`): the
credentials are deleted here, but the platform may still hold a live grant for the app,
so someone should remove the app's access in the platform's own settings.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from business.analytics.alerts import recipient_key
from dawserver.plugin_api import SendMail, mail_each_once, unconfirmed_withdrawal

log = logging.getLogger(__name__)

#: ``await recipients(account_id)`` -> the addresses told of the account's sources.
Recipients = Callable[[str], Awaitable[list[str]]]

#: Why a source needs reconnecting, by the event that flagged it.
GRANT_FORGOTTEN_REASON = "grant_forgotten"
TOKEN_REVOKED_REASON = "token_revoked"
_EXPLAINED = {
    GRANT_FORGOTTEN_REASON: ("the person who connected it was erased, and the credentials "
                             "they granted were forgotten with them"),
    TOKEN_REVOKED_REASON: "its credentials stopped working while its figures were fetched",
}


class ReconnectNotices:
    """Mails an account's owners and admins that a source needs reconnecting (see the module)."""

    def __init__(self, send_mail: SendMail | None, recipients: Recipients | None,
                 *, base_url: str = "") -> None:
        self.send_mail = send_mail
        self.recipients = recipients
        self.base_url = base_url.rstrip("/")

    def link(self, account_id: str) -> str:
        """Where the account's sources are reconnected (empty without a base URL)."""
        return f"{self.base_url}/analytics?account={account_id}#sources" if self.base_url \
            else ""

    async def notify(self, account_id: str, source: dict[str, Any], reason: str,
                     flagged_at: float, *, exclude: Iterable[str] = ()) -> list[str]:
        """Mail the account's recipients that ``source`` (a row of ``analytics_sources``:
        ``source_id``, ``source``, ``entity_kind``, ``entity_id``, maybe ``entity_name``)
        needs reconnecting for ``reason``; ``exclude``: addresses never mailed (the erased
        person's). The addresses mailed."""
        if self.send_mail is None or self.recipients is None:
            return []
        if reason not in _EXPLAINED:
            raise ValueError(f"unknown reconnect reason {reason!r}; use one of "
                             f"{sorted(_EXPLAINED)}")
        skipped = {a.strip().lower() for a in exclude}
        what = _described(source)
        return await mail_each_once(
            self.send_mail, await self.recipients(account_id), f"Reconnect {what} in Analytics",
            [f"The analytics source {what} needs reconnecting: {_EXPLAINED[reason]}.",
             "Its figures so far are kept, but no new ones come in until someone still "
             "in the account reconnects it with their own credentials.",
             "You get this mail as an owner or admin of the account."],
            kind="analytics-reconnect",
            event=f"{account_id}\0{source['source_id']}\0{reason}\0{flagged_at!r}",
            link=self.link(account_id), action="Reconnect the source",
            excluded=lambda address: address in skipped)

    async def revoke_failed(self, account_id: str, source: dict[str, Any], job_id: str, *,
                            exclude_keys: Iterable[str] = ()) -> list[str]:
        """Mail the account's recipients that ``source``'s forgotten grant (``source``,
        ``source_id``, ``entity_kind``, ``entity_id``, maybe ``entity_name``) could not be
        withdrawn at its platform; ``job_id``: the ``analytics.revoke`` job, which keys the
        mail (one grant, one mail: a later grant of the same source that fails too is
        mailed again); ``exclude_keys``: :func:`.alerts.recipient_key` of addresses never
        mailed. The addresses mailed."""
        if self.send_mail is None or self.recipients is None:
            return []
        hashed = set(exclude_keys)
        what, platform = _described(source), source["source"]
        return await mail_each_once(
            self.send_mail, await self.recipients(account_id),
            f"Remove our access to {what} at {platform}",
            unconfirmed_withdrawal(
                f"The credentials of the analytics source {what} were deleted here", platform),
            kind="analytics-revoke-failed",
            event=f"{account_id}\0{source['source_id']}\0revoke_failed\0{job_id}",
            link=self.link(account_id), action="Open the sources",
            excluded=lambda address: recipient_key(address) in hashed)

    async def revoke_failed_safely(self, account_id: str, source: dict[str, Any],
                                   job_id: str, *,
                                   exclude_keys: Iterable[str] = ()) -> list[str]:
        """:meth:`revoke_failed`, a failure logged instead of raised."""
        try:
            return await self.revoke_failed(account_id, source, job_id,
                                            exclude_keys=exclude_keys)
        except Exception:
            log.exception("analytics: mailing that the grant of source %s of account %s "
                          "could not be withdrawn failed", source.get("source_id"),
                          account_id)
            return []

    async def notify_safely(self, account_id: str, source: dict[str, Any], reason: str,
                            flagged_at: float, *, exclude: Iterable[str] = ()) -> list[str]:
        """:meth:`notify`, a failure logged instead of raised (the flag is kept and
        shown in the sources list either way)."""
        try:
            return await self.notify(account_id, source, reason, flagged_at, exclude=exclude)
        except Exception:
            log.exception("analytics: mailing that source %s of account %s needs "
                          "reconnecting failed", source.get("source_id"), account_id)
            return []


def _described(source: dict[str, Any]) -> str:
    """``source`` as a mail names it: its platform, kind and entity (by name if known)."""
    name = source.get("entity_name") or source["entity_id"]
    return f"{source['source']} {source['entity_kind']} {name}"
