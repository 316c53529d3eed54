"""Earnings statements: CSV parsing and exact allocation to payees' ledger entries.

A statement is CSV with the header ``store,territory,isrc,units,amount,currency``;
more columns (a sale month, a report id) are kept and make part of what the
statement says (:func:`statement_fingerprint`). An amount must lie below
:data:`MAX_AMOUNT` in absolute value, with at most :data:`MAX_PLACES` decimals.
Per currency, the exact (decimal) statement total is rounded once to the
currency's minor unit (ISO 4217: cents for USD, whole yen for JPY, fils for KWD;
see :mod:`business.distribution.currency`); that total is apportioned over tracks
by largest remainder, then each track's units are split by its
:class:`~business.distribution.splits.Split`. Lines whose ISRC has no split go to
the ``unallocated`` payee (held), so the ledger always reconciles with the
statement to the minor unit; when the track's split is set later,
:func:`allocate_held` moves that money to its payees. "Cents" below means minor units.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from business.distribution.currency import exponent, to_minor_units
from business.distribution.errors import StatementError
from business.distribution.identifiers import IdentifierError, normalize_isrc
from business.distribution.splits import UNALLOCATED, Split, allocate, apportion

COLUMNS = ("store", "territory", "isrc", "units", "amount", "currency")
#: Kind of the entry that takes held money back from ``unallocated`` once a split is set.
REVERSAL = "reversal"
MAX_ERRORS_SHOWN = 10
#: Bound of a line's amount, in major units (exclusive, absolute value).
MAX_AMOUNT = Decimal(10) ** 12
#: Bound of the absolute amounts of one currency summed over a statement: with
#: :data:`MAX_PLACES` it keeps every sum exact in Decimal's 28 digits and the minor
#: units (up to 4 decimals) within a 64-bit integer.
MAX_TOTAL = Decimal(10) ** 14
#: Decimals an amount may have (trailing zeros aside).
MAX_PLACES = 12
_QUANTUM = Decimal(1).scaleb(-MAX_PLACES)


@dataclass(frozen=True)
class StatementLine:
    """One row of an earnings statement."""

    store: str
    territory: str
    isrc: str
    units: int
    amount: Decimal
    currency: str
    #: Values of the columns beyond :data:`COLUMNS` (``(header, value)``, sorted; blanks left out).
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class LedgerEntry:
    """Cents credited to one payee for one track in one currency."""

    isrc: str
    payee_id: str
    currency: str
    cents: int
    kind: str  # "share", "recoup", "unallocated" or "reversal"
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
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        totals[line.currency] += abs(line.amount)
    errors += [f"the {currency} amounts total {total} in absolute value, more than the "
               f"{MAX_TOTAL:,} a statement may hold per currency; split it"
               for currency, total in sorted(totals.items()) if total >= MAX_TOTAL]
    if errors:
        more = len(errors) - MAX_ERRORS_SHOWN
        shown = "; ".join(errors[:MAX_ERRORS_SHOWN]) + (f"; and {more} more" if more > 0 else "")
        raise StatementError(f"statement has {len(errors)} bad rows, nothing imported: {shown}")
    return lines


def _parse_row(row: Mapping[str | None, str | list[str] | None]) -> StatementLine:
    values = {k: _cell(row.get(k)) for k in COLUMNS}
    extra = tuple(sorted((key or "", value) for key, cell in row.items()
                         if key not in COLUMNS and (value := _cell(cell))))
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
    if abs(amount) >= MAX_AMOUNT:
        raise StatementError(f"amount {values['amount']!r} is out of range; amounts must lie "
                             f"below {MAX_AMOUNT:,} in absolute value")
    if amount != amount.quantize(_QUANTUM):
        raise StatementError(f"amount {values['amount']!r} has more than {MAX_PLACES} decimals")
    currency = values["currency"].upper()
    exponent(values["currency"])  # a payable ISO 4217 code, or StatementError
    return StatementLine(values["store"], values["territory"].upper(), isrc, units, amount,
                         currency, extra)


def _cell(value: str | list[str] | None) -> str:
    """A cell's text, stripped (values past the header's last column joined by commas)."""
    return (",".join(value) if isinstance(value, list) else value or "").strip()


def statement_fingerprint(lines: Sequence[StatementLine]) -> str:
    """The SHA-256 of what a statement says, not how its CSV is written: its rows sorted,
    each its columns' values as parsed, by header (so line endings, a BOM, column order,
    spaces, letter case of codes, blank extra cells and ``10.0`` against ``10.00`` leave it
    unchanged). A store's re-export of a statement has the fingerprint of the first
    export; two months that differ only in a sale-month column do not."""
    rows = sorted(sorted((*_standard(line).items(), *line.extra)) for line in lines)
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def legacy_statement_fingerprint(lines: Sequence[StatementLine]) -> str:
    """The fingerprint statements were imported under before extra columns counted: the
    six :data:`COLUMNS` only. Kept to find those imports again."""
    rows = sorted(tuple(_standard(line).values()) for line in lines)
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def _standard(line: StatementLine) -> dict[str, str]:
    """The values of :data:`COLUMNS` of ``line``, normalised, in that order."""
    return {"store": line.store, "territory": line.territory, "isrc": line.isrc,
            "units": str(line.units), "amount": format(line.amount.normalize(), "f"),
            "currency": line.currency}


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
            track = allocate_track(split, currency, track_cents, remaining[isrc])
            remaining[isrc] -= track.recouped
            if track.recouped:
                result.recouped[isrc] = result.recouped.get(isrc, 0) + track.recouped
            result.entries.extend(track.entries)
    return result


@dataclass
class TrackAllocation:
    """Ledger entries of one track's cents in one currency, and the recoupment used."""

    entries: list[LedgerEntry]
    recouped: int


