"""A hosted plug-in's own LV2 state (dsp_core.lv2_state): saved by the worker, kept in
the document's ``params["state"]``, restored by a fresh engine; bad text refused."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from lv2_helpers import X42_EQ, lv2_path, needs_plugin  # noqa: F401
from pycrdt import Map

from collab.schema import ProjectDocument
from dsp_core import Clip, EffectSpec, Engine, ProjectError, Session, Track, lv2_catalog, lv2_state
from dsp_core.lv2_host import HostedPlugin
from dsp_core.lv2_state import MAX_STATE_BYTES, turtle_problem
from dsp_core.project import load_project, save_project
from dsp_core.sources import resolve_session, session_refs
from tests.helpers_audio import DictLoader

pytestmark = [pytest.mark.timeout(240), pytest.mark.usefixtures("lv2_path")]

RATE = 48000
X42_EQ_STEREO = "http://gareus.org/oss/lv2/fil4#stereo"
LSP_IR = "http://lsp-plug.in/plugins/lv2/impulse_responses_mono"  # its IR file: state
IR_FILE = "<http://lsp-plug.in/plugins/lv2/impulse_responses_mono/ports#ifn>"
TUNING = "<http://gareus.org/oss/lv2/fil4#kbtuning>"  # x42-eq's state: no control port
#: Well-formed Turtle without a preset: lilv 0.24's lilv_state_new_from_string
#: dereferences a NULL subject on it (SIGSEGV), so it must never reach lilv.
CRASHES_LILV = "<urn:a> <urn:b> <urn:c> ."
LOADER = DictLoader({"x": (0.1 * np.ones((1, 4096))).astype(np.float32)})


def _document(params: dict) -> ProjectDocument:
    doc = ProjectDocument.from_session(
        Session(sample_rate=RATE, tracks=[Track("t", clips=[Clip("x", 0, 4096)])])
    )
    doc.add_effect("t", EffectSpec("lv2", params))
    return doc


def _hosted(engine: Engine) -> HostedPlugin:
    return engine.graph.tracks[0].hosted.elements[0]


def _retuned(state: str) -> str:
    """``state`` with x42-eq's keyboard tuning (a non-port setting) at 432 Hz."""
    before = f'{TUNING} "440.0"^^xsd:float'
    assert before in state
    return state.replace(before, f'{TUNING} "432.0"^^xsd:float')


def test_a_saved_state_survives_the_document_and_a_fresh_engine_byte_equal(tmp_path) -> None:
    needs_plugin(X42_EQ)
    doc = _document({"uri": X42_EQ})
    with Engine(doc.to_session(), block_size=256, loader=LOADER) as engine:
        default = _hosted(engine).save_state()
    changed = _retuned(default)
    doc.set_effect_params("t", 0, state=changed)
    session = doc.to_session()
    assert session.tracks[0].effects[0].params["state"] == changed
    with Engine(session, block_size=256, loader=LOADER) as engine:  # a fresh worker
        assert _hosted(engine).save_state() == changed != default
        engine.render(0, 1024)
        assert _hosted(engine).alive
    save_project(session, tmp_path / "p.json")  # and through the project file
    loaded = load_project(tmp_path / "p.json")
    loader = DictLoader({loaded.tracks[0].clips[0].source: LOADER.sources["x"]})
    with Engine(loaded, block_size=256, loader=loader) as engine:
        assert _hosted(engine).save_state() == changed


def _saved_after_a_block(params: dict) -> str:
    """The state a fresh worker with ``params`` saves after one block (LSP takes a
    restored setting in at its next run)."""
    plugin = HostedPlugin(params, 1, RATE, 256)
    try:
        assert plugin.alive, plugin.failed
        plugin.process(np.zeros((1, 256), dtype=np.float32), 256)
        return plugin.save_state()
    finally:
        plugin.close()


