"""Certificate v2 quality: a grade that structure-breaking data cannot earn (issue 14).

The grade matrix runs the quality composite (``composite.assess``, the code ``evaluate`` calls for
``quality.score`` and ``quality.grade``) on five real tables and the adversarial sets of ``adversarial.py``;
one end-to-end ``evaluate`` checks the certificate's fields. Honest samples are SDV GaussianCopula fits
(cached on disk by ``adversarial``).
"""

from __future__ import annotations

import json
import warnings

import adversarial
import numpy as np
import pandas as pd
import pytest

from marketplace.certification.engine import EngineConfig, composite, evaluate, learning, quality, sdv_types
from marketplace.certification.engine.schema import Column, clean_table, resolve_columns

GRADES = "ABCDF"
TARGETS = {"adult": "class", "breast_cancer": "target", "wine": "target", "fair": None, "randhie": None}
CONFIG = EngineConfig(attack_count=50)


def _grade(synthetic: pd.DataFrame, train: pd.DataFrame, holdout: pd.DataFrame, target: str | None) -> dict:
    columns = resolve_columns(train, None)
    synthetic_clean, train_clean, holdout_clean = (
        clean_table(t, columns) for t in (synthetic, train, holdout)
    )
    efficacy = (
        learning.ml_efficacy(synthetic_clean, train_clean, holdout_clean, columns, target, 20_000, 11)
        if target
        else None
    )
    return composite.assess(
        synthetic_clean, train_clean, holdout_clean, columns, efficacy, CONFIG, np.random.default_rng(0), 11
    )


@pytest.fixture(scope="module", params=sorted(adversarial.TABLES))
def graded(request: pytest.FixtureRequest) -> dict:
    name = request.param
    train, holdout = adversarial.split(adversarial.TABLES[name]())
    honest = adversarial.gaussian_copula(train, len(holdout))
    drifted, drifted_names = adversarial.drifted(honest, train)
    cases = {
        "honest": honest,
        "shuffled": adversarial.shuffled(train, len(holdout)),
        "garbage": adversarial.uniform_garbage(train, len(holdout)),
        "holdout": adversarial.holdout_as_synthetic(holdout),
        "drifted": drifted,
        "collapsed": adversarial.mode_collapsed(honest),
    }
    return {
        "name": name,
        "drifted_names": drifted_names,
        "results": {case: _grade(table, train, holdout, TARGETS[name]) for case, table in cases.items()},
    }


def _rank(result: dict) -> int:
    return GRADES.index(result["grade"])


def test_independent_columns_grade_d_or_f(graded: dict) -> None:
    assert graded["results"]["shuffled"]["grade"] in "DF"
    assert graded["results"]["shuffled"]["structure"] < 0.2


def test_uniform_garbage_grades_f(graded: dict) -> None:
    assert graded["results"]["garbage"]["grade"] == "F"


def test_honest_sample_grades_strictly_better_than_broken_structure(graded: dict) -> None:
    results = graded["results"]

    assert _rank(results["honest"]) < _rank(results["shuffled"])
    assert _rank(results["honest"]) < _rank(results["garbage"])
    assert results["honest"]["drift"]["drifted"] == []


def test_fresh_real_rows_grade_a(graded: dict) -> None:
    assert graded["results"]["holdout"]["grade"] == "A"
    assert graded["results"]["holdout"]["score"] >= 0.99


def test_drift_is_named_and_costs_a_grade(graded: dict) -> None:
    result = graded["results"]["drifted"]
    named = {item["column"] for item in result["drift"]["drifted"]}

    assert named == set(graded["drifted_names"])
    assert all(item["statement"] for item in result["drift"]["drifted"])
    assert _rank(result) > _rank(graded["results"]["honest"])


def test_mode_collapse_costs_a_grade(graded: dict) -> None:
    result = graded["results"]["collapsed"]

    assert "mode_collapse" in result["defects"]
    assert result["diversity"]["top_rows_share"]["value"] >= 0.3
    assert _rank(result) > _rank(graded["results"]["honest"])


def test_same_inputs_and_seed_give_the_same_grade() -> None:
    train, holdout = adversarial.split(adversarial.breast_cancer())
    honest = adversarial.gaussian_copula(train, len(holdout))
    first, second = (_grade(honest, train, holdout, "target") for _ in range(2))

    assert json.dumps(first, sort_keys=True, default=str) == json.dumps(second, sort_keys=True, default=str)


