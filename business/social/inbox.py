"""The inbox's rules: who gets a new item, and how a rule is checked.

A rule has a ``kind``: ``keyword`` (its ``pattern``, a regular expression, found in the
text, case-insensitive), ``language`` (the item's detected language equals
``language``) or ``round_robin`` (every item). Rules are tried in ``ordinal`` order;
the first that matches hands the item to the next member of its ``team`` in turn
(round-robin within the rule). Patterns run through :mod:`regex` with a time limit,
so a pathological pattern cannot stall the poller; a pattern that does not compile is
refused when the rule is saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import regex

from business.social.errors import SocialError

RULE_KINDS = ("keyword", "language", "round_robin")
MAX_PATTERN = 200
MAX_TEAM = 50
#: Seconds a pattern may search one text.
MATCH_TIMEOUT_S = 0.05


@dataclass(frozen=True)
class Rule:
    """One assignment rule of an account."""

    rule_id: str
    ordinal: int
    kind: str
    pattern: str
    language: str
    team: tuple[str, ...]
    next_index: int = 0


def check_rule(kind: str, pattern: str, language: str, team: Sequence[str]) -> None:
    """Raise :class:`SocialError` saying what to change in a rule that cannot work."""
    if kind not in RULE_KINDS:
        raise SocialError(f"kind must be one of {', '.join(RULE_KINDS)}, not {kind!r}")
    members = [m for m in team if m.strip()]
    if not members or len(members) != len(team) or len(team) > MAX_TEAM:
        raise SocialError(f"team must name 1 to {MAX_TEAM} people (no empty names)")
    if kind == "keyword":
        if not pattern or len(pattern) > MAX_PATTERN:
            raise SocialError(f"a keyword rule needs a pattern of 1 to {MAX_PATTERN} "
                              "characters")
        try:
            regex.compile(pattern, regex.IGNORECASE)
        except regex.error as exc:
            raise SocialError(f"pattern {pattern!r} is not a valid regular expression "
                              f"({exc}); escape special characters such as ( [ * + ? "
                              "with a backslash") from None
    if kind == "language" and not regex.fullmatch(r"[a-z]{2,3}", language or ""):
        raise SocialError("a language rule needs an ISO 639-1 code such as 'en' or 'es'")


def matches(rule: Rule, text: str, language: str) -> bool:
    """Whether ``rule`` takes an item (a pattern that runs out of time does not)."""
    if rule.kind == "round_robin":
        return True
    if rule.kind == "language":
        return rule.language == language
    try:
        return regex.search(rule.pattern, text, regex.IGNORECASE,
                            timeout=MATCH_TIMEOUT_S) is not None
    except TimeoutError:
        return False


def choose(rules: Sequence[Rule], text: str, language: str) -> tuple[Rule, str] | None:
    """The first matching rule (by ordinal) and the team member whose turn it is."""
    for rule in sorted(rules, key=lambda r: (r.ordinal, r.rule_id)):
        if matches(rule, text, language):
            return rule, rule.team[rule.next_index % len(rule.team)]
    return None
