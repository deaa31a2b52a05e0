"""The certificate page states the plausibility rules in plain sentences, worst first."""

from __future__ import annotations

import pytest
from django.urls import reverse

from marketplace.certification.services import issue_certificate

pytestmark = pytest.mark.django_db


def _rule(rule_id: str, statement: str, synthetic: float, real: float) -> dict:
    return {
        "id": rule_id,
        "kind": "one_to_one",
        "source": "discovered",
        "columns": ["education", "education-num"],
        "statement": statement,
        "support": 26048,
        "holdout_violation_rate": real,
        "synthetic_violation_rate": synthetic,
    }


EVALUATION = {
    "quality": {"score": 0.82, "grade": "B"},
    "plausibility": {
        "score": 0.11,
        "grade": "F",
        "rows_violating_any": 0.89,
        "holdout_rows_violating_any": 0.004,
        "reference": "holdout",
        "reasons": [
            "89.0% of synthetic rows break at least one of 2 rules, against 0.4% of real holdout rows."
        ],
        "rules": [
            _rule(
                "one_to_one:education<->education-num", "education-num is determined by education", 0.87, 0.0
            ),
            _rule(
                "implication:relationship=Husband=>sex=Male",
                "when relationship is Husband, sex is Male",
                0.14,
                0.0,
            ),
        ],
        "dismissed": [
            {"id": "order:a<=b", "statement": "a ≤ b", "reason": "A data-entry convention, not a law."}
        ],
        "thresholds": {
            "grade_bands": [{"grade": "A", "min_score": 0.95}],
            "grade_source": "Synthex.",
            "min_support": 260,
        },
    },
    "privacy": {
        "grade": "A",
        "passed": True,
        "exact_match_rate": 0.0,
        "exact_match_rate_holdout": 0.0,
        "dcr_share": 0.5,
        "baseline": "holdout",
    },
    "charts": {},
    "parameters": {},
    "engine": {"name": "synthex-engine", "version": "test"},
}


def test_certificate_page_lists_rules_in_sentences_worst_first(
    provider, product_factory, version_factory, client
):
    version = version_factory(product_factory(provider, "Rules"), provider)
    certificate = issue_certificate(version, EVALUATION, list(version.files.filter(role="synthetic")))
    client.force_login(provider)

    page = client.get(reverse("certification:detail", args=[certificate.id])).content.decode()

    first = page.index(
        "education-num is determined by education — broken in 87% of synthetic rows, 0% of real rows"
    )
    second = page.index(
        "when relationship is Husband, sex is Male — broken in 14% of synthetic rows, 0% of real rows"
    )
    assert first < second
    assert "Plausibility F" in page
    assert "A data-entry convention, not a law." in page
    assert certificate.document["plausibility"]["rules"][0]["id"] == "one_to_one:education<->education-num"


def test_the_version_api_shows_the_plausibility_grade(
    provider, product_factory, version_factory, api_client_for
):
    version = version_factory(product_factory(provider, "Graded"), provider)
    issue_certificate(version, EVALUATION, list(version.files.filter(role="synthetic")))

    body = (
        api_client_for(provider)
        .get(f"/api/v1/products/{version.product.slug}/versions/{version.number}/")
        .json()
    )

    assert body["certification"]["certificate"]["plausibility_grade"] == "F"
