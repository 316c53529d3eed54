"""UTM short links: a post's link replaced by ``/s/{code}``, which counts the click and
redirects (302) to the original URL tagged for the channel's network.

A code is 10 characters drawn by :mod:`secrets` from 62 (about 59 bits): short, and not
worth guessing. One code per channel of a post (the same one on every retry, so a
dispatch retry's text matches the first attempt's). The redirect adds
``utm_source=<network>``, ``utm_medium=social`` and ``utm_campaign=<the post's campaign,
or its id>`` after the URL's own query, which is kept as it was; a ``utm_*`` the URL
already has is not overwritten.

A click counts once per visitor and hour: the visitor is an HMAC (a secret salt derived
from the server's secret) of the hour, the address and the user agent, so no address is
stored and a visitor cannot be followed from one hour to the next. Obvious bots (link
preview fetchers such as ``facebookexternalhit`` and ``Twitterbot``, crawlers, command
line clients: the `crawlerdetect <https://pypi.org/project/crawlerdetect/>`_ list, and an
empty user agent) are redirected but not counted.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from crawlerdetect import CrawlerDetect

from business.social.errors import NotFoundError, SocialError

ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 10
#: The public route's prefix.
PATH = "/s"
UTM_MEDIUM = "social"
#: What the short-link salt is derived from the server's secret for.
SALT_PURPOSE = "social short-link visitors"

_crawlers = CrawlerDetect()


def new_code() -> str:
    """A fresh random code."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def check_url(url: str) -> str:
    """``url`` when it is an absolute http(s) URL with a host; a :class:`SocialError`
    saying what to give otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SocialError(f"link {url!r} is not an absolute http(s) URL; give one such as "
                          "https://example.com/release")
    return url.strip()


def tagged_url(url: str, *, network: str, campaign: str) -> str:
    """``url`` with the UTM parameters it lacks added after its own query (kept as is)."""
    parts = urlsplit(url)
    present = {key.lower() for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    added = [(key, value) for key, value in (("utm_source", network),
                                             ("utm_medium", UTM_MEDIUM),
                                             ("utm_campaign", campaign))
             if key not in present]
    if not added:
        return url
    query = "&".join(q for q in (parts.query, urlencode(added)) if q)
    return urlunsplit(parts._replace(query=query))


def is_bot(user_agent: str) -> bool:
    """Whether a user agent is an obvious bot (or missing)."""
    agent = user_agent.strip()
    return not agent or bool(_crawlers.isCrawler(agent))


@dataclass(frozen=True)
class ShortLink:
    """A short link of one channel of a post."""

    account_id: str
    code: str
    post_id: str
    channel_id: str
    network: str
    url: str
    campaign: str

    @property
    def target(self) -> str:
        """Where the short link redirects: the URL with its UTM parameters."""
        return tagged_url(self.url, network=self.network,
                          campaign=self.campaign or self.post_id)


class Links:
    """Short links and their clicks."""

    def __init__(self, db: Any, salt: bytes, base_url: str = "", *,
                 window_s: float = 3600.0, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.salt = salt
        self.base_url = base_url.rstrip("/")
        self.window_s = window_s
        self.clock = clock

    def short_url(self, code: str) -> str:
        return f"{self.base_url}{PATH}/{code}"

    async def shorten(self, account_id: str, post_id: str, channel_id: str, network: str,
                      url: str, campaign: str = "") -> str:
        """The short URL of this channel of the post (made once; the original URL and
        campaign follow the post's edits)."""
        url = check_url(url)
        await self.db.execute(
            "INSERT INTO social_short_links (account_id, code, post_id, channel_id, network, "
            "url, campaign, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account_id, post_id, channel_id) DO UPDATE SET url = excluded.url, "
            "campaign = excluded.campaign",
            account_id, new_code(), post_id, channel_id, network, url, campaign, self.clock())
        code = await self.db.fetchval(
            "SELECT code FROM social_short_links WHERE account_id = ? AND post_id = ? AND "
            "channel_id = ?", account_id, post_id, channel_id)
        return self.short_url(code)

    async def resolve(self, code: str) -> ShortLink:
        """The link of ``code``; :class:`NotFoundError` for an unknown one."""
        row = await self.db.fetchrow(
            "SELECT account_id, code, post_id, channel_id, network, url, campaign "
            "FROM social_short_links WHERE code = ?", code)
        if row is None:
            raise NotFoundError(f"there is no short link {code!r}")
        return ShortLink(**{k: row[k] for k in ("account_id", "code", "post_id", "channel_id",
                                                "network", "url", "campaign")})

    def visitor(self, hour: int, address: str, user_agent: str) -> str:
        """The salted hash a visitor is counted by within one hour."""
        message = f"{hour}\n{address}\n{user_agent}".encode()
        return hmac.new(self.salt, message, hashlib.sha256).hexdigest()[:32]

    async def click(self, code: str, address: str, user_agent: str) -> tuple[ShortLink, bool]:
        """Follow ``code``: its link, and whether this click was counted (not a bot, not
        a repeat of the same visitor within the hour)."""
        link = await self.resolve(code)
        if is_bot(user_agent):
            return link, False
        now = self.clock()
        hour = int(now // self.window_s)
        counted = await self.db.execute(
            "INSERT INTO social_link_clicks (account_id, code, hour, visitor, post_id, "
            "channel_id, clicked_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account_id, code, hour, visitor) DO NOTHING",
            link.account_id, link.code, hour, self.visitor(hour, address, user_agent),
            link.post_id, link.channel_id, now)
        return link, bool(counted)
