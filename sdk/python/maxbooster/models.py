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
class Track:
    """A project's track and its mix settings."""

    id: str
    name: str
    position: int
    channels: int
    gain_db: float
    pan: float
    mute: bool
    solo: bool

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


@dataclass(frozen=True)
class Release:
    """A distribution release of the account (``status``: draft, ready or blocked)."""

    id: str
    title: str
    status: str
    release_date: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class ReleaseDelivery:
    """One delivery of a release to one store, and how far it got."""

    id: str
    release_id: str
    store: str
    action: str
    state: str
    attempts: int
    last_error: str
    queued_at: str
    updated_at: str
    delivered_at: str | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class PresaveCampaign:
    """A release's pre-save campaign: its public ``landing_page`` (``/presave/{slug}``),
    the ``services`` fans may pre-save on and their pre-saves (``presaves_by_service``);
    ``released`` once the release day has come (pre-saves closed)."""

    id: str
    release_id: str
    slug: str
    landing_page: str
    title: str
    artist: str
    release_date: str
    services: list[str]
    presaves: int
    presaves_by_service: dict[str, int]
    released: bool
    created_at: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class RoyaltyStatement:
    """An imported royalty statement: ``totals`` in cents per currency code."""

    id: str
    source: str
    imported_at: str
    line_count: int
    totals: dict[str, int]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Tier:
    """A beat's licence tier: ``price`` in cents of ``currency``."""

    tier: str
    name: str
    price: int
    currency: str
    files: list[str]
    rights: dict[str, Any]
    exclusive: bool
    download_limit: int
    active: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Beat:
    """A beat the account sells, with its licence tiers."""

    id: str
    title: str
    bpm: int
    key: str
    genre: str
    mood: str
    tags: list[str]
    currency: str
    status: str
    created_at: str
    tiers: list[Tier]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**{**_known(cls, data),
                      "tiers": [Tier.from_json(t) for t in data.get("tiers", [])]})


@dataclass(frozen=True)
class Order:
    """A sale of one of the account's beats: ``amount`` in cents of ``currency``."""

    id: str
    beat_id: str
    tier: str
    amount: int
    currency: str
    exclusive: bool
    status: str
    created_at: str
    paid_at: str | None
    refunded_at: str | None
    #: The licence the order granted (API 1.14.0); None until it is paid, for a payment
    #: refunded without a licence, and from older servers.
    licence_id: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Licence:
    """A licence the account bought: what it grants and its downloads left."""

    id: str
    order_id: str
    beat_id: str
    tier: str
    seller: str
    title: str
    rights: dict[str, Any]
    exclusive: bool
    downloads: int
    download_limit: int
    status: str
    granted_at: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Word:
    """One word of a transcript and its span in seconds from the clip's start."""

    text: str
    start_s: float
    end_s: float
    probability: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class TranscriptSummary:
    """A clip's transcript without its words (``id`` is the clip's id)."""

    id: str
    language: str
    model: str
    duration_s: float
    word_count: int
    text: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**_known(cls, data))


@dataclass(frozen=True)
class Transcript(TranscriptSummary):
    """A clip's transcript with every word and its timing."""

    words: list[Word]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**{**_known(cls, data), "words": [Word.from_json(w) for w in data["words"]]})


@dataclass(frozen=True)
class EditedTranscript:
    """A transcript's words edited: the clips that now play them (the first is the edited
    clip; a deletion splits it)."""

    clips: list[str]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(clips=list(data["clips"]))


@dataclass(frozen=True)
class TranscriptEditStep:
    """A text edit undone or redone: every clip of the project now, and whether another
    step can be taken either way."""

    clips: list[str]
    can_undo: bool
    can_redo: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(clips=list(data["clips"]), can_undo=bool(data["can_undo"]),
                   can_redo=bool(data["can_redo"]))


#: The states after which a transcription job changes no more.
FINISHED = frozenset({"done", "failed", "cancelled"})


@dataclass(frozen=True)
class TranscriptionJob:
    """A transcription job (``status``: queued, running, done, failed or cancelled;
    ``progress`` 0 to 1; ``transcript_url`` once done)."""

    id: str
    clip_id: str | None
    language: str | None
    status: str
    progress: float
    error: str | None
    created_at: str
    updated_at: str
    transcript_url: str | None

    @property
    def finished(self) -> bool:
        """Whether the job will change no more (done, failed or cancelled)."""
        return self.status in FINISHED

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(**_known(cls, data))
