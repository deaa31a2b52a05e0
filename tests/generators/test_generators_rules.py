"""Generators fitted on the platform can enforce the plausibility rules through SDV constraints; the rules no
constraint expresses are named, and the certificate says which rule each constraint enforces."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from marketplace.certification.models import Certificate
from marketplace.datasets import adult_csv
from marketplace.generators.services import setup

pytestmark = pytest.mark.django_db

HUSBAND = "implication:relationship=Husband=>sex=Male"
EDUCATION = "one_to_one:education<->education-num"


@pytest.fixture(scope="module")
def households() -> pd.DataFrame:
    columns = ["age", "education", "education-num", "relationship", "sex", "hours-per-week"]
    return pd.read_csv(adult_csv(), na_values=["?"], nrows=2000)[columns].dropna().reset_index(drop=True)


def _fit(product: Any, provider: Any, upload: Callable[..., Any], table: pd.DataFrame) -> Any:
    return setup.create_fitted_generator(
        product,
        user=provider,
        data=upload(table, "households.csv"),
        synthesizer="gaussian_copula",
        enforce_rules=True,
    )


def test_enforcing_rules_adds_sdv_constraints_and_names_the_rules_none_expresses(
    provider: Any, generator_product: Any, upload: Callable[..., Any], households: pd.DataFrame
) -> None:
    generator = _fit(generator_product, provider, upload, households)
    rules = generator.version.rules

    assert {"type": "FixedCombinations", "column_names": ["relationship", "sex"]} in generator.constraints
    assert {
        "id": HUSBAND,
        "statement": "when relationship is Husband, sex is Male",
        "constraint": "FixedCombinations",
    } in rules["enforced"]
    refused = {item["id"]: item["reason"] for item in rules["not_enforced"]}
    assert "education-num is not" in refused[EDUCATION]


def test_without_enforcing_no_constraint_is_added(
    provider: Any, generator_product: Any, upload: Callable[..., Any], households: pd.DataFrame
) -> None:
    generator = setup.create_fitted_generator(
        generator_product,
        user=provider,
        data=upload(households, "households.csv"),
        synthesizer="gaussian_copula",
    )

    assert generator.constraints == [] and generator.version.rules == {}


def test_the_certificate_of_an_enforcing_generator_shows_its_constraints(
    provider: Any,
    generator_product: Any,
    upload: Callable[..., Any],
    households: pd.DataFrame,
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        generator = _fit(generator_product, provider, upload, households)

    document = Certificate.objects.get(version=generator.version).document["plausibility"]
    rules = {rule["id"]: rule for rule in document["rules"]}

    assert rules[HUSBAND]["enforced_by"] == "FixedCombinations"
    assert rules[HUSBAND]["synthetic_violation_rate"] == 0.0
    assert EDUCATION in {item["id"] for item in document["not_enforced"]}
