"""The server-side engine that follows each project's live document.

A :class:`ProjectEngine` is attached to every loaded room.  It builds a
``dsp_core`` :class:`~dsp_core.engine.Engine` on the first render request
(loading audio is expensive, so only rendered projects pay for it) and from
then on applies every durable document change to it, debounced; a render
always applies pending changes first, so it reflects the newest document.
With a ``resolver`` (the server's :meth:`dawserver.clip_sources.Resolver.source`), every
session is first resolved to the project's own asset files, each source once for the
engine's life (:class:`dsp_core.sources.SourceAnswers`); clips naming anything else are
left out and listed in :attr:`ProjectEngine.refused`. Its ``lv2`` plug-ins that failed
(and the effects the document leaves out) are kept in :attr:`ProjectEngine.faults` and
reported through ``on_plugins`` when they change (:mod:`dawserver.lv2_faults`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import numpy as np

from collab.room import Room
from dsp_core.errors import DspError
from dsp_core.session import Session
from dsp_core.sources import Refusal, SourceAnswers

from .lv2_faults import FaultLog, PluginsChanged
from .metrics import RENDER_REALTIME_FACTOR

log = logging.getLogger(__name__)

EngineFactory = Callable[[Session], object]
#: ``await resolver(project_id, source)``: a source's local file (:class:`SourceRefused`).
SourceResolver = Callable[[str, str], Awaitable[str]]


def _default_factory(session: Session) -> object:
    from dsp_core.engine import Engine

    return Engine(session)


def _rate(engine: object) -> int:
    """The sample rate ``engine`` renders at (engines made by a test factory: 48 kHz)."""
    return int(getattr(engine, "sample_rate", 48000) or 48000)


class ProjectEngine:
    """One project's engine, kept in step with its room's document."""

    def __init__(self, room: Room, *, debounce: float = 0.05,
                 factory: EngineFactory = _default_factory,
                 resolver: SourceResolver | None = None,
                 on_plugins: PluginsChanged | None = None) -> None:
        self.room = room
        self.faults = FaultLog("render")
        self._on_plugins = on_plugins
        self.resolver = resolver
        self._sources = None if resolver is None else SourceAnswers(
            lambda source: resolver(room.project_id, source))
        self.debounce = debounce
        self._factory = factory
        self._engine: object | None = None
        self._dirty = False
        self._lock = asyncio.Lock()
        self._pending: asyncio.Task[None] | None = None
        self.applied = 0
        room.on_change(self._changed)

    @property
    def started(self) -> bool:
        """Whether the engine has been built (a render was asked for)."""
        return self._engine is not None

    def _changed(self, room: Room) -> None:
        self._dirty = True
        if self._engine is not None and (self._pending is None or self._pending.done()):
            self._pending = asyncio.get_running_loop().create_task(self._apply_later())

    async def _apply_later(self) -> None:
        await asyncio.sleep(self.debounce)
        async with self._lock:
            await self._apply_pending()

    @property
    def refused(self) -> list[Refusal]:
        """What the last session built or applied left out (refused sources)."""
        return [] if self._sources is None else self._sources.refused

    async def _session(self) -> Session:
        """The document's session, resolved to playable files when there is a resolver."""
        session = self.room.document.to_session()
        if self.faults.see_left_out(self.room.document.bypassed):
            self._plugins_changed()
        if self._sources is None:
            return session
        await self._sources.learn(session)
        playable = self._sources.playable(session)
        for refusal in self._sources.refused:
            log.warning("project %s: not played: %s", self.room.project_id, refusal)
        return playable

    async def _apply_pending(self) -> None:
        if not self._dirty or self._engine is None:
            return
        self._dirty = False
        try:
            session = await self._session()
        except Exception as exc:  # noqa: BLE001 - a peer may write anything; play on
            log.warning("project %s: engine keeps the previous state: the document could "
                        "not be read or resolved: %r", self.room.project_id, exc)
            return
        try:
            await asyncio.to_thread(self._engine.apply, session)
            self.applied += 1
        except DspError as exc:
            log.warning("project %s: engine keeps the previous state: %s",
                        self.room.project_id, exc)

    async def render(self, start: int, frames: int) -> np.ndarray:
        """Render ``frames`` frames from ``start`` with every change so far applied."""
        async with self._lock:
            if self._engine is None:
                self._dirty = False
                session = await self._session()
                self._engine = await asyncio.to_thread(self._factory, session)
            else:
                await self._apply_pending()
            engine = self._engine
            started = time.perf_counter()
            out = await asyncio.to_thread(engine.render, start, frames)
            took = time.perf_counter() - started
            if took > 0:
                RENDER_REALTIME_FACTOR.labels(kind="render").observe(
                    frames / _rate(engine) / took)
            self._see_plugins(engine)
            return out

    def _plugins_changed(self) -> None:
        if self._on_plugins is not None:
            self._on_plugins(self.room.project_id)

    def _see_plugins(self, engine: object) -> None:
        """Note the engine's failed plug-ins (called with the lock held: no render runs)."""
        errors = getattr(engine, "plugin_errors", None)
        if errors is not None and self.faults.see(errors(), getattr(engine, "session", None)):
            self._plugins_changed()

    async def restart_plugins(self) -> int:
        """Start fresh workers for the engine's failed plug-ins; how many."""
        async with self._lock:
            engine = self._engine
            restart = getattr(engine, "restart_plugins", None)
            if restart is None:
                return 0
            count = await asyncio.to_thread(restart)
            self._see_plugins(engine)
            return int(count)

    def close(self) -> None:
        """Drop the engine and cancel pending work."""
        if self._pending is not None:
            self._pending.cancel()
        engine, self._engine = self._engine, None
        close = getattr(engine, "close", None)
        if close is not None:  # stops its lv2 workers now, not at garbage collection
            close()
        if self.faults.failed:
            self.faults.failed = []
            self._plugins_changed()


class ProjectEngines:
    """The engines of every loaded room."""

    def __init__(self, *, debounce: float = 0.05, factory: EngineFactory = _default_factory,
                 enabled: bool = True, resolver: SourceResolver | None = None,
                 on_plugins: PluginsChanged | None = None) -> None:
        self.debounce = debounce
        self.on_plugins = on_plugins
        self.resolver = resolver
        self.factory = factory
        self.enabled = enabled
        self.engines: dict[str, ProjectEngine] = {}

    def attach(self, room: Room) -> None:
        """Registry hook: follow a freshly loaded room."""
        if self.enabled:
            self.engines[room.project_id] = ProjectEngine(room, debounce=self.debounce,
                                                          factory=self.factory,
                                                          resolver=self.resolver,
                                                          on_plugins=self.on_plugins)

    def detach(self, room: Room) -> None:
        """Registry hook: forget the engine of an unloaded room."""
        engine = self.engines.get(room.project_id)
        if engine is not None and engine.room is room:
            engine.close()
            del self.engines[room.project_id]

    def get(self, project_id: str) -> ProjectEngine:
        """The engine of a loaded project (the room must be held loaded by the caller)."""
        engine = self.engines.get(project_id)
        if engine is None:
            raise DspError(f"project {project_id!r} is not loaded or its engine is disabled")
        return engine
