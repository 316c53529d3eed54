"""The live mix: one real-time render per project, fanned out to every listener.

A :class:`LiveMix` owns a ``dsp_core`` engine and a render thread.  Every
20 ms (one Opus frame) the thread renders the next frames at the playhead,
following the shared transport and the newest document (fader moves glide
through :meth:`dsp_core.engine.Engine.apply`), and hands the frame to the
event loop, which pushes it onto each listener's small queue.  A listener
that falls behind loses its oldest frames; nobody else waits for it.  The
render never runs on the event loop and never once per listener.  A queue
holds up to 16 frames (320 ms): a backlog after an event-loop stall is sent
as fast as the encoder goes (nothing else paces a listener's track), so it
does not stay as latency; only a listener stalled for longer loses frames.

:class:`LiveMixes` starts a project's mix with its first listener (holding
the room loaded) and stops it after the last one leaves.

With a ``resolver`` (the server's :meth:`dawserver.clip_sources.Resolver.source`) the mix
plays only what it resolves: clip sources and convolution ``ir``s become the project's own
asset files, and a clip naming anything else is left out, logged and listed in
:attr:`LiveMix.refused`.  Answers are kept per source, so a rebuild whose sources are all
known resolves at once; a new source is resolved (fetched) first, then the session applied.

The render thread looks at the engine's failed ``lv2`` plug-ins after every frame; a change
is kept in :attr:`LiveMix.faults` and reported through ``on_plugins`` on the event loop
(:mod:`dawserver.lv2_faults` tells the project's pages). A restart is done by the render
thread between two frames (:meth:`LiveMix.restart_plugins`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import logging
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

import numpy as np

from collab.changes import Change, DocumentWatch, TrackFieldsChanged, TransportChanged
from collab.registry import RoomRegistry
from collab.room import Room
from dsp_core.errors import DspError
from dsp_core.immersive_live import MONITORS
from dsp_core.playhead import Playhead
from dsp_core.session import Session
from dsp_core.sources import Refusal, SourceAnswers

from .lv2_faults import FaultLog, PluginsChanged
from .metrics import AUDIO_FRAME_SECONDS
from .opus import OpusEncoder
from .stretch_renders import StoreOf, StretchRenders

log = logging.getLogger(__name__)

RATE = 48000
FRAME = 960  # 20 ms: one Opus packet
FULL_REFRESH_SECONDS = 0.1
#: Track fields applied straight to the live session (no full rebuild), with their type.
MIX_FIELDS: dict[str, type] = {"gain_db": float, "pan": float, "mute": bool, "solo": bool}
#: Track fields that do not change the mix.
SILENT_FIELDS = {"arm", "name", "colour", "order"}
EngineFactory = Callable[[Session, int], object]
#: ``await resolver(project_id, source)``: a source's local file (:class:`SourceRefused`).
SourceResolver = Callable[[str, str], Awaitable[str]]


def _default_engine(session: Session, sample_rate: int) -> object:
    from dsp_core.engine import Engine

    return Engine(session, sample_rate=sample_rate)


#: The plain stereo mix; the other monitors play the immersive mix (docs/immersive.md).
STEREO_MIX = "mix"


def _monitor_engine(monitor: str) -> EngineFactory:
    """The engine factory of an immersive monitor (``binaural``, ``stereo``)."""
    from dsp_core.immersive_live import ImmersiveLiveEngine

    return lambda session, rate: ImmersiveLiveEngine(session, rate, monitor=monitor)


def mix_key(project_id: str, monitor: str = STEREO_MIX) -> str:
    """Which running mix serves ``monitor``: the project's id for the plain mix."""
    return project_id if monitor == STEREO_MIX else f"{project_id}#{monitor}"


@dataclass(frozen=True)
class MixFrame:
    """One rendered frame: int16 stereo (and its Opus packet), where it sits, when made."""

    index: int
    pcm: np.ndarray
    timeline: int | None
    made_at: float
    opus: bytes | None = None


