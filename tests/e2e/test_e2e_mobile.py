"""Every main page is usable on a phone (issue 17 #3): at 390 px wide no page lays out wider than the
screen, and the navigation collapses behind a Menu button instead of spilling off the dark bar. Each page
is also screenshotted at that width (test-artifacts/screenshots/mobile-*.png)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import httpx
import pytest
from draw_support import generator_entitlement

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

WIDTH = 390


@pytest.fixture
def browser_context_args(browser_context_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_context_args, "viewport": {"width": WIDTH, "height": 844}, "device_scale_factor": 1}


@pytest.fixture
def site(
    settings: Any,
    localstripe_url: str,
    provider: Any,
    buyer: Any,
    user_factory: Any,
    product_factory: Any,
    version_factory: Any,
    small_tables: Any,
) -> Any:
    """A certified dataset with a long title and wide tables, a generator, a paid order, a pending checkout,
    an auditor; the ledger is purged after the test (its triggers refuse the live server's flush)."""
    from django.db import connection

    from exchange.ledger.schema import purge_ledger
    from exchange.orders import services as orders
    from marketplace.catalog.services import LicensePrice
    from marketplace.certification.engine.evaluate import evaluate
    from marketplace.certification.services import issue_certificate

    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_WEBHOOK_SECRET = "whsec_mobile"
    settings.SYNTHEX_PLATFORM_FEE_RATE = Decimal("0.20")
    httpx.delete(f"{localstripe_url}/_config/data", timeout=5).raise_for_status()
    product = product_factory(
        provider,
        "Census households of the Pacific Northwest with income brackets and employment histories",
        licenses=[LicensePrice("standard", 2500, "USD"), LicensePrice("research", 0, "USD")],
        tags=["census", "income", "employment", "households"],
    )
    version = version_factory(product, provider)
    # A real certificate (the engine on the version's tables): its page shows every section.
    evaluation = evaluate(small_tables["synthetic"], small_tables["train"], small_tables["holdout"]).to_dict()
    evaluation["privacy"]["passed"] = True  # on sale whatever these tiny tables score (a layout test)
    certificate = issue_certificate(version, evaluation, list(version.files.filter(role="synthetic")))
    paid = orders.create_order(buyer=buyer, version_id=version.pk, license_code="research").order
    pending = orders.create_order(buyer=buyer, version_id=version.pk, license_code="standard").order
    draws = generator_entitlement(provider, buyer, product_factory)
    user_factory("auditor", is_auditor=True)
    yield {
        "product": product,
        "certificate": certificate,
        "paid": paid,
        "pending": pending,
        "draws": draws,
    }
    purge_ledger(connection)


def log_in(page: Any, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "correct-horse-battery")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/(accounts/profile/)?$"))


def log_out(page: Any) -> None:
    page.context.clear_cookies()


def check(page: Any, screenshot: Any, url: str, name: str) -> list[str]:
    """Open ``url``; return a complaint when the page is wider than the screen (else none)."""
    page.goto(url)
    page.wait_for_load_state("load")
    screenshot(f"mobile-{name}")
    width = page.evaluate("document.documentElement.scrollWidth")
    return [] if width <= WIDTH + 1 else [f"{name} ({url}) lays out {width} px wide"]


def test_every_main_page_fits_a_390_px_screen(
    live_server: Any, page: Any, screenshot: Any, site: Any
) -> None:
    base = live_server.url
    slug = site["product"].slug
    too_wide: list[str] = []
    public = {
        "catalog": "/",
        "search": "/?q=census&domain=census",
        "product": f"/products/{slug}/",
        "certificate": f"/certificates/{site['certificate'].id}/",
        "verify": "/certificates/verify/",
        "transparency": "/transparency/",
        "provider": f"/organizations/{site['product'].organization.slug}/",
        "login": "/accounts/login/",
        "signup": "/accounts/signup/",
    }
    for name, path in public.items():
        too_wide += check(page, screenshot, base + path, name)

    # The navigation is folded behind a Menu button, and unfolds inside the dark bar.
    page.goto(base + "/")
    nav = page.locator("header.top nav")
    assert not nav.is_visible()
    page.get_by_text("Menu").click()
    assert nav.is_visible()
    catalog_link = nav.get_by_role("link", name="Catalog")
    header_box = page.locator("header.top").bounding_box()
    link_box = catalog_link.bounding_box()
    assert link_box["y"] + link_box["height"] <= header_box["y"] + header_box["height"]
    assert link_box["x"] + link_box["width"] <= WIDTH
    screenshot("mobile-menu-open")
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH + 1

    log_in(page, base, "buyer")
    buyer_pages = {
        "orders": "/orders/",
        "order-paid": f"/orders/{site['paid'].id}/",
        "checkout": f"/orders/{site['pending'].id}/",
        "library": "/library/",
        "draw": f"/library/{site['draws'].id}/draws/",
        "profile": "/accounts/profile/",
    }
    for name, path in buyer_pages.items():
        too_wide += check(page, screenshot, base + path, name)
    log_out(page)

    log_in(page, base, "provider")
    provider_pages = {
        "product-as-provider": f"/products/{slug}/",
        "new-product": "/products/new/",
        "upload": f"/products/{slug}/versions/new/",
        "sales": "/sales/",
        "earnings": "/ledger/earnings/",
    }
    for name, path in provider_pages.items():
        too_wide += check(page, screenshot, base + path, name)
    log_out(page)

    log_in(page, base, "auditor")
    too_wide += check(page, screenshot, base + "/ledger/", "ledger")
    assert too_wide == []
