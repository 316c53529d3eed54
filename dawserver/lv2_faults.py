"""Bypassed LV2 plug-ins of a project: what the engines report, gathered and told live.

An ``lv2`` effect plays bypassed for one of two reasons (docs/lv2.md):

- **failed**: its worker hung, crashed or output NaN while an engine of the project ran
  it (:meth:`dsp_core.engine.Engine.plugin_errors`): the project engine behind
  ``GET /projects/{id}/render`` and each live mix (the stereo mix and each immersive
  monitor). Each engine's holder keeps a :class:`FaultLog` of them, with when each was
  first seen;
- **left out**: :meth:`collab.schema.ProjectDocument.to_session` did not put it in the
  chain (a plug-in not installed here, a bad control, over a cap), the reason in
  ``ProjectDocument.bypassed``.

:class:`Lv2Faults` gathers both for a project (the routes in
:mod:`dawserver.lv2_routes`), restarts failed plug-ins, and tells every page of the
project when the list changes, through Yjs **awareness**: the server holds one awareness
client per room, whose state is ``{"lv2": {"bypassed": [...]}}`` (each entry as the
route answers it), renewed every :data:`RENEW_SECONDS` while the list is not empty and
withdrawn (a null state) once it is. Awareness is the room's channel for transient state
(it is never stored), so an engine's failure is no document write. No peer can speak for
it: rooms drop peers' entries for the server's client id and strip the ``lv2`` field from
peers' own states (``RoomLimits.server_fields``, docs/collab-protocol.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from aiohttp import web

from collab.presence import server_client_id
from collab.protocol import AwarenessEntry, encode_awareness
from collab.registry import RoomRegistry
from dsp_core import lv2_catalog

log = logging.getLogger(__name__)

#: Yjs clients drop a remote awareness state not renewed for 30 s; renew it twice as often.
RENEW_SECONDS = 15.0
#: The key of the server's awareness state that carries the list.
AWARENESS_KEY = "lv2"
FAILED, LEFT_OUT = "failed", "left_out"
#: How ``ProjectDocument.to_session`` words a left-out effect or instrument
#: (``collab/schema.py``).
_LEFT_OUT = re.compile(r"^(?:track|bus) '(?P<owner>[^']*)' (?:effect (?P<effect>[^:]*)|"
                       r"(?P<instrument>instrument)): (?P<message>.*?)"
                       r"(?:; played bypassed|; the instrument plays as none)?$", re.S)

#: ``on_plugins(project_id)``: an engine's bypassed plug-ins changed (called on the loop).
PluginsChanged = Callable[[str], None]


@dataclass(frozen=True)
class Fault:
    """One bypassed ``lv2`` effect: where it is, which plug-in, why, since when."""

    reason: Literal["failed", "left_out"]
    owner: str  # the track's or bus's id ('master' for the master)
    effect: str  # the effect's id ('' when it has none; a left-out one: id or index;
    # a MIDI track's lv2 instrument: 'instrument')
    index: int | None  # its place in the chain the engine plays (failed ones; -1: an
    # instrument)
    uri: str | None
    name: str | None  # the plug-in's name, when it is installed here
    message: str
    since: float  # seconds since 1970 when it was first seen bypassed
    engines: tuple[str, ...]  # which engines bypass it: 'render', 'live mix', ...

    @property
    def key(self) -> tuple[str, str, str]:
        """What two engines' reports of the same effect share."""
        return self.reason, self.owner, self.effect or f"#{self.index}"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready, as the route answers it."""
        return {**asdict(self), "engines": list(self.engines)}


def _plugin_name(uri: str | None) -> str | None:
    if not uri:
        return None
    try:
        return lv2_catalog.plugin(uri).name
    except Exception:  # noqa: BLE001 - not installed, or no lilv: the URI says enough
        return None


def _uri(session: Any, owner: str, index: int) -> str | None:
    """The URI of the effect at ``index`` of ``owner``'s chain in ``session`` (at -1, of
    the track's instrument)."""
    if index < 0:
        for track in getattr(session, "tracks", []):
            instrument = getattr(track, "instrument", None)
            if track.id == owner and instrument is not None:
                uri = instrument.params.get("uri")
                return str(uri) if uri else None
        return None
    chains = [*getattr(session, "tracks", []), *getattr(session, "buses", [])]
    master = getattr(session, "master", None)
    for holder in [*chains, *([master] if master is not None else [])]:
        if holder.id == owner and 0 <= index < len(holder.effects):
            uri = holder.effects[index].params.get("uri")
            return str(uri) if uri else None
    return None