def test_an_impulse_file_path_in_a_state_round_trips(tmp_path) -> None:
    """LSP keeps its impulse response's file in its state, not in a port: a restored
    path is saved again, and a fresh worker restoring that text saves it byte-equal."""
    needs_plugin(LSP_IR)
    ir = tmp_path / "ir.wav"
    impulse = np.zeros(64, dtype=np.float32)
    impulse[10] = 0.5
    sf.write(ir, impulse, RATE, subtype="FLOAT")
    default = _saved_after_a_block({"uri": LSP_IR})
    assert IR_FILE not in default
    with_file = default.replace(
        "state:state [", f'state:state [\n\t\t{IR_FILE} "{ir}"^^atom:Path ;', 1
    )
    saved = _saved_after_a_block({"uri": LSP_IR, "state": with_file})
    assert f"{IR_FILE} <file://{ir}>" in saved  # the plug-in took the path and gave it back
    assert _saved_after_a_block({"uri": LSP_IR, "state": saved}) == saved


def test_a_state_edit_is_restored_into_the_running_worker() -> None:
    needs_plugin(X42_EQ)
    session = Session(
        sample_rate=RATE,
        tracks=[
            Track(
                "t",
                channels=2,
                clips=[Clip("x", 0, 4096)],
                effects=[EffectSpec("lv2", {"uri": X42_EQ})],
            )
        ],
    )
    with Engine(session, block_size=256, loader=LOADER) as engine:
        plugin = _hosted(engine)
        assert plugin.instances == 2  # a mono plug-in on a stereo track: both restored
        pid = plugin._process.pid
        changed = _retuned(plugin.save_state())
        session.tracks[0].effects[0].params["state"] = changed
        engine.apply(session)
        assert _hosted(engine) is plugin and plugin._process.pid == pid
        assert plugin.save_state() == changed


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (CRASHES_LILV, "0 pset:Preset subjects"),
        ("this is not turtle {{{", "not valid Turtle"),
        (None, "applies to " + X42_EQ_STEREO),  # another plug-in's state
        ("x" * (MAX_STATE_BYTES + 1), "more than the"),
        ("a\0b", "NUL"),
        ("\ud800 <urn:a> <urn:b> <urn:c> .", "lone surrogate"),
    ],
)
def test_a_malformed_foreign_or_oversized_state_is_refused(bad: str | None, says: str) -> None:
    needs_plugin(X42_EQ)
    doc = _document({"uri": X42_EQ})
    if bad is None:
        with Engine(doc.to_session(), block_size=256, loader=LOADER) as engine:
            bad = _hosted(engine).save_state().replace(f"<{X42_EQ}>", f"<{X42_EQ_STEREO}>")
    with pytest.raises(ProjectError, match="'state'") as refused:
        doc.set_effect_params("t", 0, state=bad)
    assert says in str(refused.value)
    assert "state" not in doc.to_session().tracks[0].effects[0].params  # nothing written


def test_a_peer_written_bad_state_plays_bypassed_with_the_reason() -> None:
    needs_plugin(X42_EQ)
    doc = _document({"uri": X42_EQ})
    effects = doc.doc.get("tracks", type=Map)["t"]["effects"]
    effects.append(
        Map(
            {
                "id": "fx-bad",
                "kind": "lv2",
                "enabled": True,
                "params": Map({"uri": X42_EQ, "state": CRASHES_LILV}),
            }
        )
    )
    session = doc.to_session()
    assert [e.id for e in session.tracks[0].effects] == [effects[0]["id"]]
    assert len(doc.bypassed) == 1 and "fx-bad" in doc.bypassed[0]
    assert "'state' is refused" in doc.bypassed[0]


def test_the_worker_refuses_text_that_would_crash_lilv(monkeypatch) -> None:
    """Past the host's checks (a host that skipped them), the worker checks again: it
    answers with the reason instead of dying in lilv."""
    needs_plugin(X42_EQ)
    assert turtle_problem(CRASHES_LILV, X42_EQ) is not None
    monkeypatch.setattr(lv2_catalog, "check_text", lambda state, uri: state)
    plugin = HostedPlugin({"uri": X42_EQ, "state": CRASHES_LILV}, 1, RATE, 256)
    try:
        assert plugin.failed is not None
        assert "the saved state was refused" in plugin.failed
        assert "crashed" not in plugin.failed
        block = np.full((1, 256), 0.25, dtype=np.float32)
        assert plugin.process(block, 256) is False  # bypassed: the dry signal
        np.testing.assert_array_equal(block, 0.25)
    finally:
        plugin.close()


