"""How each network counts a post's text, and what the text holds (links, hashtags, mentions).

X counts by the weighted rules of twitter-text's published configuration (version 3):
text is NFC-normalised; every URL counts 23; an emoji (one pictographic sequence, however
many code points: a family, a flag, a skin tone, a keycap) counts 2; a code point in the
light ranges (U+0000-U+10FF, U+2000-U+200D, U+2010-U+201F, U+2032-U+2037) counts 1 and
every other one 2 (CJK, Hangul, most symbols). The only Python port of twitter-text that
implements version 3 (``twitter-text-parser``) had its last release in May 2023 and takes
about 1.5 ms a post, so we implement those published rules here, with the ``regex``
module's Unicode properties for emoji.

URL recognition is simpler than twitter-text's: a URL is ``http(s)://`` and a dotted host,
or a bare dotted host whose top-level domain is a common generic one or a two-letter
country code (``example.com``, ``bit.ly/x``); ``file.txt`` and ``e.g.`` are not URLs.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

import regex

#: twitter-text configuration v3: ``transformedURLLength``.
X_URL_LENGTH = 23

#: twitter-text configuration v3 ``ranges`` of weight 100 (one character); every other
#: code point has ``defaultWeight`` 200 (two characters).
_X_HEAVY = re.compile("[^\u0000-\u10ff\u2000-\u200d\u2010-\u201f\u2032-\u2037]")

#: One emoji: a flag (two regional indicators), a keycap, or a pictographic character with
#: its presentation selector, skin tone, tag sequence and zero-width-joined followers.
_EMOJI = regex.compile(
    r"\p{RI}\p{RI}"
    r"|[#*0-9]\uFE0F?\u20E3"
    r"|\p{Extended_Pictographic}[\uFE0E\uFE0F]?\p{Emoji_Modifier}?"
    r"(?:[\U000E0020-\U000E007E]+\U000E007F)?"
    r"(?:\u200D\p{Extended_Pictographic}[\uFE0E\uFE0F]?\p{Emoji_Modifier}?)*"
)

_GRAPHEME = regex.compile(r"\X")

_URL = re.compile(
    r"""(?<![\w@.$/#-])
    (?P<url>
      (?P<scheme>https?://)?
      (?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+(?P<tld>[^\W\d_]{2,63})
      (?::\d{1,5})?
      (?:[/?#][^\s<>"]*)?
    )""",
    re.VERBOSE | re.IGNORECASE,
)
_TRAILING = ".,;:!?'\"*"

_HASHTAG = re.compile(r"(?<![\w&#＃])[#＃](\w*[^\W\d_]\w*)")
_MENTION = re.compile(r"(?<![\w@＠])[@＠](\w(?:[\w.-]*\w)?)")

_GENERIC_TLDS = frozenset({
    "com", "net", "org", "info", "biz", "edu", "gov", "mil", "int", "name", "pro", "mobi",
    "aero", "coop", "museum", "jobs", "travel", "tel", "asia", "io", "ai", "app", "dev",
    "xyz", "online", "site", "store", "shop", "blog", "music", "art", "studio", "live",
    "news", "page", "link", "club", "top", "tech", "cloud", "media", "agency", "digital",
    "design", "tv", "fm", "me", "co", "ly", "gg", "to", "sh", "so", "cc", "ws",
})


@cache
def _country_tlds() -> frozenset[str]:
    import pycountry

    return frozenset(c.alpha_2.lower() for c in pycountry.countries) | {"uk", "eu", "ac"}


def _known_tld(tld: str) -> bool:
    tld = tld.lower()
    return tld in _GENERIC_TLDS or (len(tld) == 2 and tld in _country_tlds())


def find_urls(text: str) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the URLs in ``text``, in order."""
    spans = []
    for match in _URL.finditer(text):
        if not match.group("scheme") and not _known_tld(match.group("tld")):
            continue
        start, end = match.span("url")
        while end > start and text[end - 1] in _TRAILING:
            end -= 1
        for close, open_ in ((")", "("), ("]", "[")):
            while text[end - 1] == close and (
                    text.count(open_, start, end) < text.count(close, start, end)):
                end -= 1
        spans.append((start, end))
    return spans


def _without(text: str, spans: list[tuple[int, int]]) -> list[str]:
    """The pieces of ``text`` between ``spans``."""
    pieces, last = [], 0
    for start, end in spans:
        pieces.append(text[last:start])
        last = end
    pieces.append(text[last:])
    return pieces


def hashtags(text: str) -> list[str]:
    """The hashtags in ``text`` (without ``#``), URLs left out (a ``#fragment`` is no tag)."""
    return [tag for piece in _without(text, find_urls(text)) for tag in _HASHTAG.findall(piece)]


def mentions(text: str) -> list[str]:
    """The ``@mentions`` in ``text`` (without ``@``); e-mail addresses are not mentions."""
    return [m for piece in _without(text, find_urls(text)) for m in _MENTION.findall(piece)]


@dataclass(frozen=True)
class XLength:
    """X's weighted length of a text and how many URLs in it counted 23 each."""

    weighted: int
    urls: int


def x_length(text: str) -> XLength:
    """X's weighted character count (twitter-text configuration v3)."""
    text = unicodedata.normalize("NFC", text)
    spans = find_urls(text)
    total = X_URL_LENGTH * len(spans)
    for piece in _without(text, spans):
        if piece.isascii():
            total += len(piece)
            continue
        piece, emoji = _EMOJI.subn("", piece)
        total += 2 * emoji + len(piece) + len(_X_HEAVY.findall(piece))
    return XLength(total, len(spans))


def graphemes(text: str) -> int:
    """User-perceived characters (Unicode extended grapheme clusters): a family emoji is 1."""
    if text.isascii():
        return len(text) - text.count("\r\n")
    return len(_GRAPHEME.findall(text))


def emoji_bytes_length(text: str) -> int:
    """Code points, except that each emoji counts its UTF-8 bytes (Threads' rule)."""
    if text.isascii():
        return len(text)
    emoji = _EMOJI.findall(text)
    rest = _EMOJI.sub("", text)
    return len(rest) + sum(len(e.encode()) for e in emoji)


def text_length(text: str, counting: str) -> int:
    """Length of ``text`` in a network's unit; ``counting`` names it (see ``UNITS``)."""
    if counting == "weighted":
        return x_length(text).weighted
    if counting == "graphemes":
        return graphemes(text)
    if counting == "utf16":
        return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2
    if counting == "utf8_bytes":
        return len(text.encode())
    if counting == "emoji_bytes":
        return emoji_bytes_length(text)
    if counting == "chars":
        return len(text)
    raise ValueError(f"unknown text counting {counting!r}: use one of {sorted(UNITS)}")


#: How each counting is named in messages.
UNITS = {
    "chars": "characters",
    "weighted": "characters",
    "graphemes": "characters (graphemes)",
    "utf16": "characters (UTF-16 units)",
    "utf8_bytes": "bytes (UTF-8)",
    "emoji_bytes": "characters (an emoji counts its UTF-8 bytes)",
}
