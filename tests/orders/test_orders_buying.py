"""Placing orders: what may be sold, to whom, at which price; one open order per item; Stripe outages."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from orders_support import ledger_balance, ledger_kinds

from exchange.delivery.models import Entitlement
from exchange.orders.models import Order, Payment

pytestmark = pytest.mark.django_db


def _stripe_intents(localstripe_url: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{localstripe_url}/v1/payment_intents",
        params={"limit": 100},
        headers={"Authorization": "Bearer sk_test_x"},
    )
    response.raise_for_status()
    return response.json()["data"]


def test_order_freezes_price_and_split_and_creates_one_intent(
    stripe_local: str, version: Any, buyer: Any, api_client_for: Any
) -> None:
    response = api_client_for(buyer).post(
        "/api/v1/orders/",
        {"version": version.pk, "license": "standard", "price_minor": 2500, "currency": "USD"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending"
    assert (body["amount_minor"], body["currency"]) == (2500, "USD")
    assert (body["platform_fee_minor"], body["provider_share_minor"]) == (500, 2000)
    assert body["payment"]["client_secret"].startswith(body["payment"]["payment_intent"] + "_secret_")
    order = Order.objects.get(pk=body["id"])
    assert order.payment.idempotency_key == f"pi:{order.id}"
    intents = _stripe_intents(stripe_local)
    assert [(i["id"], i["amount"], i["currency"], i["metadata"]) for i in intents] == [
        (body["payment"]["payment_intent"], 2500, "usd", {"synthex_order": order.id})
    ]


def test_double_submit_returns_the_same_open_order(
    stripe_local: str, version: Any, buyer: Any, api_client_for: Any
) -> None:
    client = api_client_for(buyer)
    first = client.post("/api/v1/orders/", {"version": version.pk, "license": "standard"})
    second = client.post("/api/v1/orders/", {"version": version.pk, "license": "standard"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["payment"]["payment_intent"] == second.json()["payment"]["payment_intent"]
    assert Order.objects.count() == 1
    assert len(_stripe_intents(stripe_local)) == 1


def test_price_changed_since_page_view_is_refused_with_the_new_price(
    stripe_local: str, version: Any, buyer: Any, api_client_for: Any
) -> None:
    version.product.licenses.filter(code="standard").update(price_minor=3100)
    response = api_client_for(buyer).post(
        "/api/v1/orders/",
        {"version": version.pk, "license": "standard", "price_minor": 2500, "currency": "USD"},
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": "The price changed since you saw it; please review it.",
        "code": "price_changed",
        "price_minor": 3100,
        "currency": "USD",
    }
    assert Order.objects.count() == 0
    assert _stripe_intents(stripe_local) == []


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ("own", 403, "own_product"),
        ("unlisted", 409, "unlisted"),
        ("revoked", 409, "certificate_revoked"),
        ("privacy_failed", 409, "not_certified"),
        ("draft", 409, "not_certified"),
        ("license", 400, "unknown_license"),
        ("missing", 404, "not_found"),
    ],
)
def test_unsellable_orders_are_refused_and_change_nothing(
    stripe_local: str,
    provider: Any,
    buyer: Any,
    api_client_for: Any,
    certified_version_factory: Any,
    change: str,
    status: int,
    code: str,
) -> None:
    from django.utils import timezone

    from marketplace.certification.models import Revocation

    version = certified_version_factory(provider, privacy_passed=change != "privacy_failed")
    who, license_code, version_id = buyer, "standard", version.pk
    if change == "own":
        who = provider
    elif change == "unlisted":
        version.product.__class__.objects.filter(pk=version.product_id).update(is_listed=False)
    elif change == "revoked":
        certificate = version.certificates.get()
        Revocation.objects.create(
            certificate=certificate, reason="leak", revoked_at=timezone.now(), document={}
        )
    elif change == "draft":
        version.__class__.objects.filter(pk=version.pk).update(status="draft")
    elif change == "license":
        license_code = "commercial"
    elif change == "missing":
        version_id = version.pk + 1000
    response = api_client_for(who).post("/api/v1/orders/", {"version": version_id, "license": license_code})
    assert response.status_code == status
    assert response.json()["code"] == code
    assert Order.objects.count() == 0
    assert _stripe_intents(stripe_local) == []


def test_stripe_unreachable_keeps_the_key_and_a_retry_creates_exactly_one_intent(
    stripe_local: str, settings: Any, version: Any, buyer: Any, api_client_for: Any
) -> None:
    client = api_client_for(buyer)
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    failed = client.post("/api/v1/orders/", {"version": version.pk, "license": "standard"})
    assert failed.status_code == 503
    assert failed.json()["code"] == "payment_unavailable"
    order = Order.objects.get()
    assert (order.status, order.payment.idempotency_key, order.payment.stripe_payment_intent_id) == (
        "pending",
        f"pi:{order.id}",
        None,
    )
    settings.STRIPE_API_BASE = stripe_local
    retried = client.post("/api/v1/orders/", {"version": version.pk, "license": "standard"})
    assert retried.status_code == 200
    assert retried.json()["id"] == order.id
    intents = _stripe_intents(stripe_local)
    assert [i["id"] for i in intents] == [retried.json()["payment"]["payment_intent"]]
    assert Payment.objects.count() == 1


def test_free_license_skips_stripe_but_grants_and_records(
    stripe_local: str, provider: Any, buyer: Any, api_client_for: Any, certified_version_factory: Any
) -> None:
    version = certified_version_factory(provider, price_minor=0)
    response = api_client_for(buyer).post("/api/v1/orders/", {"version": version.pk, "license": "standard"})
    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["amount_minor"], body["payment"]) == ("paid", 0, None)
    entitlement = Entitlement.objects.get()
    assert (entitlement.buyer, entitlement.version, entitlement.status) == (buyer, version, "active")
    assert body["entitlement"] == entitlement.id
    assert ledger_kinds("entitlement", entitlement.id) == ["entitlement.granted"]
    assert ledger_balance("stripe_clearing") == 0
    assert _stripe_intents(stripe_local) == []


def test_buying_what_you_own_is_refused(
    stripe_local: str, provider: Any, buyer: Any, api_client_for: Any, certified_version_factory: Any
) -> None:
    version = certified_version_factory(provider, price_minor=0)
    client = api_client_for(buyer)
    assert client.post("/api/v1/orders/", {"version": version.pk, "license": "standard"}).status_code == 201
    again = client.post("/api/v1/orders/", {"version": version.pk, "license": "standard"})
    assert (again.status_code, again.json()["code"]) == (409, "already_owned")
    assert Order.objects.count() == 1
