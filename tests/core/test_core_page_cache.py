from __future__ import annotations

import pytest

from marketplace.catalog.models import Product

pytestmark = pytest.mark.django_db


def test_anonymous_catalog_is_cached_and_invalidated_by_any_catalog_change(
    client, provider, product_factory, version_factory
):
    first = product_factory(provider, "First listed")
    version_factory(first, provider, submit=True)
    miss = client.get("/")
    assert miss["X-Synthex-Cache"] == "miss"
    hit = client.get("/")
    assert hit["X-Synthex-Cache"] == "hit"
    assert hit.content == miss.content
    second = product_factory(provider, "Second listed")
    version_factory(second, provider, submit=True)
    fresh = client.get("/")
    assert fresh["X-Synthex-Cache"] == "miss"
    assert "Second listed" in fresh.content.decode()


def test_unlisting_in_the_admin_invalidates(client, admin_client, provider, product_factory, version_factory):
    product = product_factory(provider, "Soon hidden")
    version_factory(product, provider, submit=True)
    assert "Soon hidden" in client.get("/").content.decode()
    admin_client.post("/admin/catalog/product/", {"action": "unlist", "_selected_action": [product.pk]})
    assert not Product.objects.get(pk=product.pk).is_listed
    assert "Soon hidden" not in client.get("/").content.decode()


def test_signed_in_users_and_requests_with_cookies_are_never_served_from_the_cache(
    client, buyer, provider, product_factory, version_factory
):
    product = product_factory(provider, "Personal view")
    version_factory(product, provider, submit=True)
    client.get(f"/products/{product.slug}/")
    assert client.get(f"/products/{product.slug}/")["X-Synthex-Cache"] == "hit"
    client.force_login(buyer)
    response = client.get(f"/products/{product.slug}/")
    assert "X-Synthex-Cache" not in response
    assert "buyer" in response.content.decode()
    client.logout()
    client.cookies["messages"] = "x"
    assert "X-Synthex-Cache" not in client.get(f"/products/{product.slug}/")