def test_a_state_naming_a_file_outside_the_asset_directories_is_refused(tmp_path) -> None:
    """Once a server confines them, an editor's state may name only files under the
    asset directories: not the token secret, a system file or a link out of them."""
    needs_plugin(X42_EQ)
    assets = tmp_path / "assets"
    (assets / "objects").mkdir(parents=True)
    inside = assets / "objects" / "ir.wav"
    inside.write_bytes(b"RIFF")
    (assets / "escape").symlink_to(tmp_path)
    doc = _document({"uri": X42_EQ})
    with Engine(doc.to_session(), block_size=256, loader=LOADER) as engine:
        saved = _hosted(engine).save_state()

    def naming(path: str, *, as_uri: bool = False) -> str:
        value = f"<file://{path}>" if as_uri else f'"{path}"^^atom:Path'
        return saved.replace("state:state [", f"state:state [\n\t\t<urn:x:file> {value} ;", 1)

    doc.set_effect_params("t", 0, state=naming("/etc/passwd"))  # not confined: taken
    with lv2_state.confined([assets]):
        doc.set_effect_params("t", 0, state=naming(str(inside)))
        doc.set_effect_params("t", 0, state=naming(str(inside), as_uri=True))
        for outside in ("/etc/passwd", str(tmp_path / "secret.key"),
                        str(assets / "escape" / "x"), str(assets / ".." / "secret.key")):
            for as_uri in (False, True):
                with pytest.raises(ProjectError,
                                   match="outside the server's asset directories"):
                    doc.set_effect_params("t", 0, state=naming(outside, as_uri=as_uri))
    assert doc.to_session().tracks[0].effects[0].params["state"] == naming(
        str(inside), as_uri=True)  # the last accepted one stayed


@pytest.mark.asyncio
async def test_a_states_file_moves_with_the_project_as_an_asset(tmp_path) -> None:
    """The impulse file LSP's state names is stored as a project asset on import (the
    state then names the asset, not the file), survives the document, and on another
    machine, with only the asset storage copied, resolves to that machine's copy, which
    a fresh worker restores and saves back byte-equal."""
    import hashlib
    import shutil

    from dawserver.asset_store import AssetStore
    from dawserver.projects import ingest_sources
    from dsp_core.sources import local_resolver, resolve_session, session_refs

    studio = tmp_path / "studio"
    studio.mkdir()
    ir = studio / "ir.wav"
    impulse = np.zeros(64, dtype=np.float32)
    impulse[10] = 0.5
    sf.write(ir, impulse, RATE, subtype="FLOAT")
    default = _saved_after_a_block({"uri": LSP_IR})
    saved = _saved_after_a_block({"uri": LSP_IR, "state": default.replace(
        "state:state [", f'state:state [\n\t\t{IR_FILE} "{ir}"^^atom:Path ;', 1)})
    assert f"{IR_FILE} <file://{ir}>" in saved
    session = Session(sample_rate=RATE, tracks=[Track("t", effects=[
        EffectSpec("lv2", {"uri": LSP_IR, "state": saved}, id="irs")])])

    store = AssetStore(tmp_path / "server-a" / "assets")
    stored = await ingest_sources(store, session, "p1")
    asset_id = hashlib.sha256(ir.read_bytes()).hexdigest()
    text = stored.tracks[0].effects[0].params["state"]
    assert str(ir) not in text
    assert text == saved.replace(f"<file://{ir}>", f"<{lv2_state.ASSET_PREFIX}{asset_id}>")
    assert [(r.kind, r.item, r.source) for r in session_refs(stored)] == [
        ("state", "irs", asset_id)]
    assert asset_id in (store.root / "projects" / "p1.txt").read_text()
    doc = ProjectDocument.from_session(stored)  # the document keeps the asset's name
    assert doc.to_session().tracks[0].effects[0].params["state"] == text and not doc.bypassed

    shutil.rmtree(studio)  # another machine: only the asset storage came along
    elsewhere = tmp_path / "server-b" / "assets"
    shutil.copytree(store.root / "objects", elsewhere / "objects")
    with lv2_state.confined([elsewhere]):  # that machine's server
        played, refused = resolve_session(doc.to_session(), local_resolver(elsewhere))
        assert refused == []
        copy = next((elsewhere / "objects").rglob(f"{asset_id}.wav"))
        resolved = played.tracks[0].effects[0].params["state"]
        assert resolved == saved.replace(f"<file://{ir}>", f"<file://{copy}>")
        played.validate()  # the copy lies under the confined asset directories
        assert _saved_after_a_block({"uri": LSP_IR, "state": resolved}) == resolved
        doc.set_effect_params("t", 0, state=resolved)  # as a worker saves it: made portable
        assert doc.to_session().tracks[0].effects[0].params["state"] == text

    _, refused = resolve_session(doc.to_session(), local_resolver(tmp_path / "empty"))
    assert [str(r) for r in refused] == [
        f"lv2 'irs' on track 't' (a file its saved state names): asset {asset_id} is not "
        f"in {str(tmp_path / 'empty')!r}"]


