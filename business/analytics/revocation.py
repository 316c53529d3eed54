"""Withdrawing a forgotten grant at its platform: the ``analytics.revoke`` job.

When a source's credentials are forgotten (its granter erased, or someone disconnecting
it) they are deleted here at once, in the same transaction that queues this job; the
job then asks the platform to withdraw the grant (:meth:`.sources.base.Connector.revoke`),
so the platform holds no live grant for the app either. Only sources whose platform
has a revocation endpoint are queued (:func:`revocable`); the others are listed in
docs/analytics.md.

The job's payload carries the credentials sealed exactly as they were stored
(:class:`.credentials.CredentialBox`), never in clear, and the erased person's
addresses only as hashes (:func:`.alerts.recipient_key`), so the mail never goes to
them. A failure the platform may get over (5xx, 429, no answer) is retried with
back-off (:data:`REVOKE_SETTINGS`), as is a connector that cannot be built; one that
cannot succeed (a refusal, or no revocation possible any more: a source kind unknown or
without a revocation endpoint since the job was queued), or the last attempt's, is
logged and the account's owners and admins are mailed to remove the app's access at
the platform themselves (:meth:`.reconnect.ReconnectNotices.revoke_failed`). The job
then ends ``done`` with ``{"revoked": false}``, so the finished job (and its sealed
payload) is purged with the other finished jobs rather than kept as a dead letter.

A grant still in use is not withdrawn (Google's revoke ends the user's whole grant to
the app, not one token, and the job may run hours later): before calling the platform,
each attempt asks whether a source of this plug-in that is not disconnected holds the
same refresh token (the same remote user's grant, in any account), or is the same source
and entity in the same account (reconnected since; the remote user is not stored, and
another account's source on that entity may rest on another user's grant, which this
withdrawal leaves alone) (:meth:`.connections.Connections.grant_in_use`); then the job ends
``done`` with ``{"revoked": false, "reason": "still in use"}``. Only this plug-in's
tables are seen: plug-ins cannot read each other's, so a social channel on the same
Google user is not.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel

from business.analytics.credentials import CredentialBox, CredentialsError
from business.analytics.errors import RateLimited, SourceError
from business.analytics.reconnect import ReconnectNotices
from business.analytics.sources import SOURCES
from business.analytics.sources.base import Connector, Credentials
from dawserver.plugin_api import JobContext, JobQueue, QueueSettings, Retry, queue_withdrawal

log = logging.getLogger(__name__)

REVOKE_JOB = "analytics.revoke"
#: Eight tries over about two hours (30 s doubling, capped at an hour).
REVOKE_SETTINGS = QueueSettings(
    max_attempts=8, backoff_base=30.0, backoff_cap=3600.0, lease_s=60.0, concurrency=2
)
#: Why a grant is withdrawn.
ERASED, DISCONNECTED = "erased", "disconnected"

#: ``connector(source, credentials)``: a connector of ``source`` signed with them.
ConnectorFactory = Callable[[str, Credentials], Connector]
#: ``await in_use(account_id, source, entity_id, credentials)``: whether an active source
#: still rests on that grant (:meth:`.connections.Connections.grant_in_use`).
InUse = Callable[[str, str, str, Credentials], Awaitable[bool]]


class RevokePayload(BaseModel):
    """An ``analytics.revoke`` job: which source's grant, sealed as it was stored."""

    source_id: str
    source: str
    entity_kind: str
    entity_id: str
    entity_name: str = ""
    #: The credentials sealed with the plug-in's :class:`.credentials.CredentialBox`.
    credentials: str
    reason: Literal["erased", "disconnected"]
    #: Whether the account's owners are mailed if it fails for good (not for an account
    #: erased with its person: nobody is left to tell).
    notify: bool = True
    #: :func:`.alerts.recipient_key` of addresses never mailed (the erased person's).
    exclude_keys: list[str] = []


def revocable(source: str) -> bool:
    """Whether ``source``'s platform can be told to withdraw a grant."""
    cls = SOURCES.get(source)
    return cls is not None and cls.revocable()


