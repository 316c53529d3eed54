"""The JSON project file: a versioned, strictly checked image of a :class:`Session`.

The format is documented in ``docs/project-format.md``.  Clip sources are
stored relative to the project file's directory and resolved to absolute
paths on load.  Every problem is reported as :class:`ProjectError` naming
the JSON path of the offending value, e.g.
``tracks[3].clips[1].length: must be a positive integer, got -5``.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .audio_io import audio_info, load_source, resampled_length
from .automation_targets import RESERVED
from .effects import CHOICES, HOSTED_KINDS, PARAMS, SIDECHAIN_KINDS, TEXT_PARAMS, EffectSpec
from .errors import AudioFileError, ProjectError
from .graph import clip_stretch
from .immersive import route_from_dict, route_to_dict
from .midi import clip_from_dict, clip_to_dict, instrument_from_dict, instrument_to_dict
from .session import (
    AutomationLane,
    AutomationPoint,
    Bus,
    Clip,
    Send,
    Session,
    Track,
)
from .sources import is_asset_id, legacy_asset_id
from .tempo import tempo_map_from_dict

FORMAT_NAME = "max-booster-project"
FORMAT_VERSION = 4
#: Version 1 has no automation: such a project loads with no lanes (nothing else changed).
#: Versions 1 and 2 name audio by path only: a path of an asset store's file
#: (``.../objects/ab/<id>.<ext>``) is read as that asset's id, any other stays a path.
#: Versions 1 to 3 have no tempo map (the song is 120 BPM in 4/4) and no crossfade,
#: stretch, pitch or warp keys on clips (their clips never overlap): they load and sound
#: as before, and are written back as version 4.
SUPPORTED_VERSIONS = (1, 2, 3, 4)
#: The first version whose sources may be asset ids (64 hex digits) instead of paths.
ASSET_ID_VERSION = 3
#: The first version with ``tempo`` and the clip keys of time (docs/engine.md#tempo-map).
TIME_VERSION = 4
#: The clip keys that version 4 added.
TIME_CLIP_KEYS = ("crossfade", "stretch", "semitones", "warp", "follow_tempo", "source_bpm")
MAX_GAIN_DB = 24.0
#: The project file inside a project directory (``dawserver demo-project`` writes one).
PROJECT_FILE = "project.json"

PathLike = str | os.PathLike[str]


def project_file(path: PathLike) -> Path:
    """The project file ``path`` names: itself, or ``path/project.json`` for a directory.

    Every function and command that reads or writes a project accepts both forms.
    """
    path = Path(path)
    return path / PROJECT_FILE if path.is_dir() else path


def load_project(path: PathLike) -> Session:
    """Read and validate a project file; clip sources come back as absolute paths.

    Raises :class:`ProjectError` (message starts with the file's path) for an
    unreadable file, invalid JSON, an unsupported format or version, a bad
    field or a session that fails :meth:`Session.validate`.  A directory means
    its ``project.json`` (:func:`project_file`).
    """
    path = project_file(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise ProjectError(f"{path}: no such project file") from exc
    except OSError as exc:
        raise ProjectError(f"{path}: cannot read the project file ({exc.strerror})") from exc
    except UnicodeDecodeError as exc:
        raise ProjectError(f"{path}: not a text file (invalid UTF-8 at byte {exc.start})") from exc
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ProjectError(
            f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except ValueError as exc:
        raise ProjectError(f"{path}: invalid JSON: {exc}") from exc
    try:
        return session_from_dict(data, base_dir=path.parent)
    except ProjectError as exc:
        raise ProjectError(f"{path}: {exc}") from exc


def save_project(session: Session, path: PathLike) -> Path:
    """Validate ``session`` and write it to ``path`` atomically; returns the path.

    Sources inside the project's directory are stored relative to it (see
    :func:`relative_source`).  An existing file is replaced only once the
    new one is completely written.  A directory means its ``project.json``.
    """
    path = project_file(path)
    session.validate()
    if not path.parent.is_dir():
        raise ProjectError(f"{path}: directory {path.parent} does not exist")
    data = session_to_dict(session, base_dir=path.parent)
    try:
        text = json.dumps(data, indent=2, allow_nan=False, default=_json_scalar) + "\n"
        session_from_dict(json.loads(text))  # every file written must load again
    except (ValueError, TypeError, ProjectError) as exc:
        raise ProjectError(f"{path}: not saved: {exc}") from exc
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def _json_scalar(value: object) -> object:
    """Let numpy scalars (e.g. an ``np.int64`` position) through ``json.dumps``."""
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    raise TypeError(f"{type(value).__name__} value {value!r} cannot be stored in a project")


def relative_source(source: PathLike, base_dir: PathLike) -> str:
    """``source`` relative to ``base_dir`` (POSIX separators) if it lies inside it.

    Sources outside ``base_dir`` stay absolute, so moving the project
    directory does not silently re-point them.
    """
    absolute = Path(os.path.abspath(source))
    try:
        return absolute.relative_to(os.path.abspath(base_dir)).as_posix()
    except ValueError:
        return absolute.as_posix()


def session_to_dict(session: Session, base_dir: PathLike | None = None) -> dict[str, Any]:
    """The JSON-ready form of ``session``; sources relative to ``base_dir`` when given."""

    def source(path: str) -> str:
        if base_dir is None or is_asset_id(path):
            return path
        return relative_source(path, base_dir)

    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "name": session.name,
        "sample_rate": session.sample_rate,
        "tempo": session.tempo.to_dict(),
        # written only when off: a file that chases reads the same in builds before it
        **({} if session.chase_notes else {"chase_notes": False}),
        "master": _bus_to_dict(session.master),
        "buses": [_bus_to_dict(bus) for bus in session.buses],
        "tracks": [
            {
                "id": t.id, "name": t.name, "channels": t.channels,
                "gain_db": _gain_out(t.gain_db), "pan": t.pan, "mute": t.mute, "solo": t.solo,
                "effects": [_effect_to_dict(e) for e in t.effects],
                "sends": [
                    {"bus": s.bus, "level_db": _gain_out(s.level_db), "pre_fader": s.pre_fader}
                    for s in t.sends
                ],
                "clips": [
                    {
                        "id": c.id, "source": source(c.source), "position": c.position,
                        "length": c.length, "offset": c.offset, "gain_db": _gain_out(c.gain_db),
                        "fade_in": c.fade_in, "fade_out": c.fade_out,
                        "crossfade": c.crossfade, "stretch": c.stretch,
                        "semitones": c.semitones, "warp": [list(m) for m in c.warp],
                        "follow_tempo": c.follow_tempo, "source_bpm": c.source_bpm,
                    }
                    for c in t.clips
                ],
                "automation": _lanes_to_dict(t.automation),
                **_midi_to_dict(t, source),
                **({} if t.immersive is None else {"immersive": route_to_dict(t.immersive)}),
            }
            for t in session.tracks
        ],
    }


def _midi_to_dict(track: Track, source: Callable[[str], str]) -> dict[str, Any]:
    """A MIDI track's ``instrument`` and ``midi_clips`` (absent on audio tracks, so a
    project without MIDI reads the same in builds from before MIDI)."""
    out: dict[str, Any] = {}
    if track.instrument is not None:
        out["instrument"] = instrument_to_dict(track.instrument, source)
    if track.midi_clips:
        out["midi_clips"] = [clip_to_dict(c) for c in track.midi_clips]
    return out


def _lanes_to_dict(lanes: dict[str, AutomationLane]) -> dict[str, Any]:
    return {
        param: {"mode": lane.mode, "points": [
            {"id": p.id, "frame": p.frame, "value": p.value, "curve": p.curve}
            for p in lane.sorted_points()
        ]}
        for param, lane in lanes.items()
    }


def _bus_to_dict(bus: Bus) -> dict[str, Any]:
    out = {"id": bus.id, "name": bus.name, "gain_db": _gain_out(bus.gain_db), "pan": bus.pan,
           "effects": [_effect_to_dict(e) for e in bus.effects]}
    if bus.automation:  # written only when used: a project without it reads as before
        out["automation"] = _lanes_to_dict(bus.automation)
    return out


def _effect_to_dict(effect: EffectSpec) -> dict[str, Any]:
    out = {"id": effect.id, "kind": effect.kind, "enabled": effect.enabled,
           "params": dict(effect.params)}
    if effect.sidechain:
        out["sidechain"] = effect.sidechain
    return out


def _gain_out(db: float) -> float | str:
    return "-inf" if db == -math.inf else db


def session_from_dict(data: object, base_dir: PathLike | None = None) -> Session:
    """Build and validate a :class:`Session` from its JSON form.

    Relative clip sources are resolved against ``base_dir`` when given.
    Raises :class:`ProjectError` naming the JSON path of the first problem.
    """
    root = _fields(data, "", ("format", "version", "sample_rate"),
                   ("name", "master", "buses", "tracks", "tempo", "chase_notes"))
    if "tempo" in root and root.get("version") in SUPPORTED_VERSIONS[:TIME_VERSION - 1]:
        raise ProjectError("(top level): unknown key(s) 'tempo' (a version "
                           f"{root['version']} project has no tempo map; version "
                           f"{TIME_VERSION} has)")
    if root["format"] != FORMAT_NAME:
        raise ProjectError(f"format: must be {FORMAT_NAME!r}, got {_show(root['format'])}; "
                           "this is not a Max Booster Studio project")
    version = root["version"]
    if isinstance(version, bool) or version not in SUPPORTED_VERSIONS:
        raise ProjectError(
            f"version: {_show(version)} is not supported; this build reads version(s) "
            f"{', '.join(map(str, SUPPORTED_VERSIONS))}"
        )
    session = Session(
        sample_rate=_integer(root["sample_rate"], "sample_rate", 1),
        name=_string(root.get("name", "Untitled"), "name"),
        master=_bus(root.get("master", {"id": "master", "name": "Master"}), "master", base_dir,
                    version),
        buses=[_bus(b, p, base_dir, version) for b, p in _items(root.get("buses", []),
                                                                "buses")],
        tracks=[_track(t, p, base_dir, version)
                for t, p in _items(root.get("tracks", []), "tracks")],
        chase_notes=_boolean(root.get("chase_notes", True), "chase_notes"),
    )
    if "tempo" in root:
        session.tempo = tempo_map_from_dict(root["tempo"], "tempo")
    session.validate()
    return session


def _track(value: object, path: str, base_dir: PathLike | None,
           version: int = FORMAT_VERSION) -> Track:
    optional = ("name", "channels", "gain_db", "pan", "mute", "solo", "effects", "sends",
                "clips", "instrument", "midi_clips", "immersive") + (
                    ("automation",) if version >= 2 else ())
    f = _fields(value, path, ("id",), optional)
    channels = _integer(f.get("channels", 1), f"{path}.channels", 1)
    if channels not in (1, 2):
        raise ProjectError(f"{path}.channels: must be 1 or 2, got {channels}")
    return Track(
        id=_string(f["id"], f"{path}.id", nonempty=True),
        name=_string(f.get("name", ""), f"{path}.name"),
        channels=channels,
        gain_db=_gain(f.get("gain_db", 0.0), f"{path}.gain_db"),
        pan=_pan(f.get("pan", 0.0), f"{path}.pan"),
        mute=_boolean(f.get("mute", False), f"{path}.mute"),
        solo=_boolean(f.get("solo", False), f"{path}.solo"),
        effects=[_effect(e, p, base_dir, version)
                 for e, p in _items(f.get("effects", []), f"{path}.effects")],
        sends=[_send(s, p) for s, p in _items(f.get("sends", []), f"{path}.sends")],
        clips=[_clip(c, p, base_dir, version)
               for c, p in _items(f.get("clips", []), f"{path}.clips")],
        automation=_automation(f.get("automation", {}), f"{path}.automation"),
        instrument=(None if f.get("instrument") is None else instrument_from_dict(
            f["instrument"], f"{path}.instrument",
            lambda src: _source(src, f"{path}.instrument", base_dir, version))),
        midi_clips=[clip_from_dict(c, p)
                    for c, p in _items(f.get("midi_clips", []), f"{path}.midi_clips")],
        immersive=(None if f.get("immersive") is None else route_from_dict(
            f["immersive"], f"{path}.immersive", channels)),
    )


def _automation(value: object, path: str) -> dict[str, AutomationLane]:
    if not isinstance(value, dict):
        raise ProjectError(f"{path}: must be an object mapping a parameter to its lane, "
                           f"got {_show(value)}")
    lanes: dict[str, AutomationLane] = {}
    for param, lane in value.items():
        where = f"{path}.{param}"
        if not param or RESERVED in param:  # the owner's lanes are checked by validate()
            raise ProjectError(f"{where}: {param!r} is not a lane name")
        f = _fields(lane, where, (), ("mode", "points"))
        points = []
        for point, p in _items(f.get("points", []), f"{where}.points"):
            g = _fields(point, p, ("frame", "value"), ("id", "curve"))
            points.append(AutomationPoint(
                frame=_integer(g["frame"], f"{p}.frame", 0),
                value=_number(g["value"], f"{p}.value"),
                curve=_string(g.get("curve", "linear"), f"{p}.curve"),
                id=_string(g.get("id", ""), f"{p}.id"),
            ))
        lanes[param] = AutomationLane(mode=_string(f.get("mode", "read"), f"{where}.mode"),
                                      points=points)
    return lanes


def _clip(value: object, path: str, base_dir: PathLike | None,
          version: int = FORMAT_VERSION) -> Clip:
    f = _fields(value, path, ("source", "position", "length"),
                ("id", "offset", "gain_db", "fade_in", "fade_out") + (
                    TIME_CLIP_KEYS if version >= TIME_VERSION else ()))
    return Clip(
        source=_source(f["source"], f"{path}.source", base_dir, version),
        position=_integer(f["position"], f"{path}.position", 0),
        length=_integer(f["length"], f"{path}.length", 1),
        offset=_integer(f.get("offset", 0), f"{path}.offset", 0),
        gain_db=_gain(f.get("gain_db", 0.0), f"{path}.gain_db"),
        fade_in=_integer(f.get("fade_in", 0), f"{path}.fade_in", 0),
        fade_out=_integer(f.get("fade_out", 0), f"{path}.fade_out", 0),
        id=_string(f.get("id", ""), f"{path}.id"),
        crossfade=_integer(f.get("crossfade", 0), f"{path}.crossfade", 0),
        stretch=_number(f.get("stretch", 1.0), f"{path}.stretch"),
        semitones=_number(f.get("semitones", 0.0), f"{path}.semitones"),
        warp=_warp(f.get("warp", []), f"{path}.warp"),
        follow_tempo=_boolean(f.get("follow_tempo", False), f"{path}.follow_tempo"),
        source_bpm=_number(f.get("source_bpm", 0.0), f"{path}.source_bpm"),
    )


def _warp(value: object, path: str) -> tuple[tuple[int, int], ...]:
    """Warp markers: ``[[source frame, timeline frame], ...]``."""
    markers = []
    for item, p in _items(value, path):
        if not (isinstance(item, list) and len(item) == 2):
            raise ProjectError(f"{p}: must be a pair [source frame, timeline frame], "
                               f"got {_show(item)}")
        markers.append((_integer(item[0], f"{p}[0]", 0), _integer(item[1], f"{p}[1]", 0)))
    return tuple(markers)


def _send(value: object, path: str) -> Send:
    f = _fields(value, path, ("bus",), ("level_db", "pre_fader"))
    return Send(bus=_string(f["bus"], f"{path}.bus", nonempty=True),
                level_db=_gain(f.get("level_db", 0.0), f"{path}.level_db"),
                pre_fader=_boolean(f.get("pre_fader", False), f"{path}.pre_fader"))


def _bus(value: object, path: str, base_dir: PathLike | None = None,
         version: int = FORMAT_VERSION) -> Bus:
    f = _fields(value, path, ("id",), ("name", "effects", "gain_db", "pan", "automation"))
    return Bus(
        id=_string(f["id"], f"{path}.id", nonempty=True),
        name=_string(f.get("name", ""), f"{path}.name"),
        effects=[_effect(e, p, base_dir, version)
                 for e, p in _items(f.get("effects", []), f"{path}.effects")],
        gain_db=_gain(f.get("gain_db", 0.0), f"{path}.gain_db"),
        pan=_pan(f.get("pan", 0.0), f"{path}.pan"),
        automation=_automation(f.get("automation", {}), f"{path}.automation"),
    )


def _effect(value: object, path: str, base_dir: PathLike | None = None,
            version: int = FORMAT_VERSION) -> EffectSpec:
    f = _fields(value, path, ("kind",), ("id", "enabled", "params", "sidechain"))
    kind = _string(f["kind"], f"{path}.kind")
    if kind in HOSTED_KINDS:
        return _hosted_effect(f, path)
    if kind not in PARAMS:
        raise ProjectError(f"{path}.kind: unknown effect kind {kind!r}; "
                           f"known kinds: {', '.join(PARAMS)}")
    ranges = {p.name: p for p in PARAMS[kind]}
    texts = TEXT_PARAMS.get(kind, ())
    params = _fields(f.get("params", {}), f"{path}.params", (), (*ranges, *texts))
    for name, raw in params.items():
        where = f"{path}.params.{name}"
        if name in texts:
            params[name] = _source(raw, where, base_dir, version)
            continue
        choices = CHOICES.get((kind, name))
        if choices is not None and isinstance(raw, str):
            if raw not in choices:
                raise ProjectError(f"{where}: unknown {name} {raw!r}; "
                                   f"use one of {', '.join(choices)}")
            continue
        value_ = _number(raw, where)
        low, high = ranges[name].low, ranges[name].high
        if not low <= value_ <= high:
            raise ProjectError(f"{where}: must be in [{low:g}, {high:g}], got {_show(raw)}")
    sidechain = _string(f.get("sidechain", ""), f"{path}.sidechain")
    if sidechain and kind not in SIDECHAIN_KINDS:
        raise ProjectError(f"{path}.sidechain: only {' and '.join(SIDECHAIN_KINDS)} take a "
                           f"sidechain, not {kind}")
    spec = EffectSpec(kind=kind, params=params, id=_string(f.get("id", ""), f"{path}.id"),
                      enabled=_boolean(f.get("enabled", True), f"{path}.enabled"),
                      sidechain=sidechain)
    try:
        spec.validate()
    except ProjectError as exc:
        raise ProjectError(f"{path}: {exc}") from None
    return spec


def _hosted_effect(f: dict[str, Any], path: str) -> EffectSpec:
    """An ``lv2`` effect: ``params`` holds ``uri``, control values by port symbol and
    optionally ``state`` (a saved LV2 state's text), checked against the installed
    plug-ins (docs/lv2.md)."""
    raw_params = f.get("params", {})
    if not isinstance(raw_params, dict):
        raise ProjectError(f"{path}.params: must be an object with 'uri' and control values")
    params: dict[str, float | str] = {}
    for name, raw in raw_params.items():
        where = f"{path}.params.{name}"
        params[name] = _string(raw, where) if name in ("uri", "state") else _number(raw, where)
    if f.get("sidechain"):
        raise ProjectError(f"{path}.sidechain: lv2 plug-ins take no sidechain here")
    spec = EffectSpec(kind=_string(f["kind"], f"{path}.kind"), params=params,
                      id=_string(f.get("id", ""), f"{path}.id"),
                      enabled=_boolean(f.get("enabled", True), f"{path}.enabled"))
    try:
        spec.validate()
    except ProjectError as exc:
        raise ProjectError(f"{path}: {exc}") from None
    return spec


def _source(raw: object, where: str, base_dir: PathLike | None,
            version: int = FORMAT_VERSION) -> str:
    """A clip's, ``ir``'s or sampler zone's audio: an asset id as it is (version 3 on), else
    a path,
    relative ones resolved against ``base_dir``.  Older versions name audio by path only:
    an asset store's path becomes its id (the migration), any other stays a path."""
    source = _string(raw, where, nonempty=True)
    if version >= ASSET_ID_VERSION and is_asset_id(source):
        return source
    if version < ASSET_ID_VERSION and (asset_id := legacy_asset_id(source)) is not None:
        return asset_id
    if base_dir is not None:
        source = os.path.normpath(os.path.join(os.path.abspath(base_dir), source))
    return source


def _fields(value: object, path: str, required: tuple[str, ...],
            optional: tuple[str, ...]) -> dict[str, Any]:
    """Check ``value`` is an object with all ``required`` keys and no unknown ones."""
    where = path or "(top level)"
    if not isinstance(value, dict):
        raise ProjectError(f"{where}: must be an object, got {_show(value)}")
    unknown = [key for key in value if key not in required and key not in optional]
    if unknown:
        raise ProjectError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                           f"allowed keys: {', '.join((*required, *optional))}")
    missing = [key for key in required if key not in value]
    if missing:
        raise ProjectError(f"{where}: missing required key(s) {', '.join(map(repr, missing))}")
    return value


