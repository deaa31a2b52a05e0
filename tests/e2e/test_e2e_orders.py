"""A buyer buys in the browser: product page → Buy → checkout with a test card → paid → receipt → history."""

from __future__ import annotations

import re
from typing import Any

import pytest

from exchange.orders.models import Order

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def purge_ledger_after() -> Any:
    from django.db import connection

    from exchange.ledger.schema import purge_ledger

    yield
    purge_ledger(connection)  # the ledger's triggers refuse the live server's flush


def log_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/(accounts/profile/)?$"))


def test_buyer_pays_with_a_test_card_and_gets_a_receipt(
    live_server,
    page,
    screenshot,
    stripe_local,
    provider,
    buyer,
    certified_version_factory,
    purge_ledger_after,
):
    version = certified_version_factory(provider, price_minor=1999)
    log_in(page, live_server.url, buyer.username)
    page.goto(f"{live_server.url}/products/{version.product.slug}/")
    screenshot("10-product-buy-panel")
    page.get_by_role("button", name=re.compile(r"Buy version 1, Standard — 19\.99 USD")).click()
    page.wait_for_url(re.compile(r".*/orders/ord_[^/]+/$"))
    screenshot("11-checkout")
    page.check("input[name=payment_method][value=pm_card_visa]")
    page.get_by_role("button", name="Pay 19.99 USD").click()
    page.wait_for_selector("#order-status[data-status=paid]")
    screenshot("12-order-paid")
    order = Order.objects.get(buyer=buyer)
    assert (order.status, order.amount_minor, order.currency) == ("paid", 1999, "USD")
    assert page.get_by_role("link", name="Download the signed receipt").count() == 1
    page.goto(f"{live_server.url}/orders/")
    screenshot("13-order-history")
    assert order.id in page.content()


def test_declined_card_shows_a_clear_message_and_another_card_pays_the_same_order(
    live_server,
    page,
    screenshot,
    stripe_local,
    provider,
    buyer,
    certified_version_factory,
    purge_ledger_after,
):
    """Issue 17 #6: after a decline the order stays payable; once paid, downloading comes first."""
    from exchange.delivery.models import Entitlement

    version = certified_version_factory(provider, price_minor=500)
    log_in(page, live_server.url, buyer.username)
    page.goto(f"{live_server.url}/products/{version.product.slug}/")
    page.get_by_role("button", name=re.compile(r"Buy version 1")).click()
    page.wait_for_url(re.compile(r".*/orders/ord_[^/]+/$"))
    order_url = page.url
    page.check("input[name=payment_method][value=pm_card_chargeCustomerFail]")
    page.get_by_role("button", name=re.compile(r"Pay ")).click()
    page.wait_for_selector(".messages li.error")
    screenshot("14-checkout-declined")
    assert "declined" in page.locator(".messages li.error").inner_text().lower()
    assert page.locator("#order-status").get_attribute("data-status") == "pending"
    assert "try again with another card" in page.locator("#payment-error").inner_text()
    assert not Entitlement.objects.filter(buyer=buyer).exists()
    page.check("input[name=payment_method][value=pm_card_visa]")
    page.get_by_role("button", name="Pay 5.00 USD").click()
    page.wait_for_selector("#order-status[data-status=paid]")
    screenshot("15-order-paid-download-first")
    assert page.url == order_url
    assert Entitlement.objects.filter(buyer=buyer, status="active").count() == 1
    # Downloading is the first thing on the page; the refund is folded away, not a red button.
    first_button = page.locator("main .button").first
    assert first_button.inner_text() == "Download CSV"
    data_top = page.locator("#your-data").bounding_box()["y"]
    assert data_top < page.locator("#refund").bounding_box()["y"]
    assert page.locator("#refund").get_attribute("open") is None
    assert page.locator("button.danger").count() == 0
