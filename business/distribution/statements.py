"""Earnings statements: CSV parsing and exact allocation to payees' ledger entries.

A statement is CSV with the header ``store,territory,isrc,units,amount,currency``.
Per currency, the exact (decimal) statement total is rounded once to the
currency's minor unit (ISO 4217: cents for USD, whole yen for JPY, fils for KWD;
see :mod:`business.distribution.currency`); that total is apportioned over tracks
by largest remainder, then each track's units are split by its
:class:`~business.distribution.splits.Split`. Lines whose ISRC has no split go to
the ``unallocated`` payee (held), so the ledger always reconciles with the
statement to the minor unit. "Cents" below means minor units.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from business.distribution.currency import exponent, to_minor_units
from business.distribution.errors import StatementError
from business.distribution.identifiers import IdentifierError, normalize_isrc
from business.distribution.splits import Split, allocate, apportion

COLUMNS = ("store", "territory", "isrc", "units", "amount", "currency")
UNALLOCATED = "unallocated"
MAX_ERRORS_SHOWN = 10


@dataclass(frozen=True)
class StatementLine:
    """One row of an earnings statement."""

    store: str
    territory: str
    isrc: str
    units: int
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class LedgerEntry:
    """Cents credited to one payee for one track in one currency."""

    isrc: str
    payee_id: str
    currency: str
    cents: int
    kind: str  # "share", "recoup" or "unallocated"
    held: bool


@dataclass
class StatementAllocation:
    """Ledger entries of a statement, its totals, and recoupment used per track."""

    entries: list[LedgerEntry] = field(default_factory=list)
    totals: dict[str, int] = field(default_factory=dict)
    recouped: dict[str, int] = field(default_factory=dict)

    def ledger_totals(self) -> dict[str, int]:
        """Sum of the entries per currency (equals ``totals`` by construction)."""
        sums: dict[str, int] = defaultdict(int)
        for entry in self.entries:
            sums[entry.currency] += entry.cents
        return {c: sums.get(c, 0) for c in self.totals}


def parse_statement(text: str) -> list[StatementLine]:
    """Rows of a statement CSV; StatementError listing every bad row (nothing imported)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise StatementError(f"statement CSV lacks columns {missing}; the header must be "
                             f"{','.join(COLUMNS)}")
    reader.fieldnames = header
    lines, errors = [], []
    for number, row in enumerate(reader, start=2):
        try:
            lines.append(_parse_row(row))
        except StatementError as exc:
            errors.append(f"line {number}: {exc}")
    if errors:
        more = len(errors) - MAX_ERRORS_SHOWN
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise StatementError(f"statement has {len(errors)} bad rows, nothing imported: {shown}")
    return lines


def _parse_row(row: Mapping[str, str | None]) -> StatementLine:
    values = {k: (row.get(k) or "").strip() for k in COLUMNS}
    try:
        isrc = normalize_isrc(values["isrc"])
    except IdentifierError as exc:
        raise StatementError(str(exc)) from exc
    try:
        units = int(values["units"] or 0)
    except ValueError as exc:
        raise StatementError(f"units {values['units']!r} is not a whole number") from exc
    try:
        amount = Decimal(values["amount"])
    except InvalidOperation as exc:
        raise StatementError(f"amount {values['amount']!r} is not a number like 12.3456") \
            from exc
    if not amount.is_finite():
        raise StatementError(f"amount {values['amount']!r} is not a finite number")
    currency = values["currency"].upper()
    exponent(values["currency"])  # a payable ISO 4217 code, or StatementError
    return StatementLine(values["store"], values["territory"].upper(), isrc, units, amount,
                         currency)


def allocate_statement(lines: list[StatementLine], splits: Mapping[str, Split]
                       ) -> StatementAllocation:
    """Ledger entries for ``lines``; recoupment state is read from ``splits``, not changed."""
    result = StatementAllocation()
    exact: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for line in lines:
        exact[line.currency][line.isrc] += line.amount
    remaining = {isrc: split.remaining_recoup() for isrc, split in splits.items()}
    for currency in sorted(exact):
        per_track = exact[currency]
        isrcs = sorted(per_track)
        total = to_minor_units(sum(per_track.values(), Decimal(0)), currency)
        result.totals[currency] = total
        scale = 10 ** exponent(currency)
        cents = apportion([Fraction(per_track[i]) * scale for i in isrcs], total)
        for isrc, track_cents in zip(isrcs, cents, strict=True):
            if not track_cents:
                continue
            split = splits.get(isrc)
            if split is None:
                result.entries.append(LedgerEntry(isrc, UNALLOCATED, currency, track_cents,
                                                  "unallocated", True))
                continue
            state = Split(split.isrc, split.payees, split.recoup_cents, split.recoup_payee,
                          split.recoup_currency, split.recoup_cents - remaining[isrc])
            allocation = allocate(state, track_cents, currency)
            remaining[isrc] -= allocation.recouped
            if allocation.recouped:
                result.recouped[isrc] = result.recouped.get(isrc, 0) + allocation.recouped
            for share in allocation.shares:
                result.entries.append(LedgerEntry(isrc, share.payee_id, currency, share.cents,
                                                  share.kind, share.held))
    return result