def allocate_track(split: Split, currency: str, cents: int, remaining_recoup: int
                   ) -> TrackAllocation:
    """Entries splitting ``cents`` of ``split``'s track, with ``remaining_recoup`` still due."""
    state = Split(split.isrc, split.payees, split.recoup_cents, split.recoup_payee,
                  split.recoup_currency, split.recoup_cents - remaining_recoup)
    allocation = allocate(state, cents, currency)
    return TrackAllocation([LedgerEntry(split.isrc, s.payee_id, currency, s.cents, s.kind, s.held)
                            for s in allocation.shares], allocation.recouped)


@dataclass(frozen=True)
class HeldAmount:
    """Net cents of one statement held for ``unallocated`` on one track, in one currency."""

    statement_id: str
    currency: str
    cents: int


@dataclass
class HeldAllocation:
    """Held money moved to a split's payees: ``(statement_id, entry)`` pairs and recoupment."""

    entries: list[tuple[str, LedgerEntry]] = field(default_factory=list)
    recouped: int = 0

    def allocated(self) -> dict[str, int]:
        """Cents moved out of ``unallocated`` per currency."""
        sums: dict[str, int] = defaultdict(int)
        for _, entry in self.entries:
            if entry.kind == REVERSAL:
                sums[entry.currency] -= entry.cents
        return dict(sorted(sums.items()))


def allocate_held(held: Sequence[HeldAmount], split: Split) -> HeldAllocation:
    """Allocate money held as unallocated to ``split``, as its statements' imports would have.

    ``held`` is taken in order (import order of the statements, then currency, as
    :func:`allocate_statement` goes), recoupment starting from ``split``'s state.
    Each amount gets a reversing ``unallocated`` entry and the split's entries for
    the same statement, so every statement still reconciles to the minor unit.
    """
    result = HeldAllocation()
    remaining = split.remaining_recoup()
    for amount in held:
        if not amount.cents:
            continue
        track = allocate_track(split, amount.currency, amount.cents, remaining)
        remaining -= track.recouped
        result.recouped += track.recouped
        result.entries.append((amount.statement_id, LedgerEntry(
            split.isrc, UNALLOCATED, amount.currency, -amount.cents, REVERSAL, True)))
        result.entries.extend((amount.statement_id, entry) for entry in track.entries)
    return result
