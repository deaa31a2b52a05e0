"""Issue 18, item 5: moderation belongs to staff. A provider re-listed a product staff had unlisted with
``PATCH /api/v1/products/{slug}/ {"is_listed": true}``; now that answers 403 ``unlisted_by_staff`` and
changes nothing, while the provider still edits the rest and staff can list it again."""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse

from marketplace.catalog.models import Product

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(user_factory: Any, client: Any) -> Any:
    staff = user_factory("moderator", is_staff=True, is_superuser=True)
    client.force_login(staff)
    return client


def _admin_action(staff_client: Any, action: str, product: Product) -> None:
    response = staff_client.post(
        reverse("admin:catalog_product_changelist"),
        {"action": action, "_selected_action": [product.pk]},
    )
    assert response.status_code == 302


def test_provider_cannot_relist_what_staff_unlisted(
    provider: Any, product_factory: Any, api_client_for: Any, staff_client: Any
) -> None:
    product = product_factory(provider, title="Questionable data")
    _admin_action(staff_client, "unlist", product)
    client = api_client_for(provider)

    response = client.patch(f"/api/v1/products/{product.slug}/", {"is_listed": True}, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "unlisted_by_staff"
    product.refresh_from_db()
    assert product.is_listed is False and product.unlisted_by_staff_at is not None

    # Both in one request: refused whole, the title is not changed either.
    both = client.patch(
        f"/api/v1/products/{product.slug}/", {"is_listed": True, "title": "Renamed"}, format="json"
    )
    assert both.status_code == 403
    product.refresh_from_db()
    assert (product.title, product.is_listed) == ("Questionable data", False)

    # The provider still edits the rest, and may keep it unlisted.
    edited = client.patch(
        f"/api/v1/products/{product.slug}/", {"title": "Renamed", "is_listed": False}, format="json"
    )
    assert edited.status_code == 200
    product.refresh_from_db()
    assert (product.title, product.is_listed) == ("Renamed", False)
    assert product.unlisted_by_staff_at is not None

    _admin_action(staff_client, "relist", product)
    product.refresh_from_db()
    assert (product.is_listed, product.unlisted_by_staff_at) == (True, None)


def test_provider_unlisting_their_own_product_can_list_it_again(
    provider: Any, product_factory: Any, api_client_for: Any
) -> None:
    product = product_factory(provider)
    client = api_client_for(provider)
    assert (
        client.patch(f"/api/v1/products/{product.slug}/", {"is_listed": False}, format="json").status_code
        == 200
    )
    response = client.patch(f"/api/v1/products/{product.slug}/", {"is_listed": True}, format="json")
    assert response.status_code == 200
    product.refresh_from_db()
    assert (product.is_listed, product.unlisted_by_staff_at) == (True, None)


def test_unlisting_in_the_admin_change_form_is_moderation_too(
    provider: Any, product_factory: Any, staff_client: Any, api_client_for: Any
) -> None:
    from marketplace.catalog.admin import ProductAdmin

    product = product_factory(provider)
    admin = ProductAdmin(Product, None)  # type: ignore[arg-type]

    class Form:
        changed_data = ["is_listed"]

    product.is_listed = False
    admin.save_model(None, product, Form(), True)  # type: ignore[arg-type]
    product.refresh_from_db()
    assert product.unlisted_by_staff_at is not None
    response = api_client_for(provider).patch(
        f"/api/v1/products/{product.slug}/", {"is_listed": True}, format="json"
    )
    assert response.status_code == 403
