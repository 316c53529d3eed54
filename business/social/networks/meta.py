"""What Meta's Graph APIs share (Instagram, Facebook Pages, Threads): error codes,
long-lived tokens, and the container -> publish flow of Instagram and Threads.

Meta issues no refresh tokens: a long-lived access token (60 days) is exchanged for a
fresh one before it expires, so these connectors return the long-lived token as both
``access_token`` and ``refresh_token`` and :meth:`refresh` takes it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping

from business.social.errors import (
    Duplicate,
    NetworkError,
    QuotaExhausted,
    RateLimited,
    Rejected,
    TokenExpired,
)
from business.social.networks.base import MediaItem, OAuthTokens, Publication, Published, Quota
from business.social.networks.http import (
    Answer,
    HttpConnector,
    remote_time,
    retry_after_from,
    same_text,
    sent_since,
)

#: Graph error codes that mean "throttled" (application, user, page, business use case).
RATE_CODES = {4, 17, 32, 613, *range(80001, 80015)}
#: The error code of an invalid or expired access token.
TOKEN_CODE = 190
#: Facebook's "(#506) Duplicate status message".
DUPLICATE_CODE = 506
#: Instagram: "the maximum number of posts ... in a 24 hour period has been reached".
PUBLISH_LIMIT_SUBCODE = 2207042


def usage_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds until access returns, from ``X-Business-Use-Case-Usage`` (minutes there)."""
    raw = headers.get("X-Business-Use-Case-Usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    minutes = [entry.get("estimated_time_to_regain_access", 0)
               for entries in usage.values() for entry in entries]
    return 60.0 * max(minutes) if minutes else None


class GraphConnector(HttpConnector):
    """A Graph API connector: ``VERSION`` in every path, Graph errors mapped."""

    VERSION = "v21.0"

    def v(self, path: str) -> str:
        return f"/{self.VERSION}{path}"

    def describe(self, answer: Answer) -> str:
        error = answer.body.get("error")
        if isinstance(error, dict):
            return str(error.get("error_user_msg") or error.get("message") or error)
        return super().describe(answer)

    def classify(self, answer: Answer) -> NetworkError | None:
        error = answer.body.get("error")
        if not isinstance(error, dict):
            return None
        code, subcode = error.get("code"), error.get("error_subcode")
        reason = f"HTTP {answer.status}: {self.describe(answer)} (code {code})"
        common = {"network": self.network, "status": answer.status}
        if code == TOKEN_CODE:
            return TokenExpired(reason, **common)
        if code in RATE_CODES:
            wait = usage_retry_after(answer.headers) or retry_after_from(answer.headers)
            return RateLimited(reason, retry_after=wait, **common)
        if code == DUPLICATE_CODE:
            return Duplicate(reason, **common)
        if subcode == PUBLISH_LIMIT_SUBCODE or code == 9:
            return QuotaExhausted(reason, **common)
        if error.get("is_transient") or answer.status >= 500 or code in (1, 2):
            return NetworkError(reason, retryable=True, **common)
        return None


