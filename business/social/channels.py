"""Channels: connecting a network account (OAuth 2.0 with PKCE and state), keeping its
tokens fresh, flagging it when its grant died, disconnecting it.

The refresh rule holds across processes: a refresh first takes the channel's lease
(compare-and-set on ``token_generation`` and ``refresh_lease``), so one refresh of
a channel runs at a time; the lease is renewed while the network's answer is awaited
(at most ``refresh_timeout_s``), so a slow answer never lets another refresh spend the
same refresh token; its answer is written only over the generation it read,
and :func:`~business.social.tokens.merge_refresh` keeps the refresh token we hold
when the network sends none; so does a reconnect whose code exchange sends none
(Google's, when the user consents again unasked). A refresh the network refuses for
good (an invalid grant), or an access token expired with no refresh token to renew it,
flags the channel ``needs_reconnect`` and announces ``social.channel_needs_reconnect``
with a reconnect link, in the same transaction.
A disconnect deletes the tokens and, in the same transaction, queues the grant's
withdrawal at the network (:mod:`.revocation`).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from business.social.errors import (
    ConflictError,
    NetworkError,
    NotFoundError,
    SocialError,
)
from business.social.models import ACTIVE, Channel, ChannelTokens
from business.social.networks.base import (
    Connector,
    OAuthTokens,
    code_challenge,
    new_code_verifier,
)
from business.social.revocation import DISCONNECTED, REVOKE, queue_revoke
from business.social.store import SocialStore
from business.social.tokens import TokenBox, merge_refresh

logger = logging.getLogger(__name__)

#: ``await publish(tx, event name, payload, account_id)``: the plug-in context's publish.
Publish = Callable[[Any, str, dict[str, Any], str], Awaitable[Any]]
NEEDS_RECONNECT_EVENT = "social.channel_needs_reconnect"
#: How long a started connect waits for its callback.
CONNECT_TTL_S = 600.0
API = "/api/social"
#: Channels whose opened access token is kept in memory (the oldest is dropped first).
OPENED_CACHE = 10_000
#: How often a refresh waiting for another process's looks again: first, and at most
#: (the pause doubles in between, so a long wait costs few reads).
WAIT_FIRST_S, WAIT_MOST_S = 0.02, 0.5


def state_hash(state: str) -> str:
    """What is stored of an OAuth ``state``: its SHA-256."""
    return hashlib.sha256(state.encode()).hexdigest()


class Channels:
    """Connect, refresh, flag and disconnect channels of any account."""

    def __init__(self, store: SocialStore, box: TokenBox, connectors: Mapping[str, Connector],
                 publish: Publish, *, base_url: str = "", margin_s: float = 300.0,
                 lease_s: float = 30.0, refresh_timeout_s: float = 90.0,
                 clock: Callable[[], float] = time.time, queue: Any = None) -> None:
        self.store = store
        #: The job queue a disconnected grant's withdrawal goes to (None: not queued).
        self.queue = queue
        self.box = box
        self.connectors = dict(connectors)
        self.publish = publish
        self.base_url = base_url.rstrip("/")
        self.margin_s = margin_s
        self.lease_s = lease_s
        #: The longest a token refresh may take (its lease is renewed meanwhile).
        self.refresh_timeout_s = refresh_timeout_s
        self.clock = clock
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._opened: dict[tuple[str, str], tuple[str, str]] = {}

    # -- connecting ----------------------------------------------------------------------

    def connector(self, network: str) -> Connector:
        """The configured connector of ``network``."""
        found = self.connectors.get(network)
        if found is None:
            raise NotFoundError(f"network {network!r} is not configured on this server; "
                                f"configured: {sorted(self.connectors) or 'none'} (the "
                                "social plug-in's 'networks' setting)")
        return found

    def redirect_uri(self, network: str) -> str:
        """Where the network sends the browser back (register it at the network)."""
        return f"{self.base_url}{API}/channels/callback/{network}"

    def reconnect_url(self, account_id: str, channel: Channel) -> str:
        """The link that connects ``channel`` again."""
        return (f"{self.base_url}{API}/channels/connect/{channel.network}"
                f"?account={account_id}&channel_id={channel.channel_id}")

    async def begin(self, account_id: str, person_id: str, network: str,
                    channel_id: str = "") -> str:
        """Start connecting (or reconnecting ``channel_id``); the network's authorize URL."""
        connector = self.connector(network)
        if channel_id:
            channel = await self.get(account_id, channel_id)
            if channel.network != network:
                raise SocialError(f"channel {channel_id!r} is on {channel.network}, not "
                                  f"{network}: reconnect it through its own network")
        state, verifier = secrets.token_urlsafe(32), new_code_verifier()
        redirect = self.redirect_uri(network)
        await self.store.save_connect(account_id, state_hash(state), network, person_id,
                                      channel_id, self.box.seal(verifier), redirect,
                                      self.clock() + CONNECT_TTL_S)
        return connector.authorize_url(state, code_challenge(verifier), redirect)

    async def finish(self, network: str, state: str, code: str | None,
                     error: str | None = None) -> Channel:
        """The network's callback: check the state, trade the code, store the channel."""
        pending = await self.store.take_connect(state_hash(state), self.clock()) \
            if state else None
        if pending is None or pending["network"] != network:
            raise SocialError("this connect link has expired or was used already; start "
                              "connecting the channel again")
        if error or not code:
            raise SocialError(f"{network} did not grant access ({error or 'no code'}); "
                              "start connecting again and allow the app")
        connector = self.connector(network)
        account_id = pending["account_id"]
        try:
            tokens = await connector.exchange_code(
                code, self.box.open(pending["code_verifier"]), pending["redirect_uri"])
            profile = await connector.profile(tokens.access_token)
        except NetworkError as exc:
            raise SocialError(f"{network} refused the connection: {exc.reason}; start "
                              "connecting again") from None
        remote_id = str(profile.get("id") or "")
        if not remote_id:
            raise SocialError(f"{network} did not say which account was connected; try again")
        now = self.clock()
        if pending["channel_id"]:
            old = await self.get(account_id, pending["channel_id"])
            if old.remote_id != remote_id:
                raise SocialError(f"you signed in to {network} as another account than "
                                  f"{old.handle or old.name!r}; sign in as that account to "
                                  "reconnect this channel, or connect a new channel")
        sealed = ChannelTokens(
            self.box.seal(tokens.access_token), self.box.seal(tokens.refresh_token or ""),
            tokens.expires_at, tokens.scope, 1, now, now if tokens.refresh_token else None)
        name = str(profile.get("name") or "")
        handle = str(profile.get("handle") or "")
        remote_user = str(profile.get("user_id") or "")
        async with self.store.db.transaction() as tx:
            found = await self.store.find_channel(account_id, network, remote_id, tx=tx)
            if found is None:
                channel_id = await self.store.insert_channel(
                    tx, account_id, network, remote_id, name, handle, sealed,
                    pending["person_id"], now, remote_user)
                action = "channel.connected"
            else:
                channel_id = found.channel_id
                if not tokens.refresh_token:  # never overwrite a refresh token with nothing
                    held = await self.store.sealed_tokens(account_id, channel_id, tx=tx)
                    if held is not None and held.refresh_token:
                        sealed = replace(sealed, refresh_token=held.refresh_token,
                                         refresh_issued_at=held.refresh_issued_at)
                await self.store.reconnect_channel(tx, account_id, channel_id, name, handle,
                                                   sealed, now, remote_user)
                action = "channel.reconnected"
            await self.store.audit(tx, account_id, f"channel:{channel_id}", action,
                                   pending["person_id"], {"network": network,
                                                          "handle": handle}, now)
        return await self.get(account_id, channel_id)

    # -- reading -------------------------------------------------------------------------

    async def get(self, account_id: str, channel_id: str) -> Channel:
        """The account's channel; :class:`NotFoundError` for any other id."""
        channel = await self.store.channel(account_id, channel_id)
        if channel is None:
            raise NotFoundError(f"there is no channel {channel_id!r}")
        return channel

    async def access_token(self, account_id: str, channel_id: str) -> str:
        """A usable access token for the channel, refreshed first when it is due."""
        return (await self._usable(account_id, channel_id))[0]

    async def _usable(self, account_id: str, channel_id: str) -> tuple[str, int]:
        """:meth:`access_token` and the token generation it belongs to."""
        channel = await self.refresh(account_id, channel_id)
        if channel.state != ACTIVE:
            raise ConflictError(f"channel {channel_id!r} needs to be connected again")
        sealed = await self.store.sealed_tokens(account_id, channel_id)
        assert sealed is not None
        return (self.open_access(account_id, channel_id, sealed.access_token),
                sealed.generation)

    async def token_for(self, channel: Channel, sealed: ChannelTokens | None) -> str:
        """:meth:`access_token` from a channel and tokens the caller has just read: no
        read of its own unless the token is due for a refresh, and the opened token
        kept per channel while its sealed form stays the same."""
        return (await self.held_token(channel, sealed))[0]

    async def held_token(self, channel: Channel, sealed: ChannelTokens | None
                         ) -> tuple[str, int]:
        """:meth:`token_for` and the token generation it belongs to (what a caller whose
        token was refused passes to :meth:`refresh` as ``seen_generation``)."""
        if sealed is None or channel.state != ACTIVE or self._due(sealed):
            return await self._usable(channel.account_id, channel.channel_id)
        return (self.open_access(channel.account_id, channel.channel_id,
                                 sealed.access_token), sealed.generation)

    def open_access(self, account_id: str, channel_id: str, sealed_access: str) -> str:
        """The opened access token of a sealed one, cached per channel (decryption is
        done once per token the channel holds, not once per post)."""
        key = (account_id, channel_id)
        cached = self._opened.get(key)
        if cached is not None and cached[0] == sealed_access:
            return cached[1]
        opened = self.box.open(sealed_access)
        if len(self._opened) >= OPENED_CACHE and key not in self._opened:
            self._opened.pop(next(iter(self._opened)))  # the oldest entry
        self._opened[key] = (sealed_access, opened)
        return opened

    # -- refreshing ----------------------------------------------------------------------

    def _due(self, tokens: ChannelTokens) -> bool:
        """Within the margin of expiry, and past half its life (so a network that gives
        tokens shorter than the margin is not asked again at once)."""
        if tokens.expires_at is None:
            return False
        now = self.clock()
        return (tokens.expires_at - self.margin_s <= now
                and (tokens.expires_at + tokens.issued_at) / 2 <= now)

    async def refresh(self, account_id: str, channel_id: str, *, force: bool = False,
                      seen_generation: int | None = None) -> Channel:
        """Refresh the channel's tokens when they are due (or ``force``); the channel.

        One refresh per channel at a time, across processes; a caller that finds
        another refresh under way waits for it (as long as it may take) and takes its
        result, or takes its lease over once it lapses (its process died). A caller whose
        token the network refused names that token's generation (``seen_generation``):
        once the stored tokens moved past it (another job refreshed meanwhile) nothing
        is refreshed, so many refused calls cost one call to the token endpoint.
        """
        lock = self._locks.setdefault((account_id, channel_id), asyncio.Lock())
        async with lock:
            return await self._refresh(account_id, channel_id, force, seen_generation)

    async def _refresh(self, account_id: str, channel_id: str, force: bool,
                       seen_generation: int | None = None) -> Channel:
        channel = await self.get(account_id, channel_id)
        started = channel.token_generation if seen_generation is None else seen_generation
        # another process's refresh, its lease renewed, may take refresh_timeout_s; then
        # its lease is given back, or lapses within lease_s if it died, and is taken over
        # here: only a holder stuck past that is given up on
        deadline = self.clock() + self.refresh_timeout_s + 2 * self.lease_s
        pause = WAIT_FIRST_S
        while True:
            sealed = await self.store.sealed_tokens(account_id, channel_id)
            channel = await self.get(account_id, channel_id)
            if sealed is None or channel.state != ACTIVE:
                return channel
            if sealed.generation != started or not (force or self._due(sealed)):
                return channel  # fresh enough, or another refresh just finished
            expired = sealed.expires_at is not None and sealed.expires_at <= self.clock()
            if not sealed.refresh_token and not expired:
                raise ConflictError(f"channel {channel_id!r} has no refresh token; connect "
                                    "it again before its access token expires")
            lease, now = secrets.token_hex(8), self.clock()
            if await self.store.claim_refresh(account_id, channel_id, sealed.generation,
                                              lease, now + self.lease_s, now):
                if not sealed.refresh_token:  # expired, nothing to renew it with: dead
                    await self._flag(channel, lease, f"its access token expired and "
                                     f"{channel.network} gave no refresh token to renew it",
                                     what="token expired")
                    return await self.get(account_id, channel_id)
                return await self._run_refresh(channel, sealed, lease)
            if self.clock() > deadline:
                raise SocialError(f"channel {channel_id!r} is being refreshed elsewhere for "
                                  "too long; try again shortly")
            await asyncio.sleep(pause)
            pause = min(2 * pause, WAIT_MOST_S, self.lease_s / 3)

    async def _run_refresh(self, channel: Channel, sealed: ChannelTokens, lease: str
                           ) -> Channel:
        account_id, channel_id = channel.account_id, channel.channel_id
        connector = self.connector(channel.network)
        issued = self.clock()
        try:
            answer = await self._ask(connector, channel, sealed, lease)
        except NetworkError as exc:
            if exc.retryable:
                await self.store.release_refresh(account_id, channel_id, lease,
                                                 f"refresh failed: {exc.reason}", self.clock())
                raise
            await self._flag(channel, lease, exc.reason)
            return await self.get(account_id, channel_id)
        except BaseException:
            await self.store.release_refresh(account_id, channel_id, lease,
                                             "refresh interrupted", self.clock())
            raise
        current = ChannelTokens(self.box.open(sealed.access_token),
                                self.box.open(sealed.refresh_token), sealed.expires_at,
                                sealed.scope, sealed.generation, sealed.issued_at,
                                sealed.refresh_issued_at)
        merged = merge_refresh(current, answer, issued)
        new = merged.tokens
        resealed = ChannelTokens(self.box.seal(new.access_token),
                                 self.box.seal(new.refresh_token), new.expires_at, new.scope,
                                 new.generation, new.issued_at, new.refresh_issued_at)
        async with self.store.db.transaction() as tx:
            stored = await self.store.store_refresh(tx, account_id, channel_id,
                                                    sealed.generation, lease, resealed,
                                                    self.clock())
            if stored:
                await self.store.audit(tx, account_id, f"channel:{channel_id}",
                                       "channel.refreshed", "",
                                       {"generation": new.generation,
                                        "refresh_token_replaced": merged.refresh_replaced})
        if not stored:
            logger.warning("refresh of channel %s/%s answered after its lease passed to "
                           "another refresh; its answer is dropped", account_id, channel_id)
        return await self.get(account_id, channel_id)

    async def _ask(self, connector: Connector, channel: Channel, sealed: ChannelTokens,
                   lease: str) -> OAuthTokens:
        """The network's answer to a refresh, within ``refresh_timeout_s`` (a retryable
        :class:`NetworkError` after it). Our lease is renewed while the call is in
        flight: a slow answer never lets another refresh spend the same refresh token."""
        renewing = asyncio.create_task(self._renew(channel, lease))
        try:
            async with asyncio.timeout(self.refresh_timeout_s):
                return await connector.refresh(self.box.open(sealed.refresh_token))
        except TimeoutError:
            raise NetworkError(f"the token refresh got no answer within "
                               f"{self.refresh_timeout_s:g} s", network=channel.network,
                               retryable=True) from None
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)

    async def _renew(self, channel: Channel, lease: str) -> None:
        """Extend our refresh lease every third of it, until cancelled or no longer ours."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                if not await self.store.renew_refresh(channel.account_id, channel.channel_id,
                                                      lease, self.clock() + self.lease_s):
                    return
            except Exception as exc:  # the next renewal may work; the lease may lapse
                logger.warning("renewing the refresh lease of channel %s/%s failed: %s",
                               channel.account_id, channel.channel_id, exc)

    async def _flag(self, channel: Channel, lease: str, reason: str, *,
                    what: str = "refresh refused") -> None:
        account_id = channel.account_id
        now = self.clock()
        async with self.store.db.transaction() as tx:
            if not await self.store.flag_reconnect(tx, account_id, channel.channel_id, lease,
                                                   f"{what}: {reason}", now):
                return
            await self.store.audit(tx, account_id, f"channel:{channel.channel_id}",
                                   "channel.needs_reconnect", "", {"reason": reason}, now)
            await self.publish(tx, NEEDS_RECONNECT_EVENT, {
                "account_id": account_id, "channel_id": channel.channel_id,
                "network": channel.network, "name": channel.name,
                "connected_by": channel.connected_by,
                "reconnect_url": self.reconnect_url(account_id, channel), "reason": reason,
            }, account_id)
        logger.info("channel %s/%s needs to be reconnected: %s", account_id,
                    channel.channel_id, reason)

    async def refresh_due(self) -> int:
        """Refresh every active channel whose token expires within the margin; how many
        were refreshed or flagged (failures are logged and tried again next round)."""
        done = 0
        for account_id, channel_id in await self.store.due_for_refresh(self.clock(),
                                                                       self.margin_s):
            try:
                before = await self.get(account_id, channel_id)
                after = await self.refresh(account_id, channel_id)
                done += (after.token_generation, after.state) != (before.token_generation,
                                                                  before.state)
            except Exception as exc:  # one channel's failure must not stop the others
                logger.warning("refreshing channel %s/%s failed: %s", account_id,
                               channel_id, exc)
        return done

    # -- disconnecting and keys ----------------------------------------------------------

    async def disconnect(self, account_id: str, channel_id: str, actor: str) -> Channel:
        """Forget the channel's tokens (it stays listed in its posts' history); their
        withdrawal at the network is queued in the same transaction (:mod:`.revocation`)."""
        channel = await self.get(account_id, channel_id)
        queued = False
        async with self.store.db.transaction() as tx:
            sealed = await self.store.sealed_tokens(account_id, channel_id, tx=tx)
            remote_user = await self.store.remote_user(account_id, channel_id, tx=tx)
            await self.store.disconnect(tx, account_id, channel_id, self.clock())
            await self.store.audit(tx, account_id, f"channel:{channel_id}",
                                   "channel.disconnected", actor)
            if self.queue is not None and sealed is not None:
                queued = await queue_revoke(self.queue, tx, account_id, channel_id,
                                            channel.network, sealed.access_token,
                                            sealed.refresh_token, DISCONNECTED,
                                            remote_id=channel.remote_id,
                                            remote_user=remote_user)
        if queued:
            self.queue.wake(REVOKE)
        self._opened.pop((account_id, channel_id), None)
        return await self.get(account_id, channel_id)

    async def reseal_all(self) -> int:
        """Seal every stored token with the first key (after adding a new key in front);
        how many channels were re-sealed."""
        done = 0
        for row in await self.store.every_sealed_token():
            if await self.store.reseal(row, self.box.reseal(row["access_token"]),
                                       self.box.reseal(row["refresh_token"])):
                done += 1
        return done
