"""Stripe processing fees: charge events, read through the gateway from a local Stripe-like server, posted
once per charge (issue #5)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from orders_support import ledger_balance, ledger_kinds

from exchange.ledger.services import Posting, account_for, post_transaction
from exchange.orders.ledger_checks import stripe_fees_posted_once
from exchange.orders.models import Order, WebhookEvent

pytestmark = pytest.mark.django_db


class BalanceTransactions:
    """A tiny HTTP server answering ``GET /v1/balance_transactions/{id}`` as Stripe does."""

    def __init__(self) -> None:
        self.known: dict[str, dict[str, Any]] = {}
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (the name http.server calls)
                owner.requests.append(self.path)
                prefix = "/v1/balance_transactions/"
                found = owner.known.get(self.path[len(prefix) :]) if self.path.startswith(prefix) else None
                if found is None:
                    status = 404
                    body: dict[str, Any] = {
                        "error": {
                            "type": "invalid_request_error",
                            "code": "resource_missing",
                            "message": "No such balance transaction",
                        }
                    }
                else:
                    status, body = 200, found
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_local")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, transaction_id: str, *, fee: int, currency: str, amount: int = 2500) -> None:
        self.known[transaction_id] = {
            "id": transaction_id,
            "object": "balance_transaction",
            "amount": amount,
            "currency": currency,
            "fee": fee,
            "net": amount - fee,
            "status": "pending",
            "type": "charge",
        }


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[BalanceTransactions]:
    server = BalanceTransactions()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def pending_order(stripe_local: str, version: Any, buyer: Any, api_client_for: Any) -> Order:
    response = api_client_for(buyer).post("/api/v1/orders/", {"version": version.pk, "license": "standard"})
    return Order.objects.select_related("payment").get(pk=response.json()["id"])


@pytest.fixture
def fees(settings: Any, pending_order: Order, stripe_server: BalanceTransactions) -> BalanceTransactions:
    """The order exists at localstripe; from here on the gateway's Stripe is the balance-transaction server."""
    settings.STRIPE_API_BASE = stripe_server.url
    stripe_server.known.clear()
    stripe_server.requests.clear()
    stripe_server.add("txn_fee", fee=103, currency="usd")
    return stripe_server


def _intent(order: Order) -> dict[str, Any]:
    return {
        "id": order.payment.stripe_payment_intent_id,
        "object": "payment_intent",
        "amount": order.amount_minor,
        "currency": order.currency.lower(),
        "status": "succeeded",
        "client_secret": order.payment.client_secret,
        "metadata": {"synthex_order": order.id},
    }


def _charge(order: Order, **changes: Any) -> dict[str, Any]:
    charge = {
        "id": "ch_fee",
        "object": "charge",
        "amount": order.amount_minor,
        "currency": order.currency.lower(),
        "status": "succeeded",
        "paid": True,
        "payment_intent": order.payment.stripe_payment_intent_id,
        "balance_transaction": "txn_fee",
        "metadata": {"synthex_order": order.id},
    }
    return {**charge, **changes}


def _paid(order: Order, post_event: Any) -> Order:
    assert post_event("payment_intent.succeeded", _intent(order)).json()["status"] == "processed"
    order.refresh_from_db()
    return order


def _no_fee(order: Order) -> None:
    order.payment.refresh_from_db()
    assert ledger_kinds("order", order.id) == ["sale"]
    assert (ledger_balance("stripe_fees"), ledger_balance("stripe_clearing")) == (0, 2500)
    assert order.payment.stripe_fee_minor is None


@pytest.mark.parametrize(
    "balance_transaction",
    ["txn_fee", {"id": "txn_fee", "object": "balance_transaction"}],
    ids=["id", "expanded"],
)
def test_fee_is_posted_once_for_a_replay_and_for_both_charge_events(
    pending_order: Order, fees: BalanceTransactions, post_event: Any, balance_transaction: Any
) -> None:
    order = _paid(pending_order, post_event)
    charge = _charge(order, balance_transaction=balance_transaction)
    first = post_event("charge.succeeded", charge, event_id="evt_charge")
    replay = post_event("charge.succeeded", charge, event_id="evt_charge")
    updated = post_event("charge.updated", charge)
    assert [r.json()["status"] for r in (first, replay, updated)] == ["processed", "duplicate", "processed"]
    assert first.json()["detail"] == "fee of charge ch_fee: 103 USD posted"
    assert updated.json()["detail"] == "fee of charge ch_fee already posted"
    assert fees.requests == ["/v1/balance_transactions/txn_fee"]
    assert ledger_kinds("order", order.id) == ["sale", "stripe_fee"]
    assert ledger_kinds("stripe_charge", "ch_fee") == ["stripe_fee"]
    assert (ledger_balance("stripe_fees"), ledger_balance("stripe_clearing")) == (103, 2397)
    assert ledger_balance("provider_payable", "USD", order.seller) == -2000
    assert ledger_balance("platform_fee_revenue") == -500
    order.payment.refresh_from_db()
    assert order.payment.stripe_fee_minor == 103
    assert list(stripe_fees_posted_once()) == []


