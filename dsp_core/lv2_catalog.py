"""Discovery of installed LV2 plug-ins, and the ``lv2`` effect's validation.

:func:`plugins` lists every plug-in lilv finds (``LV2_PATH``, else lilv's default
folders), with its ports: control ports' ranges and defaults, audio ports, and the
port that reports latency. Only the plug-ins' Turtle descriptions are read here;
their code runs in a worker process (:mod:`dsp_core.lv2_host`).

>>> info = plugin("http://plugin.org.uk/swh-plugins/amp")
>>> [p.symbol for p in info.controls]
['gain']
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

from . import lv2_lilv
from .errors import ProjectError
from .lv2_lilv import ffi, iterate, lib, take_float, take_text, text
from .lv2_state import STATE_KEY, check_text

#: Features this host gives a plug-in (lv2_worker.py); a plug-in requiring another
#: one is listed as unsupported with the reason.
SUPPORTED_FEATURES = frozenset({
    lv2_lilv.URID_MAP, lv2_lilv.URID_UNMAP, lv2_lilv.OPTIONS, lv2_lilv.BOUNDED_BLOCK,
    lv2_lilv.WORKER_SCHEDULE,
    "http://lv2plug.in/ns/lv2core#isLive", "http://lv2plug.in/ns/lv2core#hardRTCapable",
    "http://lv2plug.in/ns/ext/buf-size#coarseBlockLength",
})
PORT_KINDS = ("audio", "control", "atom", "cv")
MIN_RATE, MAX_RATE = 8000, 192000  # the engine's render rates (dsp_core.engine)


@dataclass(frozen=True)
class ScalePoint:
    """A named value of a control port (``lv2:scalePoint``): "Low shelf" for 2."""

    value: float
    label: str


@dataclass(frozen=True)
class PortInfo:
    """One port: its index, symbol, name, kind (audio, control, atom, cv) and direction.

    Control ports carry their range and default (None where the plug-in gives none)
    and their scale points (named values; an ``enumeration`` port takes only those).
    """

    index: int
    symbol: str
    name: str
    kind: str
    output: bool
    default: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    sidechain: bool = False
    reports_latency: bool = False
    optional: bool = False
    per_sample_rate: bool = False  # lv2:sampleRate: the range is a fraction of the rate
    midi: bool = False  # an atom port that supports midi:MidiEvent
    main: bool = False  # lv2:designation lv2:control: the plug-in's main event port
    minimum_size: int = 0  # rsz:minimumSize in bytes (atom ports; 0: none declared)
    integer: bool = False  # lv2:integer: whole numbers only
    toggled: bool = False  # lv2:toggled: off (0) or on (the maximum, else 1)
    enumeration: bool = False  # lv2:enumeration: only the plug-in's scale points
    scale_points: tuple[ScalePoint, ...] = ()  # named values, sorted by value

    def start_value(self) -> float:
        """The value a control input starts at: its default, else its minimum, else 0.

        (For an ``lv2:sampleRate`` port the caller scales it by the rate.)"""
        for value in (self.default, self.minimum):
            if value is not None and math.isfinite(value):
                return value
        return 0.0


@dataclass(frozen=True)
class PluginInfo:
    """An installed plug-in: URI, name, class, ports, latency port, required features."""

    uri: str
    name: str
    category: str
    ports: tuple[PortInfo, ...]
    required_features: tuple[str, ...] = ()
    latency_port: int | None = None
    problems: tuple[str, ...] = field(default=())
    #: why the plug-in cannot play a MIDI track (empty: it can, :attr:`playable`)
    instrument_problems: tuple[str, ...] = field(default=())

    @property
    def supported(self) -> bool:
        """True when this host can run the plug-in as an effect (``problems`` says why
        not)."""
        return not self.problems

    @property
    def playable(self) -> bool:
        """True when this host can play a MIDI track through the plug-in, as an
        instrument (``instrument_problems`` says why not)."""
        return not self.instrument_problems

    @property
    def midi_input(self) -> PortInfo | None:
        """The atom input that gets the track's MIDI: the one designated the plug-in's
        main control port among those that support ``midi:MidiEvent``, else the first
        of those; None when there is none."""
        inputs = [p for p in self.ports if p.kind == "atom" and not p.output and p.midi]
        return next((p for p in inputs if p.main), inputs[0] if inputs else None)

    @property
    def controls(self) -> list[PortInfo]:
        """Control input ports: the plug-in's parameters, by symbol."""
        return [p for p in self.ports if p.kind == "control" and not p.output]

    def audio(self, output: bool) -> list[PortInfo]:
        """Main (not sidechain) audio inputs or outputs, in port order."""
        return [p for p in self.ports
                if p.kind == "audio" and p.output == output and not p.sidechain]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (for listings and the HTTP API); a control port
        has ``scale_points`` (``[{value, label}]``, sorted by value) only when it has some."""
        return {
            "uri": self.uri, "name": self.name, "category": self.category,
            "supported": self.supported, "problems": list(self.problems),
            "audio_inputs": len(self.audio(False)), "audio_outputs": len(self.audio(True)),
            "reports_latency": self.latency_port is not None,
            "midi_input": self.midi_input is not None, "instrument": self.playable,
            "instrument_problems": list(self.instrument_problems),
            "controls": [_control_dict(p) for p in self.controls],
        }


def _control_dict(port: PortInfo) -> dict[str, Any]:
    """A control port as :meth:`PluginInfo.to_dict` lists it."""
    data: dict[str, Any] = {
        "symbol": port.symbol, "name": port.name, "default": port.default,
        "minimum": port.minimum, "maximum": port.maximum,
        "per_sample_rate": port.per_sample_rate, "integer": port.integer,
        "toggled": port.toggled, "enumeration": port.enumeration}
    if port.scale_points:  # most ports have none: the listing stays small
        data["scale_points"] = [{"value": point.value, "label": point.label}
                                for point in port.scale_points]
    return data


class _World:
    """One lilv world per process, loaded on first use; plug-ins described on demand."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.world: Any = None
        self.nodes: dict[str, Any] = {}
        self.by_uri: dict[str, PluginInfo | None] = {}
        self.listed = False

    def _load(self) -> Any:
        if self.world is None:
            lilv = lib()
            world = lilv.lilv_world_new()
            lilv.lilv_world_load_all(world)
            self.nodes = _port_nodes(world)
            self.world = world
        return lilv_plugins(self.world)

    def get(self, uri: str) -> PluginInfo | None:
        with self.lock:
            if uri not in self.by_uri:
                all_plugins = self._load()
                node = lib().lilv_new_uri(self.world, uri.encode())
                try:
                    p = lib().lilv_plugins_get_by_uri(all_plugins, node)
                finally:
                    lib().lilv_node_free(node)
                self.by_uri[uri] = None if p == ffi.NULL else _describe(p, self.nodes)
            return self.by_uri[uri]

    def pointer(self, uri: str) -> Any:
        """lilv's plug-in object for ``uri`` (NULL when none is installed)."""
        with self.lock:
            all_plugins = self._load()
            node = lib().lilv_new_uri(self.world, uri.encode())
            try:
                return lib().lilv_plugins_get_by_uri(all_plugins, node)
            finally:
                lib().lilv_node_free(node)

    def all(self) -> list[PluginInfo]:
        with self.lock:
            if not self.listed:
                all_plugins = self._load()
                for p in iterate(lib().lilv_plugins_begin, lib().lilv_plugins_get,
                                 lib().lilv_plugins_next, lib().lilv_plugins_is_end,
                                 all_plugins):
                    uri = text(lib().lilv_node_as_uri(lib().lilv_plugin_get_uri(p)))
                    if self.by_uri.get(uri) is None:
                        self.by_uri[uri] = _describe(p, self.nodes)
                self.listed = True
            return [info for info in self.by_uri.values() if info is not None]

    def forget(self) -> None:
        with self.lock:
            if self.world is not None:
                for node in self.nodes.values():
                    lib().lilv_node_free(node)
                lib().lilv_world_free(self.world)
            self.world, self.nodes, self.by_uri, self.listed = None, {}, {}, False