def _items(value: object, path: str) -> list[tuple[object, str]]:
    if not isinstance(value, list):
        raise ProjectError(f"{path}: must be an array, got {_show(value)}")
    return [(item, f"{path}[{i}]") for i, item in enumerate(value)]


def _integer(value: object, path: str, minimum: int | None = None) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and (
        minimum is None or value >= minimum
    ):
        return value
    kind = {None: "an integer", 0: "a non-negative integer", 1: "a positive integer"}.get(
        minimum, f"an integer >= {minimum}")
    raise ProjectError(f"{path}: must be {kind}, got {_show(value)}")


def _finite(value: object) -> float | None:
    """``value`` as a float if it is a finite JSON number, else None."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _number(value: object, path: str) -> float:
    number = _finite(value)
    if number is None:
        raise ProjectError(f"{path}: must be a finite number, got {_show(value)}")
    return number


def _gain(value: object, path: str) -> float:
    if value == "-inf":
        return -math.inf
    number = _finite(value)
    if number is not None and number <= MAX_GAIN_DB:
        return number
    raise ProjectError(f'{path}: must be a number of dB <= {MAX_GAIN_DB:g} or "-inf", '
                       f"got {_show(value)}")


def _pan(value: object, path: str) -> float:
    pan = _number(value, path)
    if not -1.0 <= pan <= 1.0:
        raise ProjectError(f"{path}: must be in [-1, 1], got {_show(value)}")
    return pan


def _boolean(value: object, path: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ProjectError(f"{path}: must be true or false, got {_show(value)}")


def _string(value: object, path: str, nonempty: bool = False) -> str:
    if isinstance(value, str) and (value or not nonempty):
        return value
    kind = "a non-empty string" if nonempty else "a string"
    raise ProjectError(f"{path}: must be {kind}, got {_show(value)}")


def _show(value: object) -> str:
    text = json.dumps(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r} in one object")
        result[key] = value
    return result


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number; write gains as \"-inf\" or a finite number")


def check_sources(session: Session, decode: bool = True,
                  progress: Callable[[int, int], None] | None = None) -> None:
    """Check every clip's source exists, is usable audio and is long enough for the clip
    (a stretched clip's: its render, stretched or warped as the engine plays it).

    With ``decode`` (the default) each distinct source is read and resampled
    through :func:`~dsp_core.audio_io.load_source`, which also warms the cache
    for rendering; otherwise only file headers are read.  Raises
    :class:`AudioFileError` (unusable file) or :class:`ProjectError` (clip
    runs past the source's end), both naming the clip.  ``progress`` is
    called as ``progress(done, total)`` per distinct source.
    """
    rate = session.sample_rate
    lengths: dict[str, int | AudioFileError] = {}
    sources = list(dict.fromkeys(c.source for t in session.tracks for c in t.clips))
    for done, source in enumerate(sources, 1):
        try:
            if decode:
                lengths[source] = load_source(source, rate).shape[1]
            else:
                _, frames, source_rate = audio_info(source)
                lengths[source] = resampled_length(frames, source_rate, rate)
        except AudioFileError as exc:
            lengths[source] = exc
        if progress is not None:
            progress(done, len(sources))
    for i, track in enumerate(session.tracks):
        for j, clip in enumerate(track.clips):
            label = f"tracks[{i}].clips[{j}] (track {track.id!r}, clip {clip.id!r})"
            available = lengths[clip.source]
            if isinstance(available, AudioFileError):
                raise AudioFileError(f"{label}: {available}") from available
            if clip.is_stretched:
                _check_stretched(clip, session, available, label)
            elif clip.offset + clip.length > available:
                raise ProjectError(
                    f"{label}: offset {clip.offset} + length {clip.length} = "
                    f"{clip.offset + clip.length} frames runs past the end of {clip.source} "
                    f"({available} frames at the session rate {rate} Hz)"
                )
    _check_zones(session, decode)


def _check_stretched(clip: Clip, session: Session, source_frames: int, label: str) -> None:
    """A stretched clip must end within its render (:func:`~dsp_core.graph.clip_stretch`,
    as the engine plays it), not within its source."""
    try:
        spec, start = clip_stretch(clip, session, session.sample_rate, source_frames)
    except ProjectError as exc:
        raise ProjectError(f"{label}: {exc}") from exc
    rendered = spec.rendered_frames(source_frames)
    offset = clip.offset if start is None else start
    if offset + clip.length > rendered:
        raise ProjectError(
            f"{label}: its render starts at frame {offset}, so length {clip.length} needs "
            f"{offset + clip.length} frames, but {clip.source} stretched as the clip says "
            f"is {rendered} frames ({source_frames} source frames at the session rate "
            f"{session.sample_rate} Hz); shorten the clip or move its warp markers"
        )


def _check_zones(session: Session, decode: bool) -> None:
    """Every sampler zone's file exists and is usable audio (naming the zone)."""
    for i, track in enumerate(session.tracks):
        zones = track.instrument.zones if track.instrument is not None else []
        for j, zone in enumerate(zones):
            try:
                if decode:
                    load_source(zone.source, session.sample_rate)
                else:
                    audio_info(zone.source)
            except AudioFileError as exc:
                raise AudioFileError(f"tracks[{i}].instrument.zones[{j}] (track {track.id!r}, "
                                     f"zone {zone.id or zone.source!r}): {exc}") from exc
