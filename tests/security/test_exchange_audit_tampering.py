"""Issue 18, item 9: the audit must catch a well-formed forged posting and edits to the business tables.

The attack: a ``sale`` of 1,000,000 minor units to the attacker's payable passed ``audit_ledger`` and
``reconcile_payments``, and so did an order whose amount was changed, a refunded entitlement re-activated,
a download row deleted and a canceled order marked paid. A real shop is set up first (orders paid through
localstripe, a copy downloaded, an order refunded, one canceled) and audits clean; then each tampering
makes the audit fail, naming it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from exchange.delivery.models import Entitlement
from exchange.downloads.models import Download
from exchange.ledger.audit import run_audit
from exchange.orders import services
from exchange.orders.models import Order

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Shop:
    paid: Order
    refunded: Order
    canceled: Order
    attacker: Any


def _buy(client: Any, version: Any) -> Order:
    order_id = client.post("/api/v1/orders/", {"version": version.pk, "license": "standard"}).json()["id"]
    client.post(f"/api/v1/orders/{order_id}/confirm/", {"payment_method": "pm_card_visa"})
    return Order.objects.get(pk=order_id)


@pytest.fixture
def shop(
    local_stripe: str,
    sellable_version: Any,
    user_factory: Any,
    organization_factory: Any,
    api_client_for: Any,
) -> Shop:
    first, second, third = (api_client_for(user_factory()) for _ in range(3))
    paid = _buy(first, sellable_version)
    link = first.post(f"/api/v1/entitlements/{paid.entitlement_id}/links/", {"format": "csv"}, format="json")
    served = first.get(link.json()["url"].split("testserver", 1)[1])
    assert served.status_code == 200 and b"".join(served.streaming_content)
    refunded = _buy(second, sellable_version)
    services.refund_order(refunded, amount_minor=None, initiator="staff", requested_by=None)
    canceled_id = third.post(
        "/api/v1/orders/", {"version": sellable_version.pk, "license": "standard"}
    ).json()["id"]
    canceled = services.cancel_order(Order.objects.get(pk=canceled_id), reason="abandoned")
    attacker = user_factory("mallory")
    attacker.organization = organization_factory(attacker, "Mallory Data")
    report = run_audit()
    assert report.ok, report.text()
    return Shop(Order.objects.get(pk=paid.pk), Order.objects.get(pk=refunded.pk), canceled, attacker)


def _forge_sale(shop: Shop, order_id: str) -> None:
    from exchange.ledger.services import Posting, account_for, post_transaction

    post_transaction(
        idempotency_key=f"sale:{order_id}" if order_id == "ord_forged" else f"sale:{order_id}:bonus",
        kind="sale",
        postings=[
            Posting(account_for("stripe_clearing", "USD"), 1_000_000),
            Posting(account_for("provider_payable", "USD", shop.attacker.organization), -1_000_000),
        ],
        refs={"order": order_id, "payment_intent": "pi_forged"},
        memo="sale of standard license",
    )


def _tamper(case: str, shop: Shop) -> tuple[str, str]:
    """Do one tampering; returns the check and subject the audit must name."""
    if case == "forged sale of no order":
        _forge_sale(shop, "ord_forged")
        return "orders.sales", "sale transaction"
    if case == "forged sale of a real order":
        _forge_sale(shop, shop.paid.pk)
        return "orders.sales", f"order {shop.paid.pk}"
    if case == "order amount changed":
        Order.objects.filter(pk=shop.paid.pk).update(
            amount_minor=99, platform_fee_minor=20, provider_share_minor=79
        )
        return "orders.sales", "sale transaction"
    if case == "refunded entitlement re-activated":
        Entitlement.objects.filter(pk=shop.refunded.entitlement_id).update(status="active", revoked_at=None)
        return "delivery.entitlements", f"entitlement {shop.refunded.entitlement_id}"
    if case == "download row deleted":
        Download.objects.filter(outcome="served").delete()
        return "downloads.events", "event"
    if case == "canceled order marked paid":
        Order.objects.filter(pk=shop.canceled.pk).update(
            status="paid", paid_at=timezone.now(), canceled_at=None
        )
        return "orders.sales", f"order {shop.canceled.pk}"
    raise AssertionError(case)


@pytest.mark.parametrize(
    "case",
    [
        "forged sale of no order",
        "forged sale of a real order",
        "order amount changed",
        "refunded entitlement re-activated",
        "download row deleted",
        "canceled order marked paid",
    ],
)
def test_audit_names_each_tampering(shop: Shop, case: str) -> None:
    check, subject = _tamper(case, shop)
    report = run_audit()
    assert not report.ok
    named = [
        problem
        for problem in report.problems
        if problem.check == check and problem.subject.startswith(subject)
    ]
    assert named, report.text()
    out = io.StringIO()
    with pytest.raises(SystemExit) as failed:
        call_command("audit_ledger", stdout=out)
    assert failed.value.code == 1
    assert f"FAILED [{check}] {subject}" in out.getvalue()


def test_reconcile_payments_names_a_forged_sale_both_ways(shop: Shop, capsys: Any) -> None:
    call_command("reconcile_payments")
    assert capsys.readouterr().out.splitlines()[-1].endswith(", 0 not matched")
    _forge_sale(shop, "ord_forged")
    with pytest.raises(SystemExit) as failed:
        call_command("reconcile_payments")
    assert failed.value.code == 1
    lines = capsys.readouterr().out.splitlines()
    [forged] = [line for line in lines if line.startswith("BAD")]
    assert "ledger_sale" in forged and "pi_forged" in forged and "1000000" in forged
    assert "order=ord_forged" in forged