def lilv_plugins(world: Any) -> Any:
    """The world's collection of plug-ins."""
    return lib().lilv_world_get_all_plugins(world)


_WORLD = _World()


def plugins() -> list[PluginInfo]:
    """Every installed LV2 plug-in, sorted by URI."""
    return sorted(_WORLD.all(), key=lambda p: p.uri)


def plugin(uri: str) -> PluginInfo:
    """The installed plug-in ``uri`` (:class:`ProjectError` when none has it)."""
    found = _WORLD.get(uri)
    if found is None:
        raise ProjectError(
            f"lv2: no installed plug-in has the URI {uri!r}; list them with "
            "`python3 -m dsp_core.lv2_catalog` (or lv2ls), or install its package")
    return found


def plugin_pointer(uri: str) -> Any:
    """lilv's ``LilvPlugin*`` for ``uri`` in this process's world (for instantiating)."""
    return _WORLD.pointer(uri)


def world() -> Any:
    """This process's ``LilvWorld*``, loaded (for saving and restoring plug-in state)."""
    with _WORLD.lock:
        _WORLD._load()
        return _WORLD.world


def reload() -> None:
    """Forget what was found (after installing plug-ins or changing ``LV2_PATH``)."""
    _WORLD.forget()


def validate_spec(params: dict[str, float | str], instrument: bool = False) -> PluginInfo:
    """Check an ``lv2`` effect's (or, with ``instrument``, an ``lv2`` instrument's)
    parameters against discovery; return the plug-in.

    ``params["uri"]`` names an installed plug-in this host can run in that role (an
    instrument needs a MIDI input, :attr:`PluginInfo.playable`); ``params["state"]``,
    when present, is the text of a saved LV2 state (:mod:`dsp_core.lv2_state`); every
    other key is one of its control input symbols with a number inside the port's range.
    """

    uri = params.get("uri")
    if not isinstance(uri, str) or not uri:
        raise ProjectError(f"lv2: 'uri' must name an installed plug-in, got {uri!r}")
    info = plugin(uri)
    if instrument and not info.playable:
        raise ProjectError(f"lv2: {uri} cannot play a MIDI track here: "
                           f"{'; '.join(info.instrument_problems)}; pick an instrument "
                           "(`python3 -m dsp_core.lv2_catalog` marks them)")
    if not instrument and not info.supported:
        raise ProjectError(f"lv2: {uri} cannot be hosted here: {'; '.join(info.problems)}")
    controls = {p.symbol: p for p in info.controls}
    for name, raw in params.items():
        if name == "uri":
            continue
        if name == STATE_KEY:
            check_text(raw, uri)
            continue
        port = controls.get(name)
        if port is None:
            raise ProjectError(f"lv2 {uri}: unknown control {name!r}; its controls are "
                               f"{', '.join(sorted(controls)) or '(none)'}")
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ProjectError(f"lv2 {uri}: {name} = {raw!r} is not a number") from None
        low = port.minimum if port.minimum is not None else -math.inf
        high = port.maximum if port.maximum is not None else math.inf
        if port.per_sample_rate:  # a frequency in Hz whose range scales with the rate
            low, high = low * MIN_RATE, high * MAX_RATE
        if not math.isfinite(value):  # a port without bounds would get it, and play NaN
            raise ProjectError(f"lv2 {uri}: {name} = {raw!r} is not a finite number")
        if not low <= value <= high:
            raise ProjectError(f"lv2 {uri}: {name} = {raw!r} is outside [{low:g}, {high:g}]")
        if port.integer and not value.is_integer():
            raise ProjectError(f"lv2 {uri}: {name} = {raw!r} must be a whole number (the "
                               "port is lv2:integer)")
    return info


