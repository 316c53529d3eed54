"""Earnings statements: CSV parsing and allocation that reconciles to the minor unit."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from business.distribution.currency import to_minor_units
from business.distribution.errors import StatementError
from business.distribution.splits import Payee, Split
from business.distribution.statements import (
    REVERSAL,
    UNALLOCATED,
    HeldAmount,
    allocate_held,
    allocate_statement,
    parse_statement,
    statement_fingerprint,
)

ISRCS = [f"QZABC26{i:05d}" for i in range(6)]
HEADER = "store,territory,isrc,units,amount,currency\n"
#: ISO 4217 minor-unit decimals of the currencies the property test draws.
DECIMALS = {"USD": 2, "EUR": 2, "JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3, "CLF": 4}


def _minor(amount: Decimal, currency: str) -> int:
    scaled = amount * Decimal(10) ** DECIMALS[currency]
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _splits(shares: list[list[int]], recoup: int) -> dict[str, Split]:
    out = {}
    for isrc, weights in zip(ISRCS[:4], shares, strict=False):
        total = sum(weights)
        percents = [Decimal(w * 10000 // total) / 100 for w in weights]
        percents[-1] += 100 - sum(percents)
        payees = [Payee(f"p{i}", p, joined=i % 2 == 0) for i, p in enumerate(percents)]
        out[isrc] = Split(isrc, payees, recoup, "p0", "USD")
    return out


lines_strategy = st.lists(
    st.tuples(st.sampled_from(["Spotify", "Apple", "Deezer"]), st.sampled_from(["US", "DE"]),
              st.sampled_from(ISRCS), st.integers(0, 10**6),
              st.decimals(min_value=Decimal("-50"), max_value=Decimal("5000"), places=6,
                          allow_nan=False, allow_infinity=False),
              st.sampled_from(sorted(DECIMALS))),
    min_size=1, max_size=60)


@settings(max_examples=400, deadline=None)
@given(rows=lines_strategy,
       shares=st.lists(st.lists(st.integers(1, 100), min_size=1, max_size=5), min_size=4,
                       max_size=4),
       recoup=st.integers(0, 20000))
def test_statement_reconciles_to_the_cent(rows: list[tuple], shares: list[list[int]],
                                          recoup: int) -> None:
    text = HEADER + "".join(f"{s},{t},{i},{u},{a},{c}\n" for s, t, i, u, a, c in rows)
    lines = parse_statement(text)
    splits = _splits(shares, recoup)
    result = allocate_statement(lines, splits)
    for currency in {r[5] for r in rows}:
        exact = sum((r[4] for r in rows if r[5] == currency), Decimal(0))
        assert result.totals[currency] == _minor(exact, currency)
    assert result.ledger_totals() == result.totals
    for recouped in result.recouped.values():
        assert 0 < recouped <= recoup
    for entry in result.entries:
        if entry.isrc not in splits:
            assert entry.payee_id == UNALLOCATED and entry.held
        else:
            assert entry.held == (int(entry.payee_id[1:]) % 2 == 1)
    assert splits[ISRCS[0]].recouped_cents == 0  # input state is not changed


def test_bad_rows_are_all_reported_and_nothing_is_imported() -> None:
    text = HEADER + ("Spotify,US,QZABC2600001,1,0.5,USD\n"
                     "Spotify,US,NOTANISRC,1,0.5,USD\n"
                     "Spotify,US,QZABC2600001,x,0.5,USD\n"
                     "Spotify,US,QZABC2600001,1,lots,USD\n"
                     "Spotify,US,QZABC2600001,1,0.5,XYZ\n")
    with pytest.raises(StatementError) as info:
        parse_statement(text)
    message = str(info.value)
    assert "4 bad rows" in message
    for line in (3, 4, 5, 6):
        assert f"line {line}:" in message


def test_missing_columns_are_named() -> None:
    with pytest.raises(StatementError, match=r"lacks columns \['currency'\]"):
        parse_statement("store,territory,isrc,units,amount\nS,US,QZABC2600001,1,1\n")


@pytest.mark.parametrize(("amount", "currency", "units"), [
    ("1.23", "USD", 123), ("1000", "JPY", 1000), ("1000.5", "JPY", 1000),
    ("1001.5", "JPY", 1002), ("1.234", "KWD", 1234), ("0.0005", "BHD", 0),
    ("0.0015", "BHD", 2), ("1.2345", "CLF", 12345), ("7", "krw", 7)])
def test_amounts_are_rounded_to_each_currencys_minor_unit(amount: str, currency: str,
                                                           units: int) -> None:
    assert to_minor_units(Decimal(amount), currency) == units


def test_statement_totals_use_iso_4217_minor_units() -> None:
    text = HEADER + ("Spotify,JP,QZABC2600001,10,1234.4,JPY\n"
                     "Spotify,KW,QZABC2600001,10,1.2345,KWD\n"
                     "Spotify,US,QZABC2600001,10,1.2345,USD\n")
    split = Split(ISRCS[1], [Payee("a", Decimal("50")), Payee("b", Decimal("50"))])
    result = allocate_statement(parse_statement(text), {ISRCS[1]: split})
    assert result.totals == {"JPY": 1234, "KWD": 1234, "USD": 123}  # yen, fils, cents
    shares = {(e.currency, e.payee_id): e.cents for e in result.entries}
    assert shares == {("JPY", "a"): 617, ("JPY", "b"): 617, ("KWD", "a"): 617,
                      ("KWD", "b"): 617, ("USD", "a"): 62, ("USD", "b"): 61}


def test_currencies_without_a_minor_unit_are_refused() -> None:
    with pytest.raises(StatementError, match="XAU has no minor unit"):
        parse_statement(HEADER + "Spotify,US,QZABC2600001,1,1.5,XAU\n")


def test_sub_cent_amounts_add_up_before_rounding() -> None:
    text = HEADER + "".join("Spotify,US,QZABC2600001,1,0.0033,USD\n" for _ in range(1000))
    result = allocate_statement(parse_statement(text), {})
    assert result.totals == {"USD": 330}
    assert result.ledger_totals() == {"USD": 330}


@settings(max_examples=300, deadline=None)
@given(statements=st.lists(lines_strategy, min_size=1, max_size=4),
       shares=st.lists(st.lists(st.integers(1, 100), min_size=1, max_size=5), min_size=4,
                       max_size=4),
       recoup=st.integers(0, 20000))
def test_held_money_is_allocated_as_the_imports_would_have_done(
        statements: list[list[tuple]], shares: list[list[int]], recoup: int) -> None:
    isrc = ISRCS[0]
    split = _splits(shares, recoup)[isrc]
    texts = [HEADER + "".join(f"{s},{t},{i},{u},{a},{c}\n" for s, t, i, u, a, c in rows)
             for rows in statements]
    held, expected, remaining = [], [], {isrc: split}
    for n, text in enumerate(texts):
        lines = parse_statement(text)
        before = allocate_statement(lines, {})
        held += [HeldAmount(f"s{n}", e.currency, e.cents) for e in before.entries
                 if e.isrc == isrc]
        after = allocate_statement(lines, remaining)
        expected += [(f"s{n}", e) for e in after.entries if e.isrc == isrc]
        used = after.recouped.get(isrc, 0)
        remaining = {isrc: Split(isrc, split.payees, recoup, "p0", "USD",
                                 remaining[isrc].recouped_cents + used)}
    result = allocate_held(held, split)
    assert [(s, e) for s, e in result.entries if e.kind != REVERSAL] == expected
    reversals = [(s, e.currency, -e.cents) for s, e in result.entries if e.kind == REVERSAL]
    assert reversals == [(h.statement_id, h.currency, h.cents) for h in held]
    assert all(e.payee_id == UNALLOCATED and e.held for _, e in result.entries
               if e.kind == REVERSAL)
    assert sum(e.cents for _, e in result.entries) == 0
    assert result.recouped == remaining[isrc].recouped_cents
    assert result.allocated() == {c: sum(h.cents for h in held if h.currency == c)
                                  for c in sorted({h.currency for h in held})}


def test_extra_columns_are_part_of_the_fingerprint() -> None:
    """A sale month tells two statements apart; its position, a blank extra column and
    how the standard columns are written do not."""
    def month(value: str) -> str:
        return ("sale_month,store,territory,isrc,units,amount,currency\n"
                f"{value},Spotify,US,{ISRCS[1]},250,1.00,USD\n")
    october, november = (statement_fingerprint(parse_statement(month(m)))
                         for m in ("2026-10", "2026-11"))
    assert october != november
    re_exported = (f"currency,amount,units,isrc,territory,store,note,SALE_MONTH\n"
                   f"usd,1.0,250,{ISRCS[1]},us,Spotify,, 2026-11 \n")
    assert statement_fingerprint(parse_statement(re_exported)) == november
    [line] = parse_statement(re_exported)
    assert line.extra == (("sale_month", "2026-11"),)


@pytest.mark.parametrize("amount", [
    "1E+30", "123456789012345678901234567890.5", "100000000000000000.00", "1000000000000",
    "-1000000000000", "0.0000000000001", "1E-13"])
def test_out_of_range_amounts_are_refused_with_their_line(amount: str) -> None:
    text = HEADER + f"S,US,{ISRCS[1]},1,1.00,USD\nS,US,{ISRCS[1]},1,{amount},USD\n"
    with pytest.raises(StatementError, match=rf"1 bad rows.*line 3: amount '{re.escape(amount)}'"):
        parse_statement(text)


def test_amounts_within_the_bounds_are_kept_exactly() -> None:
    largest = "999999999999.999999999999"
    lines = parse_statement(HEADER + f"S,US,{ISRCS[1]},1,{largest},USD\n"
                            f"S,US,{ISRCS[1]},1,-{largest},USD\n"
                            f"S,US,{ISRCS[1]},1,0.000000000001000,USD\n")
    assert [line.amount for line in lines] == [Decimal(largest), -Decimal(largest),
                                               Decimal("1E-12")]
    assert allocate_statement(lines, {}).totals == {"USD": 0}


def test_a_statement_whose_amounts_total_too_much_in_one_currency_is_refused() -> None:
    text = HEADER + "".join(f"S,US,{ISRCS[1]},1,999999999999,CLF\n" for _ in range(101))
    with pytest.raises(StatementError, match=r"CLF amounts total .* per currency"):
        parse_statement(text)
    parse_statement(text.replace("CLF", "USD", 50))  # no currency above the bound


def test_amounts_that_cannot_be_rounded_are_a_statement_error() -> None:
    with pytest.raises(StatementError, match="out of range"):
        to_minor_units(Decimal("1E+30"), "USD")
