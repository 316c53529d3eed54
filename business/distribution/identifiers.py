"""Music identifiers: ISRC (track), UPC/EAN (release), ISWC (work), with check digits.

Each ``normalize_*`` returns the compact form or raises :class:`IdentifierError`
whose message says what is wrong and what a valid value looks like.
"""

from __future__ import annotations

import re

from stdnum import ean, isrc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, InvalidFormat, InvalidLength

from business.distribution.errors import DistributionError


class IdentifierError(DistributionError):
    """An identifier is malformed or has a wrong check digit."""


def normalize_isrc(value: str) -> str:
    """The 12-character ISRC (CC-XXX-YY-NNNNN without dashes)."""
    try:
        return isrc.validate(value)
    except InvalidLength as exc:
        raise IdentifierError(
            f"ISRC {value!r} must have 12 characters (e.g. US-S1Z-99-00001)"
        ) from exc
    except InvalidComponent as exc:
        raise IdentifierError(
            f"ISRC {value!r} starts with an unknown country code; use the two-letter "
            "code of the registrant's agency"
        ) from exc
    except InvalidFormat as exc:
        raise IdentifierError(
            f"ISRC {value!r} must be 2 letters, 3 letters/digits, then 7 digits"
        ) from exc


def normalize_upc(value: str) -> str:
    """The UPC-A (12 digits) or EAN-13 of a release, check digit verified."""
    try:
        code = ean.validate(value)
    except InvalidChecksum as exc:
        raise IdentifierError(
            f"UPC/EAN {value!r} has a wrong check digit (last digit should be "
            f"{ean.calc_check_digit(ean.compact(value)[:-1])})"
        ) from exc
    except (InvalidLength, InvalidFormat) as exc:
        raise IdentifierError(
            f"UPC/EAN {value!r} must be 12 (UPC-A) or 13 (EAN-13) digits"
        ) from exc
    if len(code) not in (12, 13):
        raise IdentifierError(f"UPC/EAN {value!r} must be 12 (UPC-A) or 13 (EAN-13) digits")
    return code


_ISWC = re.compile(r"^T(\d{9})(\d)$")


def iswc_check_digit(digits: str) -> str:
    """The ISWC check digit of the 9 work digits."""
    total = 1 + sum((i + 1) * int(d) for i, d in enumerate(digits))
    return str((10 - total % 10) % 10)


def normalize_iswc(value: str) -> str:
    """The compact ISWC (``T`` + 10 digits), check digit verified."""
    compact = re.sub(r"[\s.\-]", "", value).upper()
    match = _ISWC.match(compact)
    if not match:
        raise IdentifierError(f"ISWC {value!r} must look like T-034.524.680-1")
    expected = iswc_check_digit(match.group(1))
    if match.group(2) != expected:
        raise IdentifierError(
            f"ISWC {value!r} has a wrong check digit (last digit should be {expected})"
        )
    return compact


def make_upc(prefix_and_item: str) -> str:
    """A valid UPC-A from its first 11 digits (adds the check digit)."""
    return prefix_and_item + ean.calc_check_digit(prefix_and_item)
