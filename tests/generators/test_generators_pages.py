"""The generator panel on the product page and the provider's form behind it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from marketplace.catalog.models import ProductVersion
from marketplace.generators.models import GeneratorModel


def _signed_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _sign_certificate(version: ProductVersion) -> None:
    """A signed certificate with passing figures (the ready_generator fixture skips certification): only a
    version with a certificate that passed privacy is on sale to buyers."""
    from marketplace.catalog.models import FileRole, VersionStatus
    from marketplace.certification.services import issue_certificate

    evaluation = {
        "quality": {"score": 0.91, "grade": "A"},
        "plausibility": {
            "score": 1.0,
            "grade": "A",
            "rows_violating_any": 0.0,
            "holdout_rows_violating_any": 0.0,
            "rules": [],
        },
        "privacy": {"grade": "A", "passed": True},
        "charts": {},
        "parameters": {},
        "engine": {"name": "synthex-certify", "version": "test"},
    }
    ProductVersion.objects.filter(pk=version.pk).update(status=VersionStatus.CERTIFYING)
    issue_certificate(version, evaluation, [f for f in version.files.all() if f.role == FileRole.SYNTHETIC])


def test_the_product_page_shows_the_generator_and_its_quotas(
    ready_generator: GeneratorModel, buyer: Any, provider: Any
) -> None:
    _sign_certificate(ready_generator.version)
    product = ready_generator.version.product
    page = _signed_in(buyer).get(f"/products/{product.slug}/").content.decode()
    assert ready_generator.sha256 in page
    assert "standard: 5,000<br>" in page
    assert "generator-form" not in page
    assert "generator-form" in _signed_in(provider).get(f"/products/{product.slug}/").content.decode()


def test_a_dataset_product_page_has_no_generator_panel(
    provider: Any, product_factory: Callable[..., Any]
) -> None:
    product = product_factory(provider, "Plain table")
    assert "generator-panel" not in _signed_in(provider).get(f"/products/{product.slug}/").content.decode()


def test_the_form_reports_a_refusal_and_creates_nothing(
    provider: Any, generator_product: Any, people: pd.DataFrame
) -> None:
    response = _signed_in(provider).post(
        f"/products/{generator_product.slug}/generator/",
        {
            "mode": "fit",
            "synthesizer": "gaussian_copula",
            "constraints": '[{"type": "Inequality", "low_column_name": "age", "high_column_name": "height"}]',
            "data": SimpleUploadedFile("people.csv", people.to_csv(index=False).encode()),
        },
        follow=True,
    )
    assert "Inequality names &#x27;height&#x27;, which is not a column." in response.content.decode()
    assert ProductVersion.objects.filter(product=generator_product).count() == 0
