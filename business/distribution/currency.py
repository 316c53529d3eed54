"""ISO 4217 minor units: how many decimals each currency's smallest unit has.

Amounts are stored as whole minor units (cents for USD, yen for JPY, fils for
KWD). pycountry knows the codes but not their minor units, so the exceptions to
two decimals are listed here (ISO 4217 list one, 2024).
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

import pycountry

from business.distribution.errors import StatementError

DEFAULT_EXPONENT = 2
#: Currencies whose minor unit is not 1/100.
EXPONENTS: dict[str, int] = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                     "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}
#: Codes with no minor unit at all (precious metals, funds, testing): not for payments.
NO_MINOR_UNIT = frozenset(("XAG", "XAU", "XBA", "XBB", "XBC", "XBD", "XDR", "XPD", "XPT",
                           "XSU", "XTS", "XUA", "XXX"))


def exponent(currency: str) -> int:
    """Decimals of ``currency``'s minor unit; StatementError for unknown or unit-less codes."""
    code = currency.upper()
    if pycountry.currencies.get(alpha_3=code) is None:
        raise StatementError(f"currency {currency!r} is not an ISO 4217 code like USD")
    if code in NO_MINOR_UNIT:
        raise StatementError(f"currency {code} has no minor unit in ISO 4217 (metals, funds, "
                             "testing); earnings must be in a currency of payment")
    return EXPONENTS.get(code, DEFAULT_EXPONENT)


def to_minor_units(amount: Decimal, currency: str) -> int:
    """``amount`` in whole minor units of ``currency`` (rounded half to even);
    StatementError when it is not finite or has too many digits to round exactly."""
    scaled = amount.scaleb(exponent(currency))
    try:
        return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    except (InvalidOperation, ValueError, OverflowError) as exc:
        raise StatementError(f"amount {amount} {currency} cannot be rounded to minor units; "
                             "it is out of range") from exc
