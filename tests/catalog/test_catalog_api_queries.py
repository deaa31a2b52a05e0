"""The products list and search API (issue 17 #10): a page of products in a fixed number of queries, and
reads served from the page cache (no query anonymously, the token's one signed in) until the catalog
changes."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import caches
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from marketplace.catalog.models import Product
from marketplace.catalog.services import LicensePrice

pytestmark = pytest.mark.django_db

URLS = ["/api/v1/products/", "/api/v1/products/?q=census&ordering=price"]


def _listed(provider: Any, product_factory: Any, start: int, count: int) -> None:
    for n in range(start, start + count):
        product_factory(
            provider,
            f"Census table {n}",
            licenses=[LicensePrice("standard", 1000 + n, "USD"), LicensePrice("research", 0, "USD")],
        )
    Product.objects.update(published_at=timezone.now(), is_listed=True)


def _queries(client: Any, url: str, **headers: str) -> tuple[list[str], Any]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    assert response.status_code == 200, response.content
    return [query["sql"] for query in captured.captured_queries], response


@pytest.mark.parametrize("url", URLS)
def test_products_list_reads_a_page_in_three_queries(url, provider, product_factory, client):
    _listed(provider, product_factory, 0, 3)
    caches["pages"].clear()
    few, _ = _queries(client, url)
    _listed(provider, product_factory, 3, 30)
    caches["pages"].clear()
    many, response = _queries(client, url)
    assert len(response.json()["results"]) == 20
    # count, the page of products with their organization, their licenses: never one query per product.
    assert len(few) == len(many) == 3, "\n".join(many)


@pytest.mark.parametrize("url", URLS)
def test_reads_come_from_the_cache_until_the_catalog_changes(
    url, provider, product_factory, client, api_client_for
):
    _listed(provider, product_factory, 0, 3)
    _, first = _queries(client, url)
    assert first["X-Synthex-Cache"] == "miss"
    queries, hit = _queries(client, url)
    assert (queries, hit["X-Synthex-Cache"], hit.content) == ([], "hit", first.content)
    assert hit["Content-Type"] == "application/json"
    # The body is the same for every caller: a token read is served the same entry once its token is checked
    # (the token's one query), and a bad token is still refused.
    queries, signed_in = _queries(api_client_for(provider), url)
    assert (len(queries), signed_in["X-Synthex-Cache"], signed_in.content) == (1, "hit", first.content)
    refused = Client().get(url, HTTP_AUTHORIZATION="Token not-a-token")
    assert (refused.status_code, "X-Synthex-Cache" in refused) == (401, False)
    # The browsable API and other renderings are never served from (nor stored in) the cache.
    assert "X-Synthex-Cache" not in Client().get(url, HTTP_ACCEPT="text/html")
    indented = Client().get(url, HTTP_ACCEPT="application/json; indent=4")
    assert ("X-Synthex-Cache" in indented, indented.json()) == (False, first.json())
    response = api_client_for(provider).patch(
        "/api/v1/products/census-table-0/", {"title": "Census table renamed"}, format="json"
    )
    assert response.status_code == 200, response.content
    _, fresh = _queries(api_client_for(provider), url)
    assert fresh["X-Synthex-Cache"] == "miss"
    assert fresh.content != first.content
    assert _queries(client, url)[1]["X-Synthex-Cache"] == "hit"


def test_price_change_is_seen_at_once(provider, product_factory, client, api_client_for):
    _listed(provider, product_factory, 0, 1)
    before = client.get("/api/v1/products/").json()["results"][0]["price_from_minor"]
    response = api_client_for(provider).patch(
        "/api/v1/products/census-table-0/",
        {"licenses": [{"code": "standard", "price_minor": 700, "currency": "USD"}]},
        format="json",
    )
    assert response.status_code == 200, response.content
    # These test products have no submitted version, so the summary refresh unpublished it: publish it again
    # without touching the cache (the change above is what must have made the cached page stale).
    Product.objects.update(published_at=timezone.now())
    after = client.get("/api/v1/products/")
    assert (before, after["X-Synthex-Cache"], after.json()["results"][0]["price_from_minor"]) == (
        0,
        "miss",
        700,
    )
