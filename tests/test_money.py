"""Money in integer minor units: currencies, arithmetic, one-rounding splits, exact allocation."""

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.money import Money, allocate, currency_exponent, format_money, round_minor, split

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [
        ("USD", 2),
        ("EUR", 2),
        ("GBP", 2),
        ("CHF", 2),
        ("JPY", 0),
        ("KRW", 0),
        ("ISK", 0),
        ("KWD", 3),
        ("CLF", 4),
    ],
)
def test_currency_exponents(currency, exponent):
    assert currency_exponent(currency) == exponent


@pytest.mark.parametrize(
    ("currency", "message"),
    [
        ("usd", "three uppercase ISO 4217 letters"),
        ("US", "three uppercase ISO 4217 letters"),
        ("EURO", "three uppercase ISO 4217 letters"),
        ("ÉUR", "three uppercase ISO 4217 letters"),
        ("ABC", "'ABC' is not an ISO 4217 currency with a minor unit"),
        ("XAU", "'XAU' is not an ISO 4217 currency with a minor unit"),
    ],
)
def test_invalid_currencies_are_refused(currency, message):
    with pytest.raises(ValueError, match=message):
        Money(100, currency)


@pytest.mark.parametrize("amount", [1.5, Decimal("1"), "100", True])
def test_amounts_must_be_integers(amount):
    with pytest.raises(TypeError, match="amounts are integers of minor units"):
        Money(amount, "EUR")


def test_arithmetic_within_one_currency():
    assert Money(1999, "EUR") + Money(1, "EUR") == Money(2000, "EUR")
    assert Money(1999, "EUR") - Money(2000, "EUR") == Money(-1, "EUR")
    assert -Money(5, "JPY") == Money(-5, "JPY")
    assert Money.zero("GBP") == Money(0, "GBP")
    assert Money(1999, "EUR").to_decimal() == Decimal("19.99")
    assert Money(1250, "KWD").to_decimal() == Decimal("1.250")


def test_mixing_currencies_is_refused():
    with pytest.raises(ValueError, match="cannot combine EUR with USD"):
        Money(1, "EUR") + Money(1, "USD")
    with pytest.raises(TypeError, match="cannot combine Money with int"):
        Money(1, "EUR") - 1


@pytest.mark.parametrize(
    ("amount", "rate", "expected"),
    [
        (1999, "0.15", (300, 1699)),
        (10, "0.25", (2, 8)),
        (30, "0.25", (8, 22)),
        (-30, "0.25", (-8, -22)),
        (0, "0.2", (0, 0)),
        (1, "1", (1, 0)),
        (999, "0", (0, 999)),
        (
            9_223_372_036_854_775_807,
            "0.123456789012345678901234567",
            (1138687895536349070, 8084684141318426737),
        ),
    ],
)
def test_split_rounds_once_half_to_even(amount, rate, expected):
    assert split(amount, Decimal(rate)) == expected


@pytest.mark.parametrize(
    ("rate", "error", "message"),
    [
        (0.15, TypeError, "rates are Decimal"),
        (Decimal("1.01"), ValueError, "between 0 and 1"),
        (Decimal("-0.1"), ValueError, "between 0 and 1"),
        (Decimal("NaN"), ValueError, "between 0 and 1"),
    ],
)
def test_split_refuses_bad_rates(rate, error, message):
    with pytest.raises(error, match=message):
        split(100, rate)


def test_round_minor_is_half_to_even():
    assert [round_minor(Decimal(value)) for value in ["0.5", "1.5", "2.5", "-0.5", "-1.5", "2.4999"]] == [
        0,
        2,
        2,
        0,
        -2,
        2,
    ]


@given(
    amount=st.integers(min_value=-(10**15), max_value=10**15),
    rate=st.decimals(min_value=0, max_value=1, places=6, allow_nan=False, allow_infinity=False),
)
def test_split_parts_always_sum_to_the_amount(amount, rate):
    fee, rest = split(amount, rate)
    assert fee + rest == amount
    assert abs(Decimal(fee) - Decimal(amount) * rate) <= Decimal("0.5")


@pytest.mark.parametrize(
    ("amount", "weights", "expected"),
    [
        (100, [1, 1, 1], [34, 33, 33]),
        (-100, [1, 1, 1], [-34, -33, -33]),
        (7, [Decimal("0.5"), Decimal("0.25"), Decimal("0.25")], [3, 2, 2]),
        (5, [0, 1], [0, 5]),
        (1, [1, 1], [1, 0]),
        (10, [3], [10]),
    ],
)
def test_allocate_by_largest_remainder(amount, weights, expected):
    assert allocate(amount, weights) == expected


@pytest.mark.parametrize(
    ("weights", "error", "message"),
    [
        ([], ValueError, "at least one weight"),
        ([0, 0], ValueError, "sum to zero"),
        ([1, -1], ValueError, "non-negative"),
        ([0.5, 0.5], TypeError, "weights are int or Decimal"),
    ],
)
def test_allocate_refuses_bad_weights(weights, error, message):
    with pytest.raises(error, match=message):
        allocate(10, weights)


@given(
    amount=st.integers(min_value=-(10**12), max_value=10**12),
    weights=st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12).filter(any),
)
def test_allocation_always_sums_exactly_and_stays_within_one_unit(amount, weights):
    parts = allocate(amount, weights)
    assert sum(parts) == amount
    total = sum(weights)
    for part, weight in zip(parts, weights, strict=True):
        assert abs(Decimal(part) - Decimal(amount) * weight / total) < 1


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(123456, "USD"), "$1,234.56"),
        (Money(-500, "EUR"), "-€5.00"),
        (Money(1235, "JPY"), "¥1,235"),
        (Money(1250, "CHF"), "CHF 12.50"),
        (Money(1250, "KWD"), "KWD 1.250"),
        (Money(5, "GBP"), "£0.05"),
    ],
)
def test_format_money(money, text):
    assert format_money(money) == text


def test_money_core_imports_no_framework():
    probe = (
        "import sys, exchange.money, exchange.ledger.merkle, exchange.ledger.checkpoint;"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in ('django', 'rest_framework', 'celery', 'stripe')))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert completed.stdout.strip() == "[]", completed.stderr
