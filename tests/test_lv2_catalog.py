"""LV2 discovery and the lv2 effect's validation (dsp_core.lv2_catalog), no workers."""

from __future__ import annotations

import dataclasses
import json

import pytest
from lv2_helpers import (  # noqa: F401
    LSP_DELAY,
    MISBEHAVE,
    SWH_AMP,
    X42_EQ,
    lv2_path,
    needs_plugin,
)

from collab.schema import ProjectDocument
from dsp_core import Clip, EffectSpec, ProjectError, Session, Track, lv2_catalog
from dsp_core.project import load_project, save_project

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("lv2_path")]


def test_discovery_finds_an_installed_plugin_with_its_ports() -> None:
    needs_plugin(SWH_AMP)
    info = lv2_catalog.plugin(SWH_AMP)
    assert info.supported and info.latency_port is None
    gain = {p.symbol: p for p in info.controls}["gain"]
    assert (gain.minimum, gain.maximum, gain.default) == (-70.0, 70.0, 0.0)
    assert [p.symbol for p in info.audio(False)] == ["input"]
    assert [p.symbol for p in info.audio(True)] == ["output"]


def test_discovery_reads_an_x42_plugins_many_controls() -> None:
    needs_plugin(X42_EQ)
    info = lv2_catalog.plugin(X42_EQ)
    controls = {p.symbol: p for p in info.controls}
    assert {"gain1", "freq1", "LSgain", "HSfreq"} <= set(controls)
    assert controls["freq1"].minimum < controls["freq1"].default < controls["freq1"].maximum
    assert any(p.kind == "atom" for p in info.ports)  # its UI channel, fed an empty sequence


def test_discovery_finds_the_test_bundle_and_its_latency_port() -> None:
    info = lv2_catalog.plugin(MISBEHAVE)
    assert [p.symbol for p in info.controls] == ["mode", "gain", "delay"]
    assert info.latency_port == 5 and info.ports[5].reports_latency
    listed = {p.uri: p for p in lv2_catalog.plugins()}
    mode, gain, delay = listed[MISBEHAVE].to_dict()["controls"]
    assert gain == {"symbol": "gain", "name": "Gain", "default": 1.0, "minimum": 0.0,
                    "maximum": 4.0, "per_sample_rate": False, "integer": False,
                    "toggled": False, "enumeration": False,
                    "scale_points": [{"value": 1.0, "label": "Unity"}]}
    assert mode["integer"] and not mode["toggled"]  # lv2:portProperty lv2:integer
    assert "scale_points" not in delay  # a port without any lists none


def test_a_ports_scale_points_are_listed_by_value_with_their_labels() -> None:
    """The Turtle lists misbehave's modes out of order (Crash first): sorted by value."""
    mode = {p.symbol: p for p in lv2_catalog.plugin(MISBEHAVE).controls}["mode"]
    assert mode.enumeration and mode.integer
    assert [(p.value, p.label) for p in mode.scale_points] == [
        (0.0, "Pass"), (1.0, "NaN"), (2.0, "Hang"), (3.0, "Crash"), (4.0, "Denormal")]
    assert lv2_catalog.plugin(MISBEHAVE).to_dict()["controls"][0]["scale_points"] == [
        {"value": 0.0, "label": "Pass"}, {"value": 1.0, "label": "NaN"},
        {"value": 2.0, "label": "Hang"}, {"value": 3.0, "label": "Crash"},
        {"value": 4.0, "label": "Denormal"}]


def test_an_installed_plugins_scale_points_are_read() -> None:
    """LSP's delay compensator's mode is an enumeration; x42's EQ names resonances of a
    continuous port, the value as written (0.7, not float32's 0.69999999)."""
    needs_plugin(LSP_DELAY)
    needs_plugin(X42_EQ)
    mode = {p.symbol: p for p in lv2_catalog.plugin(LSP_DELAY).controls}["mode"]
    assert mode.enumeration
    assert [(p.value, p.label) for p in mode.scale_points] == [
        (0.0, "Samples"), (1.0, "Distance"), (2.0, "Time")]
    resonance = {p.symbol: p for p in lv2_catalog.plugin(X42_EQ).controls}["HPQ"]
    assert not resonance.enumeration and not resonance.integer
    assert [(p.value, p.label) for p in resonance.scale_points] == [
        (0.0, "-6dB @freq, no resonance"), (0.7, "-3dB @freq, flat"),
        (1.0, "0dB @freq, resonant")]


