"""What a clip's ``source`` (a convolution's ``ir``, a sampler zone's source, a file an
``lv2`` effect's saved state names) names: an asset id or a local file.

In the collaborative document and in project files from version 3 on, audio is named by
asset id: the SHA-256 of the file's bytes, 64 lowercase hex digits.  A server resolves an
id to a file through the project's own assets and refuses anything else; a local file path
is honoured only by local tools (``dawserver render FILE`` on the user's own machine).

:func:`legacy_asset_id` recognises the asset-store path that documents and files carried
before ids (``.../objects/ab/<sha256>.<wav|flac|aiff>``), for their migration.
:func:`resolve_session` maps every source of a session through a resolver, leaving out
what it refuses.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from .effects import EffectSpec
from .errors import ProjectError
from .session import Session, Track

#: The item an ``lv2`` instrument's state files are reported under.
INSTRUMENT_ITEM = "instrument"
#: Why an ``lv2`` effect whose saved state names its files as no save writes them is left out.
UNRENAMABLE = ("its saved state names a file in a form that cannot be rewritten to the "
               "local file (escaped, prefixed or quoted otherwise than a save writes it); "
               "save the plug-in's state again")
ASSET_ID = re.compile(r"^[0-9a-f]{64}$")
_STORE_PATH = re.compile(r"(?:^|[/\\])objects[/\\]([0-9a-f]{2})[/\\]([0-9a-f]{64})"
                         r"\.(?:wav|flac|aiff)$")


def is_asset_id(source: str) -> bool:
    """Whether ``source`` is an asset id (64 lowercase hex digits)."""
    return bool(ASSET_ID.match(source))


def legacy_asset_id(source: str) -> str | None:
    """The asset id of an asset-store path (``.../objects/ab/<id>.<ext>``), else None."""
    match = _STORE_PATH.search(source)
    if match is None or match.group(2)[:2] != match.group(1):
        return None
    return match.group(2)


def asset_id_of(source: str) -> str | None:
    """The asset ``source`` names: itself when an id, the id of a store path, else None."""
    return source if is_asset_id(source) else legacy_asset_id(source)


@dataclass(frozen=True)
class SourceRef:
    """One place in a session that names audio: a clip, a convolution's ``ir``, a
    sampler zone of a MIDI track's instrument, or a file an ``lv2`` effect's saved state
    names (:mod:`dsp_core.lv2_state`)."""

    kind: str  # "clip", "ir", "zone" or "state"
    track: str  # track id ("" for a bus effect)
    item: str  # clip id, or effect id / position
    source: str

    @property
    def label(self) -> str:
        """How error messages name the place (``clip 'c1' on track 't1'``)."""
        if self.kind == "clip":
            return f"clip {self.item!r} on track {self.track!r}"
        if self.kind == "zone":
            return f"sampler zone {self.item!r} on track {self.track!r}"
        where = f"track {self.track!r}" if self.track else "a bus"
        if self.kind == "state":
            return f"lv2 {self.item!r} on {where} (a file its saved state names)"
        return f"convolution {self.item!r} on {where} (its 'ir')"


@dataclass(frozen=True)
class Refusal:
    """A source that was not played, and why."""

    ref: SourceRef
    reason: str

    def __str__(self) -> str:
        return f"{self.ref.label}: {self.reason}"


class SourceRefused(Exception):
    """A resolver's answer for a source it will not play (the message says why)."""


def session_refs(session: Session) -> Iterator[SourceRef]:
    """Every clip source, convolution ``ir``, sampler zone source and file a saved
    ``lv2`` state names, of ``session``."""
    for track in session.tracks:
        for clip in track.clips:
            yield SourceRef("clip", track.id, clip.id or f"@{clip.position}", clip.source)
        yield from _effect_refs(track.effects, track.id)
        yield from _zone_refs(track)
    for bus in (session.master, *session.buses):
        yield from _effect_refs(bus.effects, "")


def _effect_refs(effects, track_id: str) -> Iterator[SourceRef]:  # noqa: ANN001
    for i, effect in enumerate(effects):
        ir = effect.params.get("ir")
        if effect.kind == "convolution" and isinstance(ir, str):
            yield SourceRef("ir", track_id, effect.id or f"#{i}", ir)
        for source in _state_files(effect):
            yield SourceRef("state", track_id, effect.id or f"#{i}", source)


def _state_files(effect) -> list[str]:  # noqa: ANN001
    """The files an ``lv2`` effect's saved state names (none when it cannot be read:
    validation refuses that state with the reason)."""
    state = effect.params.get("state")
    if effect.kind != "lv2" or not isinstance(state, str):
        return []
    from . import lv2_state  # liblilv's serd reads the text; needed only for lv2 effects
    from .lv2_lilv import Lv2Unavailable

    try:
        return lv2_state.file_sources(state)
    except Lv2Unavailable:  # no liblilv here: the effect is refused when validated
        return []


def _zone_refs(track: Track) -> Iterator[SourceRef]:
    instrument = getattr(track, "instrument", None)
    for i, zone in enumerate(instrument.zones if instrument is not None else ()):
        yield SourceRef("zone", track.id, zone.id or f"#{i}", zone.source)
    for source in _state_files(instrument) if instrument is not None else ():
        yield SourceRef("state", track.id, INSTRUMENT_ITEM, source)


