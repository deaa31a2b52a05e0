"""A newer draft, failed or pending version never hides the certified version on sale (issue 17 #2)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from orders_support import EVALUATION

from marketplace.catalog.models import FileRole, ProductVersion, VersionStatus
from marketplace.certification.models import Job
from marketplace.certification.services import issue_certificate

pytestmark = pytest.mark.django_db


def certify(version: ProductVersion, *, passed: bool = True, quality: float = 0.91) -> None:
    evaluation = json.loads(json.dumps(EVALUATION))
    evaluation["privacy"].update(passed=passed, grade="A" if passed else "F")
    evaluation["quality"].update(score=quality, grade="A" if quality > 0.9 else "C")
    ProductVersion.objects.filter(pk=version.pk).update(status=VersionStatus.CERTIFYING)
    issue_certificate(version, evaluation, [f for f in version.files.all() if f.role == FileRole.SYNTHETIC])


def fail_certification(version: ProductVersion) -> None:
    Job.objects.filter(version=version).update(
        status=Job.Status.FAILED, error="The synthetic table has no column in common with the reference."
    )
    ProductVersion.objects.filter(pk=version.pk).update(status=VersionStatus.FAILED)


@pytest.fixture
def product_with_failed_v2(provider: Any, product_factory: Any, version_factory: Any) -> Any:
    product = product_factory(provider, title="Census people")
    certify(version_factory(product, provider, submit=True))
    fail_certification(version_factory(product, provider, submit=True))
    return product


def test_a_failed_version_2_leaves_version_1_on_sale_on_the_product_page(
    client: Any, buyer: Any, product_with_failed_v2: Any
) -> None:
    client.force_login(buyer)
    page = client.get(f"/products/{product_with_failed_v2.slug}/").content.decode()
    assert "Version 1 <span" in page
    assert "Buy version 1, Standard" in page
    assert "Certification failed" not in page
    assert "Version 2" not in page
    assert "For sale once version" not in page


def test_anonymous_visitors_see_version_1_and_no_failure(client: Any, product_with_failed_v2: Any) -> None:
    page = client.get(f"/products/{product_with_failed_v2.slug}/").content.decode()
    assert "Log in to buy" in page
    assert "Certification failed" not in page
    assert "?version=2" not in page


def test_the_provider_sees_the_failure_apart_and_version_1_still_leads(
    client: Any, provider: Any, product_with_failed_v2: Any
) -> None:
    client.force_login(provider)
    page = client.get(f"/products/{product_with_failed_v2.slug}/").content.decode()
    assert 'id="newer-versions"' in page
    assert "Version 2</a>: Certification failed — buyers still see and buy version 1." in page
    assert "Version 1 <span" in page
    failed = client.get(f"/products/{product_with_failed_v2.slug}/?version=2").content.decode()
    assert "Certification failed: The synthetic table has no column in common" in failed
    assert 'id="on-sale-notice"' in failed


def test_the_api_and_catalog_name_version_1_on_sale(
    api_client_for: Any, buyer: Any, product_with_failed_v2: Any
) -> None:
    api = api_client_for(buyer)
    slug = product_with_failed_v2.slug
    detail = api.get(f"/api/v1/products/{slug}/").json()
    assert detail["version_on_sale"]["number"] == 1
    assert detail["quality_grade"] == "A"
    assert api.get(f"/api/v1/products/{slug}/versions/2/").status_code == 404
    assert api.get(f"/api/v1/products/{slug}/versions/1/").json()["status"] == "certified"
    listed = api.get("/api/v1/products/").json()
    results = listed["results"] if isinstance(listed, dict) else listed
    assert [p["slug"] for p in results] == [slug]


def test_a_version_2_whose_privacy_failed_does_not_replace_version_1_in_the_catalog(
    client: Any, buyer: Any, provider: Any, product_factory: Any, version_factory: Any
) -> None:
    product = product_factory(provider, title="Census households")
    certify(version_factory(product, provider, submit=True), quality=0.95)
    certify(version_factory(product, provider, submit=True), passed=False, quality=0.5)
    product.refresh_from_db()
    assert (product.quality_score, product.privacy_grade) == (0.95, "A")
    client.force_login(buyer)
    page = client.get(f"/products/{product.slug}/").content.decode()
    assert "Buy version 1, Standard" in page
    assert "?version=2" not in page