def test_a_state_naming_a_file_relative_to_a_base_is_refused(tmp_path, monkeypatch) -> None:
    """``@base <file:///elsewhere/>`` then ``<ir.wav>``: lilv resolves the relative name
    to a file outside the asset directories, which neither the confinement nor the
    sources saw; the document and the worker both refuse such a state."""
    needs_plugin(LSP_IR)
    secret = tmp_path / "another-project"
    secret.mkdir()
    impulse = np.zeros(64, dtype=np.float32)
    impulse[10] = 0.5
    sf.write(secret / "ir.wav", impulse, RATE, subtype="FLOAT")
    default = _saved_after_a_block({"uri": LSP_IR})
    based = f"@base <file://{secret}/> .\n" + default.replace(
        "state:state [", f"state:state [\n\t\t{IR_FILE} <ir.wav> ;", 1)
    doc = ProjectDocument.from_session(Session(sample_rate=RATE, tracks=[Track("t")]))
    doc.add_effect("t", EffectSpec("lv2", {"uri": LSP_IR}))
    with lv2_state.confined([tmp_path / "assets"]), \
            pytest.raises(ProjectError, match="declares a base URI"):
        doc.set_effect_params("t", 0, state=based)
    assert lv2_state.turtle_problem(based, LSP_IR) is not None
    monkeypatch.setattr(lv2_catalog, "check_text", lambda state, uri: state)
    plugin = HostedPlugin({"uri": LSP_IR, "state": based}, 1, RATE, 256)
    try:  # past the host's checks, the worker refuses it before lilv reads the file
        assert plugin.failed is not None and "declares a base URI" in plugin.failed
    finally:
        plugin.close()


def test_a_state_naming_its_asset_in_an_escaped_form_is_left_out_with_the_reason() -> None:
    """An editor may write an asset's name with a Turtle escape (``\\u0061``): serd reads
    the asset, but its text cannot be rewritten to the local file. Resolving leaves the
    effect out and says why, instead of raising out of every engine that plays it."""
    needs_plugin(X42_EQ)
    asset = "a" * 64
    escaped = "\\u0061" + asset[1:]
    doc = _document({"uri": X42_EQ})
    with Engine(doc.to_session(), block_size=256, loader=LOADER) as engine:
        saved = _hosted(engine).save_state()
    named = f"<urn:x:file> <{lv2_state.ASSET_PREFIX}{escaped}> ;"
    state = saved.replace("state:state [", f"state:state [\n\t\t{named}", 1)
    doc.set_effect_params("t", 0, state=state)  # a well-formed state naming an asset
    session = doc.to_session()
    assert [r.source for r in session_refs(session)] == ["x", asset]
    played, refused = resolve_session(session, lambda source: f"/cache/{source}.wav")
    assert played.tracks[0].effects == []
    assert len(refused) == 1 and refused[0].ref.kind == "state"
    assert "cannot be rewritten" in str(refused[0]) and "/cache/" not in str(refused[0])