class Listener:
    """One listener's queue of mix frames (drops the oldest when it falls behind)."""

    def __init__(self, capacity: int) -> None:
        self.frames: deque[MixFrame] = deque(maxlen=capacity)
        self.dropped = 0
        self._ready = asyncio.Event()
        self.closed = False

    def push(self, frame: MixFrame) -> None:
        """Queue ``frame`` (called on the event loop)."""
        if len(self.frames) == self.frames.maxlen:
            self.dropped += 1
        self.frames.append(frame)
        self._ready.set()

    async def get(self) -> MixFrame:
        """The next frame, waiting for the render when none is queued."""
        while not self.frames:
            if self.closed:
                raise ConnectionError("the live mix has stopped")
            self._ready.clear()
            await self._ready.wait()
        return self.frames.popleft()

    def close(self) -> None:
        """Wake a waiting :meth:`get` with an error."""
        self.closed = True
        self._ready.set()


class LiveMix:
    """The real-time render of one room (an async context manager)."""

    def __init__(self, room: Room, *, sample_rate: int = RATE, frame: int = FRAME,
                 queue_frames: int = 16, factory: EngineFactory = _default_engine,
                 encode: bool = True, resolver: SourceResolver | None = None,
                 stores: StoreOf | None = None, monitor: str = STEREO_MIX,
                 on_plugins: PluginsChanged | None = None) -> None:
        self.room = room
        self.faults = FaultLog("live mix" if monitor == STEREO_MIX else f"live mix ({monitor})")
        self._on_plugins = on_plugins
        self._errors_seen: tuple = ()
        self._restart: concurrent.futures.Future[int] | None = None
        self.resolver = resolver
        self._sources = None if resolver is None else SourceAnswers(
            lambda source: resolver(room.project_id, source))
        self._learning: asyncio.Task[None] | None = None
        self.sample_rate = sample_rate
        #: stretched clips: silent until rendered (dawserver/stretch_renders.py)
        self.stretches = StretchRenders(room, sample_rate, self._schedule_full_refresh,
                                        stores=stores)
        self.frame = frame
        self.queue_frames = queue_frames
        self.listeners: set[Listener] = set()
        self.taps: list[Callable[[MixFrame], None]] = []
        self.frames_made = 0
        self.render_seconds = 0.0
        self.last_frame: MixFrame | None = None
        self.playhead = Playhead(sample_rate, sample_rate)
        self._factory = factory
        self._opus = OpusEncoder() if encode and (sample_rate, frame) == (RATE, FRAME) else None
        self._engine: object | None = None
        self._pending: Session | None = None
        self._transport: dict | None = None
        self._session: Session | None = None
        self._watch: DocumentWatch | None = None
        self._transport_dirty = False
        self._full_dirty = False
        self._patches: dict[tuple[str, str], object] = {}
        self._full_handle: asyncio.TimerHandle | None = None
        self._last_full = float("-inf")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False

    async def __aenter__(self) -> LiveMix:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Build the engine (in an executor) and start the render thread."""
        if self._started:
            raise DspError("live mix is already started")
        self._started = True
        self._loop = asyncio.get_running_loop()
        session = self.room.document.to_session()
        self._see_left_out()
        await self._learn(session)
        session = self._playable(session)
        self._session = session
        self.playhead = Playhead(session.sample_rate, self.sample_rate)
        self._engine = await asyncio.to_thread(self._factory, session, self.sample_rate)
        self._transport = self.room.document.transport()
        self._watch = self.room.document.watch(self._on_changes)
        # in this task's context: a server's confinement of plug-in states holds there
        self._thread = threading.Thread(target=contextvars.copy_context().run,
                                        args=(self._run,),
                                        name=f"live mix {self.room.project_id}", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Stop the render thread and close every listener."""
        if not self._started:
            return
        self._started = False
        self._stop.set()
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        if self._full_handle is not None:
            self._full_handle.cancel()
        if self._learning is not None:
            self._learning.cancel()
        await self.stretches.close()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        close = getattr(self._engine, "close", None)
        if close is not None:  # stops its lv2 workers now, not at garbage collection
            close()
        if self._restart is not None and not self._restart.done():
            self._restart.set_result(0)
        if self.faults.failed:
            self.faults.failed = []
            self._plugins_changed()
        for listener in list(self.listeners):
            listener.close()
        self.listeners.clear()

    # -- listeners and the document --------------------------------------------------------

    def add_listener(self) -> Listener:
        """A new listener queue that receives every frame from now on."""
        listener = Listener(self.queue_frames)
        self.listeners.add(listener)
        return listener

    def remove_listener(self, listener: Listener) -> None:
        """Stop feeding ``listener``."""
        self.listeners.discard(listener)
        listener.close()

    def document_changed(self) -> None:
        """Hand what the last batch changed to the render thread (called on the loop).

        Transport changes and track fader/pan/mute/solo moves are cheap and go at
        once; anything else (clips, effects, buses, tracks added, the transport's
        ``chase_notes``, which the engine reads from the session) rebuilds the
        session from the document, at most every ``FULL_REFRESH_SECONDS`` (or twice
        the last rebuild's time), because that conversion is slow on big projects
        and runs on the event loop.
        """
        if self._transport_dirty:
            self._transport_dirty = False
            transport = self.room.document.transport()
            with self._lock:
                self._transport = transport
        if self._full_dirty:
            self._schedule_full_refresh()
        if self._patches:
            patches, self._patches = self._patches, {}
            self._apply_patches(patches)

    def _on_changes(self, changes: list[Change]) -> None:
        """Note what a transaction changed; :meth:`document_changed` hands it over."""
        for change in changes:
            if isinstance(change, TransportChanged):
                self._transport_dirty = True
                if "chase_notes" in change.fields:  # the engine reads it from the session
                    self._full_dirty = True
            elif isinstance(change, TrackFieldsChanged) and \
                    change.fields.keys() <= MIX_FIELDS.keys() | SILENT_FIELDS:
                for name, value in change.fields.items():
                    if name in MIX_FIELDS:
                        self._patches[(change.track_id, name)] = value
            else:
                self._full_dirty = True

    def _apply_patches(self, patches: dict[tuple[str, str], object]) -> None:
        tracks = list(self._session.tracks)
        where = {track.id: i for i, track in enumerate(tracks)}
        for (track_id, name), value in patches.items():
            i = where.get(track_id)
            if i is None or value is None:
                self._schedule_full_refresh()
                continue
            tracks[i] = replace(tracks[i], **{name: MIX_FIELDS[name](value)})
        self._session = replace(self._session, tracks=tracks)
        with self._lock:
            self._pending = self._session

    def _schedule_full_refresh(self) -> None:
        self._full_dirty = False
        if self._full_handle is not None or self._loop is None:
            return
        delay = max(0.0, self._last_full + FULL_REFRESH_SECONDS - self._loop.time())
        self._full_handle = self._loop.call_later(delay, self._full_refresh)

    def _full_refresh(self) -> None:
        self._full_handle = None
        if not self._started:
            return
        assert self._loop is not None
        started = time.perf_counter()
        session = self.room.document.to_session()
        self._see_left_out()
        if self._sources is not None and self._sources.unknown(session):
            if self._learning is None or self._learning.done():  # fetch, then rebuild
                self._learning = self._loop.create_task(self._learn_then_refresh(session))
            return
        self._session = self._playable(session)
        took = time.perf_counter() - started
        # the next rebuild waits at least twice as long as this one took (big projects)
        self._last_full = self._loop.time() + max(0.0, 2 * took - FULL_REFRESH_SECONDS)
        with self._lock:
            self._pending = self._session

    # -- lv2 plug-ins that failed -----------------------------------------------------------

    def _plugins_changed(self) -> None:
        if self._on_plugins is not None:
            self._on_plugins(self.room.project_id)

    def _see_left_out(self) -> None:
        if self.faults.see_left_out(self.room.document.bypassed):
            self._plugins_changed()

    def _see_plugins(self) -> None:
        """In the render thread: hand a change of the engine's failed plug-ins to the loop."""
        errors = getattr(self._engine, "plugin_errors", None)
        if errors is None:
            return
        now = tuple(errors())
        if now == self._errors_seen:
            return
        self._errors_seen = now
        session = getattr(self._engine, "session", None)
        assert self._loop is not None
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.call_soon_threadsafe(self._failed, now, session)

    def _failed(self, errors: tuple, session: Session | None) -> None:
        if self._started and self.faults.see(errors, session):
            self._plugins_changed()

    async def restart_plugins(self) -> int:
        """Start fresh workers for the failed plug-ins (in the render thread, between two
        frames: the worker's start-up holds that frame back); how many."""
        if not self._started or getattr(self._engine, "restart_plugins", None) is None:
            return 0
        future: concurrent.futures.Future[int] = concurrent.futures.Future()
        with self._lock:
            if self._restart is not None and not self._restart.done():
                future = self._restart  # one already asked for: the same answer
            else:
                self._restart = future
        return await asyncio.wrap_future(future)

    @property
    def plugin_latency(self) -> int:
        """Frames of plug-in latency the engine compensates (0 without latency-adding
        processors).  The engine renders that far ahead of the playhead, reading the
        clips early, so the sent mix still lines up with :meth:`timeline_now`."""
        return int(getattr(self._engine, "latency", 0))

    # -- sources ---------------------------------------------------------------------------

    @property
    def refused(self) -> list[Refusal]:
        """What the session now playing leaves out (sources the resolver refused)."""
        return [] if self._sources is None else self._sources.refused

    async def _learn(self, session: Session) -> None:
        """Resolve the sources of ``session`` not resolved yet (nothing without a resolver)."""
        if self._sources is not None:
            await self._sources.learn(session)

    async def _learn_then_refresh(self, session: Session) -> None:
        try:
            await self._learn(session)
        except Exception:  # the object store is down: keep playing, try on the next change
            log.exception("project %s: live mix cannot resolve its sources",
                          self.room.project_id)
            return
        self._schedule_full_refresh()

    def _playable(self, session: Session) -> Session:
        """``session`` with resolved sources; refused ones left out and reported;
        stretched clips whose render is not ready left out while it renders."""
        if self._sources is None:
            return self.stretches.playable(session)
        before = self._sources.refused
        playable = self._sources.playable(session)
        if self._sources.refused != before:
            for refusal in self._sources.refused:
                log.warning("project %s: live mix leaves out %s", self.room.project_id,
                            refusal)
        return self.stretches.playable(playable)

    def timeline_now(self, now: float | None = None) -> int | None:
        """Where the sent audio is at ``now`` (``time.monotonic()``), in project frames.

        The start of the frame sent last plus the time since it was sent (at most
        one frame), so a take is placed within a millisecond or so, not up to
        one 20 ms frame late; None while stopped.
        """
        head, last = self.playhead, self.last_frame
        if not head.playing:
            return None
        if last is None or last.timeline is None:  # the first playing frame is being made
            return head.to_session(head.position)
        now = time.monotonic() if now is None else now
        elapsed = min(self.frame, max(0, round((now - last.made_at) * self.sample_rate)))
        return head.to_session(last.timeline + elapsed)

    # -- the render thread -----------------------------------------------------------------

    def _run(self) -> None:
        period = self.frame / self.sample_rate
        deadline = time.monotonic()
        out = np.zeros((2, self.frame), dtype=np.float32)
        while not self._stop.is_set():
            with self._lock:
                session, self._pending = self._pending, None
                transport, self._transport = self._transport, None
                restart, self._restart = self._restart, None
            started = time.perf_counter()
            if session is not None:
                try:
                    self._engine.apply(session)
                except DspError as exc:
                    log.warning("project %s: live mix keeps the previous state: %s",
                                self.room.project_id, exc)
            if transport is not None:
                self.playhead.follow(transport)
            if restart is not None and not restart.done():
                try:
                    restart.set_result(int(self._engine.restart_plugins()))
                except Exception as exc:  # noqa: BLE001 - answered to whoever asked
                    restart.set_exception(exc)
            frame = self._render(out)
            self._see_plugins()
            took = time.perf_counter() - started
            self.render_seconds += took
            AUDIO_FRAME_SECONDS.observe(took)
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(self._deliver, frame)
            except RuntimeError:
                return
            deadline += period
            delay = deadline - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
            elif delay < -0.2:
                log.info("project %s: live mix is %.0f ms late; skipping ahead",
                         self.room.project_id, -delay * 1000)
                deadline = time.monotonic()

    def _render(self, out: np.ndarray) -> MixFrame:
        spans = self.playhead.advance(self.frame)
        timeline = spans[0][1] if spans else None
        out[:] = 0.0
        for offset, start, count in spans:
            try:
                out[:, offset:offset + count] = self._engine.render(start, count)
            except DspError as exc:
                log.warning("project %s: live render failed: %s", self.room.project_id, exc)
        pcm = (np.clip(out.T, -1.0, 1.0) * 32767.0).astype(np.int16)
        opus = None if self._opus is None else self._opus.encode(pcm, self.frames_made)
        frame = MixFrame(self.frames_made, pcm, timeline, time.monotonic(), opus)
        self.frames_made += 1
        self.last_frame = frame
        return frame

    def _deliver(self, frame: MixFrame) -> None:
        for listener in self.listeners:
            listener.push(frame)
        for tap in self.taps:
            tap(frame)


