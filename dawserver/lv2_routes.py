"""HTTP: the installed LV2 plug-ins, a project's bypassed ones and restarting them
(docs/lv2.md).

``GET /lv2/plugins`` (anyone signed in, or holding any project token) lists the plug-ins
this server can host, as effects and as instruments, with their control ports: what the
page's effect and instrument pickers offer.
``GET /projects/{id}/lv2/bypassed`` (anyone who may read the project) lists the ``lv2``
effects that play bypassed and why: plug-ins that failed (hung, crashed, NaN) in one of
the project's running engines, and effects the document's session leaves out (not
installed here, a bad control, over a cap). ``POST /projects/{id}/lv2/restart`` (editors)
starts fresh workers for the failed ones in every engine and answers which restarted and
what is still bypassed. The pages also get the list live, through awareness
(:mod:`dawserver.lv2_faults`).
"""

from __future__ import annotations

import asyncio
import operator
from typing import Literal

from aiohttp import web
from pydantic import Field

from collab.errors import ProjectNotFound
from dsp_core import lv2_catalog
from dsp_core.errors import DspError

from .keys import ENGINES
from .lv2_faults import LV2_FAULTS, Fault, FaultHolder
from .permissions import LV2_READ, PROJECT_EDIT, PROJECT_READ
from .plugin_api import Empty, Model, NotFound, Request, Route


class ScalePoint(Model):
    """A named value of a control port: the page offers the label, writes the value."""

    value: float
    label: str


class ControlPort(Model):
    """A control input of a plug-in: a parameter, written as ``params[symbol]``."""

    symbol: str = Field(description="the port's symbol: the key in the effect's params")
    name: str
    minimum: float | None = Field(description="the lowest value (None: the plug-in gives none)")
    maximum: float | None = Field(description="the highest value (None: none given)")
    default: float | None = Field(description="its value when left out (None: the minimum)")
    per_sample_rate: bool = Field(description="lv2:sampleRate: a frequency in Hz whose "
                                              "range is these bounds times the sample rate")
    integer: bool = Field(description="lv2:integer: whole numbers only")
    toggled: bool = Field(description="lv2:toggled: off (0) or on (1, or the maximum)")
    enumeration: bool = Field(description="lv2:enumeration: one of the plug-in's scale "
                                          "points only")
    scale_points: list[ScalePoint] | None = Field(
        default=None, description="the port's named values (lv2:scalePoint), sorted by "
                                  "value; left out of the answer when it has none")


class InstalledPlugin(Model):
    """An installed LV2 plug-in and whether this server can host it, and as what."""

    uri: str = Field(description="the plug-in's URI: params.uri of an lv2 effect or instrument")
    name: str
    category: str = Field(description="its LV2 class's label (Compressor, Reverb, ...)")
    effect: bool = Field(description="this server can host it as an insert effect")
    instrument: bool = Field(description="this server can play a MIDI track through it")
    problems: list[str] = Field(description="why it cannot be an effect (empty when it can)")
    instrument_problems: list[str] = Field(description="why it cannot be an instrument")
    audio_inputs: int
    audio_outputs: int
    reports_latency: bool = Field(description="it reports its latency on a port (measured "
                                              "when it starts; compensated)")
    controls: list[ControlPort]


class InstalledPlugins(Model):
    """The installed LV2 plug-ins, sorted by URI; none with the reason when lilv is missing."""

    plugins: list[InstalledPlugin]
    reason: str | None = Field(default=None, description="why none are listed (no liblilv "
                                                         "on the server), else None")


#: The last answer and the plug-in descriptions it was built from.
_ANSWERED: list[tuple[list[lv2_catalog.PluginInfo], InstalledPlugins]] = []


def catalogue() -> InstalledPlugins:
    """Every installed plug-in as the route answers it (lilv: call it in a thread), built
    once per catalogue. A plug-in this server can neither insert nor play is listed
    without its controls (LSP's multiband processors alone have a thousand ports)."""
    try:
        found = lv2_catalog.plugins()  # described once per process, then cached
    except (DspError, OSError) as exc:
        return InstalledPlugins(plugins=[], reason=str(exc))
    for described, answer in _ANSWERED:  # the same descriptions: the same answer
        if len(described) == len(found) and all(map(operator.is_, described, found)):
            return answer
    listed = []
    for info in found:
        data = info.to_dict()
        usable = info.supported or info.playable
        listed.append(InstalledPlugin(
            uri=info.uri, name=info.name, category=info.category, effect=info.supported,
            instrument=info.playable, problems=list(info.problems),
            instrument_problems=list(info.instrument_problems),
            audio_inputs=data["audio_inputs"], audio_outputs=data["audio_outputs"],
            reports_latency=data["reports_latency"],
            controls=[ControlPort.model_validate(c) for c in data["controls"]] if usable
            else []))
    answer = InstalledPlugins(plugins=listed)
    _ANSWERED[:] = [(found, answer)]  # lv2_catalog.reload() makes new descriptions
    return answer