def test_an_unknown_uri_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ProjectError, match=r"no installed plug-in has the URI 'urn:nope'.*lv2ls"):
        EffectSpec("lv2", {"uri": "urn:nope"}).validate()
    with pytest.raises(ProjectError, match="'uri' must name"):
        EffectSpec("lv2", {"gain": 1.0}).validate()


def test_an_unknown_control_or_a_value_out_of_range_is_refused() -> None:
    with pytest.raises(ProjectError, match=r"unknown control 'volume'; its controls are delay, "
                                           r"gain, mode"):
        EffectSpec("lv2", {"uri": MISBEHAVE, "volume": 1.0}).validate()
    with pytest.raises(ProjectError, match=r"gain = 9.0 is outside \[0, 4\]"):
        EffectSpec("lv2", {"uri": MISBEHAVE, "gain": 9.0}).validate()
    # mode is lv2:integer: the plug-in reads a fraction as some mode it did not mean
    with pytest.raises(ProjectError, match=r"mode = 1.5 must be a whole number"):
        EffectSpec("lv2", {"uri": MISBEHAVE, "mode": 1.5}).validate()
    EffectSpec("lv2", {"uri": MISBEHAVE, "mode": 2.0}).validate()


def test_a_control_without_bounds_still_takes_only_finite_numbers(monkeypatch) -> None:
    info = lv2_catalog.plugin(MISBEHAVE)
    unbounded = dataclasses.replace(info, ports=tuple(
        dataclasses.replace(p, minimum=None, maximum=None) if p.symbol == "gain" else p
        for p in info.ports))
    monkeypatch.setattr(lv2_catalog, "plugin", lambda uri: unbounded)
    EffectSpec("lv2", {"uri": MISBEHAVE, "gain": 1e6}).validate()  # no bounds: any number
    for value in ("inf", float("-inf"), float("nan")):
        with pytest.raises(ProjectError, match="is not a finite number"):
            EffectSpec("lv2", {"uri": MISBEHAVE, "gain": value}).validate()


def test_a_plugin_this_host_cannot_run_is_refused_with_the_reason() -> None:
    unsupported = [p for p in lv2_catalog.plugins() if not p.supported]
    if not unsupported:
        pytest.skip("every installed plug-in is hostable")
    with pytest.raises(ProjectError, match="cannot be hosted here"):
        EffectSpec("lv2", {"uri": unsupported[0].uri}).validate()


def test_a_project_file_keeps_an_lv2_effect_and_refuses_a_bad_one(tmp_path) -> None:
    spec = EffectSpec("lv2", {"uri": MISBEHAVE, "gain": 0.5, "delay": 12.0}, id="fx-lv2")
    session = Session(tracks=[Track("t", clips=[Clip("a.wav", 0, 10)], effects=[spec])])
    path = save_project(session, tmp_path / "p.json")
    loaded = load_project(path).tracks[0].effects[0]
    assert (loaded.kind, loaded.params, loaded.id) == ("lv2", spec.params, "fx-lv2")
    data = json.loads(path.read_text())
    data["tracks"][0]["effects"][0]["params"]["loudness"] = 3
    path.write_text(json.dumps(data))
    with pytest.raises(ProjectError, match=r"tracks\[0\].effects\[0\].*unknown control "
                                           r"'loudness'"):
        load_project(path)


def test_the_document_stores_controls_by_port_symbol() -> None:
    doc = ProjectDocument.from_session(Session(tracks=[Track("t")]))
    doc.add_effect("t", EffectSpec("lv2", {"uri": MISBEHAVE, "gain": 2.0}))
    doc.set_effect_params("t", 0, delay=5.0)
    effect = doc.to_session().tracks[0].effects[0]
    assert effect.params == {"uri": MISBEHAVE, "gain": 2.0, "delay": 5.0}
    with pytest.raises(ProjectError, match="unknown control 'nope'"):
        doc.set_effect_params("t", 0, nope=1.0)
    assert doc.to_session().tracks[0].effects[0].params["gain"] == 2.0


