"""Money as integer minor units of an ISO 4217 currency. Pure: standard library only.

Amounts are always ``int`` counts of the currency's minor unit (cents for EUR, yen for JPY, fils for KWD).
``Decimal`` appears only for rates, and a rate meets an amount in one place, :func:`round_minor`, which
rounds once, half to even. Splits and allocations return parts that always sum exactly to the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

# ISO 4217 minor-unit exponents of the currencies that deviate from 2 (list of 2025 in effect).
_EXPONENT_EXCEPTIONS = {
    **dict.fromkeys(
        [
            "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
            "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
        ],
        0,
    ),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
    "CLF": 4,
    "UYW": 4,
}  # fmt: skip

# Active ISO 4217 codes of currencies with a minor unit (precious metals, test and fund codes without one
# are left out: they cannot be priced in minor units).
_ISO_4217_CODES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
    CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL
    GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD
    KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO
    NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD
    SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV
    WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()
)

_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def currency_exponent(currency: str) -> int:
    """Return the ISO 4217 minor-unit exponent (EUR 2, JPY 0, KWD 3); raises ValueError for an unknown code."""
    validate_currency(currency)
    return _EXPONENT_EXCEPTIONS.get(currency, 2)


def validate_currency(currency: str) -> None:
    """Raise ValueError unless ``currency`` is an active ISO 4217 code written as three uppercase letters."""
    if (
        not isinstance(currency, str)
        or len(currency) != 3
        or not currency.isascii()
        or not currency.isupper()
    ):
        raise ValueError(f"a currency is three uppercase ISO 4217 letters, got {currency!r}")
    if currency not in _ISO_4217_CODES:
        raise ValueError(f"{currency!r} is not an ISO 4217 currency with a minor unit")


def _check_amount(amount_minor: int) -> None:
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool):
        raise TypeError(f"amounts are integers of minor units, got {type(amount_minor).__name__}")


@dataclass(frozen=True, order=False)
class Money:
    """An exact amount: ``amount_minor`` integer minor units of ``currency`` (ISO 4217)."""

    amount_minor: int
    currency: str

    def __post_init__(self) -> None:
        _check_amount(self.amount_minor)
        validate_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Return nothing of ``currency``."""
        return cls(0, currency)

    def _same_currency(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount_minor + self._same_currency(other).amount_minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount_minor - self._same_currency(other).amount_minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount_minor, self.currency)

    def to_decimal(self) -> Decimal:
        """Return the amount in major units, exactly (``Money(1999, "EUR")`` → ``Decimal("19.99")``)."""
        return Decimal(self.amount_minor).scaleb(-currency_exponent(self.currency))


def round_minor(value: Decimal) -> int:
    """Round a Decimal count of minor units to an integer, half to even. The one rounding place for money."""
    if not isinstance(value, Decimal) or not value.is_finite():
        raise ValueError(f"expected a finite Decimal, got {value!r}")
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def _check_rate(rate: Decimal) -> None:
    if not isinstance(rate, Decimal):
        raise TypeError(f"rates are Decimal (never float), got {type(rate).__name__}")
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(1):
        raise ValueError(f"a rate lies between 0 and 1, got {rate}")


def split(amount_minor: int, rate: Decimal) -> tuple[int, int]:
    """Split an amount into ``(fee_minor, rest_minor)`` with ``fee = round_minor(amount × rate)``.

    ``fee_minor + rest_minor == amount_minor`` always; the fee is rounded once, half to even; negative
    amounts (refunds) split symmetrically. ``rate`` is a Decimal in [0, 1].
    """
    _check_amount(amount_minor)
    _check_rate(rate)
    amount = Decimal(amount_minor)
    with localcontext() as context:
        # Enough digits for the product to be exact, so that round_minor is the only rounding.
        context.prec = len(amount.as_tuple().digits) + len(rate.as_tuple().digits) + 2
        exact_fee = amount * rate
    fee_minor = round_minor(exact_fee)
    return fee_minor, amount_minor - fee_minor


def allocate(amount_minor: int, weights: Sequence[int | Decimal]) -> list[int]:
    """Divide an amount in proportion to non-negative ``weights`` by the largest-remainder method.

    Each part is the floor of its exact share, and the leftover minor units go one each to the parts with
    the largest remainders (the earlier part on a tie). The parts sum exactly to ``amount_minor``; a
    negative amount is allocated as the negation of its absolute value's allocation.
    """
    _check_amount(amount_minor)
    if not weights:
        raise ValueError("allocate needs at least one weight")
    scaled: list[Decimal] = []
    for weight in weights:
        if isinstance(weight, bool) or not isinstance(weight, int | Decimal):
            raise TypeError(f"weights are int or Decimal, got {type(weight).__name__}")
        if not Decimal(weight).is_finite() or weight < 0:
            raise ValueError(f"weights are finite and non-negative, got {weight}")
        scaled.append(Decimal(weight))
    # Scale every weight to an integer so that shares and remainders are exact integer arithmetic.
    places = max(0, *(-int(weight.as_tuple().exponent) for weight in scaled))
    integer_weights = [int(weight.scaleb(places)) for weight in scaled]
    total_weight = sum(integer_weights)
    if total_weight == 0:
        raise ValueError("the weights sum to zero")
    if amount_minor < 0:
        return [-part for part in allocate(-amount_minor, weights)]
    parts = [amount_minor * weight // total_weight for weight in integer_weights]
    remainders = [amount_minor * weight % total_weight for weight in integer_weights]
    leftover = amount_minor - sum(parts)
    by_remainder = sorted(range(len(parts)), key=lambda position: (-remainders[position], position))
    for position in by_remainder[:leftover]:
        parts[position] += 1
    return parts


def format_money(money: Money) -> str:
    """Return a display string: ``$1,234.56``, ``-€5.00``, ``¥1,235``, ``CHF 12.50``, ``KWD 1.250``."""
    exponent = currency_exponent(money.currency)
    magnitude = abs(money.to_decimal())
    number = f"{magnitude:,.{exponent}f}"
    sign = "-" if money.amount_minor < 0 else ""
    symbol = _SYMBOLS.get(money.currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{money.currency} {number}"


def refund_split(fee_minor: int, share_minor: int, before_minor: int, amount_minor: int) -> tuple[int, int]:
    """The (fee, provider share) parts of refunding ``amount_minor`` after ``before_minor`` was refunded.

    ``fee_minor`` and ``share_minor`` are the sale's split in integer minor units. Allocating cumulative
    totals (two weights: each part is monotone in the total) makes any series of partial refunds add up to
    exactly the sale's fee and provider share.
    """
    weights = [fee_minor, share_minor]
    before = allocate(before_minor, weights)
    after = allocate(before_minor + amount_minor, weights)
    return after[0] - before[0], after[1] - before[1]