def control_values(info: PluginInfo, params: dict[str, float | str],
                   sample_rate: float) -> dict[int, float]:
    """Every control input's value by port index: ``params`` over the defaults."""
    return {p.index: float(params.get(p.symbol, p.start_value() * (
        sample_rate if p.per_sample_rate else 1.0))) for p in info.controls}


def _port_nodes(world: Any) -> dict[str, Any]:
    """The URI nodes a port description asks about (freed by ``_World.forget``)."""
    lilv = lib()
    return {name: lilv.lilv_new_uri(world, uri.encode()) for name, uri in (
        ("audio", lv2_lilv.LV2 + "AudioPort"), ("control", lv2_lilv.LV2 + "ControlPort"),
        ("cv", lv2_lilv.LV2 + "CVPort"), ("atom", lv2_lilv.ATOM + "AtomPort"),
        ("output", lv2_lilv.LV2 + "OutputPort"), ("input", lv2_lilv.LV2 + "InputPort"),
        ("sidechain", lv2_lilv.LV2 + "isSideChain"),
        ("optional", lv2_lilv.LV2 + "connectionOptional"),
        ("latency", lv2_lilv.LV2 + "reportsLatency"),
        ("rate", lv2_lilv.LV2 + "sampleRate"), ("midi", lv2_lilv.MIDI_EVENT),
        ("designation", lv2_lilv.LV2 + "designation"), ("main", lv2_lilv.LV2 + "control"),
        ("minimum_size", lv2_lilv.MINIMUM_SIZE), ("type", lv2_lilv.RDF_TYPE),
        ("instrument", lv2_lilv.LV2 + "InstrumentPlugin"),
        ("integer", lv2_lilv.LV2 + "integer"), ("toggled", lv2_lilv.LV2 + "toggled"),
        ("enumeration", lv2_lilv.LV2 + "enumeration"))}


