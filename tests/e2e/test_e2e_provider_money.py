"""A provider's money in the browser (issue 17 #7): edit a price in major units, see it with its currency,
set up payouts without staff (local mode's stand-in for Stripe's onboarding), on a desktop and at 390 px."""

from __future__ import annotations

import re
from typing import Any

import pytest

from exchange.orders.models import PayoutAccount
from marketplace.catalog.services import LicensePrice

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_provider_edits_a_price_and_sets_up_payouts(
    live_server: Any, page: Any, screenshot: Any, provider: Any, product_factory: Any, settings: Any
) -> None:
    settings.STRIPE_SECRET_KEY = ""
    product = product_factory(provider, "Household budgets", licenses=[LicensePrice("standard", 2500, "EUR")])
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", provider.username)
    page.fill("#id_password", "correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/(accounts/profile/)?$"))

    page.goto(f"{live_server.url}/products/{product.slug}/")
    page.get_by_role("link", name="Edit description and prices").click()
    page.wait_for_url(re.compile(r".*/edit/$"))
    assert page.input_value("#id_price_standard") == "25.00"
    assert page.input_value("#id_currency") == "EUR"
    page.fill("#id_price_standard", "12.50")
    screenshot("80-provider-edit-price")
    page.get_by_role("button", name="Save changes").click()
    page.wait_for_url(re.compile(rf".*/products/{product.slug}/$"))
    assert "12.50 EUR" in page.content()
    assert list(product.licenses.values_list("price_minor", "currency")) == [(1250, "EUR")]

    for width, suffix in ((1366, "desktop"), (390, "390")):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/sales/")
        assert "staff" not in page.locator("main").inner_text()
        screenshot(f"81-sales-before-payouts-{suffix}")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.get_by_role("button", name="Set up payouts with Stripe").click()
    page.wait_for_url(re.compile(r".*/payouts/local/$"))
    screenshot("82-payout-onboarding-local")
    page.get_by_role("button", name="Link a test payout account").click()
    page.wait_for_url(re.compile(r".*/sales/$"))
    account = PayoutAccount.objects.get(organization=provider.organization)
    assert f"Payouts go to Stripe account {account.stripe_account_id}" in page.locator("main").inner_text()
    screenshot("83-sales-with-payouts-390")
    page.goto(f"{live_server.url}/ledger/earnings/")
    assert "minor units" not in page.content()
    screenshot("84-earnings-390")