def test_a_project_over_the_lv2_caps_is_refused_with_what_to_do(tmp_path) -> None:
    from dsp_core.lv2_limits import MAX_LV2_PER_SESSION, MAX_LV2_PER_TRACK

    def lv2(i: int) -> EffectSpec:
        return EffectSpec("lv2", {"uri": MISBEHAVE, "gain": 1.0 + i * 0.01})

    crowded = Session(tracks=[Track("t", effects=[lv2(i) for i in range(MAX_LV2_PER_TRACK + 1)])])
    with pytest.raises(ProjectError, match=f"track 't' holds {MAX_LV2_PER_TRACK + 1} lv2.*"
                                           f"at most {MAX_LV2_PER_TRACK} per track"):
        save_project(crowded, tmp_path / "a.json")
    tracks = [Track(f"t{n}", effects=[lv2(i) for i in range(MAX_LV2_PER_TRACK)])
              for n in range(MAX_LV2_PER_SESSION // MAX_LV2_PER_TRACK)]
    save_project(Session(tracks=tracks), tmp_path / "full.json")  # exactly at the cap
    data = json.loads((tmp_path / "full.json").read_text())
    data["tracks"].append({"id": "extra", "effects": [{"kind": "lv2", "params": {
        "uri": MISBEHAVE}}]})
    (tmp_path / "full.json").write_text(json.dumps(data))
    with pytest.raises(ProjectError, match=f"at most {MAX_LV2_PER_SESSION} per project"):
        load_project(tmp_path / "full.json")


def test_the_document_refuses_an_lv2_effect_over_a_cap() -> None:
    from dsp_core.lv2_limits import MAX_LV2_PER_SESSION, MAX_LV2_PER_TRACK

    doc = ProjectDocument.from_session(Session(tracks=[Track(f"t{n}") for n in range(5)]))
    for _ in range(MAX_LV2_PER_TRACK):
        doc.add_effect("t0", EffectSpec("lv2", {"uri": MISBEHAVE}))
    with pytest.raises(ProjectError, match=f"track 't0': more than {MAX_LV2_PER_TRACK}"):
        doc.add_effect("t0", EffectSpec("lv2", {"uri": MISBEHAVE}))
    doc.add_effect("t0", EffectSpec("gain", {"gain_db": -3.0}))  # built-ins are not capped
    for n in range(1, MAX_LV2_PER_SESSION // MAX_LV2_PER_TRACK):
        for _ in range(MAX_LV2_PER_TRACK):
            doc.add_effect(f"t{n}", EffectSpec("lv2", {"uri": MISBEHAVE}))
    with pytest.raises(ProjectError, match=f"more than {MAX_LV2_PER_SESSION} lv2 plug-ins in"):
        doc.add_effect("t4", EffectSpec("lv2", {"uri": MISBEHAVE}))


def test_a_document_plays_an_invalid_or_excess_lv2_effect_bypassed() -> None:
    """A peer may write what add_effect refuses: the document stays readable and the
    bad plug-ins are left out of the chain, each with its reason."""
    from pycrdt import Map

    from dsp_core.lv2_limits import MAX_LV2_PER_TRACK

    doc = ProjectDocument.from_session(Session(tracks=[Track("t")]))
    doc.add_effect("t", EffectSpec("gain", {"gain_db": -3.0}))
    effects = doc.doc.get("tracks", type=Map)["t"]["effects"]
    peer = [{"uri": "http://example.org/not-installed"}, {"uri": MISBEHAVE, "gain": 1e9}]
    peer += [{"uri": MISBEHAVE}] * (MAX_LV2_PER_TRACK + 1)
    for i, params in enumerate(peer):
        effects.append(Map({"id": f"fx-{i}", "kind": "lv2", "enabled": True,
                            "params": Map(dict(params))}))
    session = doc.to_session()
    session.validate()
    kinds = [(e.kind, e.id) for e in session.tracks[0].effects]
    assert kinds[0][0] == "gain"
    assert [i for _, i in kinds[1:]] == [f"fx-{i}" for i in range(2, 2 + MAX_LV2_PER_TRACK)]
    assert len(doc.bypassed) == 3
    assert "fx-0" in doc.bypassed[0] and "no installed plug-in" in doc.bypassed[0]
    assert "fx-1" in doc.bypassed[1] and "played bypassed" in doc.bypassed[1]
    assert "more than" in doc.bypassed[2]
