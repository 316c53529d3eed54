"""Royalty splits: exact percentages, recoupment, and largest-remainder cents.

Money is integer cents; percentages are :class:`~decimal.Decimal`; every division
is exact (:class:`~fractions.Fraction`) and rounding happens once, by the
largest-remainder method, so the parts always add up to the whole, to the cent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from business.distribution.currency import exponent
from business.distribution.errors import SplitError, StatementError

HUNDRED = Decimal(100)
#: Percentages may have up to this many decimal places (0.0001 %).
SHARE_PLACES = 4
#: The payee that holds money of tracks without a split; no split may name it.
UNALLOCATED = "unallocated"


def apportion(exact: Sequence[Fraction], total: int) -> list[int]:
    """Whole numbers near ``exact`` that sum to ``total`` (largest remainder).

    Each value is floored, and the units still missing go to the largest
    fractional parts (earlier positions win ties). ``total`` must lie within
    ``len(exact)`` units above the sum of the floors.
    """
    floors = [math.floor(x) for x in exact]
    missing = total - sum(floors)
    if missing < 0 or missing > len(exact):
        raise SplitError(f"cannot apportion {total} over {list(map(str, exact))}")
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:missing]:
        floors[i] += 1
    return floors


def largest_remainder(total: int, weights: Sequence[Decimal | Fraction | int]) -> list[int]:
    """``total`` cents split in proportion to non-negative ``weights``, summing exactly."""
    fractions = [Fraction(w) for w in weights]
    whole = sum(fractions)
    if not fractions or whole <= 0 or any(w < 0 for w in fractions):
        raise SplitError(f"weights must be non-negative with a positive sum, got {weights!r}")
    return apportion([Fraction(total) * w / whole for w in fractions], total)


@dataclass
class Payee:
    """Who receives a share; an unjoined payee's money is held until they join."""

    payee_id: str
    share: Decimal
    name: str = ""
    joined: bool = True


@dataclass
class Split:
    """The split of one track (by ISRC), with optional recoupment."""

    isrc: str
    payees: list[Payee]
    recoup_cents: int = 0
    recoup_payee: str = ""
    recoup_currency: str = "USD"
    recouped_cents: int = 0

    def remaining_recoup(self) -> int:
        """Cents still to recoup before the percentages apply."""
        return max(0, self.recoup_cents - self.recouped_cents)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (shares as strings)."""
        data = asdict(self)
        for payee in data["payees"]:
            payee["share"] = str(payee["share"])
        return data


def parse_share(value: Any, where: str) -> Decimal:
    """A percentage as Decimal; SplitError when it is not a number in (0, 100]."""
    try:
        share = Decimal(str(value))
    except InvalidOperation as exc:
        raise SplitError(f"{where}: share {value!r} is not a number; write e.g. '33.33'") from exc
    if not share.is_finite() or share <= 0 or share > HUNDRED:
        raise SplitError(f"{where}: share {value!r} must be above 0 and at most 100")
    if -share.as_tuple().exponent > SHARE_PLACES:
        raise SplitError(f"{where}: share {value!r} has more than {SHARE_PLACES} decimals")
    return share


def split_from_dict(raw: dict[str, Any], known: Mapping[str, bool] | None = None) -> Split:
    """A validated :class:`Split` from a dict (shares must total exactly 100).

    A payee whose ``joined`` is left out (or null) keeps their state in ``known``
    (payee id to joined); a payee ``known`` lacks has joined.
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("payees"), list):
        raise SplitError("a split needs 'payees': [{payee_id, share, name?, joined?}]")
    payees = []
    for i, item in enumerate(raw["payees"]):
        if not isinstance(item, dict) or not item.get("payee_id"):
            raise SplitError(f"payees[{i}] needs a 'payee_id'")
        payee_id, joined = str(item["payee_id"]), item.get("joined")
        if joined is None:
            joined = (known or {}).get(payee_id, True)
        elif not isinstance(joined, bool):
            raise SplitError(f"payees[{i}]: joined must be true or false, got {joined!r}")
        payees.append(Payee(payee_id, parse_share(item.get("share"), f"payees[{i}]"),
                            str(item.get("name", "")), joined))
    recoup = raw.get("recoup_cents", 0)
    if not isinstance(recoup, int) or recoup < 0:
        raise SplitError(f"recoup_cents must be a whole number of cents >= 0, got {recoup!r}")
    split = Split(isrc=str(raw.get("isrc", "")), payees=payees, recoup_cents=recoup,
                  recoup_payee=str(raw.get("recoup_payee", "")),
                  recoup_currency=_recoup_currency(raw.get("recoup_currency", "USD")),
                  recouped_cents=int(raw.get("recouped_cents", 0)))
    validate_split(split)
    return split


def _recoup_currency(value: Any) -> str:
    """``value`` as a payable ISO 4217 code (stripped, upper case); SplitError otherwise."""
    code = str(value).strip().upper()
    try:
        exponent(code)
    except StatementError as exc:
        raise SplitError(f"recoup_currency: {exc}") from exc
    return code


def validate_split(split: Split) -> None:
    """SplitError unless shares total exactly 100% over distinct payees."""
    if not split.payees:
        raise SplitError("a split needs at least one payee")
    ids = [p.payee_id for p in split.payees]
    if len(set(ids)) != len(ids):
        raise SplitError(f"payees are listed more than once: {sorted(ids)}; merge their shares")
    if UNALLOCATED in ids:
        raise SplitError(f"payee_id {UNALLOCATED!r} is reserved for money of tracks without a "
                         "split; choose another id")
    total = sum((p.share for p in split.payees), Decimal(0))
    if total != HUNDRED:
        raise SplitError(f"shares total {total}%, they must total exactly 100% "
                         f"(adjust by {HUNDRED - total}%)")
    if split.recoup_cents and split.recoup_payee not in ids:
        raise SplitError(f"recoup_payee {split.recoup_payee!r} must be one of the payees {ids}")


@dataclass(frozen=True)
class Share:
    """Cents of one allocation to one payee."""

    payee_id: str
    cents: int
    kind: str  # "recoup" or "share"
    held: bool = False


@dataclass
class Allocation:
    """The result of splitting an amount: shares and the recoupment it used."""

    shares: list[Share] = field(default_factory=list)
    recouped: int = 0

    def total(self) -> int:
        """Sum of all shares, in cents."""
        return sum(s.cents for s in self.shares)


def allocate(split: Split, cents: int, currency: str) -> Allocation:
    """Split ``cents`` earned in ``currency``: recoupment first, then percentages.

    Only positive earnings in the recoupment currency recoup; negative amounts
    (refunds) are split by percentage. The shares always sum to ``cents``.
    """
    result = Allocation()
    rest = cents
    if cents > 0 and currency.upper() == split.recoup_currency and split.remaining_recoup():
        result.recouped = min(split.remaining_recoup(), cents)
        rest -= result.recouped
        recouper = next(p for p in split.payees if p.payee_id == split.recoup_payee)
        result.shares.append(Share(recouper.payee_id, result.recouped, "recoup",
                                   not recouper.joined))
    if rest:
        parts = largest_remainder(rest, [p.share for p in split.payees])
        for payee, part in zip(split.payees, parts, strict=True):
            if part:
                result.shares.append(Share(payee.payee_id, part, "share", not payee.joined))
    return result