@pytest.mark.parametrize("paid_by", ["webhook", "repair"])
def test_charge_before_the_order_is_paid_is_deferred_then_posted(
    pending_order: Order, fees: BalanceTransactions, post_event: Any, caplog: Any, paid_by: str
) -> None:
    from exchange.orders.services import apply_payment_succeeded
    from exchange.orders.stripe_gateway import intent_from_event_object
    from exchange.orders.webhooks import retry_deferred_events

    with caplog.at_level(logging.INFO, logger="exchange.orders.webhooks"):
        early = post_event("charge.succeeded", _charge(pending_order))
    assert (early.json()["status"], early.json()["detail"]) == (
        "deferred",
        f"order {pending_order.id} not paid yet",
    )
    assert any("before order" in r.getMessage() and "deferred" in r.getMessage() for r in caplog.records)
    assert (ledger_kinds("order", pending_order.id), fees.requests) == ([], [])
    if paid_by == "webhook":
        _paid(pending_order, post_event)
    else:
        apply_payment_succeeded(pending_order, intent_from_event_object(_intent(pending_order)))
        assert retry_deferred_events() == 1
    assert WebhookEvent.objects.get(type="charge.succeeded").status == "processed"
    assert ledger_kinds("order", pending_order.id) == ["sale", "stripe_fee"]
    assert (ledger_balance("stripe_fees"), ledger_balance("stripe_clearing")) == (103, 2397)


def test_charge_without_a_balance_transaction_posts_nothing_until_one_is_known(
    pending_order: Order, fees: BalanceTransactions, post_event: Any
) -> None:
    order = _paid(pending_order, post_event)
    bare = post_event("charge.succeeded", _charge(order, balance_transaction=None))
    assert (bare.json()["status"], bare.json()["detail"]) == (
        "ignored",
        "charge ch_fee has no balance transaction yet",
    )
    assert fees.requests == []
    _no_fee(order)
    later = post_event("charge.updated", _charge(order))
    assert later.json()["status"] == "processed"
    assert ledger_kinds("order", order.id) == ["sale", "stripe_fee"]


def test_fee_in_another_currency_is_posted_in_that_currency(
    pending_order: Order, fees: BalanceTransactions, post_event: Any, caplog: Any
) -> None:
    fees.add("txn_fee", fee=95, currency="eur")
    order = _paid(pending_order, post_event)
    with caplog.at_level(logging.INFO, logger="exchange.orders.webhooks"):
        response = post_event("charge.succeeded", _charge(order))
    assert response.json()["detail"] == "fee of charge ch_fee: 95 EUR posted"
    assert any("posted in the fee's currency" in r.getMessage() for r in caplog.records)
    assert (ledger_balance("stripe_fees", "EUR"), ledger_balance("stripe_clearing", "EUR")) == (95, -95)
    assert (ledger_balance("stripe_fees"), ledger_balance("stripe_clearing")) == (0, 2500)
    order.payment.refresh_from_db()
    assert order.payment.stripe_fee_minor is None


@pytest.mark.parametrize(
    ("known", "detail"),
    [
        (None, "balance transaction of charge ch_fee: No such balance transaction"),
        ({"fee": 40, "currency": "xyz"}, "fee of charge ch_fee: 'XYZ' is not an ISO 4217 currency"),
    ],
    ids=["unknown-transaction", "unknown-currency"],
)
def test_unreadable_fee_is_rejected_and_nothing_is_posted(
    pending_order: Order,
    fees: BalanceTransactions,
    post_event: Any,
    known: dict[str, Any] | None,
    detail: str,
) -> None:
    fees.known.clear()
    if known is not None:
        fees.add("txn_fee", **known)
    order = _paid(pending_order, post_event)
    response = post_event("charge.succeeded", _charge(order))
    assert response.json()["status"] == "rejected"
    assert response.json()["detail"].startswith(detail)
    _no_fee(order)
    assert ledger_balance("stripe_fees", "XYZ") == 0


def test_charge_of_an_unknown_payment_intent_is_rejected(
    pending_order: Order, fees: BalanceTransactions, post_event: Any
) -> None:
    order = _paid(pending_order, post_event)
    response = post_event("charge.succeeded", _charge(order, payment_intent="pi_unknown", metadata={}))
    assert (response.json()["status"], response.json()["detail"]) == (
        "rejected",
        "unknown payment intent pi_unknown",
    )
    assert fees.requests == []
    _no_fee(order)


def test_audit_finds_a_charge_whose_fee_was_posted_twice(
    pending_order: Order, fees: BalanceTransactions, post_event: Any
) -> None:
    order = _paid(pending_order, post_event)
    post_event("charge.succeeded", _charge(order))
    post_transaction(
        idempotency_key="stripe_fee:ch_fee:again",
        kind="stripe_fee",
        postings=[
            Posting(account_for("stripe_fees", "USD"), 103),
            Posting(account_for("stripe_clearing", "USD"), -103),
        ],
        refs={"order": order.id, "stripe_charge": "ch_fee"},
    )
    assert sorted(problem.message for problem in stripe_fees_posted_once()) == [
        "a Stripe fee not keyed by its charge",
        "charge ch_fee has 2 fees",
    ]