class ContainerConnector(GraphConnector):
    """Instagram and Threads: create a media container, wait until it is ``FINISHED``,
    publish it, then read its permalink."""

    #: The container's status field and the edge names ("media" / "threads").
    STATUS_FIELD = "status_code"
    MEDIA_EDGE = "/media"
    PUBLISH_EDGE = "/media_publish"
    TEXT_FIELD = "caption"
    LIMIT_EDGE = "/content_publishing_limit"
    SCOPES = ""
    #: ``grant_type`` values of the long-lived token's exchange and refresh (per app).
    EXCHANGE_GRANT = "ig_exchange_token"
    REFRESH_GRANT = "ig_refresh_token"

    def authorize_url(self, state: str, code_challenge: str, redirect_uri: str) -> str:
        return self.with_query(self.url("/oauth/authorize", "auth"), {
            "client_id": self.client_id, "redirect_uri": redirect_uri,
            "response_type": "code", "scope": self.SCOPES, "state": state,
            "code_challenge": code_challenge, "code_challenge_method": "S256"})

    async def exchange_code(self, code: str, code_verifier: str, redirect_uri: str
                            ) -> OAuthTokens:
        """The code for a short-lived token, then that for the long-lived one (both the
        access and the "refresh" token: these networks issue no refresh tokens)."""
        short = await self.token_request("/oauth/access_token", {
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
            "code_verifier": code_verifier})
        token, expires_at = await self.long_lived("/access_token", self.EXCHANGE_GRANT,
                                                  short.access_token, with_secret=True)
        return OAuthTokens(token, token, expires_at, short.scope)

    async def refresh(self, refresh_token: str) -> OAuthTokens:
        token, expires_at = await self.long_lived("/refresh_access_token", self.REFRESH_GRANT,
                                                  refresh_token, with_secret=False)
        return OAuthTokens(token, token, expires_at)

    async def user_id(self, access_token: str) -> str:
        return str((await self.profile(access_token))["id"])

    async def create_container(self, access_token: str, user_id: str,
                               publication: Publication) -> str:
        raise NotImplementedError

    async def wait_finished(self, access_token: str, container_id: str) -> None:
        """Poll the container until ``FINISHED``; Rejected on ``ERROR``/``EXPIRED``."""
        deadline = time.monotonic() + self.poll_timeout_s
        while True:
            answer = await self.call("GET", self.with_query(self.v(f"/{container_id}"), {
                "fields": f"{self.STATUS_FIELD},status"}), token=access_token)
            state = answer.body.get(self.STATUS_FIELD) or answer.body.get("status", "")
            if state in ("FINISHED", "PUBLISHED"):
                return
            if state in ("ERROR", "EXPIRED"):
                raise Rejected(f"media container {container_id} is {state}: "
                               f"{answer.body.get('status') or answer.body.get('error_message')}",
                               network=self.network)
            if time.monotonic() > deadline:
                raise NetworkError(f"media container {container_id} still {state} after "
                                   f"{self.poll_timeout_s:.0f} s", network=self.network)
            await asyncio.sleep(self.poll_interval_s)

    async def publish(self, access_token: str, publication: Publication) -> Published:
        user_id = await self.user_id(access_token)
        container = await self.create_container(access_token, user_id, publication)
        await self.wait_finished(access_token, container)
        try:
            answer = await self.call("POST", self.v(f"/{user_id}{self.PUBLISH_EDGE}"),
                                     token=access_token, data={"creation_id": container})
        except QuotaExhausted as exc:
            limit = await self.quota(access_token)
            if limit is not None:
                exc.retry_after = max(0.0, limit.resets_at - time.time())
            raise
        media_id = str(answer.body["id"])
        if publication.first_comment:
            await self.comment(access_token, user_id, media_id, publication.first_comment)
        return Published(media_id, await self.permalink(access_token, media_id))

    async def comment(self, access_token: str, user_id: str, media_id: str, text: str) -> None:
        raise NotImplementedError

    async def permalink(self, access_token: str, media_id: str) -> str:
        answer = await self.call("GET", self.with_query(self.v(f"/{media_id}"), {
            "fields": "permalink"}), token=access_token)
        return str(answer.body.get("permalink", ""))

    async def find_published(self, access_token: str, dedupe_key: str, *,
                             text: str | None = None, since: float | None = None
                             ) -> Published | None:
        """The account's recent post with the same text (the API keeps no field for our key,
        and the text is all it returns), created since ``since`` (:func:`sent_since`; the
        media's ``timestamp``); None without ``text``."""
        if not text:
            return None
        user_id = await self.user_id(access_token)
        answer = await self.call("GET", self.with_query(self.v(f"/{user_id}{self.MEDIA_EDGE}"), {
            "fields": f"id,{self.TEXT_FIELD},permalink,timestamp", "limit": "50"}),
            token=access_token)
        for item in answer.body.get("data", []):
            if same_text(str(item.get(self.TEXT_FIELD, "")), text) and sent_since(
                    remote_time(item.get("timestamp")), since):
                return Published(str(item["id"]), str(item.get("permalink", "")))
        return None

    async def quota(self, access_token: str) -> Quota | None:
        """The rolling 24 h publishing limit as the API reports it; ``resets_at`` is the
        latest moment a slot frees (the API does not say when the oldest post ages out)."""
        user_id = await self.user_id(access_token)
        answer = await self.call("GET", self.with_query(self.v(f"/{user_id}{self.LIMIT_EDGE}"), {
            "fields": "quota_usage,config"}), token=access_token)
        data = answer.body.get("data") or [{}]
        config = data[0].get("config", {})
        if "quota_total" not in config:
            return None
        return Quota(int(data[0].get("quota_usage", 0)), int(config["quota_total"]),
                     time.time() + float(config.get("quota_duration", 86400)))

    async def long_lived(self, path: str, grant: str, token: str, *,
                         with_secret: bool) -> tuple[str, float | None]:
        """Exchange or refresh a long-lived token (Meta's GET token endpoints)."""
        params = {"grant_type": grant, "access_token": token}
        if with_secret:
            params["client_secret"] = self.client_secret
        answer = await self.call("GET", self.with_query(path, params))
        expires_in = answer.body.get("expires_in")
        return (str(answer.body["access_token"]),
                time.time() + float(expires_in) if expires_in else None)


def media_kind(item: MediaItem) -> str:
    if item.kind not in ("image", "video"):
        raise Rejected(f"takes images and videos, not {item.kind}")
    return item.kind
