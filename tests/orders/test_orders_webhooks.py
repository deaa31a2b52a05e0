"""The Stripe webhook: signatures, replays, mismatches, unknown objects, ordering, and real delivery."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
from django.db import OperationalError
from orders_support import event_payload, ledger_balance, ledger_kinds, signed_headers

from exchange.delivery.models import Entitlement
from exchange.orders.models import Order, Payment, WebhookEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending_order(stripe_local: str, version: Any, buyer: Any, api_client_for: Any) -> Order:
    response = api_client_for(buyer).post("/api/v1/orders/", {"version": version.pk, "license": "standard"})
    return Order.objects.select_related("payment").get(pk=response.json()["id"])


def _intent(order: Order, **changes: Any) -> dict[str, Any]:
    intent = {
        "id": order.payment.stripe_payment_intent_id,
        "object": "payment_intent",
        "amount": order.amount_minor,
        "currency": order.currency.lower(),
        "status": "succeeded",
        "client_secret": order.payment.client_secret,
        "metadata": {"synthex_order": order.id},
    }
    return {**intent, **changes}


def _unchanged(order: Order) -> None:
    order.refresh_from_db()
    assert (order.status, order.paid_at, order.entitlement_id) == ("pending", None, None)
    assert Entitlement.objects.count() == 0
    assert ledger_balance("stripe_clearing") == 0


def test_succeeded_event_pays_the_order_once_and_a_replay_is_ignored(
    pending_order: Order, post_event: Any
) -> None:
    first = post_event("payment_intent.succeeded", _intent(pending_order), event_id="evt_once")
    replay = post_event("payment_intent.succeeded", _intent(pending_order), event_id="evt_once")
    assert (first.status_code, first.json()["status"]) == (200, "processed")
    assert (replay.status_code, replay.json()["status"]) == (200, "duplicate")
    pending_order.refresh_from_db()
    assert pending_order.status == "paid"
    assert ledger_kinds("order", pending_order.id) == ["sale"]
    assert ledger_balance("stripe_clearing") == 2500
    assert list(WebhookEvent.objects.values_list("stripe_event_id", "status")) == [("evt_once", "processed")]


@pytest.mark.parametrize(
    "signing",
    [
        {"secret": "whsec_wrong"},
        {"timestamp": int(time.time()) - 3600},
        {"timestamp": int(time.time()) + 3600},
    ],
    ids=["bad-signature", "stale-timestamp", "future-timestamp"],
)
def test_unverifiable_deliveries_are_refused(
    pending_order: Order, post_event: Any, signing: dict[str, Any]
) -> None:
    response = post_event("payment_intent.succeeded", _intent(pending_order), **signing)
    assert response.status_code == 400
    assert response.json()["code"] == "bad_signature"
    assert WebhookEvent.objects.count() == 0
    _unchanged(pending_order)


def test_missing_signature_and_tampered_body_are_refused(pending_order: Order, client: Any) -> None:
    payload = event_payload("payment_intent.succeeded", _intent(pending_order))
    unsigned = client.post("/api/v1/stripe/webhook/", data=payload, content_type="application/json")
    headers = signed_headers(payload)
    tampered = client.post(
        "/api/v1/stripe/webhook/",
        data=payload.replace(b"2500", b"2501"),
        content_type="application/json",
        **headers,
    )
    assert (unsigned.status_code, tampered.status_code) == (400, 400)
    assert WebhookEvent.objects.count() == 0
    _unchanged(pending_order)


@pytest.mark.parametrize("changes", [{"amount": 100}, {"currency": "eur"}], ids=["amount", "currency"])
def test_amount_or_currency_mismatch_is_refused_and_logged(
    pending_order: Order, post_event: Any, caplog: Any, changes: dict[str, Any]
) -> None:
    with caplog.at_level(logging.ERROR, logger="exchange.orders.webhooks"):
        response = post_event("payment_intent.succeeded", _intent(pending_order, **changes))
    assert (response.status_code, response.json()["status"]) == (200, "rejected")
    assert [r.getMessage() for r in caplog.records if "refused for order" in r.getMessage()] != []
    _unchanged(pending_order)


def test_unknown_payment_intent_is_rejected(pending_order: Order, post_event: Any) -> None:
    response = post_event("payment_intent.succeeded", _intent(pending_order, id="pi_unknown", metadata={}))
    assert (response.json()["status"], response.json()["detail"]) == (
        "rejected",
        "unknown payment intent pi_unknown",
    )
    _unchanged(pending_order)


def test_unknown_event_types_are_ignored_with_a_log_line(
    pending_order: Order, post_event: Any, caplog: Any
) -> None:
    with caplog.at_level(logging.INFO, logger="exchange.orders.webhooks"):
        response = post_event("customer.created", {"id": "cus_1", "object": "customer"})
    assert (response.status_code, response.json()["status"]) == (200, "ignored")
    assert any("customer.created ignored" in r.getMessage() for r in caplog.records)
    _unchanged(pending_order)


def test_failure_arriving_after_success_does_not_undo_it(pending_order: Order, post_event: Any) -> None:
    post_event("payment_intent.succeeded", _intent(pending_order))
    late = post_event(
        "payment_intent.payment_failed",
        _intent(pending_order, status="requires_payment_method", last_payment_error={"message": "declined"}),
    )
    assert late.json()["status"] == "processed"
    pending_order.refresh_from_db()
    assert (pending_order.status, pending_order.payment.stripe_status) == ("paid", "succeeded")
    assert Entitlement.objects.get().status == "active"


def test_event_before_the_order_commits_is_deferred_then_applied(
    stripe_local: str, version: Any, buyer: Any, post_event: Any
) -> None:
    from exchange.orders.webhooks import retry_deferred_events

    intent = {
        "id": "pi_early",
        "object": "payment_intent",
        "amount": 2500,
        "currency": "usd",
        "status": "succeeded",
        "metadata": {"synthex_order": "ord_not_committed_yet"},
    }
    response = post_event("payment_intent.succeeded", intent)
    assert response.json()["status"] == "deferred"
    assert Order.objects.count() == 0
    order = Order.objects.create(
        id="ord_not_committed_yet",
        buyer=buyer,
        version=version,
        product=version.product,
        seller=version.product.organization,
        license_code="standard",
        amount_minor=2500,
        currency="USD",
        fee_rate="0.20",
        platform_fee_minor=500,
        provider_share_minor=2000,
    )
    Payment.objects.create(
        order=order, idempotency_key="pi:ord_not_committed_yet", amount_minor=2500, currency="USD"
    )
    assert retry_deferred_events() == 1
    order.refresh_from_db()
    assert (order.status, order.payment.stripe_payment_intent_id) == ("paid", "pi_early")
    assert WebhookEvent.objects.get().status == "processed"
    assert ledger_balance("stripe_clearing") == 2500


@pytest.mark.django_db(transaction=True)
def test_localstripe_delivers_a_signed_webhook_that_pays_the_order(
    stripe_local: str,
    stripe_webhooks_to: Any,
    live_server: Any,
    version: Any,
    buyer: Any,
    api_client_for: Any,
) -> None:
    from exchange.orders import stripe_gateway

    stripe_webhooks_to(f"{live_server.url}/api/v1/stripe/webhook/")
    response = api_client_for(buyer).post("/api/v1/orders/", {"version": version.pk, "license": "standard"})
    order = Order.objects.get(pk=response.json()["id"])
    # Confirm at Stripe directly, as Stripe.js would: only the webhook can tell Synthex about it.
    stripe_gateway.confirm_locally(order.payment.stripe_payment_intent_id, "pm_card_visa")
    # The live server thread shares this in-memory database connection, so its rows are visible before it
    # commits: wait for the event's outcome, the last row written in the webhook's transaction.
    intent_id = order.payment.stripe_payment_intent_id
    handled = WebhookEvent.objects.filter(
        type="payment_intent.succeeded", object_id=intent_id, processed_at__isnull=False
    )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if handled.exists():
                break
        except OperationalError:  # shared-cache SQLite: the server thread holds the table lock right now
            pass
        time.sleep(0.1)
    time.sleep(0.2)
    order.refresh_from_db()
    assert order.status == "paid"
    assert handled.get().status == "processed"
    assert Entitlement.objects.get().buyer == buyer
    assert ledger_balance("stripe_clearing") == 2500