def _is_instrument_class(p: Any, nodes: dict[str, Any]) -> bool:
    """Whether the plug-in declares itself an ``lv2:InstrumentPlugin``."""
    lilv = lib()
    types = lilv.lilv_plugin_get_value(p, nodes["type"])
    if types == ffi.NULL:
        return False
    try:
        return bool(lilv.lilv_nodes_contains(types, nodes["instrument"]))
    finally:
        lilv.lilv_nodes_free(types)


def _atom_traits(p: Any, port: Any, nodes: dict[str, Any]) -> dict[str, Any]:
    """An atom port's MIDI support, main-port designation and minimum buffer size."""
    lilv = lib()
    designation = lilv.lilv_port_get(p, port, nodes["designation"])
    main = designation != ffi.NULL and text(lilv.lilv_node_as_uri(designation)) == \
        lv2_lilv.LV2 + "control"
    if designation != ffi.NULL:
        lilv.lilv_node_free(designation)
    size = take_float(lilv.lilv_port_get(p, port, nodes["minimum_size"]))
    return {"midi": bool(lilv.lilv_port_supports_event(p, port, nodes["midi"])),
            "main": main, "minimum_size": int(size) if size and size > 0 else 0}


def _literal(node: Any) -> float:
    """A numeric node's value as written ("0.7" is 0.7, not float32's 0.69999999)."""
    try:
        return float(text(lib().lilv_node_as_string(node)))
    except ValueError:
        return float(lib().lilv_node_as_float(node))


def _scale_points(p: Any, port: Any) -> tuple[ScalePoint, ...]:
    """A control port's scale points with a numeric value, sorted by value."""
    lilv = lib()
    points = lilv.lilv_port_get_scale_points(p, port)
    if points == ffi.NULL:
        return ()
    try:
        found = []
        for point in iterate(lilv.lilv_scale_points_begin, lilv.lilv_scale_points_get,
                             lilv.lilv_scale_points_next, lilv.lilv_scale_points_is_end,
                             points):
            value = lilv.lilv_scale_point_get_value(point)  # owned by the point
            if value == ffi.NULL or not (lilv.lilv_node_is_float(value)
                                         or lilv.lilv_node_is_int(value)):
                continue
            label = lilv.lilv_scale_point_get_label(point)
            number = _literal(value)
            found.append(ScalePoint(number, text(lilv.lilv_node_as_string(label))
                                    if label != ffi.NULL else f"{number:g}"))
    finally:
        lilv.lilv_scale_points_free(points)
    return tuple(sorted(found, key=lambda point: point.value))


