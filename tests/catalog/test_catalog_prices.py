"""Prices for people are major units with the currency shown (issue 17 #7): the provider edits prices in the
web app, and the catalog's price filter reads 12.50, not cents; the API keeps integer minor units."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import QueryDict

from marketplace.catalog import selectors
from marketplace.catalog.services import LicensePrice

pytestmark = pytest.mark.django_db


def test_provider_edits_prices_in_major_units_on_the_web(
    client: Any, provider: Any, product_factory: Any
) -> None:
    product = product_factory(provider, "Priced", licenses=[LicensePrice("standard", 2500, "EUR")])
    client.force_login(provider)
    assert 'href="/products/priced/edit/"' in client.get("/products/priced/").content.decode()
    page = client.get("/products/priced/edit/").content.decode()
    assert 'name="price_standard" value="25.00"' in page
    assert "e.g. 12.50" in page
    response = client.post(
        "/products/priced/edit/",
        {
            "title": "Priced",
            "summary": product.summary,
            "domain": product.domain,
            "currency": "EUR",
            "price_standard": "12.50",
            "price_research": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()
    assert sorted(product.licenses.values_list("code", "price_minor", "currency")) == [
        ("research", 0, "EUR"),
        ("standard", 1250, "EUR"),
    ]


def test_strangers_cannot_edit_prices(client: Any, provider: Any, buyer: Any, product_factory: Any) -> None:
    product = product_factory(provider, "Not yours")
    client.force_login(buyer)
    assert client.post(f"/products/{product.slug}/edit/", {"price_standard": "1"}).status_code == 403
    assert list(product.licenses.values_list("price_minor", flat=True)) == [2500]


@pytest.mark.parametrize(
    ("params", "major", "expected"),
    [
        ({"min_price": "12.50", "max_price": "20"}, True, (1250, 2000)),
        ({"min_price": "1250", "max_price": "2000"}, False, (1250, 2000)),  # the API: integer minor units
    ],
)
def test_price_filter_units(params: dict[str, str], major: bool, expected: tuple[int, int]) -> None:
    query = selectors.CatalogQuery.from_params(QueryDict(mutable=True) | params, prices_in_major_units=major)
    assert (query.min_price_minor, query.max_price_minor) == expected
    assert query.errors == ()


def test_catalog_page_filter_is_in_major_units(client: Any) -> None:
    page = client.get("/").content.decode()
    assert "¢" not in page
    assert 'placeholder="min 0.00"' in page
