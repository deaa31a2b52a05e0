"""Quality figures agree with SDMetrics 0.32 on the same data."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from engine_data import DATASETS, split

from marketplace.certification.engine import EngineConfig, evaluate


def _metadata(table: pd.DataFrame) -> dict:
    return {
        "columns": {
            name: {"sdtype": "numerical" if pd.api.types.is_numeric_dtype(table[name]) else "categorical"}
            for name in table.columns
        }
    }


def _imperfect_synthetic(train: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Rows resampled from train, numbers jittered, one column shuffled, a few values missing."""
    rng = np.random.default_rng(seed)
    synthetic = train.sample(len(train), replace=True, random_state=seed).reset_index(drop=True)
    numeric = [name for name in synthetic if pd.api.types.is_numeric_dtype(synthetic[name])]
    for name in numeric:
        synthetic[name] = synthetic[name] + rng.normal(0, 0.2 * train[name].std(), len(synthetic))
    synthetic[synthetic.columns[1]] = (
        synthetic[synthetic.columns[1]].sample(frac=1, random_state=seed).to_numpy()
    )
    synthetic.loc[synthetic.index[:20], numeric[0]] = np.nan
    return synthetic


@pytest.mark.parametrize("name", ["adult", "wine", "breast_cancer"])
def test_quality_matches_sdmetrics_quality_report(name: str) -> None:
    from sdmetrics.reports.single_table import QualityReport

    train, holdout = split(DATASETS[name]())
    synthetic = _imperfect_synthetic(train, seed=3)
    metadata = _metadata(train)
    config = EngineConfig(attack_count=50)
    result = evaluate(synthetic, train, holdout, metadata=metadata, config=config).to_dict()["quality"]
    report = QualityReport()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report.generate(train, synthetic, metadata, verbose=False)
    properties = report.get_properties().set_index("Property")["Score"]

    assert abs(result["sdmetrics_score"] - report.get_score()) <= 0.01
    assert abs(result["column_shapes"]["score"] - properties["Column Shapes"]) <= 0.01
    assert abs(result["column_pair_trends"]["score"] - properties["Column Pair Trends"]) <= 0.01
    shapes = report.get_details("Column Shapes").set_index("Column")["Score"]
    for item in result["column_shapes"]["details"]:
        assert abs(item["score"] - shapes[item["column"]]) <= 0.01
    pairs = report.get_details("Column Pair Trends").set_index(["Column 1", "Column 2"])
    for item in result["column_pair_trends"]["details"]:
        theirs = pairs.loc[(item["column_1"], item["column_2"])]
        assert item["metric"] == theirs["Metric"]
        assert item["contributes"] == bool(theirs["Meets Threshold?"])
        if item["contributes"]:
            assert abs(item["score"] - theirs["Score"]) <= 0.01


def test_quality_validity_and_coverage_flag_out_of_range_values() -> None:
    train, holdout = split(DATASETS["wine"]())
    too_strong = train.iloc[:10].assign(alcohol=100.0)
    unknown_class = train.iloc[10:15].assign(target="class_9")
    synthetic = pd.concat([train, too_strong, unknown_class], ignore_index=True)
    result = evaluate(synthetic, train, holdout, config=EngineConfig(attack_count=50)).to_dict()["quality"]
    validity = result["validity"]
    alcohol = next(i for i in validity["boundary_adherence"]["details"] if i["column"] == "alcohol")
    target = next(i for i in validity["category_adherence"]["details"] if i["column"] == "target")

    assert alcohol["score"] == round(1 - 10 / len(synthetic), 6)
    assert target["score"] == round(1 - 5 / len(synthetic), 6)
    assert validity["table_structure"]["score"] == 1.0
    assert result["coverage"]["score"] == 1.0


def test_ml_efficacy_reports_real_and_synthetic_scores_on_holdout() -> None:
    train, holdout = split(DATASETS["breast_cancer"]())
    result = evaluate(
        train.copy(), train, holdout, target="target", config=EngineConfig(attack_count=50)
    ).to_dict()
    efficacy = result["quality"]["ml_efficacy"]

    assert efficacy["task"] == "classification"
    assert efficacy["metric"] == "f1_macro"
    assert efficacy["test_rows"] == len(holdout)
    assert efficacy["test_rows_source"] == "holdout"
    assert efficacy["synthetic_score"] == efficacy["real_score"]
    assert efficacy["ratio"] == 1.0
    assert 0.0 <= result["quality"]["discriminator_auc"]["auc"] <= 0.7
    assert not math.isnan(result["quality"]["score"])
