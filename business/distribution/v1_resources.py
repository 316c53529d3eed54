"""Distribution's resources in the public REST API (``/api/v1``): releases, their
deliveries to stores, their pre-save campaigns and royalty statements, with their pages
and filters, and the bodies of its writes (a new release draft, a delivery request, a
new pre-save campaign)."""

from __future__ import annotations

from pydantic import Field

from business.distribution.delivery import STATES
from business.distribution.presave import SERVICES
from business.distribution.schemas import CampaignIn, DeliveryRequest, ReleaseFields
from dawserver.plugin_api import Model, PublicListing, PublicResource

RELEASE_STATUSES = ("draft", "ready", "blocked")


class Release(PublicResource):
    """A release of the account and where the compliance gate stands on it."""

    id: str
    title: str
    status: str = Field(description="draft (not checked since its last change), ready "
                                    "(passed the gate) or blocked (failed it)")
    release_date: str = Field(description="YYYY-MM-DD")


class ReleaseDelivery(PublicResource):
    """A release's delivery to one store: its state and its last error."""

    id: str
    release_id: str
    store: str
    action: str = Field(description="new, update or takedown")
    state: str = Field(description=", ".join(STATES))
    attempts: int
    last_error: str
    queued_at: str = Field(description="RFC 3339, UTC")
    updated_at: str = Field(description="RFC 3339, UTC")
    delivered_at: str | None = Field(description="RFC 3339, UTC; null until delivered")


class PresaveCampaign(PublicResource):
    """A release's pre-save campaign: its public landing page and fans' pre-saves."""

    id: str
    release_id: str
    slug: str = Field(description="Names the campaign's public landing page.")
    landing_page: str = Field(description="Path of the public landing page, "
                                          "/presave/{slug}.")
    title: str
    artist: str
    release_date: str = Field(description="YYYY-MM-DD; release-day fires then")
    services: list[str] = Field(description="Services fans may pre-save on: "
                                            + ", ".join(SERVICES))
    presaves: int = Field(description="Fans' pre-saves, every service together.")
    presaves_by_service: dict[str, int] = Field(
        description="Pre-saves per offered service (0 for none yet).")
    released: bool = Field(description="true once the release day has come (pre-saves "
                                       "are closed)")
    created_at: str = Field(description="RFC 3339, UTC")


class RoyaltyStatement(PublicResource):
    """A store's royalty statement imported into the account's ledger."""

    id: str
    source: str
    imported_at: str = Field(description="RFC 3339, UTC")
    line_count: int
    totals: dict[str, int] = Field(description="Cents per currency (ISO 4217 code).")


class ReleasePage(Model):
    """A page of releases, ordered by id."""

    data: list[Release]
    next_cursor: str | None


class ReleaseDeliveryPage(Model):
    """A page of a release's deliveries, ordered by store."""

    data: list[ReleaseDelivery]
    next_cursor: str | None


class PresaveCampaignPage(Model):
    """A page of pre-save campaigns, oldest first."""

    data: list[PresaveCampaign]
    next_cursor: str | None


class RoyaltyStatementPage(Model):
    """A page of royalty statements, oldest import first."""

    data: list[RoyaltyStatement]
    next_cursor: str | None


class ReleaseFilter(PublicListing):
    """Releases, filtered by gate status."""

    status: str | None = Field(None, pattern=f"^({'|'.join(RELEASE_STATUSES)})$")


class DeliveryFilter(PublicListing):
    """Deliveries, filtered by state."""

    state: str | None = Field(None, pattern=f"^({'|'.join(STATES)})$")


class NewRelease(ReleaseFields):
    """A release draft to create: its data as the module takes it (docs/distribution.md),
    its id chosen by the server. A test-mode key's release is a sandbox one."""


class NewReleaseDeliveries(DeliveryRequest):
    """Deliver the release to ``stores`` (default: every configured store) as ``action``
    (new, update or takedown); ``redeliver`` sends the current message again."""


class PresaveCampaignFilter(PublicListing):
    """Pre-save campaigns, filtered by release."""

    release_id: str | None = Field(None, min_length=1, max_length=200)


class NewPresaveCampaign(CampaignIn):
    """A pre-save campaign to start for the release: what is left out (``title``,
    ``artist``, ``release_date`` YYYY-MM-DD, ``services``: default all) comes from the
    release. A sandbox release's campaign is a sandbox one."""


class ReleaseDeliveryList(Model):
    """The release's deliveries queued (or already there) by one request, by store."""

    data: list[ReleaseDelivery]
