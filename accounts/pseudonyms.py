"""Stable pseudonyms for erased people, and the one rule that replaces their mentions.

When a person is erased, records that must outlive them (the security log, money
records a plug-in keeps by law) name them by :func:`pseudonym_of` their account
id: ``erased-`` and 16 hex digits of a SHA-256, the same in every table and
plug-in, so the records still add up while nobody is named. A
:class:`Pseudonymiser` replaces every mention of the person (their account id,
display name, email addresses) in text and in JSON-able values.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

PSEUDONYM_PREFIX = "erased-"
#: A display name shorter than this is replaced only where it is a whole value,
#: never inside other text ("Al" would otherwise eat "Album").
MIN_MENTION_CHARS = 3


def pseudonym_of(account_id: str) -> str:
    """The stable pseudonym of ``account_id``: ``erased-`` and 16 hex digits."""
    digest = hashlib.sha256(f"maxbooster-erasure:{account_id}".encode()).hexdigest()
    return PSEUDONYM_PREFIX + digest[:16]


@dataclass(frozen=True)
class Pseudonymiser:
    """Replaces every mention of one person by their pseudonym.

    ``names`` are the person's display name and email addresses; the account id
    is always included. A value equal to any of them (any case, surrounding
    spaces ignored) becomes the pseudonym; a mention inside longer text is
    replaced where it stands as a word of its own.
    """

    account_id: str
    names: tuple[str, ...] = ()
    pseudonym: str = ""
    _whole: frozenset[str] = field(init=False, repr=False, compare=False)
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.pseudonym:
            object.__setattr__(self, "pseudonym", pseudonym_of(self.account_id))
        needles = {n.strip() for n in (self.account_id, *self.names) if n and n.strip()}
        object.__setattr__(self, "_whole", frozenset(n.casefold() for n in needles))
        mentions = sorted((n for n in needles if len(n) >= MIN_MENTION_CHARS), key=len,
                          reverse=True)
        pattern = None
        if mentions:
            pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, mentions)) + r")(?!\w)",
                                 re.IGNORECASE)
        object.__setattr__(self, "_pattern", pattern)

    @classmethod
    def of(cls, account_id: str, names: Iterable[str | None]) -> Pseudonymiser:
        """The pseudonymiser of ``account_id`` known by ``names`` (None entries skipped)."""
        return cls(account_id, tuple(n for n in names if n))

    @property
    def needles(self) -> list[str]:
        """What is searched for, lower-cased (for a database's ``LOWER(x) LIKE`` filter)."""
        return sorted(self._whole)

    def is_person(self, value: Any) -> bool:
        """Whether ``value`` is one of the person's names, as a whole."""
        return isinstance(value, str) and value.strip().casefold() in self._whole

    def mentions(self, value: Any) -> bool:
        """Whether ``value`` (text or JSON-able) names the person anywhere."""
        return self.value(value) != value

    def text(self, value: str) -> str:
        """``value`` with every mention of the person replaced by the pseudonym."""
        if self.is_person(value):
            return self.pseudonym
        if self._pattern is None:
            return value
        return self._pattern.sub(self.pseudonym, value)

    def value(self, value: Any) -> Any:
        """A JSON-able value with every string (keys too) passed through :meth:`text`."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.value(v)
                    for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value
