"""Refunds (staff, buyer policy, Stripe dashboard) and provider payouts, each reversed or moved in the ledger."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from orders_support import ledger_balance, ledger_kinds

from exchange.orders import payouts, services
from exchange.orders.models import Order, Payout, PayoutAccount, Refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_order(stripe_local: str, version: Any, buyer: Any, api_client_for: Any) -> Order:
    client = api_client_for(buyer)
    order_id = client.post("/api/v1/orders/", {"version": version.pk, "license": "standard"}).json()["id"]
    assert (
        client.post(f"/api/v1/orders/{order_id}/confirm/", {"payment_method": "pm_card_visa"}).json()[
            "status"
        ]
        == "paid"
    )
    return Order.objects.get(pk=order_id)


def test_partial_refunds_reverse_fee_and_payable_in_proportion_and_the_last_revokes(
    paid_order: Order, provider: Any
) -> None:
    organization = paid_order.seller
    first = services.refund_order(paid_order, amount_minor=999, initiator="staff", requested_by=provider)
    assert (first.status, first.platform_fee_minor, first.provider_share_minor) == ("succeeded", 200, 799)
    paid_order.refresh_from_db()
    assert (paid_order.status, paid_order.refunded_minor, paid_order.entitlement.status) == (
        "paid",
        999,
        "active",
    )
    second = services.refund_order(paid_order, amount_minor=None, initiator="staff", requested_by=provider)
    assert (second.amount_minor, second.platform_fee_minor, second.provider_share_minor) == (1501, 300, 1201)
    paid_order.refresh_from_db()
    assert (paid_order.status, paid_order.refunded_minor, paid_order.entitlement.status) == (
        "refunded",
        2500,
        "revoked",
    )
    assert ledger_balance("stripe_clearing") == 0
    assert ledger_balance("platform_fee_revenue") == 0
    assert ledger_balance("provider_payable", organization=organization) == 0
    assert ledger_kinds("order", paid_order.id) == ["sale", "refund", "refund"]
    assert ledger_kinds("entitlement", paid_order.entitlement_id) == [
        "entitlement.granted",
        "entitlement.revoked",
    ]


@pytest.mark.parametrize("amount", [0, 2501, -5])
def test_refund_outside_the_refundable_amount_changes_nothing(
    paid_order: Order, provider: Any, amount: int
) -> None:
    with pytest.raises(services.OrderError) as refused:
        services.refund_order(paid_order, amount_minor=amount, initiator="staff", requested_by=provider)
    assert refused.value.code == "invalid_amount"
    assert Refund.objects.count() == 0
    assert ledger_balance("stripe_clearing") == 2500


def test_buyer_refund_within_policy(paid_order: Order, buyer: Any, api_client_for: Any) -> None:
    response = api_client_for(buyer).post(
        f"/api/v1/orders/{paid_order.id}/refund/", {"reason": "wrong table"}
    )
    assert response.status_code == 201
    assert (response.json()["status"], response.json()["amount_minor"]) == ("succeeded", 2500)
    paid_order.refresh_from_db()
    assert (paid_order.status, paid_order.entitlement.status) == ("refunded", "revoked")


@pytest.mark.parametrize("case", ["too_late", "downloaded", "stranger"])
def test_buyer_refund_outside_policy_is_refused(
    paid_order: Order, buyer: Any, user_factory: Any, api_client_for: Any, case: str
) -> None:
    from exchange.ledger.services import record_event

    who = buyer
    if case == "too_late":
        Order.objects.filter(pk=paid_order.pk).update(paid_at=paid_order.paid_at - timedelta(days=15))
    elif case == "downloaded":
        record_event(
            idempotency_key="download:1", kind="download", refs={"entitlement": paid_order.entitlement_id}
        )
    else:
        who = user_factory("stranger")
    response = api_client_for(who).post(f"/api/v1/orders/{paid_order.id}/refund/", {})
    assert response.status_code == (404 if case == "stranger" else 409)
    assert Refund.objects.count() == 0
    paid_order.refresh_from_db()
    assert (paid_order.status, paid_order.entitlement.status) == ("paid", "active")


def test_refund_made_in_the_stripe_dashboard_arrives_as_a_signed_event(
    paid_order: Order, post_event: Any
) -> None:
    refund = {
        "id": "re_dashboard",
        "object": "refund",
        "amount": 500,
        "currency": "usd",
        "status": "succeeded",
        "payment_intent": paid_order.payment.stripe_payment_intent_id,
        "metadata": {},
    }
    charge = {"id": "ch_1", "object": "charge", "refunds": {"object": "list", "data": [refund]}}
    first = post_event("charge.refunded", charge)
    again = post_event("refund.updated", refund)
    assert (first.json()["status"], again.json()["status"]) == ("processed", "processed")
    stored = Refund.objects.get()
    assert (stored.initiator, stored.amount_minor, stored.stripe_refund_id) == ("stripe", 500, "re_dashboard")
    paid_order.refresh_from_db()
    assert paid_order.refunded_minor == 500
    assert ledger_balance("stripe_clearing") == 2000


def test_payout_run_transfers_the_payable_once_and_a_reversal_restores_it(
    paid_order: Order, localstripe_url: str, post_event: Any
) -> None:
    organization = paid_order.seller
    PayoutAccount.objects.create(organization=organization, stripe_account_id="acct_provider1")
    run = payouts.start_payout_run()
    payout = run.payouts.get()
    assert (payout.status, payout.amount_minor, payout.currency) == ("paid", 2000, "USD")
    assert payout.stripe_transfer_id.startswith("tr_")
    assert ledger_balance("provider_paid_out", organization=organization) == 2000
    assert ledger_balance("stripe_clearing") == 500
    assert payouts.start_payout_run().payouts.count() == 0
    reversal = {
        "id": payout.stripe_transfer_id,
        "object": "transfer",
        "amount": 2000,
        "amount_reversed": 2000,
    }
    response = post_event("transfer.reversed", reversal)
    assert response.json()["status"] == "processed"
    payout.refresh_from_db()
    assert payout.status == "reversed"
    assert ledger_balance("provider_paid_out", organization=organization) == 0
    assert [b.amount_minor for b in payouts.payable_balances(organization)] == [2000]


def test_payout_waits_while_stripe_is_unreachable_and_retries_with_the_same_key(
    paid_order: Order, settings: Any, localstripe_url: str
) -> None:
    PayoutAccount.objects.create(organization=paid_order.seller, stripe_account_id="acct_provider1")
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    payout = payouts.start_payout_run().payouts.get()
    assert (payout.status, payout.stripe_transfer_id) == ("pending", None)
    assert ledger_balance("provider_paid_out", organization=paid_order.seller) == 0
    assert payouts.start_payout_run().payouts.count() == 0
    settings.STRIPE_API_BASE = localstripe_url
    assert payouts.retry_pending_payouts() == 1
    assert Payout.objects.get().status == "paid"
    assert ledger_balance("provider_paid_out", organization=paid_order.seller) == 2000


def test_refund_after_payout_is_borne_by_the_platform(paid_order: Order, provider: Any) -> None:
    PayoutAccount.objects.create(organization=paid_order.seller, stripe_account_id="acct_provider1")
    payouts.start_payout_run()
    refund = services.refund_order(paid_order, amount_minor=None, initiator="staff", requested_by=provider)
    assert (refund.status, refund.provider_share_minor, refund.platform_covered_minor) == (
        "succeeded",
        2000,
        2000,
    )
    assert ledger_balance("refunds") == 2000
    assert ledger_balance("stripe_clearing") == -2000
    assert [b.amount_minor for b in payouts.payable_balances(paid_order.seller)] == [0]