async def list_plugins(request: Request) -> InstalledPlugins:
    """The LV2 plug-ins installed on this server: effects, instruments and their controls."""
    return await asyncio.to_thread(catalogue)


class BypassedPlugin(Model):
    """An ``lv2`` effect that plays bypassed (the dry signal, in time)."""

    reason: Literal["failed", "left_out"] = Field(
        description="failed: its worker hung, crashed or output NaN (restart it); "
                    "left_out: the document's effect cannot be played here (fix it)")
    owner: str = Field(description="the track's or bus's id ('master' for the master)")
    effect: str = Field(description="the effect's id ('' if it has none; a left-out effect "
                                    "without an id: its index in the document's chain)")
    index: int | None = Field(description="its place in the chain the engine plays "
                                          "(failed plug-ins)")
    uri: str | None = Field(description="the plug-in's URI (failed plug-ins)")
    name: str | None = Field(description="the plug-in's name, when it is installed here")
    message: str = Field(description="what happened and what to do")
    since: float = Field(description="when it was first seen bypassed (seconds since 1970)")
    engines: list[str] = Field(description="the engines that bypass it: 'render', 'live "
                                           "mix', 'live mix (binaural)', ... or 'document'")


class BypassedPlugins(Model):
    """The project's bypassed ``lv2`` effects: failed ones first, then left-out ones."""

    project_id: str
    plugins: list[BypassedPlugin]


class RestartedPlugins(Model):
    """What a restart did: the plug-ins restarted, and what is bypassed after it."""

    project_id: str
    restarted: list[BypassedPlugin]
    bypassed: list[BypassedPlugin]


def holders(app: web.Application, project_id: str) -> list[FaultHolder]:
    """The holders of ``project_id``'s running engines: its project engine and live mixes."""
    from .rtc import RTC

    found: list[FaultHolder] = []
    engines = app.get(ENGINES)
    if engines is not None and project_id in engines.engines:
        found.append(engines.engines[project_id])
    if RTC in app:
        found.extend(app[RTC].mixes.of(project_id))
    return found


def _models(faults: list[Fault]) -> list[BypassedPlugin]:
    return [BypassedPlugin.model_validate(fault.to_json()) for fault in faults]


async def list_bypassed(request: Request) -> BypassedPlugins:
    """The project's bypassed ``lv2`` effects and why (any role)."""
    project_id = request.params["project_id"]
    try:
        faults = await request.app[LV2_FAULTS].report(project_id)
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    return BypassedPlugins(project_id=project_id, plugins=_models(faults))


async def restart_plugins(request: Request) -> RestartedPlugins:
    """Restart the project's failed ``lv2`` plug-ins in every engine (editor).

    A plug-in that fails again (the control that broke it is unchanged) is bypassed
    again at its next block and listed again.
    """
    project_id = request.params["project_id"]
    service = request.app[LV2_FAULTS]
    try:
        await service.report(project_id)  # 404 for a project that does not exist
        restarted = await service.restart(project_id)
        bypassed = await service.report(project_id)
    except ProjectNotFound as exc:
        raise NotFound(str(exc)) from None
    return RestartedPlugins(project_id=project_id, restarted=_models(restarted),
                            bypassed=_models(bypassed))


PATH = "/projects/{project_id}/lv2"

ROUTES = [
    Route(method="GET", path="/lv2/plugins", handler=list_plugins, permission=LV2_READ,
          response=InstalledPlugins),
    Route(method="GET", path=f"{PATH}/bypassed", handler=list_bypassed,
          permission=PROJECT_READ, response=BypassedPlugins),
    Route(method="POST", path=f"{PATH}/restart", handler=restart_plugins,
          permission=PROJECT_EDIT, body=Empty, response=RestartedPlugins),
]
