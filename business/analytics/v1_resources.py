"""Analytics' resources in the public REST API (``/api/v1``): the catalogue's artists and
their daily KPI series, with their pages and filters."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pydantic import Field, model_validator

from business.analytics.kpis import KPIS
from business.analytics.schemas import check_range
from dawserver.plugin_api import Model, PublicListing, PublicResource

KPI_NAMES = tuple(k.name for k in KPIS)
#: The longest day range one metrics request reads.
MOST_DAYS = 366


class ArtistPlatform(Model):
    """A platform's id linked to the artist in the catalogue, and how it was matched."""

    source: str = Field(description="The analytics source (spotify, youtube, ...)")
    platform_id: str
    name: str
    method: str = Field(description="How it was linked: platform_id, isrc, upc, fuzzy, "
                                    "new or manual")
    confidence: float = Field(description="0 to 1")


class Artist(PublicResource):
    """An artist of the account's analytics catalogue and the platform ids linked to it."""

    id: str
    name: str
    platforms: list[ArtistPlatform]


class ArtistMetric(PublicResource):
    """One day of one KPI of an artist: the sum over the platforms reporting it."""

    id: str = Field(description="`{metric}:{date}`")
    metric: str = Field(description=", ".join(KPI_NAMES))
    date: str = Field(description="YYYY-MM-DD (a UTC day)")
    value: float
    running_total: bool = Field(description="true: a reading to date (followers); false: "
                                            "that day's count (streams)")
    sources: dict[str, float] = Field(description="Each platform's part of `value`.")


class ArtistPage(Model):
    """A page of artists, by name."""

    data: list[Artist]
    next_cursor: str | None


class ArtistMetricPage(Model):
    """A page of an artist's daily KPI values, by metric, then day."""

    data: list[ArtistMetric]
    next_cursor: str | None


class ArtistFilter(PublicListing):
    """Artists, filtered by name."""

    name_contains: str | None = Field(None, max_length=200,
                                      description="Only names containing this (any case).")


class ArtistMetricFilter(PublicListing):
    """An artist's KPI days: which KPI, over which UTC days (at most 366)."""

    metric: str | None = Field(None, pattern=f"^({'|'.join(KPI_NAMES)})$",
                               description="Only this KPI (default: every one).")
    start: date | None = Field(None, alias="from",
                               description="First day, YYYY-MM-DD (default: 27 days "
                                           "before `to`).")
    end: date | None = Field(None, alias="to",
                             description="Last day, YYYY-MM-DD (default: today, UTC).")

    @model_validator(mode="after")
    def _range(self) -> ArtistMetricFilter:
        check_range(self.start, self.end)
        self.end = self.end or datetime.now(UTC).date()  # points are UTC days
        self.start = self.start or self.end - timedelta(days=27)
        if self.start > self.end:
            raise ValueError("`from` must not be after `to`")
        if (self.end - self.start).days >= MOST_DAYS:
            raise ValueError(f"ask for at most {MOST_DAYS} days at once")
        return self
