"""The certificate page explains the quality grade by its parts, each beside its reference, drifted columns first."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from django.urls import reverse

from marketplace.certification.engine import EngineConfig, composite, learning
from marketplace.certification.engine.evaluate import plain_values
from marketplace.certification.engine.schema import clean_table, resolve_columns
from marketplace.certification.services import issue_certificate

sys.path.insert(0, str(Path(__file__).parent / "engine"))
import adversarial  # noqa: E402

pytestmark = pytest.mark.django_db

OTHER_SECTIONS = {
    "plausibility": {
        "score": 1.0,
        "grade": "A",
        "rows_violating_any": 0.0,
        "holdout_rows_violating_any": 0.0,
        "reference": "holdout",
        "rules": [],
        "reasons": [],
        "thresholds": {},
    },
    "privacy": {
        "grade": "B",
        "passed": True,
        "baseline": "holdout",
        "exact_match_rate": 0.0,
        "exact_match_rate_holdout": 0.0,
        "dcr_share": 0.5,
        "tests": [],
    },
    "charts": {},
    "parameters": {},
    "engine": {"name": "synthex-engine", "version": "2.0.0"},
}


def _drifted_quality() -> tuple[dict, list[str]]:
    train, holdout = adversarial.split(adversarial.breast_cancer())
    drifted, names = adversarial.drifted(adversarial.gaussian_copula(train, len(holdout)), train)
    columns = resolve_columns(train, None)
    synthetic_clean, train_clean, holdout_clean = (clean_table(t, columns) for t in (drifted, train, holdout))
    efficacy = learning.ml_efficacy(synthetic_clean, train_clean, holdout_clean, columns, "target", 20_000, 1)
    config = EngineConfig()
    assessment = composite.assess(
        synthetic_clean, train_clean, holdout_clean, columns, efficacy, config, np.random.default_rng(0), 1
    )
    section = composite.section(assessment, config) | {
        "thresholds": composite.thresholds(config),
        "sdmetrics_score": 0.9,
        "column_shapes": {"score": 0.9, "details": []},
        "column_pair_trends": {"score": 0.9, "details": []},
        "reference": {"sdmetrics_score": 0.95, "column_shapes": 0.97, "column_pair_trends": 0.93},
    }
    return plain_values(section), names


def test_certificate_page_puts_drifted_columns_first_and_parts_beside_their_references(
    provider, product_factory, version_factory, client
):
    quality, names = _drifted_quality()
    version = version_factory(product_factory(provider, "Drifted"), provider)
    certificate = issue_certificate(
        version, {"quality": quality, **OTHER_SECTIONS}, list(version.files.filter(role="synthetic"))
    )
    client.force_login(provider)

    page = client.get(reverse("certification:detail", args=[certificate.id])).content.decode()

    statements = [item["statement"] for item in quality["drifted_columns"]]
    assert {item["column"] for item in quality["drifted_columns"]} == set(names)
    assert all(statement.split(":")[0] in page for statement in statements)
    assert page.index("Drifted columns") < page.index("Fresh real rows") < page.index("Grade thresholds")
    assert f'Quality <span class="grade grade-{quality["grade"]}">{quality["grade"]}</span>' in page
    for name, part in quality["fidelity"]["parts"].items():
        assert (
            f'<td>{name}</td><td class="num">{part["value"]:.3f}</td><td class="num">{part["reference"]:.3f}</td>'
            in page
        )


def test_a_v1_certificate_page_still_shows_its_quality_table(
    provider, product_factory, version_factory, client
):
    quality = {"score": 0.82, "grade": "B", "column_shapes": {"score": 0.9, "details": []}, "thresholds": {}}
    version = version_factory(product_factory(provider, "Old"), provider)
    certificate = issue_certificate(
        version, {"quality": quality, **OTHER_SECTIONS}, list(version.files.filter(role="synthetic"))
    )
    client.force_login(provider)

    page = client.get(reverse("certification:detail", args=[certificate.id])).content.decode()

    assert "Overall score" in page
    assert "Drifted columns" not in page
