"""The products list and search API (issue 17 #10): a page of products in a fixed number of queries, and
anonymous reads served from the page cache (no query) until the catalog changes."""

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
def test_anonymous_reads_come_from_the_cache_until_the_catalog_changes(
    url, provider, product_factory, client, api_client_for
):
    _listed(provider, product_factory, 0, 3)
    _, first = _queries(client, url)
    assert first["X-Synthex-Cache"] == "miss"
    queries, hit = _queries(client, url)
    assert (queries, hit["X-Synthex-Cache"], hit.content) == ([], "hit", first.content)
    assert hit["Content-Type"] == "application/json"
    # Credentials and the browsable API are never served from the cache.
    assert "X-Synthex-Cache" not in api_client_for(provider).get(url)
    assert "X-Synthex-Cache" not in Client().get(url, HTTP_ACCEPT="text/html")
    response = api_client_for(provider).patch(
        "/api/v1/products/census-table-0/", {"title": "Census table renamed"}, format="json"
    )
    assert response.status_code == 200, response.content
    _, fresh = _queries(client, url)
    assert fresh["X-Synthex-Cache"] == "miss"
    assert fresh.content != first.content