class FaultLog:
    """The failed plug-ins of one engine, each with when it was first seen failed."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.failed: list[Fault] = []
        self.left_out: tuple[str, ...] = ()

    def see(self, errors: Iterable[Any], session: Any) -> bool:
        """Take the engine's ``plugin_errors()`` (``session``: what it plays); whether
        the list changed."""
        before = {(f.owner, f.effect, f.index): f for f in self.failed}
        now = time.time()
        failed = []
        for error in errors:
            old = before.get((error.owner, error.effect, error.index))
            if old is not None and old.message == error.message:
                failed.append(old)
                continue
            uri = _uri(session, error.owner, error.index)
            failed.append(Fault(FAILED, error.owner, error.effect, error.index, uri,
                                _plugin_name(uri), error.message, now, (self.engine,)))
        changed = failed != self.failed
        self.failed = failed
        return changed

    def see_left_out(self, reasons: Iterable[str]) -> bool:
        """Take ``ProjectDocument.bypassed`` after a ``to_session``; whether it changed."""
        reasons = tuple(reasons)
        changed, self.left_out = reasons != self.left_out, reasons
        return changed


def left_out(reasons: Iterable[str], since: dict[str, float]) -> list[Fault]:
    """``ProjectDocument.bypassed`` as faults (``since``: first seen, per reason, kept)."""
    faults = []
    now = time.time()
    for text in reasons:
        match = _LEFT_OUT.match(text)
        owner, effect, message = (match["owner"], match["effect"] or match["instrument"],
                                  match["message"]) if match else ("", "", text)
        faults.append(Fault(LEFT_OUT, owner, effect, None, None, None, message,
                            since.setdefault(text, now), ("document",)))
    return faults


def merged(faults: Iterable[Fault]) -> list[Fault]:
    """One entry per effect and reason: the engines that report it, the earliest time."""
    out: dict[tuple[str, str, str], Fault] = {}
    for fault in faults:
        seen = out.get(fault.key)
        if seen is None:
            out[fault.key] = fault
            continue
        engines = tuple(dict.fromkeys((*seen.engines, *fault.engines)))
        out[fault.key] = Fault(seen.reason, seen.owner, seen.effect, seen.index, seen.uri,
                               seen.name, seen.message, min(seen.since, fault.since), engines)
    return list(out.values())


def render_faults(errors: Iterable[Any], session: Any, reasons: Iterable[str] = (),
                  engine: str = "bounce") -> list[Fault]:
    """The bypassed ``lv2`` effects of one finished offline render (a bounce): the
    plug-ins that failed in it (``errors``: its ``plugin_errors``; ``session``: what it
    played), then the effects its document left out (``reasons``:
    ``ProjectDocument.bypassed``)."""
    failed = FaultLog(engine)
    failed.see(dict.fromkeys(errors), session)
    return [*failed.failed, *merged(left_out(reasons, {}))]


def describe(fault: Fault) -> str:
    """One line for a person: which plug-in, where, and why it plays bypassed."""
    plugin = fault.name or fault.uri or "lv2"
    where = ("the instrument" if fault.effect == "instrument"
             else f"effect {fault.effect or fault.index}")
    why = "failed" if fault.reason == FAILED else "was left out"
    return f"{plugin} ({where} of '{fault.owner}') {why}: {fault.message}"


class FaultHolder(Protocol):
    """What :class:`Lv2Faults` needs of an engine's holder (a project engine, a live mix)."""

    faults: FaultLog

    async def restart_plugins(self) -> int:
        """Restart the failed plug-ins; how many."""