def _describe(p: Any, nodes: dict[str, Any]) -> PluginInfo:
    lilv = lib()
    uri = text(lilv.lilv_node_as_uri(lilv.lilv_plugin_get_uri(p)))
    klass = lilv.lilv_plugin_get_class(p)
    category = text(lilv.lilv_node_as_string(lilv.lilv_plugin_class_get_label(klass))) \
        if klass != ffi.NULL else ""
    ports, problems = [], []
    for index in range(lilv.lilv_plugin_get_num_ports(p)):
        port = lilv.lilv_plugin_get_port_by_index(p, index)
        kind = next((k for k in PORT_KINDS if lilv.lilv_port_is_a(p, port, nodes[k])), "other")
        output = bool(lilv.lilv_port_is_a(p, port, nodes["output"]))
        symbol = text(lilv.lilv_node_as_string(lilv.lilv_port_get_symbol(p, port)))
        optional = bool(lilv.lilv_port_has_property(p, port, nodes["optional"]))
        if kind == "other" and not optional:
            problems.append(f"port {symbol!r} has a type this host does not know")
        default = minimum = maximum = None
        traits = _atom_traits(p, port, nodes) if kind == "atom" else {}
        if kind == "control":
            d, lo, hi = ffi.new("LilvNode**"), ffi.new("LilvNode**"), ffi.new("LilvNode**")
            lilv.lilv_port_get_range(p, port, d, lo, hi)
            default, minimum, maximum = take_float(d[0]), take_float(lo[0]), take_float(hi[0])
            traits = {name: bool(lilv.lilv_port_has_property(p, port, nodes[name]))
                      for name in ("integer", "toggled", "enumeration")}
            traits["scale_points"] = _scale_points(p, port)
        ports.append(PortInfo(
            index=index, symbol=symbol, name=take_text(lilv.lilv_port_get_name(p, port)),
            kind=kind, output=output, default=default, minimum=minimum, maximum=maximum,
            sidechain=bool(lilv.lilv_port_has_property(p, port, nodes["sidechain"])),
            reports_latency=bool(lilv.lilv_port_has_property(p, port, nodes["latency"])),
            optional=optional,
            per_sample_rate=bool(lilv.lilv_port_has_property(p, port, nodes["rate"])),
            **traits))
    features_nodes = lilv.lilv_plugin_get_required_features(p)
    required = tuple(text(lilv.lilv_node_as_uri(n)) for n in iterate(
        lilv.lilv_nodes_begin, lilv.lilv_nodes_get, lilv.lilv_nodes_next,
        lilv.lilv_nodes_is_end, features_nodes))
    lilv.lilv_nodes_free(features_nodes)
    problems += [f"requires the feature {f}, which this host does not provide"
                 for f in required if f not in SUPPORTED_FEATURES]
    latency_port = None
    if lilv.lilv_plugin_has_latency(p):
        latency_port = int(lilv.lilv_plugin_get_latency_port_index(p))
    info = PluginInfo(uri=uri, name=take_text(lilv.lilv_plugin_get_name(p)), category=category,
                      ports=tuple(ports), required_features=required, latency_port=latency_port,
                      problems=tuple(problems))
    playing = list(problems)
    if not info.audio(False) or not info.audio(True):
        problems.append("has no audio input or no audio output (not an effect)")
    elif len(info.audio(False)) > 2 or len(info.audio(True)) > 2:
        problems.append("has more than two main audio inputs or outputs")
    if info.midi_input is None:
        playing.append("has no MIDI input (an atom:AtomPort input that supports "
                       "midi:MidiEvent), so it is not an instrument")
    if info.audio(False) and not _is_instrument_class(p, nodes):
        playing.append("has audio inputs and is not an lv2:InstrumentPlugin (an effect "
                       "that takes MIDI)")
    if not info.audio(True):
        playing.append("has no audio output")
    elif len(info.audio(True)) > 2:
        playing.append("has more than two main audio outputs")
    return PluginInfo(**{**info.__dict__, "problems": tuple(problems),
                         "instrument_problems": tuple(playing)})


def main() -> None:  # pragma: no cover - a listing for people
    """Print every installed plug-in, one line each: URI, name, whether it is hostable."""
    for info in plugins():
        state = "ok" if info.supported else "unsupported: " + "; ".join(info.problems)
        if info.playable:
            state += " (instrument)"
        print(f"{info.uri}\t{info.name}\t{state}")


if __name__ == "__main__":  # pragma: no cover
    main()
