"""The resources the client answers with (typed views of the JSON)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Generic, Self, TypeVar

T = TypeVar("T")


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` without fields ``cls`` does not know (the API only ever adds fields)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


@dataclass(frozen=True)
class Project:
    """A project and the caller's role on it."""

    id: str
    name: str
    created_at: str
    role: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; pass ``next_cursor`` as ``cursor`` for the next (None: last)."""

    data: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class DayUsage:
    """One key's usage on one UTC day."""

    day: str
    requests: int
    errors: int
    rejected: int
    mean_ms: float | None
    p50_ms: float | None
    p99_ms: float | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class KeyUsage:
    """One API key and its days."""

    id: str
    name: str
    prefix: str
    test: bool
    revoked: bool
    days: list[DayUsage]
    total: DayUsage

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**{**_known(cls, data), "days": [DayUsage.from_json(d) for d in data["days"]],
                      "total": DayUsage.from_json(data["total"])})


@dataclass(frozen=True)
class UsageReport:
    """The account's keys' usage from ``since`` to ``until`` (UTC days)."""

    account_id: str
    since: str
    until: str
    keys: list[KeyUsage]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(account_id=data["account_id"], since=data["since"], until=data["until"],
                   keys=[KeyUsage.from_json(k) for k in data["keys"]])
