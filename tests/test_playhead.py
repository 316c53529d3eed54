"""The playhead follows the shared transport: start, stop, seek, loop, rates."""

from __future__ import annotations

from dsp_core.playhead import Playhead


def transport(**fields) -> dict:
    return {"playing": False, "position": 0, "loop_enabled": False, "loop_start": 0,
            "loop_end": 0, "recording": False, **fields}


def test_stopped_plays_nothing_and_play_starts_at_the_position() -> None:
    head = Playhead(48000, 48000)
    head.follow(transport(position=500))
    assert head.advance(256) == []
    head.follow(transport(position=500, playing=True))
    assert head.advance(256) == [(0, 500, 256)]
    assert head.advance(256) == [(0, 756, 256)]


def test_a_seek_while_playing_jumps_and_an_unrelated_change_does_not() -> None:
    head = Playhead(48000, 48000)
    head.follow(transport(playing=True))
    head.advance(1000)
    head.follow(transport(playing=True, recording=True))
    assert head.advance(10) == [(0, 1000, 10)] and head.recording
    head.follow(transport(playing=True, position=9000))
    assert head.advance(10) == [(0, 9000, 10)]


def test_the_loop_splits_a_block_at_its_end_and_wraps() -> None:
    head = Playhead(48000, 48000)
    head.follow(transport(playing=True, position=900, loop_enabled=True, loop_start=100,
                          loop_end=1000))
    assert head.advance(256) == [(0, 900, 100), (100, 100, 156)]
    assert head.position == 256


def test_a_disabled_or_empty_loop_is_ignored() -> None:
    head = Playhead(48000, 48000)
    head.follow(transport(playing=True, position=900, loop_enabled=True, loop_start=500,
                          loop_end=500))
    assert head.advance(256) == [(0, 900, 256)]


def test_positions_convert_between_project_and_render_rates() -> None:
    head = Playhead(44100, 48000)
    head.follow(transport(playing=True, position=44100))
    assert head.advance(480) == [(0, 48000, 480)]
    assert head.to_session(head.position) == 44541
