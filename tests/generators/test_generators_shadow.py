"""The shadow-model attack: a memorising fit fails it, an independent one passes, and a generator the
platform cannot replay says why."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from django.test import override_settings

from marketplace.generators import shadow
from marketplace.generators.models import GeneratorModel, Synthesizer


@pytest.fixture
def train(small_tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return small_tables["train"]


def _memorising(rows: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    return rows.sample(size, random_state=seed)


def _independent_columns(rows: pd.DataFrame, size: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({name: rows[name].to_numpy()[rng.integers(0, len(rows), size)] for name in rows})


def test_a_memorising_fit_fails_the_shadow_attack(train: pd.DataFrame) -> None:
    result = shadow.run_shadow_attack(_memorising, train, None, runs=16, rows_per_run=400)
    section = shadow.with_shadow_attack({"tests": [], "baseline": "holdout"}, result)

    assert result["ran"] is True
    assert result["runs"] == 16
    assert all(target["tpr_at_lowest_fpr"]["tpr"] == 1.0 for target in result["targets"])
    assert section["passed"] is False
    assert section["grade"] == "F"
    assert [test["id"] for test in section["tests"]] == ["shadow_model/v1"]


def test_an_independent_fit_passes_and_no_row_is_reported(train: pd.DataFrame) -> None:
    result = shadow.run_shadow_attack(_independent_columns, train, None, runs=16, rows_per_run=400)
    section = shadow.with_shadow_attack({"tests": [], "baseline": "holdout"}, result)

    assert section["passed"] is True
    assert set(result["targets"][0]) == {"target", "auc", "auc_ci", "tpr_at_lowest_fpr"}


def test_too_few_shadow_fits_in_the_budget_is_stated(train: pd.DataFrame) -> None:
    result = shadow.run_shadow_attack(_independent_columns, train, None, budget_seconds=0.0)

    assert result["ran"] is False
    assert "shadow fits finished" in result["reason"]


@override_settings(SYNTHEX_SHADOW_BUDGET_SECONDS=60)
def test_an_uploaded_model_says_why_it_cannot_be_replayed(train: pd.DataFrame) -> None:
    generator = SimpleNamespace(kind=GeneratorModel.Kind.UPLOADED, synthesizer=Synthesizer.UPLOADED)

    result = shadow.attack_generator(generator, train, lambda stage, percent: None)

    assert result["ran"] is False
    assert "uploaded" in result["reason"]
