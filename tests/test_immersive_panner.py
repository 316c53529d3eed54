"""The point-source panner's gains and the C kernel that applies them (vs its twin)."""

from __future__ import annotations

import numpy as np
import pytest

from dsp_core.errors import ArrayError, DspError
from dsp_core.immersive import LAYOUTS, LFE, nominal_position
from dsp_core.immersive_panner import PointSourcePanner, direct_gains, panner
from dsp_core.immersive_render import pan_kernel
from dsp_core.reference_immersive import immersive_pan

pytestmark = pytest.mark.timeout(60)

DIRECTIONS = [(az, el) for az in range(-180, 181, 15) for el in (-60, -20, 0, 15, 30, 50, 90)]


@pytest.mark.parametrize("layout", ["7.1.4", "5.1"])
def test_gains_preserve_energy_and_stay_off_the_lfe(layout: str) -> None:
    pan = panner(layout)
    for az, el in DIRECTIONS:
        gains = pan.gains(az, el)
        assert np.sum(gains**2) == pytest.approx(1.0, abs=1e-9), (az, el)
        assert gains.min() >= 0.0
        if LFE in pan.labels:
            assert gains[pan.labels.index(LFE)] == 0.0


def test_stereo_keeps_power_in_front_and_drops_3_db_behind() -> None:
    pan = panner("stereo")
    for az, el in DIRECTIONS:
        power = float(np.sum(pan.gains(az, el) ** 2))
        assert 0.5 - 1e-9 <= power <= 1.0 + 1e-9, (az, el)
    assert np.sum(pan.gains(0.0, 0.0) ** 2) == pytest.approx(1.0)
    assert np.sum(pan.gains(180.0, 0.0) ** 2) == pytest.approx(0.5)
    left = pan.gains(60.0, 0.0)
    assert left[0] > left[1]


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_source_at_a_loudspeaker_plays_from_that_loudspeaker_alone(layout: str) -> None:
    pan = panner(layout)
    for index, label in enumerate(pan.labels):
        if label == LFE:
            continue
        expected = np.zeros(len(pan.labels))
        expected[index] = 1.0
        np.testing.assert_allclose(pan.gains(*nominal_position(label)), expected, atol=1e-9)


def test_between_two_loudspeakers_the_pair_shares_equally_and_moves_smoothly() -> None:
    pan = panner("7.1.4")
    half = pan.gains(15.0, 0.0)
    assert half[0] == pytest.approx(half[2]) and half[0] == pytest.approx(np.sqrt(0.5))
    path = np.array([pan.gains(az, 10.0) for az in np.arange(-180.0, 180.0, 0.5)])
    assert np.abs(np.diff(path, axis=0)).max() < 0.1  # no jump along a full turn


def test_bed_channels_go_direct_or_are_panned_where_the_layout_lacks_them() -> None:
    assert direct_gains("M+000", "5.1").tolist() == [0, 0, 1, 0, 0, 0]
    assert direct_gains(LFE, "5.1").tolist() == [0, 0, 0, 1, 0, 0]
    assert not direct_gains(LFE, "stereo").any()
    top = direct_gains("U+045", "5.1")  # no height: folds onto the middle layer, left side
    assert top[0] > top[1] and np.sum(top**2) == pytest.approx(1.0)


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(DspError, match="choose one of 7.1.4, 5.1, stereo"):
        PointSourcePanner("22.2")


@pytest.mark.parametrize("frames", [1, 31, 256, 1000])
def test_c_kernel_matches_its_twin_with_gliding_and_static_gains(frames: int) -> None:
    rng = np.random.default_rng(frames)
    inputs = rng.standard_normal((9, frames)).astype(np.float32)
    gains_from = np.array([panner("7.1.4").gains(az, 20.0) for az in range(0, 360, 40)],
                          dtype=np.float32)
    gains_to = np.array([panner("7.1.4").gains(az + 7, 25.0) for az in range(0, 360, 40)],
                        dtype=np.float32)
    gains_to[4] = gains_from[4]  # one static source
    native = pan_kernel("native")(inputs, gains_from, gains_to)
    twin = immersive_pan(inputs, gains_from, gains_to)
    np.testing.assert_array_equal(native, twin)
    # the glide ends on the new gains and starts one step from the old ones
    np.testing.assert_allclose(native[:, -1], gains_to.T @ inputs[:, -1], rtol=1e-5, atol=1e-6)
    if frames > 1:
        first = gains_from + (gains_to - gains_from) / frames
        np.testing.assert_allclose(native[:, 0], first.T @ inputs[:, 0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["native", "reference"])
def test_kernel_refuses_mismatched_gains(backend: str) -> None:
    kernel = pan_kernel(backend)
    inputs = np.zeros((3, 8), np.float32)
    with pytest.raises(ArrayError, match="gains_to axis 0 must have size 3"):
        kernel(inputs, np.zeros((2, 12), np.float32), np.zeros((2, 12), np.float32))
    with pytest.raises(ArrayError, match="float32"):
        kernel(inputs.astype(np.float64), np.zeros((3, 2), np.float32),
               np.zeros((3, 2), np.float32))


def test_gains_agree_with_the_ebu_adm_renderer_point_source_panner() -> None:
    """Same design as ear's panner (virtual loudspeakers, triangles and quads, the stereo
    downmix): the same gains in every direction of a 10-degree grid."""
    bs2051 = pytest.importorskip("ear.core.bs2051")
    from ear.core import point_source
    from ear.core.geom import cart

    for layout, name in (("7.1.4", "4+7+0"), ("5.1", "0+5+0"), ("stereo", "0+2+0")):
        ear_layout = bs2051.get_layout(name)
        reference = point_source.configure(ear_layout.without_lfe)
        keep = [i for i, c in enumerate(ear_layout.channels) if not c.is_lfe]
        for az in range(-180, 180, 10):
            for el in range(-90, 91, 10):
                theirs = np.zeros(len(ear_layout.channels))
                theirs[keep] = reference.handle(cart(az, el, 1.0))
                np.testing.assert_allclose(panner(layout).gains(az, el), theirs, atol=1e-9,
                                           err_msg=f"{layout} at ({az}, {el})")