class LiveMixes:
    """The live mixes of a server: started by the first listener, stopped after the last."""

    def __init__(self, rooms: RoomRegistry, *, factory: EngineFactory = _default_engine,
                 queue_frames: int = 16, resolver: SourceResolver | None = None,
                 stores: StoreOf | None = None,
                 on_plugins: PluginsChanged | None = None) -> None:
        self.rooms = rooms
        self.on_plugins = on_plugins
        self.resolver = resolver
        self.stores = stores
        self.factory = factory
        self.queue_frames = queue_frames
        self.mixes: dict[str, LiveMix] = {}
        self._holds: dict[str, contextlib.AsyncExitStack] = {}
        self._users: dict[str, int] = {}
        self._watched: weakref.WeakSet[Room] = weakref.WeakSet()
        self._lock = asyncio.Lock()

    async def acquire(self, project_id: str, monitor: str = STEREO_MIX) -> LiveMix:
        """The running mix of ``project_id`` (started if needed); pair with :meth:`release`.

        ``monitor``: the plain stereo mix (:data:`STEREO_MIX`), or the immersive mix for
        headphones (``binaural``) or folded to ``stereo``; each is one render shared by
        its listeners."""
        if monitor != STEREO_MIX and monitor not in MONITORS:
            raise ValueError(f"monitor {monitor!r} is not one of {STEREO_MIX}, "
                             f"{', '.join(MONITORS)}")
        key = mix_key(project_id, monitor)
        async with self._lock:
            mix = self.mixes.get(key)
            if mix is None:
                stack = contextlib.AsyncExitStack()
                factory = self.factory if monitor == STEREO_MIX else _monitor_engine(monitor)
                try:
                    room = await stack.enter_async_context(self.rooms.use(project_id))
                    mix = LiveMix(room, factory=factory, queue_frames=self.queue_frames,
                                  resolver=self.resolver, stores=self.stores,
                                  monitor=monitor, on_plugins=self.on_plugins)
                    await mix.start()
                except BaseException:
                    await stack.aclose()
                    raise
                stack.push_async_callback(mix.stop)
                if room not in self._watched:
                    self._watched.add(room)
                    room.on_change(self._room_changed)
                self.mixes[key], self._holds[key] = mix, stack
            self._users[key] = self._users.get(key, 0) + 1
            return mix

    async def release(self, project_id: str, monitor: str = STEREO_MIX) -> None:
        """One user of the mix is gone; the last one stops it."""
        await self._release(mix_key(project_id, monitor))

    async def _release(self, project_id: str) -> None:
        async with self._lock:
            count = self._users.get(project_id, 0) - 1
            if count > 0:
                self._users[project_id] = count
                return
            self._users.pop(project_id, None)
            self.mixes.pop(project_id, None)
            stack = self._holds.pop(project_id, None)
        if stack is not None:
            await stack.aclose()

    async def close(self) -> None:
        """Stop every mix."""
        for project_id in list(self.mixes):
            self._users[project_id] = 1
            await self._release(project_id)

    def of(self, project_id: str) -> list[LiveMix]:
        """The running mixes of ``project_id`` (its stereo mix and immersive monitors)."""
        return [mix for mix in self.mixes.values() if mix.room.project_id == project_id]

    def _room_changed(self, room: Room) -> None:
        for mix in list(self.mixes.values()):
            if mix.room is room:
                mix.document_changed()
