"""Withdrawing a forgotten channel grant at its network: the ``social.revoke`` job.

When a channel's tokens are forgotten (someone disconnects it, or the account it
belongs to is erased with its person) they are deleted here at once, in the same
transaction that queues this job; the job then asks the network to withdraw the grant
(the connector's ``revoke``), so the network holds no live grant for the app either.
Only networks with a revocation endpoint are queued (:func:`revocable`): X, TikTok,
YouTube (Google), Facebook and Bluesky (its session deleted); docs/social.md lists the
others.

The payload carries the tokens sealed exactly as they were stored
(:class:`.tokens.TokenBox`), never in clear. A failure the network may get over (5xx,
429, no answer) is retried with back-off (:func:`revoke_queue_settings`); one that
cannot succeed, or the last attempt's, is logged and recorded in the account's audit
trail as ``channel.revoke_failed``, and for a disconnect the account's owners and admins
are mailed to remove the app's access in the network's own settings
(:class:`.revoke_notices.RevokeNotices`). The job then ends ``done`` with
``{"revoked": false}`` rather than as a dead letter, so its sealed payload is purged
with the other finished jobs.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel

from business.social.errors import NetworkError, SocialError
from business.social.networks import CONNECTORS
from business.social.revoke_notices import RevokeNotices
from dawserver.plugin_api import JobContext, JobQueue, QueueSettings, Retry, queue_withdrawal

log = logging.getLogger(__name__)

REVOKE = "social.revoke"
#: Why a grant is withdrawn.
DISCONNECTED, ERASED = "disconnected", "erased"


def revoke_queue_settings() -> QueueSettings:
    """Eight tries over about two hours (30 s doubling, capped at an hour)."""
    return QueueSettings(max_attempts=8, backoff_base=30.0, backoff_cap=3600.0, lease_s=60.0)


class RevokeRun(BaseModel):
    """A ``social.revoke`` job: which channel's grant, its tokens sealed as stored."""

    channel_id: str
    network: str
    access_token: str
    refresh_token: str = ""
    reason: Literal["disconnected", "erased"]
    #: The channel's account at the network, and the network's user whose grant it rests
    #: on where that is another (Facebook: the Page's manager); '' when not known.
    remote_id: str = ""
    remote_user: str = ""


#: Networks whose revocation withdraws the remote user's whole grant to the app, not one
#: token (Meta's ``DELETE /me/permissions``, Google's revoke): every other channel of
#: that user dies with it. The others (X's and TikTok's RFC 7009 revoke, Bluesky's
#: deleteSession) end only the token or session they name.
WHOLE_GRANT = frozenset({"facebook", "instagram", "threads", "youtube"})


def revocable(network: str) -> bool:
    """Whether ``network`` can be told to withdraw a grant."""
    cls = CONNECTORS.get(network)
    return cls is not None and cls.revocable()


async def queue_revoke(
    queue: JobQueue,
    tx: Any,
    account_id: str,
    channel_id: str,
    network: str,
    access_token: str,
    refresh_token: str,
    reason: str,
    *,
    remote_id: str = "",
    remote_user: str = "",
) -> bool:
    """Queue the withdrawal of a channel's grant (its tokens as stored, sealed) in the
    caller's transaction ``tx``; False when there is nothing to withdraw (no token, or
    the network has no revocation endpoint). The same sealed grant is queued once."""
    if not (access_token or refresh_token) or not revocable(network):
        return False
    run = RevokeRun(
        channel_id=channel_id,
        network=network,
        access_token=access_token,
        refresh_token=refresh_token,
        reason=reason,  # type: ignore[arg-type]
        remote_id=remote_id,
        remote_user=remote_user,
    )
    await queue_withdrawal(queue, tx, REVOKE, run, account_id=account_id, holder=channel_id,
                           secrets=[access_token, refresh_token])
    return True


