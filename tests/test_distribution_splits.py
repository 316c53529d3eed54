"""Royalty splits: exact percentages, recoupment, largest-remainder cents (property tests)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from business.distribution.errors import SplitError
from business.distribution.splits import (
    Payee,
    Split,
    allocate,
    apportion,
    largest_remainder,
    split_from_dict,
)


@st.composite
def percentages(draw: st.DrawFn) -> list[Decimal]:
    """2-8 shares in hundredths of a percent that total exactly 100."""
    count = draw(st.integers(1, 8))
    cuts = sorted(draw(st.lists(st.integers(1, 9999), min_size=count - 1,
                                max_size=count - 1, unique=True)))
    bounds = [0, *cuts, 10000]
    return [Decimal(b - a) / 100 for a, b in zip(bounds, bounds[1:], strict=False)]


@settings(max_examples=1000, deadline=None)
@given(total=st.integers(-10**9, 10**9), shares=percentages())
def test_largest_remainder_sums_exactly_and_stays_within_a_cent(
        total: int, shares: list[Decimal]) -> None:
    parts = largest_remainder(total, shares)
    assert sum(parts) == total
    for part, share in zip(parts, shares, strict=True):
        exact = Fraction(total) * Fraction(share) / 100
        assert abs(part - exact) < 1


@settings(max_examples=500, deadline=None)
@given(values=st.lists(st.fractions(min_value=-10**6, max_value=10**6,
                                    max_denominator=10**4), min_size=1, max_size=20))
def test_apportion_rounds_the_exact_sum_and_moves_no_value_more_than_a_unit(
        values: list[Fraction]) -> None:
    total = round(sum(values))
    parts = apportion(values, total)
    assert sum(parts) == total
    assert all(abs(p - v) < 1 for p, v in zip(parts, values, strict=True))


@settings(max_examples=800, deadline=None)
@given(shares=percentages(), amounts=st.lists(st.integers(-5000, 50000), min_size=1,
                                              max_size=12),
       recoup=st.integers(0, 100000))
def test_recoupment_comes_first_and_every_cent_is_paid(
        shares: list[Decimal], amounts: list[int], recoup: int) -> None:
    payees = [Payee(f"p{i}", s) for i, s in enumerate(shares)]
    split = Split("QZABC2600001", payees, recoup_cents=recoup, recoup_payee="p0",
                  recoup_currency="USD")
    paid_recoup = positive = 0
    for amount in amounts:
        positive += max(amount, 0)
        result = allocate(split, amount, "USD")
        assert result.total() == amount
        assert result.recouped <= split.remaining_recoup()
        if amount > 0 and result.recouped < amount:
            assert split.remaining_recoup() == result.recouped  # fully recouped now
        split.recouped_cents += result.recouped
        paid_recoup += result.recouped
    assert paid_recoup == split.recouped_cents == min(recoup, positive)


def test_shares_must_total_exactly_one_hundred() -> None:
    with pytest.raises(SplitError, match=r"total 99.99%.*adjust by 0.01%"):
        split_from_dict({"payees": [{"payee_id": "a", "share": "33.33"},
                                    {"payee_id": "b", "share": "66.66"}]})


@pytest.mark.parametrize("share", ["0", "-5", "abc", "100.5", "33.333333"])
def test_bad_share_is_refused_with_its_value(share: str) -> None:
    with pytest.raises(SplitError, match="share"):
        split_from_dict({"payees": [{"payee_id": "a", "share": share}]})


def test_recoup_payee_must_be_in_the_split() -> None:
    with pytest.raises(SplitError, match="recoup_payee"):
        split_from_dict({"payees": [{"payee_id": "a", "share": "100"}],
                         "recoup_cents": 500, "recoup_payee": "label"})


def test_unjoined_payee_share_is_held() -> None:
    split = split_from_dict({"payees": [{"payee_id": "a", "share": "50"},
                                        {"payee_id": "b", "share": "50", "joined": False}]})
    shares = allocate(split, 101, "USD").shares
    assert [(s.payee_id, s.cents, s.held) for s in shares] == [("a", 51, False),
                                                               ("b", 50, True)]


def test_refund_is_split_by_percentage_without_recoupment() -> None:
    split = split_from_dict({"payees": [{"payee_id": "a", "share": "25"},
                                        {"payee_id": "b", "share": "75"}],
                             "recoup_cents": 1000, "recoup_payee": "a"})
    result = allocate(split, -100, "USD")
    assert result.recouped == 0
    assert [(s.payee_id, s.cents) for s in result.shares] == [("a", -25), ("b", -75)]


def test_the_unallocated_payee_id_is_reserved() -> None:
    with pytest.raises(SplitError, match="'unallocated' is reserved"):
        split_from_dict({"payees": [{"payee_id": "ada", "share": "50"},
                                    {"payee_id": "unallocated", "share": "50"}]})


@pytest.mark.parametrize("code", ["US$", "usd$", "XAU", "", "EURO"])
def test_a_bad_recoup_currency_is_refused_naming_the_field(code: str) -> None:
    with pytest.raises(SplitError, match="^recoup_currency: "):
        split_from_dict({"payees": [{"payee_id": "a", "share": "100"}], "recoup_cents": 10,
                         "recoup_payee": "a", "recoup_currency": code})


def test_the_recoup_currency_is_stripped_and_recoups() -> None:
    split = split_from_dict({"payees": [{"payee_id": "a", "share": "50"},
                                        {"payee_id": "b", "share": "50"}],
                             "recoup_cents": 100, "recoup_payee": "a", "recoup_currency": " eur "})
    assert split.recoup_currency == "EUR"
    assert allocate(split, 100, "EUR").recouped == 100


def test_joined_left_out_keeps_a_known_payees_state() -> None:
    raw = {"payees": [{"payee_id": "a", "share": "40"}, {"payee_id": "b", "share": "30"},
                      {"payee_id": "c", "share": "20", "joined": None},
                      {"payee_id": "d", "share": "10", "joined": True}]}
    split = split_from_dict(raw, {"a": True, "b": False, "c": False, "d": False})
    assert [p.joined for p in split.payees] == [True, False, False, True]
    assert [p.joined for p in split_from_dict(raw).payees] == [True, True, True, True]
    with pytest.raises(SplitError, match=r"payees\[0\]: joined must be true or false"):
        split_from_dict({"payees": [{"payee_id": "a", "share": "100", "joined": "false"}]})