class Lv2Faults:
    """Every project's bypassed ``lv2`` effects: gathered, restarted, told to its pages."""

    def __init__(self, rooms: Callable[[], RoomRegistry],
                 holders: Callable[[str], Iterable[FaultHolder]]) -> None:
        self._rooms = rooms
        self._holders = holders
        #: One awareness client per process; rooms reserve it (no peer may write it).
        self.client_id = server_client_id()
        self._clock = 0
        self._announced: set[str] = set()
        self._pending: dict[str, asyncio.Task[None]] = {}
        self._since: dict[str, dict[str, float]] = {}

    def failed(self, project_id: str) -> list[Fault]:
        """The failed plug-ins every running engine of the project reports."""
        return merged(f for h in self._holders(project_id) for f in h.faults.failed)

    async def report(self, project_id: str) -> list[Fault]:
        """Every bypassed ``lv2`` effect of the project: failed ones, then left-out ones
        (the loaded document read now). Raises ProjectNotFound."""
        async with self._rooms().use(project_id) as room:
            return self._report(project_id, room.document)

    def _report(self, project_id: str, document: Any) -> list[Fault]:
        """:meth:`report` of a loaded ``document`` (read now, on the event loop)."""
        try:
            document.to_session()
        except Exception as exc:  # noqa: BLE001 - a peer may write anything; keep the last
            log.warning("project %s: cannot read which lv2 effects the document leaves "
                        "out: %r", project_id, exc)
        reasons = list(document.bypassed)
        since = self._since.setdefault(project_id, {})
        for gone in set(since) - set(reasons):
            del since[gone]
        faults = [*self.failed(project_id), *merged(left_out(reasons, since))]
        if not since:
            del self._since[project_id]
        return faults

    async def restart(self, project_id: str) -> list[Fault]:
        """Restart the project's failed plug-ins in every engine; those restarted."""
        before = self.failed(project_id)
        restarted = 0
        for holder in list(self._holders(project_id)):
            restarted += await holder.restart_plugins()
        self.changed(project_id)
        return before if restarted else []

    # -- telling the pages ---------------------------------------------------------------

    def changed(self, project_id: str) -> None:
        """An engine's list changed: announce the project's list (soon, once)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a holder closed after the loop: nobody left to tell
            return
        task = self._pending.get(project_id)
        if task is None or task.done():
            self._pending[project_id] = loop.create_task(self._announce(project_id))

    async def _announce(self, project_id: str) -> None:
        await asyncio.sleep(0)  # several engines' changes in one turn: one message
        if self._pending.get(project_id) is asyncio.current_task():
            del self._pending[project_id]
        room = self._rooms().rooms.get(project_id)  # never loaded (held) just to tell it
        if room is None:
            self._announced.discard(project_id)
            return
        faults = self._report(project_id, room.document)
        if not faults and project_id not in self._announced:
            return
        self._clock += 1
        state = {AWARENESS_KEY: {"bypassed": [f.to_json() for f in faults]}} if faults else None
        room.announce(encode_awareness([AwarenessEntry(self.client_id, self._clock, state)]))
        (self._announced.add if faults else self._announced.discard)(project_id)

    async def renew(self) -> None:
        """Announce every held list again, every :data:`RENEW_SECONDS` (until cancelled)."""
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            for project_id in list(self._announced):
                try:
                    await self._announce(project_id)
                except Exception:  # one room's trouble must not stop the others' renewal
                    log.exception("project %s: cannot announce its bypassed plug-ins",
                                  project_id)


#: The server's :class:`Lv2Faults`.
LV2_FAULTS = web.AppKey("lv2_faults", Lv2Faults)


def setup_lv2_faults(app: web.Application,
                     holders: Callable[[str], Iterable[FaultHolder]]) -> Lv2Faults:
    """Add :class:`Lv2Faults` to ``app`` (``holders(project_id)``: the engines' holders)
    and the task that renews its announcements."""
    from .keys import ROOMS

    faults = app[LV2_FAULTS] = Lv2Faults(lambda: app[ROOMS], holders)

    async def renewing(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(faults.renew(), name="lv2 faults renewal")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(renewing)
    return faults
