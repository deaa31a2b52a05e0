"""Providers set up their own payouts (issue 17 #7): Stripe's hosted Connect onboarding in production, a
stand-in page in local mode; only an organization's owners may, and a payout run then reaches the account."""

from __future__ import annotations

from typing import Any

import pytest

from exchange.orders import payouts
from exchange.orders import stripe_gateway as gateway
from exchange.orders.models import PayoutAccount
from marketplace.accounts.models import Membership

pytestmark = pytest.mark.django_db


def test_a_provider_links_a_payout_account_in_local_mode(client: Any, provider: Any, settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = ""
    organization = provider.organization
    client.force_login(provider)
    page = client.get("/sales/").content.decode()
    assert "staff" not in page and "Set up payouts with Stripe" in page
    started = client.post(f"/sales/{organization.slug}/payouts/onboard/")
    assert started.status_code == 302 and started["Location"] == f"/sales/{organization.slug}/payouts/local/"
    assert "local mode" in client.get(started["Location"]).content.decode()
    assert client.post(started["Location"]).status_code == 302
    account = PayoutAccount.objects.get(organization=organization)
    assert account.stripe_account_id.startswith("acct_local_")
    assert account.stripe_account_id in client.get("/sales/").content.decode()
    again = client.post(f"/sales/{organization.slug}/payouts/onboard/")
    assert again.status_code == 302 and again["Location"] == "/sales/"
    assert PayoutAccount.objects.count() == 1


def test_only_owners_set_up_payouts(client: Any, provider: Any, user_factory: Any, settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = ""
    member = user_factory("plain-member")
    Membership.objects.create(user=member, organization=provider.organization)
    client.force_login(member)
    client.post(f"/sales/{provider.organization.slug}/payouts/local/")
    assert not PayoutAccount.objects.exists()
    client.force_login(user_factory("stranger"))
    assert client.post(f"/sales/{provider.organization.slug}/payouts/onboard/").status_code == 404
    assert not PayoutAccount.objects.exists()


def test_production_onboarding_goes_through_stripes_account_link(
    client: Any, provider: Any, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.STRIPE_SECRET_KEY = "sk_test_production_like"
    submitted = {"acct_123": False}
    links: list[dict[str, str]] = []
    monkeypatch.setattr(
        gateway,
        "create_connect_account",
        lambda **kwargs: gateway.ConnectAccountView("acct_123", False, False),
    )
    monkeypatch.setattr(
        gateway,
        "create_account_link",
        lambda **kwargs: links.append(kwargs) or "https://connect.stripe.com/setup/e/acct_123/xyz",
    )
    monkeypatch.setattr(
        gateway,
        "retrieve_connect_account",
        lambda account_id: gateway.ConnectAccountView(
            account_id, submitted[account_id], submitted[account_id]
        ),
    )
    slug = provider.organization.slug
    client.force_login(provider)
    started = client.post(f"/sales/{slug}/payouts/onboard/")
    assert started["Location"] == "https://connect.stripe.com/setup/e/acct_123/xyz"
    assert links[0]["account_id"] == "acct_123"
    assert links[0]["return_url"] == f"http://testserver/sales/{slug}/payouts/return/"
    client.get(f"/sales/{slug}/payouts/return/")  # came back before finishing: nothing linked
    assert not PayoutAccount.objects.exists()
    submitted["acct_123"] = True
    client.get(f"/sales/{slug}/payouts/return/")
    assert PayoutAccount.objects.get().stripe_account_id == "acct_123"


def test_a_payout_run_reaches_a_locally_linked_account(
    stripe_local: str, provider: Any, version: Any, buyer: Any, api_client_for: Any
) -> None:
    client = api_client_for(buyer)
    order_id = client.post("/api/v1/orders/", {"version": version.pk, "license": "standard"}).json()["id"]
    client.post(f"/api/v1/orders/{order_id}/confirm/", {"payment_method": "pm_card_visa"})
    account = payouts.link_local_payout_account(version.product.organization, user=provider)
    payout = payouts.start_payout_run().payouts.get()
    assert (payout.status, payout.destination) == ("paid", account.stripe_account_id)
