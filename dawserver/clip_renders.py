"""Stretched clips' renders made ready before an offline render (a bounce, ``dawserver
render``), so it plays exactly what the live mix plays.

A clip with a stretch, a pitch shift, warp markers or ``follow_tempo`` plays a Rubber
Band render of its source (:mod:`dsp_core.stretch`); the engine finds it in
:data:`dsp_core.stretch.CACHE` under :meth:`~dsp_core.stretch.StretchSpec.key` and
renders it itself on a miss. :func:`obtain` finds one clip's render the way the live mix
does (:mod:`dawserver.stretch_renders`), with the same keys: in memory, else the derived
audio kept beside the assets (:mod:`dawserver.derived_audio`), else rendered now (off
the event loop) and kept there, so a render made for the live mix is reused by a bounce
and the other way round. :func:`prepare` does it for every stretched clip of a session
and holds the renders (pinned in the cache) until the offline engine has been built, so
the engine never renders one again, and an error (no Rubber Band, a source that is not
audio) names the clip instead of rendering it unstretched.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from dsp_core import stretch
from dsp_core.audio_io import load_source
from dsp_core.errors import DspError
from dsp_core.graph import clip_stretch
from dsp_core.session import Clip, Session
from dsp_core.sources import asset_id_of
from dsp_core.stretch import CACHE, StretchError

from . import derived_audio
from .asset_store import AssetStore
from .storage import StorageError

log = logging.getLogger(__name__)
#: ``load(source, sample_rate)``: a source's planar float32 audio at the render rate.
Loader = Callable[[str, int], np.ndarray]
#: Where a render came from: the process's cache, the kept derived audio, Rubber Band.
Found = Literal["memory", "derived", "rendered"]


@dataclass(frozen=True)
class ClipRender:
    """One stretched clip's render: its cache key, its derived key, the audio (channels ×
    frames at the render rate) and where it was found."""

    clip: str
    key: str
    derived: str
    audio: np.ndarray
    found: Found


async def obtain(clip: Clip, session: Session, sample_rate: int, *,
                 store: AssetStore | None = None, project_id: str = "",
                 load: Loader = load_source) -> ClipRender | None:
    """``clip``'s render at ``sample_rate`` (None when its time keys leave the source as it
    is): from :data:`~dsp_core.stretch.CACHE`, else ``store``'s derived audio (recorded
    as used by ``project_id``), else rendered with Rubber Band and kept in ``store``.

    Only a source that names an asset (its content) is kept in or read from ``store``:
    a local path's file may change under the same name. A storage failure costs only the
    reuse. Raises :class:`~dsp_core.stretch.StretchError` naming the clip when its source
    cannot be read or stretched.
    """
    where = f"clip {clip.id!r}"
    try:
        audio = await asyncio.to_thread(load, clip.source, sample_rate)
        spec, _ = clip_stretch(clip, session, sample_rate, audio.shape[1])
        if spec.is_identity:
            return None
        spec.validate(where)
    except DspError as exc:
        raise StretchError(f"{where} cannot be stretched: {exc}") from exc
    key = spec.key(clip.source, sample_rate)
    derived = derived_audio.derived_key(clip.source, spec, sample_rate)
    if asset_id_of(clip.source) is None:
        store = None
    cached = CACHE.get(key)
    if cached is not None:
        if store is not None:
            await _kept(derived_audio.use(store, project_id, derived), project_id)
        return ClipRender(clip.id, key, derived, cached, "memory")
    if store is not None:
        kept = await _kept(derived_audio.load(store, project_id, derived), project_id)
        if kept is not None:
            CACHE.put(key, kept)
            return ClipRender(clip.id, key, derived, kept, "derived")
    try:  # through the module: tests count Rubber Band's runs
        rendered = await asyncio.to_thread(stretch.render_stretch, audio, sample_rate, spec)
    except DspError as exc:
        raise StretchError(f"{where} cannot be stretched: {exc}") from exc
    if store is not None:
        await _kept(derived_audio.save(store, project_id, derived, rendered, sample_rate),
                    project_id)
    CACHE.put(key, rendered)
    return ClipRender(clip.id, key, derived, rendered, "rendered")


async def _kept(step: Awaitable[Any], project_id: str) -> Any:
    """Run one derived-audio step; a storage failure only costs the reuse (None)."""
    try:
        return await step
    except (StorageError, OSError) as exc:
        log.warning("project %s: derived render not kept or read: %s", project_id, exc)
        return None


@dataclass
class PreparedRenders:
    """The renders :func:`prepare` holds in the cache; :meth:`release` (or leaving the
    ``with`` block) lets them go once the engine that plays them is built."""

    renders: list[ClipRender] = field(default_factory=list)

    def hold(self, render: ClipRender) -> None:
        """Pin ``render`` in :data:`~dsp_core.stretch.CACHE` until :meth:`release`."""
        CACHE.pin(render.key, render.audio)
        self.renders.append(render)

    def release(self) -> None:
        """Unpin every held render (twice is harmless)."""
        renders, self.renders = self.renders, []
        for render in renders:
            CACHE.unpin(render.key)

    def count(self, found: Found) -> int:
        """How many renders were found ``found``."""
        return sum(1 for render in self.renders if render.found == found)

    def __enter__(self) -> PreparedRenders:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def stretched_clips(session: Session) -> list[Clip]:
    """The clips of ``session`` with time keys that may need a render."""
    return [clip for track in session.tracks for clip in track.clips if clip.is_stretched]


async def prepare(session: Session, sample_rate: int, *, store: AssetStore | None = None,
                  project_id: str = "", load: Loader = load_source,
                  progress: Callable[[int, int], None] | None = None) -> PreparedRenders:
    """Every stretched clip's render of ``session`` at ``sample_rate``, held in the cache
    (:func:`obtain` for each, in order); ``progress(done, total)`` after each clip.

    Raises :class:`~dsp_core.stretch.StretchError` naming the first clip that cannot be
    rendered (nothing stays held then).
    """
    clips = stretched_clips(session)
    prepared = PreparedRenders()
    try:
        for done, clip in enumerate(clips, 1):
            render = await obtain(clip, session, sample_rate, store=store,
                                  project_id=project_id, load=load)
            if render is not None:
                prepared.hold(render)
            if progress is not None:
                progress(done, len(clips))
    except BaseException:
        prepared.release()
        raise
    return prepared
