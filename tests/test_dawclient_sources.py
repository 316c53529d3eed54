"""The desktop client's source cache: which sources a session needs downloaded."""

from __future__ import annotations

from pathlib import Path

from dawclient.sources import SourceCache
from dsp_core import Bus, Clip, EffectSpec, Session, Track
from dsp_core.midi import Instrument, SampleZone


def test_convolution_irs_are_downloaded_with_the_clip_sources(tmp_path: Path) -> None:
    session = Session(
        tracks=[Track(id="t", clips=[Clip(source="a" * 64, position=0, length=10)],
                      effects=[EffectSpec("convolution", {"ir": "b" * 64})])],
        buses=[Bus(id="verb", effects=[EffectSpec("convolution", {"ir": "c" * 64}),
                                       EffectSpec("eq")])])
    session.master.effects.append(EffectSpec("convolution", {"ir": "d" * 64}))
    cache = SourceCache("http://127.0.0.1:1", "p", "token", tmp_path)
    assert cache.missing(session) == [x * 64 for x in "abcd"]
    cache.path_for("b" * 64).write_bytes(b"")
    assert cache.missing(session) == [x * 64 for x in "acd"]


def test_sampler_zones_are_downloaded_too(tmp_path: Path) -> None:
    """The server names a sampler's zones by asset id: the client fetches them as it does
    clips, or the engine cannot build the instrument."""
    session = Session(tracks=[Track(id="keys", instrument=Instrument("sampler", {}, [
        SampleZone("e" * 64, root=60, id="z")]))])
    cache = SourceCache("http://127.0.0.1:1", "p", "token", tmp_path)
    assert cache.missing(session) == ["e" * 64]
