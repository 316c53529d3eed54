"""accounts.throttle: the growing wait after failed attempts."""

from __future__ import annotations

import pytest

from accounts.throttle import DEFAULT_RULE, ThrottleRule, decayed, delay_after


def test_default_rule_is_three_free_failures_then_doubling_from_one_second() -> None:
    assert ThrottleRule(free_failures=3, base=1.0, cap=900.0) == DEFAULT_RULE
    assert [delay_after(n) for n in range(15)] == [
        0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900]


def test_delay_stays_at_the_cap_for_any_number_of_failures() -> None:
    for failures in (14, 15, 100, 1024, 1025, 10**6, 10**30):
        assert delay_after(failures) == 900.0


def test_delay_never_decreases() -> None:
    delays = [delay_after(n) for n in range(2000)]
    assert delays == sorted(delays)


def test_rule_is_configurable() -> None:
    rule = ThrottleRule(free_failures=0, base=0.5, cap=3.0)
    assert [rule.delay_after(n) for n in range(6)] == [0, 0.5, 1.0, 2.0, 3.0, 3.0]
    assert delay_after(2, rule) == 1.0
    strict = ThrottleRule(free_failures=5, base=10.0, cap=60.0)
    assert [strict.delay_after(n) for n in range(5, 10)] == [0, 10, 20, 40, 60]


def test_rule_with_base_equal_to_cap_is_a_fixed_wait() -> None:
    fixed = ThrottleRule(free_failures=1, base=30.0, cap=30.0)
    assert [fixed.delay_after(n) for n in range(4)] == [0, 0, 30, 30]


@pytest.mark.parametrize("kwargs", [
    {"free_failures": -1},
    {"base": 0.0},
    {"base": -1.0},
    {"base": 10.0, "cap": 5.0},
    {"cap": float("inf")},
    {"base": float("nan")},
])
def test_nonsense_rules_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="use"):
        ThrottleRule(**kwargs)  # type: ignore[arg-type]


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(ValueError, match="failures=-1"):
        delay_after(-1)

HOUR = 3600.0


def test_the_count_halves_per_whole_quiet_period() -> None:
    assert [decayed(10, 0.0, t * HOUR, HOUR) for t in (0, 0.99, 1, 1.5, 2, 3, 4)] == [
        10, 10, 5, 5, 2, 1, 0]
    assert decayed(10**6, 0.0, 7 * 24 * HOUR, HOUR) == 0  # last week's mistakes
    assert decayed(1, 0.0, 10**9 * HOUR, HOUR) == 0  # no overflow however long
    assert decayed(4, 100.0, 50.0, HOUR) == 4  # a clock behind the last failure: no fading
    assert decayed(0, 0.0, HOUR, HOUR) == 0


def test_a_half_life_must_be_positive_seconds() -> None:
    assert ThrottleRule().half_life == HOUR
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(ValueError, match="half_life"):
            ThrottleRule(half_life=bad)
