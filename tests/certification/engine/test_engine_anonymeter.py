"""The engine's own singling-out, linkability and inference attacks agree with the anonymeter package."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest
from engine_data import adult, independent_marginals, split

from marketplace.certification.engine import EngineConfig, evaluate

SECRETS = ["education", "occupation", "age"]


def _overlap(first: list[float], second: tuple[float, float]) -> bool:
    return first[0] <= second[1] + 1e-9 and second[0] <= first[1] + 1e-9


@pytest.mark.slow
@pytest.mark.parametrize("leak_rows", [0, 500])
def test_attack_risks_agree_with_anonymeter(leak_rows: int) -> None:
    pytest.importorskip("numba")
    pytest.importorskip("polars")
    pytest.importorskip("anonymeter")
    from anonymeter.evaluators import InferenceEvaluator, LinkabilityEvaluator, SinglingOutEvaluator

    train, holdout = split(adult(5_000))
    honest = independent_marginals(train, len(holdout))
    synthetic = pd.concat(
        [train.sample(leak_rows, random_state=3), honest.iloc[leak_rows:]], ignore_index=True
    )
    mine = evaluate(synthetic, train, holdout, config=EngineConfig(attack_count=500)).to_dict()["privacy"]
    original = train.sample(len(holdout), random_state=0)
    columns = list(train.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        singling = SinglingOutEvaluator(ori=original, syn=synthetic, control=holdout, n_attacks=300, seed=0)
        singling.evaluate(mode="multivariate")
        linking = LinkabilityEvaluator(
            ori=original, syn=synthetic, control=holdout, aux_cols=(columns[:7], columns[7:]), n_attacks=500
        )
        linking.evaluate(n_jobs=1)
        inferred = {}
        for secret in SECRETS:
            evaluator = InferenceEvaluator(
                ori=original,
                syn=synthetic,
                control=holdout,
                aux_cols=[c for c in columns if c != secret],
                secret=secret,
                n_attacks=500,
            )
            inferred[secret] = evaluator.evaluate(n_jobs=1).risk().ci
    per_column = {item["column"]: item for item in mine["attribute_inference"]["details"]}

    assert mine["linkability"]["columns"] == [sorted(columns[:7]), sorted(columns[7:])]
    assert _overlap(mine["singling_out"]["ci"], singling.risk().ci)
    assert _overlap(mine["linkability"]["ci"], linking.risk().ci)
    for secret in SECRETS:
        assert _overlap(per_column[secret]["ci"], inferred[secret])
    if leak_rows:
        assert mine["linkability"]["ci"][0] > 0 and linking.risk().ci[0] > 0
