"""Issue 18, item 2 (the sequential half): a full refund closes access *before* Stripe is called, and gives
it back when Stripe refuses the refund; the buyer policy's "no download yet" is read under the locks."""

from __future__ import annotations

from typing import Any

import pytest
from orders_support import ledger_kinds

from exchange.delivery.models import Entitlement
from exchange.orders import services
from exchange.orders import stripe_gateway as gateway
from exchange.orders.models import Order, Refund

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_order(stripe_local: str, version: Any, buyer: Any, api_client_for: Any) -> Order:
    client = api_client_for(buyer)
    order_id = client.post("/api/v1/orders/", {"version": version.pk, "license": "standard"}).json()["id"]
    client.post(f"/api/v1/orders/{order_id}/confirm/", {"payment_method": "pm_card_visa"})
    order = Order.objects.get(pk=order_id)
    assert order.status == "paid"
    return order


def test_access_is_revoked_before_stripe_is_asked_for_the_money(
    paid_order: Order, buyer: Any, api_client_for: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    real = gateway.create_refund

    def spy(**kwargs: Any) -> Any:
        seen.append(Entitlement.objects.get(pk=paid_order.entitlement_id).status)
        return real(**kwargs)

    monkeypatch.setattr(gateway, "create_refund", spy)
    response = api_client_for(buyer).post(f"/api/v1/orders/{paid_order.id}/refund/", {})
    assert response.status_code == 201
    assert seen == ["revoked"]
    assert ledger_kinds("entitlement", paid_order.entitlement_id) == [
        "entitlement.granted",
        "entitlement.revoked",
    ]


def test_a_partial_refund_leaves_access_open(paid_order: Order, provider: Any) -> None:
    services.refund_order(paid_order, amount_minor=500, initiator="staff", requested_by=provider)
    assert Entitlement.objects.get(pk=paid_order.entitlement_id).status == "active"


def test_access_comes_back_when_stripe_refuses_the_refund(
    paid_order: Order, provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(**kwargs: Any) -> Any:
        raise gateway.GatewayError("charge already disputed")

    monkeypatch.setattr(gateway, "create_refund", refuse)
    with pytest.raises(services.OrderError) as refused:
        services.refund_order(paid_order, amount_minor=None, initiator="staff", requested_by=provider)
    assert refused.value.code == "refund_failed"
    paid_order.refresh_from_db()
    assert (paid_order.status, paid_order.refunded_minor) == ("paid", 0)
    assert Refund.objects.get().status == "failed"
    assert Entitlement.objects.get(pk=paid_order.entitlement_id).status == "active"
    assert ledger_kinds("entitlement", paid_order.entitlement_id) == [
        "entitlement.granted",
        "entitlement.revoked",
        "entitlement.reinstated",
    ]
    monkeypatch.undo()
    # A later refund that Stripe accepts revokes (and logs) again.
    services.refund_order(paid_order, amount_minor=None, initiator="staff", requested_by=provider)
    assert Entitlement.objects.get(pk=paid_order.entitlement_id).status == "revoked"
    assert ledger_kinds("entitlement", paid_order.entitlement_id)[-1] == "entitlement.revoked"


def test_the_policy_is_checked_again_under_the_lock(
    paid_order: Order, buyer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download recorded between the buyer's first check and the refund's lock wins."""
    from exchange.ledger.services import record_event

    first_check = services.buyer_refund_refusal
    calls: list[str] = []

    def check_then_download(order: Order, who: Any) -> str:
        answer = first_check(order, who)
        if not calls:
            record_event(
                idempotency_key="download:late",
                kind="download",
                refs={"entitlement": order.entitlement_id or ""},
            )
        calls.append(answer)
        return answer

    monkeypatch.setattr(services, "buyer_refund_refusal", check_then_download)
    with pytest.raises(services.OrderError) as refused:
        services.request_buyer_refund(paid_order, buyer)
    assert (refused.value.code, refused.value.status) == ("refund_not_allowed", 409)
    assert calls == ["", "Refunds are possible only before the first download."]
    assert Refund.objects.count() == 0
    assert Entitlement.objects.get(pk=paid_order.entitlement_id).status == "active"
