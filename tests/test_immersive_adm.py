"""ADM BWF export: the file's chunks and metadata, and the EBU ADM Renderer reading it.

The ear checks need ``ear`` (``pip install --no-deps ear==2.1.0``: see docs/immersive.md);
without it they are skipped with that reason.
"""

from __future__ import annotations

import functools
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from dsp_core import immersive_adm
from dsp_core.errors import DspError
from dsp_core.immersive import BED_714, BS2051_NAMES, LAYOUTS
from dsp_core.immersive_adm import write_adm_bwf
from dsp_core.immersive_render import Stems, pan_stems, render_stems
from dsp_core.session import Session
from tests.immersive_helpers import loader, mixed_session, object_track

pytestmark = pytest.mark.timeout(180)

NS = {"adm": "urn:ebu:metadata-schema:ebuCore_2014"}
QUANTUM = 1.0 / (2**23 - 1)  # one step of 24-bit PCM


def _chunks(path: Path) -> dict[bytes, bytes]:
    data = path.read_bytes()
    assert data[8:12] == b"WAVE"
    chunks, offset = {}, 12
    while offset < len(data):
        tag, size = struct.unpack("<4sI", data[offset:offset + 8])
        chunks[tag] = data[offset + 8:offset + 8 + size]
        offset += 8 + size + size % 2
    return chunks


@pytest.fixture(scope="module")
def stems() -> Stems:
    return render_stems(mixed_session(), loader=loader())


@pytest.fixture(scope="module")
def exported(stems: Stems, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_adm_bwf(tmp_path_factory.mktemp("adm") / "mix.wav", stems, "Immersive")


def test_file_holds_bed_then_objects_with_chna_and_axml(exported: Path, stems: Stems) -> None:
    chunks = _chunks(exported)
    assert list(chunks)[:5] == [b"JUNK", b"fmt ", b"chna", b"axml", b"data"]
    assert exported.read_bytes()[:4] == b"RIFF"
    tracks, uids = struct.unpack("<HH", chunks[b"chna"][:4])
    assert tracks == uids == 12 + len(stems.objects)
    first = struct.unpack("<H12s14s11sx", chunks[b"chna"][4:44])
    assert first == (1, b"ATU_00000001", b"AT_00011001_01", b"AP_00011001")
    audio, rate = sf.read(exported, dtype="float32")
    assert rate == 48000 and audio.shape == (stems.frames, 14)
    np.testing.assert_allclose(audio[:, :12].T, stems.bed, atol=2 * QUANTUM)
    np.testing.assert_allclose(audio[:, 12], stems.objects[0].signal, atol=2 * QUANTUM)


def test_axml_describes_the_bed_labels_and_object_positions(exported: Path) -> None:
    root = ET.fromstring(_chunks(exported)[b"axml"])
    extended = root.find("adm:coreMetadata/adm:format/adm:audioFormatExtended", NS)
    assert extended.get("version") == "ITU-R_BS.2076-2"
    labels = [e.text for e in extended.iterfind(".//adm:speakerLabel", NS)]
    assert labels == list(BED_714)
    lead = extended.find("adm:audioChannelFormat[@audioChannelFormatName='Lead']", NS)
    assert lead.get("typeDefinition") == "Objects"
    position = {p.get("coordinate"): float(p.text) for p in lead.iterfind(".//adm:position", NS)}
    assert position == {"azimuth": 100.0, "elevation": 20.0, "distance": 1.0}
    names = [o.get("audioObjectName") for o in extended.iterfind("adm:audioObject", NS)]
    assert names == ["Bed", "Lead", "fx"]


def test_objects_only_mix_leaves_the_bed_out(tmp_path: Path) -> None:
    stems = render_stems(Session(tracks=[object_track("o", 30.0)]), loader=loader())
    path = write_adm_bwf(tmp_path / "o.wav", stems)
    assert sf.info(path).channels == 1
    with pytest.raises(DspError, match="nothing to export"):
        write_adm_bwf(tmp_path / "none.wav", Stems(48000, np.zeros((12, 0), np.float32), [],
                                                   has_bed=False))


def test_large_files_switch_to_bw64_with_ds64(stems: Stems, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(immersive_adm, "_RIFF_LIMIT", 1000)  # pretend 1000 bytes is 4 GiB
    path = write_adm_bwf(tmp_path / "big.wav", stems)
    data = path.read_bytes()
    assert data[:4] == b"BW64" and data[12:16] == b"ds64"
    riff_size, data_size = struct.unpack("<QQ", data[20:36])
    assert riff_size == len(data) - 8 and data_size == stems.frames * 14 * 3
    ear = pytest.importorskip("ear.fileio")
    with ear.openBw64(str(path)) as reader:
        assert reader.channels == 14 and len(reader) == stems.frames


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_ear_renders_our_file_as_we_do(exported: Path, stems: Stems, layout: str,
                                       tmp_path: Path) -> None:
    """ear-render of our ADM BWF equals our render of the same layout within 1e-5 (the
    24-bit quantisation of the file, summed over the sources)."""
    pytest.importorskip("ear", reason="pip install --no-deps ear==2.1.0 (docs/immersive.md)")
    command = shutil.which("ear-render")
    command = [command] if command else [sys.executable, "-m", "ear.cmdline.render_file"]
    out = tmp_path / "ear.wav"
    result = subprocess.run([*command, "-s", BS2051_NAMES[layout], str(exported), str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    theirs, rate = sf.read(out, dtype="float32", always_2d=True)
    ours = pan_stems(stems, layout)
    assert rate == 48000 and theirs.T.shape == ours.shape
    np.testing.assert_allclose(theirs.T, ours, atol=1e-5)


def test_ear_reads_the_positions_back(exported: Path) -> None:
    fileio = pytest.importorskip("ear.fileio")
    with fileio.openBw64Adm(str(exported)) as reader:
        objects = {o.audioObjectName: o for o in reader.adm.audioObjects}
    block = objects["Lead"].audioPackFormats[0].audioChannelFormats[0].audioBlockFormats[0]
    assert (block.position.azimuth, block.position.elevation) == (100.0, 20.0)
    bed = objects["Bed"].audioPackFormats[0].audioChannelFormats
    assert [c.audioBlockFormats[0].speakerLabel[0] for c in bed] == list(BED_714)


def test_a_bounce_reports_its_whole_progress_only_once_the_file_is_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The render fills most of an ADM bounce's progress and the write the rest, so 100 %
    means the file is there, and a cancel (the progress raising) also stops the write."""
    monkeypatch.setattr(immersive_adm, "render_stems",
                        functools.partial(render_stems, loader=loader()))
    path, seen = tmp_path / "mix.wav", []

    def progress(done: int, total: int) -> None:
        seen.append((done / total, path.stat().st_size if path.exists() else 0))

    immersive_adm.bounce_adm(mixed_session(), path, progress=progress)
    fractions = [fraction for fraction, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    first_whole = next(size for fraction, size in seen if fraction == 1.0)
    assert first_whole == path.stat().st_size > 0  # 100 % only once the data is written
    assert any(fraction <= immersive_adm.RENDER_SHARE for fraction in fractions[:-1])

    class Cancelled(Exception):
        pass

    def cancel_in_the_write(done: int, total: int) -> None:
        if done / total > immersive_adm.RENDER_SHARE:
            raise Cancelled

    with pytest.raises(Cancelled):
        immersive_adm.bounce_adm(mixed_session(), tmp_path / "stopped.wav",
                                 progress=cancel_in_the_write)
