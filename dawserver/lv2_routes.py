"""HTTP: a project's bypassed ``lv2`` plug-ins and restarting them (docs/lv2.md).

``GET /projects/{id}/lv2/bypassed`` (anyone who may read the project) lists the ``lv2``
effects that play bypassed and why: plug-ins that failed (hung, crashed, NaN) in one of
the project's running engines, and effects the document's session leaves out (not
installed here, a bad control, over a cap). ``POST /projects/{id}/lv2/restart`` (editors)
starts fresh workers for the failed ones in every engine and answers which restarted and
what is still bypassed. The pages also get the list live, through awareness
(:mod:`dawserver.lv2_faults`).
"""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import Field

from collab.errors import ProjectNotFound

from .keys import ENGINES
from .lv2_faults import LV2_FAULTS, Fault, FaultHolder
from .permissions import PROJECT_EDIT, PROJECT_READ
from .plugin_api import Empty, Model, NotFound, Request, Route


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
    Route(method="GET", path=f"{PATH}/bypassed", handler=list_bypassed,
          permission=PROJECT_READ, response=BypassedPlugins),
    Route(method="POST", path=f"{PATH}/restart", handler=restart_plugins,
          permission=PROJECT_EDIT, body=Empty, response=RestartedPlugins),
]
