"""A take follows the live playhead: audio recorded after a seek or a loop change lands
where the playhead was when it was recorded."""

from __future__ import annotations

import asyncio
import fractions
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
from av import AudioFrame

from collab.schema import ProjectDocument
from collab.takes import TakeSegment, loop_passes, segment_passes
from dawserver.asset_store import AssetStore
from dawserver.live_mix import LiveMix, MixFrame
from dawserver.recording import TakeRecorder, continued, jumped, placed_segments
from dsp_core.playhead import Playhead
from dsp_core.session import Session, Track

RATE = 48000
FRAME = 960


def test_a_seek_splits_the_take_where_it_happened() -> None:
    segments = [TakeSegment(0, 1000), TakeSegment(500, 5000)]
    assert segment_passes(segments, 800) == [(1000, 0, 500), (5000, 500, 300)]
    # a seek just as the take ended leaves nothing to place there
    assert segment_passes(segments, 500) == [(1000, 0, 500)]


def test_a_loop_change_lays_out_the_passes_recorded_after_it() -> None:
    # began at 400 looping over [0, 1000); at offset 1200 (at 600, second pass) the loop
    # grew to [0, 2000): that pass runs on to 2000, the next starts at 0 again
    segments = [TakeSegment(0, 400, (0, 1000)), TakeSegment(1200, 600, (0, 2000))]
    assert segment_passes(segments, 3000) == [(400, 0, 600), (0, 600, 2000),
                                              (0, 2600, 400)]
    assert loop_passes(400, 3000, (0, 1000))[1] == (0, 600, 1000)  # the old loop cut it


def test_a_pass_cut_by_a_seek_keeps_its_short_end() -> None:
    # 50 frames after the loop's jump, then a seek: recorded audio, not a stop
    segments = [TakeSegment(0, 1500, (1000, 2000)), TakeSegment(550, 8000)]
    assert segment_passes(segments, 700) == [(1500, 0, 500), (1000, 500, 50),
                                             (8000, 550, 150)]


def test_the_latency_moves_a_later_segment_later_in_the_take_not_on_the_timeline() -> None:
    heard = [TakeSegment(0, 1000), TakeSegment(480, 5000, (0, 9000))]
    assert placed_segments(heard, 100) == [TakeSegment(0, 900),
                                           TakeSegment(580, 5000, (0, 9000))]


def test_a_playhead_jumped_only_if_playing_on_would_not_have_put_it_there() -> None:
    def frame(index: int, timeline: int) -> MixFrame:
        return MixFrame(index, np.zeros((0, 2), np.int16), timeline, 0.0)

    assert continued(1900, 200, (1000, 2000)) == 1100
    assert continued(2500, 200, (1000, 2000)) == 2700  # after the loop: plays on
    assert not jumped(frame(3, 1900), frame(5, 1100), 100, (1000, 2000), 5)  # the loop
    assert not jumped(frame(3, 100), frame(5, 302), 100, None, 5)
    assert jumped(frame(3, 100), frame(5, 400), 100, None, 5)
    assert jumped(frame(3, 1900), frame(5, 2100), 100, (1000, 2000), 5)


class Mix:
    """A live mix driven by hand: a real playhead, a frame rendered per :meth:`render`."""

    timeline_now = LiveMix.timeline_now

    def __init__(self, room: SimpleNamespace) -> None:
        self.room, self.sample_rate, self.frame = room, RATE, FRAME
        self.playhead = Playhead(RATE, RATE)
        self.transport: dict[str, object] = {}
        self.last_frame: MixFrame | None = None
        self.index = 0

    def move(self, **transport: object) -> None:
        self.transport.update(transport)
        self.playhead.follow(self.transport)

    def render(self) -> None:
        spans = self.playhead.advance(FRAME)
        timeline = spans[0][1] if spans else None
        # made "later": the live playhead is exactly the frame's start
        self.last_frame = MixFrame(self.index, np.zeros((FRAME, 2), np.int16), timeline,
                                   time.monotonic() + 3600)
        self.index += 1


def mic(index: int) -> AudioFrame:
    """Microphone frame ``index``: every sample ``100 * (index + 1)`` (int16)."""
    pcm = np.full((1, 2 * FRAME), 100 * (index + 1), np.int16)
    frame = AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
    frame.sample_rate, frame.pts = RATE, index * FRAME
    frame.time_base = fractions.Fraction(1, RATE)
    return frame


