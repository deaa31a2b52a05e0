from __future__ import annotations

import io

import pytest

from marketplace.catalog.models import Product, ProductVersion

pytestmark = pytest.mark.django_db


def named(content: bytes, name: str) -> io.BytesIO:
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def test_provider_creates_product_uploads_confirms_and_buyers_find_it(client, provider, small_tables):
    client.force_login(provider)
    response = client.post(
        "/products/new/",
        {
            "organization": provider.organization.pk,
            "title": "Workforce survey",
            "summary": "Hours, education and income",
            "description_md": "Made with **care**. <iframe src='https://evil.test'></iframe>",
            "domain": "census",
            "tags": "labor, hours",
            "currency": "USD",
            "price_standard": "19.99",
            "price_research": "0",
        },
    )
    assert response.status_code == 302
    product = Product.objects.get(slug="workforce-survey")
    assert sorted((lic.code, lic.price_minor) for lic in product.licenses.all()) == [
        ("research", 0),
        ("standard", 1999),
    ]
    assert "<iframe" not in product.description_html

    response = client.post(
        f"/products/{product.slug}/versions/new/",
        {
            "synthetic": [named(small_tables["synthetic"].to_csv(index=False).encode(), "workforce.csv")],
            "train": named(small_tables["train"].to_csv(index=False).encode(), "train.csv"),
        },
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 201, response.content
    confirm_url = response.json()["redirect"]
    page = client.get(confirm_url).content.decode()
    assert 'name="sdtype__hours-per-week"' in page
    response = client.post(confirm_url, {"sdtype__age": "categorical", "target": "class", "submit": "1"})
    assert response.status_code == 302
    version = ProductVersion.objects.get(product=product)
    assert version.status == "submitted"
    assert version.target_column == "class"
    assert version.sdv_metadata["columns"]["age"]["sdtype"] == "categorical"

    client.logout()
    results = client.get("/", {"q": "hours-per-week"}).content.decode()
    assert "Workforce survey" in results
    detail = client.get(f"/products/{product.slug}/").content.decode()
    assert "workforce" in detail
    assert "Preview" in detail
    assert "train.csv" not in detail  # reference files are for the owner only


def test_upload_page_shows_a_clear_error_for_a_bad_file(client, provider, product_factory):
    product = product_factory(provider, "Picky")
    client.force_login(provider)
    response = client.post(
        f"/products/{product.slug}/versions/new/", {"synthetic": [named(b"a,b\n1,2,3\n", "bad.csv")]}
    )
    assert response.status_code == 400
    assert "bad.csv" in response.content.decode()
    assert ProductVersion.objects.count() == 0


def test_discarding_a_draft_removes_it(client, provider, product_factory, version_factory):
    product = product_factory(provider, "Discardable")
    version = version_factory(product, provider)
    client.force_login(provider)
    response = client.post(f"/products/{product.slug}/versions/{version.number}/confirm/", {"discard": "1"})
    assert response.status_code == 302
    assert not ProductVersion.objects.filter(pk=version.pk).exists()


def test_non_member_cannot_open_upload_or_confirm_pages(
    client, buyer, provider, product_factory, version_factory
):
    product = product_factory(provider, "Closed")
    version = version_factory(product, provider)
    client.force_login(buyer)
    assert client.get(f"/products/{product.slug}/versions/new/").status_code == 403
    assert client.get(f"/products/{product.slug}/versions/{version.number}/confirm/").status_code == 403


def test_reference_data_can_be_deleted_by_its_owner(client, provider, product_factory, version_factory):
    product = product_factory(provider, "Forgetful")
    version = version_factory(product, provider, submit=True)
    reference = list(version.files.filter(role__in=["train", "holdout"]))
    client.force_login(provider)
    response = client.post(f"/products/{product.slug}/versions/{version.number}/reference/delete/")
    assert response.status_code == 302
    for item in reference:
        item.refresh_from_db()
        assert item.deleted_at is not None


def test_catalog_page_shows_facets_and_validates_filters(client, provider, product_factory, version_factory):
    census = product_factory(provider, "Census people", domain="census", tags=["people"])
    version_factory(census, provider, submit=True)
    health = product_factory(provider, "Health people", domain="healthcare")
    version_factory(health, provider, submit=True)
    page = client.get("/", {"domain": "healthcare"}).content.decode()
    assert "Health people" in page
    assert "Census people" not in page
    assert "Census &amp; demographics" in page  # the other domain is still offered as a facet
    page = client.get("/", {"min_price": "lots", "format": "xls"}).content.decode()
    assert "min_price must be a number." in page
    assert "Unknown format" in page
