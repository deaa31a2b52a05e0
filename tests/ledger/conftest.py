"""Fixtures of the ledger tests: a provider organization's and the platform's accounts in EUR."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _ledger_checks_only(ledger_checks_only: None) -> None:
    """The tests here write journal entries with no business rows behind them (tests/conftest.py)."""


@dataclass(frozen=True)
class Books:
    clearing: Any
    fees: Any
    payable: Any
    paid_out: Any
    refunds: Any
    organization: Any


@pytest.fixture
def books(db: Any) -> Books:
    from exchange.ledger.services import account_for
    from marketplace.accounts.models import Organization

    organization = Organization.objects.create(slug="ledger-org", name="Ledger Org", is_provider=True)
    return Books(
        clearing=account_for("stripe_clearing", "EUR"),
        fees=account_for("platform_fee_revenue", "EUR"),
        payable=account_for("provider_payable", "EUR", organization),
        paid_out=account_for("provider_paid_out", "EUR", organization),
        refunds=account_for("refunds", "EUR"),
        organization=organization,
    )


@pytest.fixture
def sale(books: Books) -> Any:
    """Post one sale of 10.00 EUR: 8.00 to the provider, 2.00 platform fee; returns a poster for more."""
    from exchange.ledger.services import Posting, post_transaction

    def post(number: int = 1, amount: int = 1000, fee: int = 200) -> Any:
        return post_transaction(
            idempotency_key=f"sale:{number}",
            kind="sale",
            postings=[
                Posting(books.clearing, amount),
                Posting(books.payable, -(amount - fee)),
                Posting(books.fees, -fee),
            ],
            refs={"order": f"ord_{number}", "payment_intent": f"pi_{number}"},
        )

    return post