def resolve_session(session: Session, resolve: Callable[[str], str]
                    ) -> tuple[Session, list[Refusal]]:
    """``session`` with every source replaced by ``resolve(source)`` (a local file).

    A source whose ``resolve`` raises :class:`SourceRefused` is left out: its clip is
    dropped, its convolution effect (or ``lv2`` effect whose saved state names it)
    removed from the chain, its sampler zone removed from the instrument; each one is
    reported in the list returned. So is an ``lv2`` effect whose state's text cannot be
    rewritten to name the resolved files (:data:`UNRENAMABLE`).  ``resolve`` is called
    once per distinct source.
    """
    answers: dict[str, str | SourceRefused] = {}
    refusals: list[Refusal] = []

    def lookup(ref: SourceRef) -> str | None:
        if ref.source not in answers:
            try:
                answers[ref.source] = resolve(ref.source)
            except SourceRefused as exc:
                answers[ref.source] = exc
        answer = answers[ref.source]
        if isinstance(answer, SourceRefused):
            refusals.append(Refusal(ref, str(answer)))
            return None
        return answer

    def effects(chain, track_id: str) -> list:  # noqa: ANN001
        kept = []
        for i, effect in enumerate(chain):
            ir = effect.params.get("ir")
            if effect.kind == "convolution" and isinstance(ir, str):
                path = lookup(SourceRef("ir", track_id, effect.id or f"#{i}", ir))
                if path is None:
                    continue
                effect = replace(effect, params={**effect.params, "ir": path})
            files = _state_files(effect)
            if files:
                found = {f: lookup(SourceRef("state", track_id, effect.id or f"#{i}", f))
                         for f in files}
                if None in found.values():
                    continue
                from . import lv2_state

                try:
                    state = lv2_state.with_files(effect.params["state"], found.__getitem__)
                except ProjectError:  # an escaped or prefixed name: its text stays as is
                    refusals.append(Refusal(
                        SourceRef("state", track_id, effect.id or f"#{i}", files[0]),
                        UNRENAMABLE))
                    continue
                effect = replace(effect, params={**effect.params, "state": state})
            kept.append(effect)
        return kept

    def track(t: Track) -> Track:
        clips = []
        for clip in t.clips:
            path = lookup(SourceRef("clip", t.id, clip.id or f"@{clip.position}", clip.source))
            if path is not None:
                clips.append(replace(clip, source=path))
        return replace(t, clips=clips, effects=effects(t.effects, t.id),
                       **instrument(t))

    def instrument(t: Track) -> dict:
        if getattr(t, "instrument", None) is not None and _state_files(t.instrument):
            # its state as an lv2 effect's: the files resolved, else it plays as none
            kept = effects([EffectSpec("lv2", t.instrument.params, id=INSTRUMENT_ITEM)], t.id)
            return {"instrument": replace(t.instrument, params=kept[0].params)
                    if kept else None}
        if getattr(t, "instrument", None) is None or not t.instrument.zones:
            return {}
        zones = []
        for i, zone in enumerate(t.instrument.zones):
            path = lookup(SourceRef("zone", t.id, zone.id or f"#{i}", zone.source))
            if path is not None:
                zones.append(replace(zone, source=path))
        return {"instrument": replace(t.instrument, zones=zones)}

    resolved = replace(
        session, tracks=[track(t) for t in session.tracks],
        master=replace(session.master, effects=effects(session.master.effects, "")),
        buses=[replace(b, effects=effects(b.effects, "")) for b in session.buses])
    return resolved, refusals


def local_asset_file(assets_dir: str | os.PathLike[str], asset_id: str) -> str:
    """The audio of ``asset_id`` in an asset directory laid out like the server's
    (``objects/ab/<id>.<wav|flac|aiff>``); :class:`SourceRefused` if it is not there."""
    folder = Path(assets_dir) / "objects" / asset_id[:2]
    for ext in ("wav", "flac", "aiff"):
        path = folder / f"{asset_id}.{ext}"
        if path.is_file():
            return str(path)
    raise SourceRefused(f"asset {asset_id} is not in {os.fspath(assets_dir)!r}")


def local_resolver(assets_dir: str | os.PathLike[str] | None) -> Callable[[str], str]:
    """How a local tool resolves sources: paths as they are, asset ids from
    ``assets_dir`` (refused, saying so, without one)."""

    def resolve(source: str) -> str:
        if not is_asset_id(source):
            return source
        if assets_dir is None:
            raise SourceRefused(f"names asset {source}; give the asset directory that holds "
                                "it (--assets DATA_DIR/assets) or render it on the server")
        return local_asset_file(assets_dir, source)

    return resolve


#: ``await resolve(source)``: a source's local file (:class:`SourceRefused` if not played).
SourceLookup = Callable[[str], Awaitable[str]]


class SourceAnswers:
    """What each source of an engine's sessions resolved to, asked once per source.

    An engine that follows a document rebuilds its session on every change; resolving a
    source costs a membership check, a cache lookup and a lease, so the live mix and the
    project engine keep the answers (a local file, or the refusal) for their lifetime and
    resolve only sources they have not seen.
    """

    def __init__(self, lookup: SourceLookup) -> None:
        self.lookup = lookup
        #: What the last :meth:`playable` session left out.
        self.refused: list[Refusal] = []
        self._answers: dict[str, str | SourceRefused] = {}

    def unknown(self, session: Session) -> set[str]:
        """The sources of ``session`` not resolved yet."""
        return {ref.source for ref in session_refs(session)} - self._answers.keys()

    async def learn(self, session: Session) -> None:
        """Resolve the sources of ``session`` not resolved yet (a failure of the lookup
        other than :class:`SourceRefused` propagates, and is asked again next time)."""
        for source in self.unknown(session):
            try:
                self._answers[source] = await self.lookup(source)
            except SourceRefused as exc:
                self._answers[source] = exc

    def playable(self, session: Session) -> Session:
        """``session`` with its (learned) sources as files; refused ones left out and
        kept in :attr:`refused`."""
        def resolve(source: str) -> str:
            answer = self._answers[source]
            if isinstance(answer, SourceRefused):
                raise answer
            return answer

        playable, self.refused = resolve_session(session, resolve)
        return playable
