"""UTM short links: a post's link replaced by ``/s/{code}``, which counts the click and
redirects (302) to the original URL tagged for the channel's network.

A code is 10 characters drawn by :mod:`secrets` from 62 (about 59 bits): short, and not
worth guessing. One code per channel of a post (the same one on every retry, so a
dispatch retry's text matches the first attempt's). A code is unique across accounts
(a fresh one is drawn while another account holds it, and a code that two rows share
redirects nowhere), so a link only ever leads where its owner's post points. Guessing is
made dear as well: a string that is not a code's shape answers 404 without a database
read, and an address that asks for unknown codes more than ``misses_per_minute`` times
a minute gets 429 (for every code) until its window frees.

The destination is checked when the link is made and again on every redirect: an
absolute ``http``/``https`` URL with a host, no credentials (``https://bank@evil.example``
is refused), no spaces, control characters or backslashes (which browsers and parsers
read differently). The UTM tags never change its scheme or host. The redirect adds
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
import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from crawlerdetect import CrawlerDetect
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from business.social.errors import NotFoundError, SocialError
from dawserver.plugin_api import limited_client

ALPHABET = string.ascii_letters + string.digits
CODE_LENGTH = 10
#: What a code looks like (anything else is not looked up).
CODE = re.compile(rf"^[A-Za-z0-9]{{{CODE_LENGTH}}}$")
#: Characters a destination may not hold: spaces, controls, backslashes.
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
#: The public route's prefix.
PATH = "/s"
UTM_MEDIUM = "social"
#: What the short-link salt is derived from the server's secret for.
SALT_PURPOSE = "social short-link visitors"

_crawlers = CrawlerDetect()


def new_code() -> str:
    """A fresh random code."""
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


class TooManyGuesses(SocialError):
    """An address asked for too many unknown short links; ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def check_url(url: str) -> str:
    """``url`` when it is an absolute http(s) URL with a host, without credentials,
    spaces, control characters or backslashes; a :class:`SocialError` saying what to
    give otherwise."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SocialError(f"link {url!r} is not an absolute http(s) URL; give one such as "
                          "https://example.com/release")
    if _UNSAFE.search(url):
        raise SocialError(f"link {url!r} holds a space, a control character or a "
                          "backslash; percent-encode them (%20 ...)")
    if parts.username is not None or parts.password is not None:
        raise SocialError(f"link {url!r} carries a user name or password before its host; "
                          "give the address without them")
    return url


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
        """Where the short link redirects: the URL with its UTM parameters (checked again:
        :class:`NotFoundError` for a stored URL that no longer passes :func:`check_url`)."""
        try:
            url = check_url(self.url)
        except SocialError:
            raise NotFoundError(f"short link {self.code!r} has no valid destination") from None
        tagged = tagged_url(url, network=self.network, campaign=self.campaign or self.post_id)
        before, after = urlsplit(url), urlsplit(tagged)
        if (before.scheme, before.netloc) != (after.scheme, after.netloc):
            raise NotFoundError(f"short link {self.code!r} has no valid destination")
        return tagged



class Links:
    """Short links and their clicks."""

    def __init__(self, db: Any, salt: bytes, base_url: str = "", *,
                 window_s: float = 3600.0, clock: Callable[[], float] = time.time,
                 misses_per_minute: int = 30) -> None:
        self.db = db
        self.salt = salt
        self.base_url = base_url.rstrip("/")
        self.window_s = window_s
        self.clock = clock
        #: Unknown codes one address may ask for in a minute (this server's count).
        self.misses = RateLimitItemPerMinute(misses_per_minute)
        self._guesses = MovingWindowRateLimiter(MemoryStorage())

    def short_url(self, code: str) -> str:
        return f"{self.base_url}{PATH}/{code}"

    async def shorten(self, account_id: str, post_id: str, channel_id: str, network: str,
                      url: str, campaign: str = "") -> str:
        """The short URL of this channel of the post (made once; the original URL and
        campaign follow the post's edits)."""
        url = check_url(url)
        code = new_code()
        while await self.db.fetchval("SELECT 1 FROM social_short_links WHERE code = ?", code):
            code = new_code()  # held by another link (about never): a code is one link's
        await self.db.execute(
            "INSERT INTO social_short_links (account_id, code, post_id, channel_id, network, "
            "url, campaign, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (account_id, post_id, channel_id) DO UPDATE SET url = excluded.url, "
            "campaign = excluded.campaign",
            account_id, code, post_id, channel_id, network, url, campaign, self.clock())
        code = await self.db.fetchval(
            "SELECT code FROM social_short_links WHERE account_id = ? AND post_id = ? AND "
            "channel_id = ?", account_id, post_id, channel_id)
        return self.short_url(code)

    async def resolve(self, code: str) -> ShortLink:
        """The link of ``code``; :class:`NotFoundError` for an unknown one (or one that
        two rows share: it could lead elsewhere than its owner set)."""
        rows = [] if not CODE.match(code) else await self.db.fetch(
            "SELECT account_id, code, post_id, channel_id, network, url, campaign "
            "FROM social_short_links WHERE code = ? LIMIT 2", code)
        if len(rows) != 1:
            raise NotFoundError(f"there is no short link {code!r}")
        row = rows[0]
        return ShortLink(**{k: row[k] for k in ("account_id", "code", "post_id", "channel_id",
                                                "network", "url", "campaign")})

    def visitor(self, hour: int, address: str, user_agent: str) -> str:
        """The salted hash a visitor is counted by within one hour."""
        message = f"{hour}\n{address}\n{user_agent}".encode()
        return hmac.new(self.salt, message, hashlib.sha256).hexdigest()[:32]

    async def click(self, code: str, address: str, user_agent: str) -> tuple[ShortLink, bool]:
        """Follow ``code``: its link, and whether this click was counted (not a bot, not
        a repeat of the same visitor within the hour). :class:`TooManyGuesses` once
        ``address`` asked for too many unknown codes this minute."""
        guesser = limited_client(address)
        if not await self._guesses.test(self.misses, guesser):
            stats = await self._guesses.get_window_stats(self.misses, guesser)
            raise TooManyGuesses("too many unknown short links from this address: wait a "
                                 "minute", max(1, int(stats.reset_time - time.time()) + 1))
        try:
            link = await self.resolve(code)
            link.target  # noqa: B018 - a stored destination that fails the check is missing
        except NotFoundError:
            await self._guesses.hit(self.misses, guesser)
            raise
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
