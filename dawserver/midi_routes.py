"""HTTP routes of MIDI (see docs/midi.md).

- ``POST /projects/{project_id}/midi/import`` (editor; body ``audio/midi``): a Standard MIDI
  File becomes MIDI tracks (one per file track with notes, a default synth each); an empty
  project takes the file's tempo (400 outside 10..999 BPM) and usable time signature.  At
  most 8 MiB, 100,000 notes and controller events and 64 tracks (413 beyond); invalid
  timing (0 ticks per beat or µs per beat, SMPTE) and times past the frame range answer 400.
- ``GET /projects/{project_id}/midi/export`` (viewer): the project's MIDI tracks as a type 1
  Standard MIDI File at the project's tempo.
- ``PUT /projects/{project_id}/tracks/{track_id}/instrument`` (editor; ``{"kind", "params",
  "zones": [{"asset_id", "root", "key_lo", "key_hi", "vel_lo", "vel_hi"}]}``): give a track
  a synth, a sampler whose zones play audio assets of the project, or an installed LV2
  instrument (``{"kind": "lv2", "params": {"uri", <control>: value, "state"}}``, 400 for a
  plug-in that takes no MIDI or is not installed).
- ``POST /projects/{project_id}/midi/clips/{clip_id}/edit`` (editor; ``{"operation":
  "quantize" | "transpose" | "velocity", ...}``): a note edit, written to the document
  like a client's edit.

Every change is a document write through the project's room: stored and relayed to every
peer. Another account's project answers 404 like a missing one.
"""

from __future__ import annotations

import asyncio
import io
import uuid
from typing import Any, Literal

from pydantic import Field

from collab import note_edits
from collab.errors import ProjectNotFound, SchemaError
from dsp_core.errors import ProjectError
from dsp_core.midi import Instrument, SampleZone
from dsp_core.smf import (
    MAX_IMPORT_EVENTS,
    MAX_IMPORT_TRACKS,
    SmfImport,
    SmfTooLarge,
    read_smf,
    write_smf,
)
from dsp_core.tempo import MAX_BPM, MIN_BPM

from . import asset_objects
from .assets import assets_of
from .keys import ROOMS
from .permissions import PROJECT_EDIT, PROJECT_READ
from .plugin_api import (
    BadRequest,
    Media,
    Model,
    NotFound,
    PayloadTooLarge,
    Reply,
    Request,
    Route,
)

MIDI_TYPES = ("audio/midi", "audio/x-midi", "application/octet-stream")
MAX_MIDI_BYTES = 8 << 20


class MidiImported(Model):
    """What an import added."""

    track_ids: list[str]
    clip_ids: list[str]
    notes: int
    tempo: float


class NoteEdit(Model):
    """One note edit of a MIDI clip; ``note_ids`` limits it (default: every note)."""

    operation: Literal["quantize", "transpose", "velocity"]
    division: int = Field(16, description="quantize: grid of 1/division notes (16: sixteenths)")
    strength: float = Field(1.0, ge=0.0, le=1.0, description="quantize: how far to move")
    semitones: int = Field(0, ge=-127, le=127, description="transpose: the shift")
    scale: float = Field(1.0, ge=0.0, le=10.0, description="velocity: factor")
    offset: int = Field(0, ge=-127, le=127, description="velocity: added after the factor")
    note_ids: list[str] | None = None


class ZoneBody(Model):
    """A sampler zone: an audio asset of the project over a key range and velocity layer."""

    asset_id: str
    root: int = Field(60, ge=0, le=127)
    key_lo: int = Field(0, ge=0, le=127)
    key_hi: int = Field(127, ge=0, le=127)
    vel_lo: int = Field(1, ge=1, le=127)
    vel_hi: int = Field(127, ge=1, le=127)


class InstrumentBody(Model):
    """A track's instrument; parameters as in docs/midi.md (missing ones: defaults). An
    ``lv2`` instrument's are the plug-in's ``uri``, its controls by port symbol and an
    optional saved ``state``, as an ``lv2`` effect's (docs/lv2.md); it has no zones."""

    kind: Literal["synth", "sampler", "soundfont", "lv2"]
    params: dict[str, Any] = Field(default_factory=dict)
    zones: list[ZoneBody] = Field(default_factory=list)


class InstrumentSet(Model):
    """The instrument as stored: zones name the project's assets by id."""

    track_id: str
    kind: str
    zones: list[str]


class NoteEditResult(Model):
    """How many notes the edit changed."""

    clip_id: str
    changed: int


def _transport_of(imported: SmfImport) -> dict[str, Any]:
    """The transport fields an empty project takes from a file: its first tempo (refused
    outside the 10..999 BPM a project plays) and its time signature when it gives a usable
    one (else the project keeps its meter)."""
    if not MIN_BPM <= imported.tempo <= MAX_BPM:
        raise SchemaError(f"the MIDI file's tempo {imported.tempo:g} BPM is outside the "
                          f"{MIN_BPM:g}..{MAX_BPM:g} BPM a project plays; set its first "
                          "tempo in range and export it again (nothing was imported)")
    fields: dict[str, Any] = {"tempo": imported.tempo}
    if imported.meter_given:
        fields.update(beats_per_bar=imported.beats_per_bar, beat_unit=imported.beat_unit)
    return fields