class Studio:
    """A :class:`TakeRecorder` fed frame by frame while the transport moves."""

    def __init__(self, tmp_path: Path, latency: int = 0) -> None:
        self.document = ProjectDocument.from_session(Session(tracks=[Track("vox")]))
        self.document.update_track("vox", arm=True)
        room = SimpleNamespace(project_id="p", document=self.document, edit=self._edit)
        self.mix = Mix(room)
        self.assets = AssetStore(tmp_path / "assets")
        self.recorder = TakeRecorder(mix=self.mix, track=None, assets=self.assets,
                                     latency_frames=latency)
        self.sent = 0

    async def _edit(self, change) -> None:  # noqa: ANN001 - a document change
        change(self.document)

    async def play(self, frames: int) -> None:
        for _ in range(frames):
            self.mix.render()
            async with asyncio.timeout(10):
                await self.recorder._consume(mic(self.sent))  # noqa: SLF001
            self.sent += 1

    def clips(self) -> list[tuple[int, int, int]]:
        return sorted((int(c["position"]), int(c["offset"]), int(c["length"]))
                      for c in self.document.clips_of("vox"))

    def audio(self) -> np.ndarray:
        [source] = {c["source"] for c in self.document.clips_of("vox")}
        take, _ = sf.read(self.assets.asset(source).path, dtype="float32")
        return np.round(take * 32768).astype(int)


@pytest.mark.asyncio
async def test_audio_recorded_after_a_seek_lands_where_the_playhead_jumped(
        tmp_path: Path) -> None:
    # it was placed as if the playhead had played on from the take's start: at 1.2 s
    studio = Studio(tmp_path)
    studio.mix.move(playing=True, recording=True, position=RATE)
    await studio.play(10)
    studio.mix.move(position=5 * RATE)  # someone seeks to 5 s mid-take
    await studio.play(10)
    studio.mix.move(recording=False)
    await studio.play(1)
    assert studio.clips() == [(RATE, 0, 10 * FRAME), (5 * RATE, 10 * FRAME, 10 * FRAME)]
    audio = studio.audio()
    assert set(audio[:10 * FRAME]) == set(range(100, 1001, 100))  # before the seek
    assert audio[10 * FRAME] == 1100  # first frame recorded after it sits at 5 s


@pytest.mark.asyncio
async def test_a_seek_is_placed_with_the_declared_latency(tmp_path: Path) -> None:
    studio = Studio(tmp_path, latency=480)  # the musician hears and plays 10 ms late
    studio.mix.move(playing=True, recording=True, position=RATE)
    await studio.play(10)
    studio.mix.move(position=5 * RATE)
    await studio.play(10)
    studio.mix.move(recording=False)
    await studio.play(1)
    # 10 ms of what arrived after the seek was played before the musician heard it
    assert studio.clips() == [(RATE - 480, 0, 10 * FRAME + 480),
                              (5 * RATE, 10 * FRAME + 480, 10 * FRAME - 480)]


@pytest.mark.asyncio
async def test_a_loop_changed_mid_take_lays_out_the_later_passes(tmp_path: Path) -> None:
    # the take was cut by the loop it began under: the longer loop's pass was cut at 1.5 s
    studio = Studio(tmp_path)
    loop = {"loop_enabled": True, "loop_start": RATE}
    studio.mix.move(playing=True, recording=True, position=RATE, loop_end=RATE * 3 // 2,
                    **loop)
    await studio.play(30)  # 0.6 s: 0.5 s to the loop's end, 0.1 s into the next pass
    studio.mix.move(loop_end=2 * RATE)  # the loop grows to [1 s, 2 s)
    await studio.play(70)  # 1.4 s: on to 2 s, then 0.5 s of a third pass
    studio.mix.move(recording=False)
    await studio.play(1)
    # the third pass on top at [1 s, 1.5 s), the second's end after it up to 2 s
    assert studio.clips() == [(RATE, RATE * 3 // 2, RATE // 2), (RATE * 3 // 2, RATE, RATE // 2)]
    audio = studio.audio()
    assert audio[RATE] == 5100  # frame 50 was recorded as the playhead passed 1.5 s
    assert audio[RATE * 3 // 2] == 7600  # frame 75 as it began the third pass at 1 s
