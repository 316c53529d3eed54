"""The distribution API's request and answer models (validation and the OpenAPI document).

Request models check the shape of what a client sends; the domain modules then
check the meaning (a valid UPC, shares that total 100%...). Answers that are
stored rows (delivery jobs) are open models: they list the fields a client may
rely on and may carry more.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from business.distribution.delivery import ACTIONS, STATES
from business.distribution.models import ARTIST_ROLES, RELEASE_TYPES
from business.distribution.presave import SERVICES
from dawserver.plugin_api import Model, Query


class Credit(Model):
    """An artist credited on a release or track (``role``: primary, featuring...)."""

    name: str
    role: str = Field("primary", json_schema_extra={"examples": list(ARTIST_ROLES)})


class Contributor(Model):
    """A person credited on the musical work (composer, lyricist...)."""

    name: str
    role: str


class TrackIn(Model):
    """A track: its audio (a file, or the latest render of ``project_id``) and metadata."""

    title: str = ""
    audio_path: str = ""
    isrc: str = ""
    version: str = ""
    artists: list[str | Credit] | None = None
    contributors: list[Contributor] | None = None
    iswc: str = ""
    explicit: bool = False
    language: str = ""
    project_id: str = ""


class ReleaseFields(Model):
    """A release's data (docs/distribution.md), without its id."""

    title: str = ""
    artists: list[str | Credit] | None = None
    tracks: list[TrackIn] | None = None
    upc: str = ""
    version: str = ""
    release_type: str = Field("single", json_schema_extra={"examples": list(RELEASE_TYPES)})
    label: str = ""
    genre: str = ""
    language: str = ""
    explicit: bool = False
    p_line: str = ""
    c_line: str = ""
    release_date: str = Field("", description="YYYY-MM-DD")
    territories: list[str] | None = None
    artwork_path: str = ""


class ReleaseIn(ReleaseFields):
    """A release to save (docs/distribution.md); on PUT the path names the release."""

    release_id: str = ""


class Track(Model):
    """A stored track."""

    title: str
    audio_path: str
    isrc: str
    version: str
    artists: list[Credit]
    contributors: list[Contributor]
    iswc: str
    explicit: bool
    language: str
    project_id: str


class Release(Model):
    """A stored release."""

    release_id: str
    title: str
    artists: list[Credit]
    tracks: list[Track]
    upc: str
    version: str
    release_type: str
    label: str
    genre: str
    language: str
    explicit: bool
    p_line: str
    c_line: str
    release_date: str
    territories: list[str]
    artwork_path: str


class Issue(Model):
    """One compliance problem: a stable code, the field, what to do, how bad it is."""

    code: str
    field: str
    message: str
    severity: str


class Report(Model):
    """A compliance check: passed (nothing blocks delivery), issues, measurements."""

    passed: bool
    issues: list[Issue]
    audio: dict[str, dict[str, Any]]
    artwork: dict[str, Any] | None


class ReleaseStatus(Release):
    """A release with its gate status and last compliance report."""

    status: str
    report: Report | None


class ReleaseSummary(Model):
    """A release in the list."""

    release_id: str
    title: str
    status: str
    release_date: str


class AccountFile(Model):
    """A file of the account's distribution folder: ``path`` is what a release names
    (``artwork_path``, a track's ``audio_path``)."""

    name: str
    size: int
    path: str


class DeliveryRequest(Model):
    """Deliver to ``stores`` (default: every configured store) as ``action``."""

    action: str = Field("new", json_schema_extra={"examples": list(ACTIONS)})
    stores: list[str] | None = None
    redeliver: bool = False


class DeliveryJob(BaseModel):
    """A delivery job of one release to one store (a stored row)."""

    model_config = ConfigDict(extra="allow")

    job_id: str
    release_id: str
    store: str
    action: str
    revision: int
    message_id: str
    state: str = Field(json_schema_extra={"examples": list(STATES)})
    attempts: int
    last_error: str
    queued_at: float
    updated_at: float
    delivered_at: float | None


class DeliveryRun(Model):
    """The payload of a ``distribution.deliver`` job: the delivery record it runs."""

    delivery_id: str


class Lag(Model):
    """Seconds from queueing to delivery: count and percentiles."""

    count: int
    p50: float | None
    p95: float | None
    max: float | None


class DeliveryMetrics(Model):
    """Jobs per state, attempts, seconds spent per state, and delivery lag."""

    jobs: dict[str, int]
    attempts: int
    seconds_in_state: dict[str, float]
    entries_into_state: dict[str, int]
    delivery_lag_s: Lag


class Store(Model):
    """A configured store."""

    name: str
    dpid: str
    display_name: str


class DdexQuery(Query):
    """The store and action of a previewed DDEX message (default: the first store, new)."""

    store: str = ""
    action: str = "new"


