"""Stretched clips in the live mix: rendered ahead, off the event loop, shown as jobs.

A clip with a stretch, a pitch shift, warp markers or ``follow_tempo`` plays a Rubber
Band render of its source (:mod:`dsp_core.stretch`). The live mix never renders one in
its audio thread: until its render is in :data:`dsp_core.stretch.CACHE` the clip is
**silent** (left out of the session the engine plays), a worker thread renders it, the
document's ``jobs`` map shows a ``stretch`` job for the clip (status ``running`` with
``progress``, then ``done`` or ``failed``; the page draws the clip "rendering"), and the
live mix rebuilds with the clip in. Bounces and ``dawserver render`` find the same
renders the same way (:mod:`dawserver.clip_renders`) before they build their engine.

Given its project's asset store (``stores``), a render is also kept as derived audio
beside the assets (:mod:`dawserver.derived_audio`): a restart or another node loads it
instead of rendering again, and once every stretched clip of the project is ready the
renders its clips no longer play are pruned (deleted when no project uses them).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from collab.room import Room
from dsp_core.audio_io import load_source
from dsp_core.session import Clip, Session
from dsp_core.stretch import CACHE, StretchError

from . import clip_renders, derived_audio
from .asset_store import AssetStore
from .loop_slots import LoopSlots
from .storage import StorageError

log = logging.getLogger(__name__)
JOB_KIND = "stretch"
Loader = Callable[[str, int], Any]
#: The asset store of a project's data region (where its derived audio is kept).
StoreOf = Callable[[str], Awaitable[AssetStore]]


def render_id(clip: Clip, session: Session, sample_rate: int) -> str:
    """What decides a clip's render, hashed: source, rate, time keys, and for a clip that
    follows the tempo its place and the tempo map."""
    parts: list[object] = [clip.source, sample_rate, clip.stretch, clip.semitones,
                           [list(m) for m in clip.warp], clip.follow_tempo, clip.source_bpm,
                           session.sample_rate, clip.offset]
    if clip.follow_tempo or clip.warp:
        parts += [clip.position, session.tempo.to_dict() if clip.follow_tempo else None]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


#: Renders (Rubber Band runs) at once per event loop, across its live mixes.
CONCURRENT_RENDERS = 2
_render_slots = LoopSlots(CONCURRENT_RENDERS)


class StretchRenders:
    """The renders one live mix waits for; ``on_ready`` is called (on the loop) when one
    lands, so the mix rebuilds with it."""

    def __init__(self, room: Room, sample_rate: int, on_ready: Callable[[], None],
                 load: Loader = load_source, stores: StoreOf | None = None) -> None:
        self.room = room
        self.sample_rate = sample_rate
        self.on_ready = on_ready
        self.load = load
        self.stores = stores
        self._keys: dict[str, str] = {}  # render id -> its StretchSpec key in CACHE
        self._derived: dict[str, str] = {}  # render id -> its derived key
        self._pruned: frozenset[str] | None = None  # the derived keys last pruned to
        self._pruning: asyncio.Task[None] | None = None
        self._running: dict[str, asyncio.Task[None]] = {}
        self._pinned: set[str] = set()  # CACHE keys this mix holds (pinned) while it plays
        self.failed: dict[str, str] = {}  # render id -> why
        self._plain: set[str] = set()  # render ids whose clip plays its source unchanged

    def ready(self, clip: Clip, session: Session) -> bool:
        """Whether ``clip``'s render is cached (a plain clip always is)."""
        if not clip.is_stretched:
            return True
        rid = render_id(clip, session, self.sample_rate)
        if rid in self._plain:
            return True
        key = self._keys.get(rid)
        return key is not None and CACHE.get(key) is not None

    def playable(self, session: Session) -> Session:
        """``session`` without the stretched clips whose render is not ready; starts
        rendering them (call on the event loop)."""
        tracks = []
        all_ready = True
        for track in session.tracks:
            waiting = [c for c in track.clips if not self.ready(c, session)]
            for clip in waiting:
                self._start(clip, session)
            if waiting:
                all_ready = False
                track = replace(track, clips=[c for c in track.clips if c not in waiting])
            tracks.append(track)
        if all_ready:
            self._release_unused(session)
            self._prune_to(session)
        return replace(session, tracks=tracks)

    def _release_unused(self, session: Session) -> None:
        """Unpin the renders no clip plays any more (a moved follow-tempo clip's old one)."""
        in_use = {self._keys.get(render_id(c, session, self.sample_rate))
                  for track in session.tracks for c in track.clips if c.is_stretched}
        for key in self._pinned - in_use:
            CACHE.unpin(key)
        self._pinned &= in_use

    def _prune_to(self, session: Session) -> None:
        """Prune the project's derived audio to what its stretched clips play now."""
        if self.stores is None:
            return
        rids = [rid for track in session.tracks for c in track.clips if c.is_stretched
                and (rid := render_id(c, session, self.sample_rate)) not in self._plain]
        if any(rid not in self._derived for rid in rids):
            return  # a render this mix did not make (e.g. a bounce's): keys unknown
        in_use = frozenset(self._derived[rid] for rid in rids)
        if in_use == self._pruned or (self._pruning and not self._pruning.done()):
            return
        self._pruned = in_use
        self._pruning = asyncio.get_running_loop().create_task(self._prune(in_use))

    async def _prune(self, in_use: frozenset[str]) -> None:
        assert self.stores is not None
        try:
            store = await self.stores(self.room.project_id)
            await derived_audio.prune(store, self.room.project_id, in_use)
        except (StorageError, OSError) as exc:  # try again on a later change
            self._pruned = None
            log.warning("project %s: derived renders not pruned: %s",
                        self.room.project_id, exc)

    async def close(self) -> None:
        """Cancel the renders still running."""
        tasks = list(self._running.values())
        if self._pruning is not None:
            tasks.append(self._pruning)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # closing anyway
                await task
        self._running.clear()
        for key in self._pinned:
            CACHE.unpin(key)
        self._pinned.clear()

    def _start(self, clip: Clip, session: Session) -> None:
        rid = render_id(clip, session, self.sample_rate)
        if rid in self._running or rid in self.failed:
            return
        self._running[rid] = asyncio.get_running_loop().create_task(
            self._render(rid, clip, session))

    async def _render(self, rid: str, clip: Clip, session: Session) -> None:
        job_id = f"stretch-{clip.id or rid[:12]}"
        await self._job(job_id, clip, status="running", progress=0.0, error="")
        try:
            async with _render_slots():  # a clip dragged about starts a render per place
                found = await self._obtain(rid, clip, session)
        except (StretchError, OSError, ValueError) as exc:
            self.failed[rid] = str(exc)
            log.warning("project %s: clip %r cannot be stretched: %s",
                        self.room.project_id, clip.id, exc)
            await self._job(job_id, clip, status="failed", progress=1.0, error=str(exc))
            return
        finally:
            self._running.pop(rid, None)
        if found is None:  # its time keys leave the source as it is
            self._plain.add(rid)
            await self._job(job_id, clip, status="done", progress=1.0, error="")
            self.on_ready()
            return
        key, audio = found
        self._keys[rid] = key
        if key not in self._pinned:  # held while this mix may play it
            CACHE.pin(key, audio)
            self._pinned.add(key)
        await self._job(job_id, clip, status="done", progress=1.0, error="")
        self.on_ready()

    async def _obtain(self, rid: str, clip: Clip, session: Session
                      ) -> tuple[str, Any] | None:
        """One clip's render into the cache, found the way a bounce finds it
        (:func:`dawserver.clip_renders.obtain`); None when the clip plays its source as
        it is."""
        render = await clip_renders.obtain(clip, session, self.sample_rate,
                                           store=await self._store(),
                                           project_id=self.room.project_id, load=self.load)
        if render is None:
            return None
        self._derived[rid] = render.derived
        return render.key, render.audio

    async def _store(self) -> AssetStore | None:
        if self.stores is None:
            return None
        try:
            return await self.stores(self.room.project_id)
        except (StorageError, LookupError) as exc:
            log.warning("project %s: no asset store for derived renders: %s",
                        self.room.project_id, exc)
            return None

    async def _job(self, job_id: str, clip: Clip, **state: Any) -> None:
        try:
            await self.room.edit(lambda document: document.set_job(
                job_id, kind=JOB_KIND, clip=clip.id, **state))
        except Exception:  # the room is closing: the render still counts
            log.debug("project %s: stretch job %s not shown", self.room.project_id, job_id)