async def import_midi(request: Request) -> MidiImported:
    """Add the tracks of a Standard MIDI File to the project (editor)."""
    project_id = request.params["project_id"]
    data: bytes = request.body
    try:
        async with request.app[ROOMS].use(project_id) as room:
            imported = await asyncio.to_thread(
                read_smf, data, room.document.sample_rate, f"midi-{uuid.uuid4().hex[:8]}-",
                MAX_IMPORT_EVENTS, MAX_IMPORT_TRACKS)
            if not imported.tracks:
                raise BadRequest("the MIDI file has no notes or controllers to import")

            def change(document) -> None:  # noqa: ANN001 - collab.schema.ProjectDocument
                if not document.track_ids():
                    document.update_transport(**_transport_of(imported))
                for track in imported.tracks:
                    document.add_track(track)

            await room.edit(change)
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    except SmfTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except (ProjectError, SchemaError) as exc:
        raise BadRequest(str(exc)) from None
    return MidiImported(track_ids=[t.id for t in imported.tracks],
                        clip_ids=[c.id for t in imported.tracks for c in t.midi_clips],
                        notes=sum(len(c.notes) for t in imported.tracks for c in t.midi_clips),
                        tempo=imported.tempo)


async def export_midi(request: Request) -> Reply:
    """The project's MIDI tracks as a Standard MIDI File (viewer)."""
    project_id = request.params["project_id"]
    try:
        async with request.app[ROOMS].use(project_id) as room:
            session = room.document.to_session()
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    # the tempo map's opening tempo and meter: what plays, whatever the transport holds
    opening = session.tempo.meters[0]
    buffer = io.BytesIO()
    await asyncio.to_thread(write_smf, session.tracks, buffer, session.sample_rate,
                            session.tempo.bpm_at_beat(0), beats_per_bar=opening.numerator,
                            beat_unit=opening.denominator)
    return Reply(buffer.getvalue(), media_type="audio/midi", headers={
        "Content-Disposition": f'attachment; filename="{project_id}.mid"'})


async def set_instrument(request: Request) -> InstrumentSet:
    """Give a track a synth, a sampler playing the project's assets or an installed LV2
    instrument (editor)."""
    project_id, track_id = request.params["project_id"], request.params["track_id"]
    body: InstrumentBody = request.body
    store = await assets_of(request.app, project_id)
    zones = []
    for zone in body.zones:  # named by asset id, as clips are: never by a server path
        if not await asset_objects.is_member(store, project_id, zone.asset_id):
            raise NotFound(f"no asset {zone.asset_id!r} in project {project_id!r}; upload the "
                           "sample first (POST /projects/{project_id}/assets)")
        zones.append(SampleZone(zone.asset_id, zone.root, zone.key_lo, zone.key_hi,
                                zone.vel_lo, zone.vel_hi, zone.asset_id[:12]))
    instrument = Instrument(body.kind, dict(body.params), zones)
    try:
        async with request.app[ROOMS].use(project_id) as room:
            await room.edit(lambda document: document.set_instrument(track_id, instrument))
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    except SchemaError as exc:
        if "no track with id" in str(exc):
            raise NotFound(str(exc)) from None
        raise BadRequest(str(exc)) from None
    return InstrumentSet(track_id=track_id, kind=body.kind, zones=[z.source for z in zones])


async def edit_notes(request: Request) -> NoteEditResult:
    """Quantise, transpose or change the velocity of a MIDI clip's notes (editor)."""
    project_id, clip_id = request.params["project_id"], request.params["clip_id"]
    body: NoteEdit = request.body
    counts: list[int] = []

    def change(document) -> None:  # noqa: ANN001 - collab.schema.ProjectDocument
        if body.operation == "quantize":
            counts.append(note_edits.quantize(document, clip_id, body.division, body.strength,
                                              body.note_ids))
        elif body.operation == "transpose":
            counts.append(note_edits.transpose(document, clip_id, body.semitones, body.note_ids))
        else:
            counts.append(note_edits.edit_velocity(document, clip_id, body.scale, body.offset,
                                                   body.note_ids))

    try:
        async with request.app[ROOMS].use(project_id) as room:
            try:
                room.document.midi_clip(clip_id)
            except SchemaError:
                raise NotFound(f"no MIDI clip {clip_id!r} in project {project_id!r}") from None
            await room.edit(change)
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    except SchemaError as exc:
        raise BadRequest(str(exc)) from None
    return NoteEditResult(clip_id=clip_id, changed=counts[0] if counts else 0)


PROJECT = "/projects/{project_id}"

ROUTES = [
    Route(method="POST", path=f"{PROJECT}/midi/import", handler=import_midi,
          permission=PROJECT_EDIT, body=Media(*MIDI_TYPES), response=MidiImported,
          max_body=MAX_MIDI_BYTES),
    Route(method="GET", path=f"{PROJECT}/midi/export", handler=export_midi,
          permission=PROJECT_READ, response=Media("audio/midi")),
    Route(method="PUT", path=f"{PROJECT}/tracks/{{track_id}}/instrument", handler=set_instrument,
          permission=PROJECT_EDIT, body=InstrumentBody, response=InstrumentSet),
    Route(method="POST", path=f"{PROJECT}/midi/clips/{{clip_id}}/edit", handler=edit_notes,
          permission=PROJECT_EDIT, body=NoteEdit, response=NoteEditResult),
]