class PayeeShare(Model):
    """A payee and their share in percent (e.g. ``"33.33"``).

    ``joined`` left out: a known payee keeps their state, a new one has joined;
    ``true`` joins a known payee (releasing what was held for them).
    """

    payee_id: str
    share: str | int | float
    name: str = ""
    joined: bool | None = None


class SplitIn(Model):
    """A track's split: payees whose shares total 100%, optional recoupment first."""

    payees: list[PayeeShare]
    recoup_cents: int = Field(0, ge=0)
    recoup_payee: str = ""
    recoup_currency: str = "USD"


class Payee(Model):
    """A payee of a stored split."""

    payee_id: str
    share: str
    name: str
    joined: bool


class Split(Model):
    """A track's stored split."""

    isrc: str
    payees: list[Payee]
    recoup_cents: int
    recoup_payee: str
    recoup_currency: str
    recouped_cents: int


class SplitRevision(Model):
    """One revision of a split: when, by whom, what."""

    revision: int
    changed_at: float
    changed_by: str
    data: dict[str, Any]


class SplitWithHistory(Split):
    """A track's split and every revision of it, oldest first."""

    history: list[SplitRevision]


class Joined(Model):
    """How many held ledger entries a joining payee was paid."""

    released_entries: int


class AuditQuery(Query):
    """One subject only (e.g. ``payee:ada``, ``split:QZABC2600001``)."""

    subject: str = ""


class AuditEntry(Model):
    """A payee or split event."""

    seq: int
    at: float
    changed_by: str
    subject: str
    event: str
    detail: dict[str, Any]


class StatementQuery(Query):
    """Where the statement came from (free text)."""

    source: str = ""


class StatementImport(Model):
    """An imported statement (``duplicate``: the same bytes were imported before)."""

    statement_id: str
    duplicate: bool
    lines: int | None = None
    entries: int | None = None
    totals: dict[str, int]


class Reconciled(Model):
    """A currency's statement total against the ledger's sum, in cents."""

    statement: int
    ledger: int


class Balance(Model):
    """Cents of a payee in one currency and status (available or held)."""

    payee_id: str
    currency: str
    status: str
    cents: int


class UnallocatedQuery(Query):
    """One track only (its ISRC)."""

    isrc: str = ""


class Unallocated(Model):
    """Money held for tracks without a split, per ISRC and currency."""

    isrc: str
    currency: str
    cents: int
    statements: int


class CampaignIn(Model):
    """A pre-save campaign; what is left out comes from the release."""

    title: str | None = None
    artist: str | None = None
    release_date: str | None = None
    services: list[str] | None = Field(None, json_schema_extra={"examples": [list(SERVICES)]})


class Campaign(Model):
    """A pre-save campaign's public data."""

    slug: str
    campaign_id: str
    release_id: str
    title: str
    artist: str
    release_date: str
    services: list[str]
    presaves: int
    released: bool


class ReleaseDay(Campaign):
    """The ``presave.release_day`` event: a campaign whose release date has come.

    Hooks receive it with ``event_id`` added (the same on every delivery of it).
    """

    account_id: str


class Referral(Model):
    """Where a fan came from: a short-link code (``ref``) and UTM parameters."""

    ref: str = Field("", max_length=64)
    utm_source: str = Field("", max_length=100)
    utm_campaign: str = Field("", max_length=200)


class PresaveIn(Referral):
    """A fan's pre-save: their e-mail address and the service (JSON or an HTML form),
    and where they came from (the landing page passes its ``ref`` and UTM parameters)."""

    fan: str = ""
    service: str = ""


class LandingQuery(Query):
    """The landing page's referral, kept in its form."""

    ref: str = Field("", max_length=64)
    utm_source: str = Field("", max_length=100)
    utm_campaign: str = Field("", max_length=200)


class PresaveSaved(Referral):
    """The ``presave.saved`` event: a fan who came by a referral pre-saved a release
    (never who: no address). Hooks receive it with ``event_id`` added."""

    account_id: str
    campaign_id: str
    slug: str
    service: str
    at: float


class Delivery(Model):
    """One delivery of a release to a store, as its events carry it."""

    account_id: str
    release_id: str
    store: str
    action: str = Field(description="new, update or takedown")
    revision: int = Field(description="which revision of the release's message this is")
    message_id: str = Field(description="the DDEX message id (the store deduplicates by it)")
    attempts: int


class ReleaseDelivered(Delivery):
    """The ``distribution.release_delivered`` event: a store accepted a release's
    message (or, asked before a re-send, already had it)."""

    delivered_at: float
    store_had_it: bool = Field(description="the store already had the message when asked")


class DeliveryFailed(Delivery):
    """The ``distribution.delivery_failed`` event: a delivery ended dead (its retries ran
    out, or the store refused it for good); ``error`` says why."""

    error: str
    at: float