async def queue_revoke(
    queue: JobQueue,
    tx: Any,
    account_id: str,
    row: Mapping[str, Any],
    sealed: str,
    reason: str,
    *,
    notify: bool = True,
    exclude_keys: Iterable[str] = (),
) -> bool:
    """Queue the withdrawal of ``row``'s grant (a row of ``analytics_sources``; ``sealed``:
    its credentials as stored) in the caller's transaction ``tx``, under ``account_id``;
    False when there is nothing to withdraw (no credentials, or no revocation endpoint).
    The same sealed grant is queued once."""
    if not sealed or not revocable(str(row["source"])):
        return False
    payload = RevokePayload(
        source_id=row["source_id"],
        source=row["source"],
        entity_kind=row["entity_kind"],
        entity_id=row["entity_id"],
        entity_name=row.get("entity_name") or "",
        credentials=sealed,
        reason=reason,
        notify=notify,  # type: ignore[arg-type]
        exclude_keys=sorted(exclude_keys),
    )
    await queue_withdrawal(queue, tx, REVOKE_JOB, payload, account_id=account_id,
                           holder=str(row["source_id"]), secrets=[sealed])
    return True


class Revoker:
    """Runs ``analytics.revoke`` jobs (see the module)."""

    def __init__(
        self,
        box: CredentialBox,
        connector: ConnectorFactory,
        notices: ReconnectNotices | None = None,
        in_use: InUse | None = None,
    ) -> None:
        self.box = box
        self.connector = connector
        self.notices = notices
        self.in_use = in_use

    async def run(self, account_id: str, payload: RevokePayload, job: JobContext) -> dict[str, Any]:
        """One attempt: ``{"revoked": True}``, or raise to be retried, or (failed for
        good) log, mail the owners and answer ``{"revoked": False, "error": ...}``."""
        if not revocable(payload.source):
            # the source kind is gone, or lost its revocation endpoint since the job was
            # queued (a configuration change): no try can succeed
            return await self._failed(
                account_id, payload, f"{payload.source} has no revocation endpoint", job)
        try:
            credentials = self.box.open(payload.credentials)
        except CredentialsError as exc:
            return await self._failed(account_id, payload, str(exc), job)
        if self.in_use is not None and await self.in_use(account_id, payload.source,
                                                         payload.entity_id, credentials):
            # Google's revoke withdraws the user's whole grant to the app: a source
            # reconnected since, or another one on the same grant, would die with it
            log.info("analytics: the %s grant of source %s of account %s is not withdrawn: "
                     "an active source rests on it", payload.source, payload.source_id,
                     account_id)
            return {"revoked": False, "reason": "still in use"}
        try:
            connector = self.connector(payload.source, credentials)
        except Exception as exc:  # its settings or session: perhaps better on a later try
            if job.attempt < job.job.max_attempts:
                raise
            return await self._failed(
                account_id, payload, f"the connector could not be built: {exc}", job)
        try:
            await connector.revoke()
        except NotImplementedError as exc:
            return await self._failed(
                account_id, payload, str(exc) or "the connector cannot revoke", job)
        except SourceError as exc:
            if exc.retryable and job.attempt < job.job.max_attempts:
                if isinstance(exc, RateLimited) and exc.retry_after:
                    raise Retry(exc.reason, after=exc.retry_after) from None
                raise
            return await self._failed(account_id, payload, exc.reason, job)
        log.info(
            "analytics: the %s grant of source %s of account %s was withdrawn (%s)",
            payload.source,
            payload.source_id,
            account_id,
            payload.reason,
        )
        return {"revoked": True}

    async def _failed(self, account_id: str, payload: RevokePayload, error: str,
                      job: JobContext) -> dict[str, Any]:
        log.error(
            "analytics: the %s grant of source %s of account %s could not be "
            "withdrawn at the platform (%s): %s; its credentials are deleted here",
            payload.source,
            payload.source_id,
            account_id,
            payload.reason,
            error,
        )
        if payload.notify and self.notices is not None:
            await self.notices.revoke_failed_safely(
                account_id,
                payload.model_dump(exclude={"credentials"}),
                job.job.id,
                exclude_keys=payload.exclude_keys,
            )
        return {"revoked": False, "error": error[:300]}
