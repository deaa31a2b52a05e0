"""A dataset version without reference train rows is refused before submission — API, upload and confirm
pages — instead of being accepted and failing in certification later (issue 17 #11)."""

from __future__ import annotations

import io
from typing import Any

import pytest

from marketplace.catalog.models import ProductVersion
from marketplace.certification.models import Job

pytestmark = pytest.mark.django_db


def _named(content: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def _synthetic(small_tables: dict[str, Any]) -> io.BytesIO:
    return _named(small_tables["synthetic"].to_csv(index=False).encode(), "people.csv")


def test_api_refuses_to_submit_a_version_without_train_rows_and_keeps_nothing(
    provider: Any, product_factory: Any, api_client_for: Any, small_tables: dict[str, Any]
) -> None:
    product = product_factory(provider, "No train")
    response = api_client_for(provider).post(
        f"/api/v1/products/{product.slug}/versions/",
        {"synthetic": _synthetic(small_tables)},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "reference_required"
    assert "no reference train rows" in response.json()["detail"]
    assert not ProductVersion.objects.exists() and not Job.objects.exists()


def test_api_keeps_a_draft_without_train_rows_but_refuses_its_submission(
    provider: Any, product_factory: Any, api_client_for: Any, small_tables: dict[str, Any]
) -> None:
    product = product_factory(provider, "Draft only")
    client = api_client_for(provider)
    draft = client.post(
        f"/api/v1/products/{product.slug}/versions/",
        {"synthetic": _synthetic(small_tables), "submit": "false"},
        format="multipart",
    )
    assert draft.status_code == 201, draft.content
    refused = client.post(f"/api/v1/products/{product.slug}/versions/1/submit/", {}, format="json")
    assert refused.status_code == 400
    assert refused.json()["code"] == "reference_required"
    assert ProductVersion.objects.get().status == "draft"
    assert not Job.objects.exists()


def test_upload_and_confirm_pages_say_train_rows_are_needed(
    client: Any, provider: Any, product_factory: Any, version_factory: Any
) -> None:
    product = product_factory(provider, "Web draft")
    version = version_factory(product, provider, with_reference=False)
    client.force_login(provider)
    upload_page = client.get(f"/products/{product.slug}/versions/new/").content.decode()
    assert "Needed to certify" in upload_page
    url = f"/products/{product.slug}/versions/{version.number}/confirm/"
    page = client.get(url).content.decode()
    assert "no reference train rows, so it cannot be certified" in page
    assert 'name="submit" value="1" disabled' in page
    response = client.post(url, {"submit": "1"})
    assert response.status_code == 400
    version.refresh_from_db()
    assert version.status == "draft"
    assert not Job.objects.exists()
