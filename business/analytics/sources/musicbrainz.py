"""MusicBrainz: an artist's recordings with their ISRCs and lengths (the catalogue's
strongest identities), and the number of rating votes each has, today.

Documented: the MusicBrainz web service ``/ws/2/recording?artist=<mbid>&inc=isrcs+ratings
&fmt=json`` (a browse request), paged by ``offset`` and ``limit`` (at most 100) with
``recording-count``. No sign-in; a meaningful ``User-Agent`` is required and the service
allows one request per second per client: over it, it answers 503 (backed off here like
any 5xx). Ratings are current values (a daily snapshot; no back-fill).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt

from business.analytics.sources.base import Call, Connector, point, utc_day
from business.analytics.sources.records import Entity, Fetched, Identity
from business.analytics.sources.spec import Backoff, RateLimit, SourceSpec


class Rating(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    value: float | None = None
    votes_count: NonNegativeInt = Field(alias="votes-count")


class Recording(BaseModel):
    id: str
    title: str
    length: NonNegativeInt | None = None
    isrcs: list[str] = []
    rating: Rating


class Page(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    recording_count: NonNegativeInt = Field(alias="recording-count")
    recording_offset: NonNegativeInt = Field(alias="recording-offset")
    recordings: list[Recording]


class MusicBrainzConnector(Connector):
    spec = SourceSpec(
        name="musicbrainz", title="MusicBrainz", auth="none", pagination="offset",
        rate_limit=RateLimit(1, 1), api_host="https://musicbrainz.org",
        docs="https://musicbrainz.org/doc/MusicBrainz_API/Rate_Limiting",
        metrics=("rating_votes",), entity_kinds=("track",), history=False,
        backoff=Backoff(attempts=5, base_s=1.0, max_s=30.0))
    Page = Page
    page_size = 100

    def first_call(self, entity: Entity, start: date, end: date) -> Call:
        return self.paged("/ws/2/recording", {"artist": entity.id, "inc": "isrcs ratings",
                                              "fmt": "json"})

    def rows(self, page: Page) -> Sequence[Recording]:
        return page.recordings

    def total(self, page: Page) -> int:
        return page.recording_count

    def read(self, page: Page, entity: Entity, out: Fetched) -> None:
        at = utc_day(self.today())
        for rec in page.recordings:
            out.points.append(point(self.spec, "track", rec.id, "rating_votes", at,
                                    rec.rating.votes_count))
            for isrc in rec.isrcs or [None]:
                out.add_identity(Identity(self.name, "track", rec.id, rec.title, isrc=isrc,
                                          duration_ms=rec.length,
                                          external_ids=(("musicbrainz", rec.id),)))
