"""The resources of ``/api/v1`` and their list pages and query parameters.

Top-level resources require only ``id`` in their JSON Schema: ``fields=`` may leave
any other field out. Ids are the platform's own stable string ids (a project's
``slug-1a2b3c4d``, an asset's SHA-256, a bounce's job id).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import ConfigDict, Field, StringConstraints

from ..declarations import Model, Query

#: The path of the public REST API, version 1.
V1 = "/api/v1"
#: The last Unix time a filter takes (the end of year 9999).
MAX_TIME = 253402300799
SPARSE_NOTE = "Every field is present unless `fields=` leaves it out (`id` always is)."


def rfc3339(at: float) -> str:
    """Unix time ``at`` as RFC 3339 in UTC, to the millisecond."""
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def _sparse_schema(schema: dict[str, Any]) -> None:
    if "required" in schema:
        schema["required"] = ["id"]
    schema["description"] = f"{schema.get('description', '').strip()}\n\n{SPARSE_NOTE}".strip()


class Resource(Model):
    """A top-level resource: sparse fields may leave out anything but ``id``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_sparse_schema)


class Project(Resource):
    """A project the caller may open, and the role they hold on it."""

    id: str
    name: str
    created_at: str = Field(description="RFC 3339, UTC")
    role: str = Field(description="viewer, editor or owner")


class Clip(Model):
    """A clip on a track: where its audio comes from and where it sits (frames)."""

    id: str
    source: str
    position: int
    length: int
    offset: int
    gain_db: float
    fade_in: int
    fade_out: int


class Track(Resource):
    """A track of the project's document, with its clips in time order."""

    id: str
    name: str
    position: int = Field(description="0-based place in the track list")
    channels: int
    gain_db: float
    pan: float
    mute: bool
    solo: bool
    clips: list[Clip]


class Asset(Resource):
    """An audio file uploaded to or recorded in the project."""

    id: str
    name: str
    format: str
    sample_rate: int
    channels: int
    frames: int
    duration: float
    bytes: int
    download_url: str
    peaks_url: str


class BypassedLv2Plugin(Model):
    """An lv2 plug-in a bounce played bypassed (its dry signal), and why."""

    reason: str = Field(description="failed (it hung, crashed or output NaN during the "
                                    "render) or left_out (the project's effect cannot be "
                                    "played on this server)")
    owner: str = Field(description="the track's or bus's id ('master' for the master)")
    effect: str = Field(description="the effect's id ('instrument' for a MIDI track's "
                                    "instrument)")
    uri: str | None = Field(description="the plug-in's URI (failed ones)")
    name: str | None = Field(description="the plug-in's name, when installed")
    message: str = Field(description="what happened and what to do")


class Bounce(Resource):
    """A bounce (mixdown) of the project: its state and, once done, its file and the lv2
    plug-ins it played bypassed."""

    id: str
    project_id: str
    status: str = Field(description="queued, rendering, done, failed or cancelled")
    progress: float
    sample_rate: int
    bit_depth: str
    format: str
    error: str
    created_at: str = Field(description="RFC 3339, UTC")
    seconds: float | None
    peak: float | None
    audio_url: str | None
    bypassed: list[BypassedLv2Plugin] = Field(
        default_factory=list, description="once done: the lv2 plug-ins the file plays "
                                          "bypassed (empty for a clean bounce)")


class Deleted(Resource):
    """A resource that was deleted for good."""

    id: str
    deleted: bool


class ProjectPage(Model):
    """A page of projects; pass ``next_cursor`` as ``cursor`` for the next (null: last)."""

    data: list[Project]
    next_cursor: str | None


class TrackPage(Model):
    """A page of tracks, in display order."""

    data: list[Track]
    next_cursor: str | None


class AssetPage(Model):
    """A page of assets, oldest first."""

    data: list[Asset]
    next_cursor: str | None


class BouncePage(Model):
    """A page of bounces, newest first."""

    data: list[Bounce]
    next_cursor: str | None


FIELDS = Field(None, max_length=500, pattern=r"^[a-z_]+(,[a-z_]+)*$",
               description="Sparse fields: a comma-separated list of field names (`id` is "
                           "always included).")


class One(Query):
    """Sparse fields of one resource."""

    fields: str | None = FIELDS


class Listing(Query):
    """A page: how many, after which cursor, which fields."""

    limit: int = Field(50, ge=1, le=200, description="Items per page, 1 to 200.")
    cursor: str | None = Field(None, max_length=500, pattern=r"^[A-Za-z0-9_.-]+$",
                               description="The `next_cursor` of the previous page.")
    fields: str | None = FIELDS


class ProjectFilter(Listing):
    """Projects, filtered by role, name and creation time."""

    role: str | None = Field(None, pattern="^(viewer|editor|owner)$",
                             description="Only projects where you hold this role.")
    name_contains: str | None = Field(None, max_length=200,
                                      description="Only names containing this (any case).")
    created_after: float | None = Field(None, ge=0, le=MAX_TIME,
                                        description="Unix time: created after it.")
    created_before: float | None = Field(None, ge=0, le=MAX_TIME,
                                         description="Unix time: created before it.")


class AssetFilter(Listing):
    """Assets, filtered by format."""

    format: str | None = Field(None, pattern="^(wav|flac|aiff)$")


class BounceFilter(Listing):
    """Bounces, filtered by status."""

    status: str | None = Field(None, pattern="^(queued|rendering|done|failed|cancelled)$")


#: A project name: 1 to 200 characters once surrounding spaces are dropped.
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class NewProject(Model):
    """A new, empty project in the account the request acts for."""

    name: Name


class ProjectChange(Model):
    """A project's new name."""

    name: Name