def test_certificate_quality_section_has_references_and_thresholds() -> None:
    train, holdout = adversarial.split(adversarial.breast_cancer())
    honest = adversarial.gaussian_copula(train, len(holdout))
    drifted, names = adversarial.drifted(honest, train)
    document = evaluate(drifted, train, holdout, target="target", config=CONFIG).to_dict()
    section = document["quality"]

    assert document["engine"]["version"] == "2.0.0"
    assert section["grade"] in GRADES
    assert {item["column"] for item in section["drifted_columns"]} == set(names)
    assert set(section["fidelity"]["parts"]) == {
        "column_shapes",
        "pair_trends",
        "three_way",
        "discriminator",
        "ml_efficacy",
        "coverage",
    }
    assert all(part["reference"] is not None for part in section["fidelity"]["parts"].values())
    assert {
        "sdmetrics_score",
        "column_shapes",
        "column_pair_trends",
        "discriminator_auc",
        "ml_efficacy",
    } <= set(section["reference"])
    assert section["reference"]["source"] == "holdout"
    assert section["thresholds"]["grade_bands"][0] == {"grade": "A", "min_score": 0.9}
    assert section["discriminator_auc"]["reference_auc"] is not None


def _sdv_tables() -> dict[str, pd.DataFrame]:
    return {
        "adult": adversarial.adult(6_000),
        "wine": adversarial.wine(),
        "fair": adversarial.fair(),
        "randhie": adversarial.randhie().head(6_000),
        "anes96": adversarial.anes96(),
    }


@pytest.mark.parametrize("name", sorted(_sdv_tables()))
def test_column_types_are_detected_as_sdv_detects_them(name: str) -> None:
    from sdv.metadata import Metadata

    table = _sdv_tables()[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = Metadata.detect_from_dataframes({"table": table}).tables["table"].columns

    assert sdv_types.detect_sdtypes(table) == {name: spec["sdtype"] for name, spec in theirs.items()}


@pytest.mark.parametrize("name", sorted(_sdv_tables()))
def test_sdmetrics_score_matches_quality_report_under_sdv_metadata(name: str) -> None:
    from sdmetrics.reports.single_table import QualityReport
    from sdv.metadata import Metadata

    train, holdout = adversarial.split(_sdv_tables()[name])
    synthetic = adversarial.gaussian_copula(train, len(holdout))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metadata = Metadata.detect_from_dataframes({"table": train}).tables["table"].to_dict()
        report = QualityReport()
        report.generate(train, synthetic, metadata, verbose=False)
    detected = sdv_types.detect_sdtypes(train)
    columns = tuple(Column(name=c, sdtype=detected[c]) for c in train.columns)
    ours = quality.sdmetrics_report(
        clean_table(train, columns),
        clean_table(synthetic, columns),
        columns,
        correlation_threshold=0.5,
        association_threshold=0.3,
        bins=10,
    )
    properties = report.get_properties().set_index("Property")["Score"]

    assert abs(ours["score"] - report.get_score()) <= 0.01
    assert abs(ours["column_shapes"]["score"] - properties["Column Shapes"]) <= 0.01
    assert abs(ours["column_pair_trends"]["score"] - properties["Column Pair Trends"]) <= 0.01


def test_a_category_one_side_lacks_is_read_as_share_zero_not_by_position() -> None:
    """An integer level missing from an object index: ``Series.get`` used to read the share at that
    position (here "a"'s 0.5), so a level the synthetic data invented looked as common in real data."""
    from marketplace.certification.engine import drift

    real = pd.Series(["a"] * 50 + ["b"] * 50)
    synthetic = pd.Series([0] * 10 + ["a"] * 45 + ["b"] * 45)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tests = drift._share_tests("c", {"real": real, "synthetic": synthetic, "holdout": real})

    invented = next(test for test in tests if test["category"] == 0)
    assert (invented["real_share"], invented["synthetic_share"], invented["reference_share"]) == (
        0.0,
        0.1,
        0.0,
    )


def test_a_table_of_fewer_rows_than_discriminator_folds_is_certified_not_crashed() -> None:
    """statsmodels china_smoking has 8 rows: an 80/20 split leaves 2 holdout rows, so the discriminator pools
    4 rows into 5 folds and one fold is empty. scikit-learn's "Found array with 0 sample(s)" escaped from
    evaluate; now the empty fold is skipped, and the too-small holdout is refused with the engine's
    sentence (without a holdout the table is certified)."""
    import statsmodels.api as sm

    from marketplace.certification.engine.baseline import HoldoutTooSmallError

    table = sm.datasets.china_smoking.load_pandas().data.reset_index(drop=True)
    train, holdout = adversarial.split(table)
    synthetic = table.sample(20, replace=True, random_state=0).reset_index(drop=True)
    with pytest.raises(HoldoutTooSmallError, match="holdout has 2 rows"):
        evaluate(synthetic, train, holdout, config=CONFIG)
    document = evaluate(synthetic, train, None, config=CONFIG).to_dict()
    assert document["quality"]["grade"] in GRADES
    real = np.array([[0], [1]], dtype=np.int64)
    aucs = learning.discriminator_aucs(
        real, [np.array([[0], [1]], dtype=np.int64)], folds=5, seed=0, n_jobs=1
    )
    assert len(aucs) == 1
