from __future__ import annotations

import pytest
from django.http import QueryDict

from marketplace.catalog import selectors
from marketplace.catalog.models import Product
from marketplace.catalog.services import LicensePrice

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalog(provider, product_factory, version_factory, organization_factory, user_factory):
    other = user_factory("other-provider")
    other.organization = organization_factory(other, "Other Labs")
    made = {
        "income": product_factory(
            provider,
            "Income survey",
            tags=["income", "census"],
            domain="census",
            licenses=[LicensePrice("standard", 5000, "USD"), LicensePrice("research", 0, "USD")],
        ),
        "clinic": product_factory(
            other,
            "Clinic visits",
            summary="Visits with income brackets",
            domain="healthcare",
            licenses=[LicensePrice("commercial", 90000, "USD")],
        ),
        "draft": product_factory(provider, "Draft income thing", domain="census"),
        "hidden": product_factory(provider, "Hidden income", domain="census"),
    }
    version_factory(made["income"], provider, submit=True)
    version_factory(made["clinic"], other, submit=True)
    version_factory(made["draft"], provider, submit=False)
    version_factory(made["hidden"], provider, submit=True)
    Product.objects.filter(pk=made["hidden"].pk).update(is_listed=False)
    return made


def search(**params: str) -> list[str]:
    query = selectors.CatalogQuery.from_params(QueryDict(mutable=True) | params)
    return [p.title for p in selectors.search_products(query)]


def test_search_matches_title_summary_tags_and_columns_and_ranks_title_first(catalog):
    assert search(q="income") == ["Income survey", "Clinic visits"]
    # A column name only: equal relevance, newest first.
    assert search(q="workclass") == ["Clinic visits", "Income survey"]
    assert search(q="income clinic") == ["Clinic visits"]
    assert search(q="nothing-like-this") == []


def test_drafts_and_unlisted_products_never_show(catalog):
    titles = search()
    assert "Draft income thing" not in titles
    assert "Hidden income" not in titles


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"domain": "healthcare"}, ["Clinic visits"]),
        ({"license": "research"}, ["Income survey"]),
        ({"provider": "other-labs"}, ["Clinic visits"]),
        ({"max_price": "1000"}, ["Income survey"]),
        ({"min_price": "80000"}, ["Clinic visits"]),
        ({"rows": "lt1k"}, ["Clinic visits", "Income survey"]),
        ({"rows": "gte1m"}, []),
        ({"format": "csv", "ordering": "title"}, ["Clinic visits", "Income survey"]),
        ({"ordering": "-price"}, ["Clinic visits", "Income survey"]),
        ({"ordering": "price"}, ["Income survey", "Clinic visits"]),
    ],
)
def test_filters_and_orderings(catalog, params, expected):
    assert search(**params) == expected


def test_facet_counts_ignore_their_own_filter(catalog):
    query = selectors.CatalogQuery.from_params(QueryDict("domain=healthcare"))
    facets = selectors.facet_counts(query)
    assert sorted(facets["domain"]) == [
        ("census", "Census & demographics", 1),
        ("healthcare", "Healthcare", 1),
    ]
    assert facets["provider"] == [("other-labs", "Other Labs", 1)]
    assert facets["format"] == [("csv", "CSV", 1)]


def test_api_search_reports_bad_parameters(client, catalog):
    response = client.get("/api/v1/products/", {"min_quality": "high"})
    assert response.status_code == 400
    assert response.json() == {"detail": "min_quality must be a number.", "code": "bad_query"}
    ok = client.get("/api/v1/products/", {"q": "income", "domain": "census"}).json()
    assert [p["title"] for p in ok["results"]] == ["Income survey"]
    assert ok["count"] == 1
