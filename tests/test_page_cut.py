"""web/src/cut.js (the page's own word cut) gives the document the server's text edit gives."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from collab.schema import ProjectDocument
from dawserver.transcript_document import apply_text_edit, store_transcript
from dsp_core.session import Clip, Session, Track
from transcription.errors import EditError
from transcription.transcript import Segment, Transcript, Word

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

CUT_JS = Path(__file__).resolve().parent.parent / "web" / "src" / "cut.js"
RATE = 48000
#: Noise "words" with silent gaps, in seconds from the start of the source file.
WORDS = [("alpha", 0.2, 0.4), ("beta", 0.6, 0.8), ("gamma", 1.0, 1.3), ("delta", 1.5, 1.7),
         ("omega", 1.9, 2.1)]
TOLERANCE = 0.01 * RATE  # the server cuts at the quietest point near a gap's middle


def source_audio() -> np.ndarray:
    audio = np.zeros(int(2.3 * RATE), dtype=np.float32)
    rng = np.random.default_rng(7)
    for _, start, end in WORDS:
        audio[int(start * RATE):int(end * RATE)] = rng.uniform(-0.5, 0.5,
                                                               int(end * RATE) - int(start * RATE))
    return audio


def project(audio: np.ndarray, **timing: object) -> ProjectDocument:
    """A track with a clip that starts 0.1 s into its source, and a clip after it."""
    clip = Clip("/audio/voice.wav", RATE, audio.size - int(0.1 * RATE), offset=int(0.1 * RATE),
                fade_in=96, fade_out=96, id="voice", **timing)
    after = Clip("/audio/after.wav", 4 * RATE, RATE, id="after")
    document = ProjectDocument.from_session(Session(tracks=[Track("t", "Voice",
                                                                  clips=[clip, after])]))
    words = tuple(Word(w, s, e, 0.9) for w, s, e in WORDS)
    store_transcript(document, "voice", Transcript("en", (Segment(0.2, 2.1, "x", words),)))
    return document


def js_plan(document: ProjectDocument, first: int, last: int) -> dict:
    return json.loads(run_plan(document, first, last, check=True).stdout)


def run_plan(document: ProjectDocument, first: int, last: int, *, check: bool
             ) -> subprocess.CompletedProcess:
    data = document.to_json()
    script = (f"import {{ planCut }} from {json.dumps(CUT_JS.as_uri())}\n"
              "const input = JSON.parse(process.argv[1])\n"
              "console.log(JSON.stringify(planCut({ ...input, newId: () => 'clip-new' })))\n")
    payload = {"clip": data["clips"]["voice"], "transcript": data["transcripts"]["voice"],
               "first": first, "last": last, "sampleRate": RATE,
               "trackClips": list(data["clips"].values())}
    return subprocess.run(["node", "--input-type=module", "-e", script, json.dumps(payload)],
                          capture_output=True, text=True, timeout=30, check=check)


def applied(document: ProjectDocument, plan: dict) -> dict:
    """The document's clips and transcripts after the page's plan (as the page applies it)."""
    data = document.to_json()
    clips, transcripts = data["clips"], data["transcripts"]
    for clip_id, fields in plan["update"].items():
        clips[clip_id].update(fields)
    for clip_id in plan["remove"]:
        clips.pop(clip_id)
        transcripts.pop(clip_id, None)
    for fields in plan["add"]:
        clips[fields["id"]] = fields
    for clip_id, transcript in plan["transcripts"].items():
        if transcript is None:
            transcripts.pop(clip_id, None)
        else:
            transcripts[clip_id] = {**transcript, "clip": clip_id}
    return {"clips": clips, "transcripts": transcripts}


def words_of(transcript: dict) -> list[tuple[str, float, float]]:
    return [(w["word"], w["start"], w["end"]) for s in transcript["segments"] for w in s["words"]]


@pytest.mark.parametrize(("first", "last"), [(1, 1), (1, 2), (0, 0), (4, 4), (0, 4)])
def test_page_cut_matches_the_server_text_edit(first: int, last: int) -> None:
    audio = source_audio()
    page = applied(project(audio), js_plan(project(audio), first, last))
    server_doc = project(audio)
    order = [i for i in range(len(WORDS)) if not first <= i <= last]
    pieces = apply_text_edit(server_doc, "voice", order, audio)
    server = server_doc.to_json()
    page_pieces = sorted((c for c in page["clips"].values() if c["track"] == "t"
                          and c["id"] != "after"), key=lambda c: c["position"])
    assert len(page_pieces) == len(pieces)
    for mine, theirs in zip(page_pieces, [server["clips"][p] for p in pieces], strict=True):
        for name in ("position", "offset", "length"):
            assert mine[name] == pytest.approx(theirs[name], abs=TOLERANCE), name
        assert (mine["fade_in"], mine["fade_out"]) == (theirs["fade_in"], theirs["fade_out"])
        page_words = words_of(page["transcripts"][mine["id"]])
        server_words = words_of(server["transcripts"][theirs["id"]])
        assert [w for w, _, _ in page_words] == [w for w, _, _ in server_words]
        for (_, a0, a1), (_, b0, b1) in zip(page_words, server_words, strict=True):
            assert a0 == pytest.approx(b0, abs=0.01) and a1 == pytest.approx(b1, abs=0.01)
    assert page["clips"]["after"]["position"] == pytest.approx(
        server["clips"]["after"]["position"], abs=2 * TOLERANCE)


@pytest.mark.parametrize("timing", [{"stretch": 1.5}, {"warp": ((0, 0), (RATE, 2 * RATE))},
                                    {"follow_tempo": True, "source_bpm": 100.0}])
def test_page_cut_refuses_a_retimed_clip_as_the_server_does(timing: dict) -> None:
    """A stretched, warped or tempo-following clip has its words elsewhere than its
    source has them: the page refuses to cut it, as the server does, and plans nothing."""
    audio = source_audio()
    done = run_plan(project(audio, **timing), 1, 1, check=False)
    assert done.returncode != 0 and not done.stdout, done.stdout
    assert "plays its source stretched" in done.stderr, done.stderr
    with pytest.raises(EditError, match="plays its source stretched"):
        apply_text_edit(project(audio, **timing), "voice", [0, 2, 3, 4], audio)
