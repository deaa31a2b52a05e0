"""Invariant repair and reconciliation against localstripe."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from orders_support import ledger_balance

from exchange.delivery.models import Entitlement
from exchange.delivery.services import grant_entitlement
from exchange.orders import stripe_gateway
from exchange.orders.models import Order
from exchange.orders.repair import repair_payment_invariants

pytestmark = pytest.mark.django_db


def test_payment_captured_at_stripe_but_never_seen_is_applied(
    stripe_local: str, version: Any, buyer: Any, api_client_for: Any
) -> None:
    order_id = (
        api_client_for(buyer)
        .post("/api/v1/orders/", {"version": version.pk, "license": "standard"})
        .json()["id"]
    )
    order = Order.objects.get(pk=order_id)
    stripe_gateway.confirm_locally(order.payment.stripe_payment_intent_id, "pm_card_visa")
    Order.objects.filter(pk=order_id).update(created_at=order.created_at - timedelta(minutes=5))
    report = repair_payment_invariants()
    assert (report.payments_applied, report.total) == (1, 1)
    order.refresh_from_db()
    assert (order.status, order.entitlement.status) == ("paid", "active")
    assert ledger_balance("stripe_clearing") == 2500
    assert repair_payment_invariants().total == 0


def test_entitlement_without_a_captured_payment_is_revoked(
    stripe_local: str, version: Any, buyer: Any, api_client_for: Any
) -> None:
    order_id = (
        api_client_for(buyer)
        .post("/api/v1/orders/", {"version": version.pk, "license": "standard"})
        .json()["id"]
    )
    entitlement = grant_entitlement(
        buyer=buyer, version=version, license_code="standard", source=f"order:{order_id}"
    )
    report = repair_payment_invariants()
    assert report.entitlements_revoked == 1
    entitlement.refresh_from_db()
    assert entitlement.status == "revoked"
    assert Entitlement.objects.filter(status="active").count() == 0


def test_reconcile_matches_every_intent_and_refund_to_one_transaction(
    stripe_local: str, version: Any, buyer: Any, api_client_for: Any, capsys: Any
) -> None:
    from exchange.orders import services

    client = api_client_for(buyer)
    order_id = client.post("/api/v1/orders/", {"version": version.pk, "license": "standard"}).json()["id"]
    client.post(f"/api/v1/orders/{order_id}/confirm/", {"payment_method": "pm_card_visa"})
    services.refund_order(
        Order.objects.get(pk=order_id), amount_minor=100, initiator="staff", requested_by=None
    )
    call_command("reconcile_payments")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[:-1]] == [["ok", "payment_intent"], ["ok", "refund"]]
    assert lines[-1] == "2 Stripe objects, 0 not matched"
    stray = stripe_gateway.create_payment_intent(
        amount_minor=700, currency="USD", idempotency_key="stray", metadata={}
    )
    stripe_gateway.confirm_locally(stray.id, "pm_card_visa")
    with pytest.raises(SystemExit) as failed:
        call_command("reconcile_payments")
    assert failed.value.code == 1
    assert "3 Stripe objects, 1 not matched" in capsys.readouterr().out
