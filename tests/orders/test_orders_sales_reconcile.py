"""The Sales page (from orders) and the Earnings page (from the ledger) show the same figures, their columns
add up, and they sum to the ledger's balances (issue 17 #7): sales, a partial refund, a payout, then a
refund the platform partly bears."""

from __future__ import annotations

from typing import Any

import pytest
from orders_support import ledger_balance

from exchange.ledger.selectors import provider_summaries
from exchange.orders import payouts, selectors, services
from exchange.orders.models import Order, PayoutAccount

pytestmark = pytest.mark.django_db


def _paid(client: Any, version: Any) -> Order:
    order_id = client.post("/api/v1/orders/", {"version": version.pk, "license": "standard"}).json()["id"]
    confirmed = client.post(f"/api/v1/orders/{order_id}/confirm/", {"payment_method": "pm_card_visa"})
    assert confirmed.json()["status"] == "paid"
    return Order.objects.get(pk=order_id)


def test_sales_and_earnings_reconcile_with_the_ledger(
    stripe_local: str, version: Any, provider: Any, user_factory: Any, api_client_for: Any, client: Any
) -> None:
    first, second, third = (_paid(api_client_for(user_factory(f"buyer-{n}")), version) for n in range(3))
    organization = first.seller
    services.refund_order(first, amount_minor=999, initiator="staff", requested_by=provider)
    PayoutAccount.objects.create(organization=organization, stripe_account_id="acct_provider1")
    payouts.start_payout_run()
    services.refund_order(second, amount_minor=None, initiator="staff", requested_by=provider)
    _paid(api_client_for(user_factory("buyer-late")), version)

    [sales] = selectors.sales_summary(organization)
    [ledger] = provider_summaries(organization)
    # 4 sales of 25.00 (5.00 fee each), 9.99 + 25.00 refunded; the second refund came after the payout.
    assert (sales.gross_minor, sales.refunded_minor) == (10000, 3499)
    assert (ledger.gross_sales_minor, ledger.refunds_minor) == (sales.gross_minor, sales.refunded_minor)
    assert ledger.platform_fees_minor == sales.fees_minor == 4 * 500 - 200 - 500
    assert ledger.covered_minor == sales.covered_minor > 0
    assert ledger.payable_minor == sales.earned_minor
    assert ledger.paid_out_minor == sales.paid_out_minor > 0
    assert ledger.owed_minor == sales.owed_minor
    # The columns add up, and to the ledger's balances.
    assert (
        sales.gross_minor - sales.refunded_minor - sales.fees_minor + sales.covered_minor
        == sales.earned_minor
    )
    assert sales.earned_minor == -ledger_balance("provider_payable", organization=organization)
    assert sales.paid_out_minor == ledger_balance("provider_paid_out", organization=organization)
    assert sales.earned_minor - sales.paid_out_minor == sales.owed_minor
    assert sales.owed_minor == sum(b.amount_minor for b in payouts.payable_balances(organization))
    # Each sale row: price - refunded - fee = share (less what the platform bore); the rows sum to the total.
    rows = list(selectors.sales_of(organization))
    assert sum(row.share_net_minor for row in rows) == sales.earned_minor
    assert sum(row.amount_minor - row.refunded_minor - row.fee_net_minor for row in rows) == (
        sales.earned_minor - sales.covered_minor
    )

    client.force_login(provider)
    sales_page = client.get("/sales/").content.decode()
    earnings_page = client.get("/ledger/earnings/").content.decode()
    for figure in ("100.00 USD", "34.99 USD", f"{sales.earned_minor / 100:,.2f} USD"):
        assert figure in sales_page and figure in earnings_page, figure
    assert "minor units" not in earnings_page