async def run_revoke(channels: Any, account_id: str, run: RevokeRun, job: JobContext,
                     notices: RevokeNotices | None = None) -> dict:
    """One attempt of a ``social.revoke`` job (``channels``: the module's
    :class:`.channels.Channels`, for its connectors, token box and store; ``notices``:
    who is mailed when it fails for good)."""
    if await _still_in_use(channels, account_id, run):
        log.info(
            "social: the %s grant of channel %s of account %s is not withdrawn: an active "
            "channel rests on the same remote grant",
            run.network,
            run.channel_id,
            account_id,
        )
        return {"revoked": False, "reason": "still in use"}
    try:
        connector = channels.connector(run.network)
        box = channels.box
        await connector.revoke(box.open(run.access_token), box.open(run.refresh_token))
    except NetworkError as exc:
        if exc.retryable and job.attempt < job.job.max_attempts:
            if exc.retry_after:
                raise Retry(exc.reason, after=exc.retry_after) from None
            raise
        return await _failed(channels, account_id, run, exc.reason, job, notices)
    except (SocialError, NotImplementedError, AttributeError) as exc:
        return await _failed(channels, account_id, run, str(exc), job, notices)
    log.info(
        "social: the %s grant of channel %s of account %s was withdrawn (%s)",
        run.network,
        run.channel_id,
        account_id,
        run.reason,
    )
    return {"revoked": True}


async def _still_in_use(channels: Any, account_id: str, run: RevokeRun) -> bool:
    """Whether withdrawing the grant now would kill a live channel. Checked on every
    attempt, as the job retries for hours.

    A network that revokes one token (not in :data:`WHOLE_GRANT`): only when this very
    channel (the same account, network and remote account) is connected again holding
    the token being revoked. A network that withdraws the user's whole grant: when an
    active channel of that network rests on the same remote user's grant, that is its
    ``remote_user`` is the same (not ''), or it holds the same refresh token; where the
    remote user is not known, a channel of the same remote account in the same account
    only (another organisation's channel on that Page may be another user's grant)."""
    remote_id, remote_user = run.remote_id, run.remote_user
    if not remote_id:  # queued before the payload named it: the channel's row says
        channel = await channels.store.channel(account_id, run.channel_id)
        if channel is None:
            return False
        remote_id = channel.remote_id
        remote_user = await channels.store.remote_user(account_id, run.channel_id)
    box = channels.box
    try:
        access, refresh = box.open(run.access_token), box.open(run.refresh_token)
    except SocialError:  # unreadable: the revocation itself fails and says so
        return False
    if run.network not in WHOLE_GRANT:
        rows = await channels.store.live_grants(run.network, account_id=account_id,
                                                remote_id=remote_id)
        return any(_holds(box, row, access, refresh) for row in rows)
    for row in await channels.store.live_grants(run.network):
        if remote_user and row["remote_user"] == remote_user:
            return True
        if (not remote_user or not row["remote_user"]) and row["account_id"] == account_id \
                and row["remote_id"] == remote_id:
            return True
        if refresh and _holds(box, row, "", refresh):
            return True
    return False


def _holds(box: Any, row: dict[str, str], access: str, refresh: str) -> bool:
    """Whether the channel ``row`` (sealed tokens) holds ``access`` or ``refresh``."""
    try:
        return bool(refresh and box.open(row["refresh_token"]) == refresh) or bool(
            access and box.open(row["access_token"]) == access)
    except SocialError:  # a key since removed: that grant cannot be compared
        return False


async def _failed(channels: Any, account_id: str, run: RevokeRun, error: str,
                  job: JobContext, notices: RevokeNotices | None) -> dict:
    log.error(
        "social: the %s grant of channel %s of account %s could not be withdrawn at the "
        "network (%s): %s; its tokens are deleted here",
        run.network,
        run.channel_id,
        account_id,
        run.reason,
        error,
    )
    if run.reason == DISCONNECTED:  # an erased account has no audit trail to tell
        await channels.store.audit(
            None,
            account_id,
            f"channel:{run.channel_id}",
            "channel.revoke_failed",
            "",
            {"network": run.network, "error": error[:300]},
        )
        if notices is not None:
            channel = await channels.store.channel(account_id, run.channel_id)
            await notices.revoke_failed_safely(account_id, job.job.id, run.network,
                                               channel.name if channel is not None else "")
    return {"revoked": False, "error": error[:300]}
