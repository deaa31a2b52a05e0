"""Figures that need a fitted model: ML efficacy (train on synthetic, test on real) and a discriminator."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import f1_score, r2_score, roc_auc_score
from threadpoolctl import threadpool_limits

from .schema import Column

_MAX_ITER = 60


def _features(tables: list[pd.DataFrame], columns: list[Column]) -> tuple[list[np.ndarray], np.ndarray]:
    """Continuous columns as floats and discrete ones as category codes shared by all tables."""
    matrices = [np.empty((len(t), len(columns)), dtype=np.float64) for t in tables]
    categorical = np.zeros(len(columns), dtype=bool)
    for index, column in enumerate(columns):
        if column.is_continuous:
            for matrix, table in zip(matrices, tables, strict=True):
                matrix[:, index] = table[column.name].to_numpy(dtype=np.float64)
            continue
        categorical[index] = True
        reference = tables[0][column.name].dropna()
        kept = reference.value_counts().index[:250]
        lookup = pd.Index(kept)
        for matrix, table in zip(matrices, tables, strict=True):
            codes = lookup.get_indexer(table[column.name]).astype(np.float64)
            matrix[:, index] = np.where(codes < 0, np.nan, codes)
    return matrices, categorical


def _fit_score_single_thread(kind: str, train_x, train_y, test_x, test_y, categorical, seed: int) -> float:
    if kind == "classification":
        model = HistGradientBoostingClassifier(
            max_iter=_MAX_ITER, categorical_features=categorical, random_state=seed, early_stopping=False
        )
        model.fit(train_x, train_y)
        return float(f1_score(test_y, model.predict(test_x), average="macro"))
    model = HistGradientBoostingRegressor(
        max_iter=_MAX_ITER, categorical_features=categorical, random_state=seed, early_stopping=False
    )
    model.fit(train_x, train_y)
    return float(r2_score(test_y, model.predict(test_x)))


def ml_efficacy(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    test: pd.DataFrame,
    columns: tuple[Column, ...],
    target: str,
    max_rows: int,
    seed: int,
) -> dict:
    """Train-on-synthetic vs train-on-real, both scored on the same real ``test`` rows.

    Classification (discrete target) is scored by macro F1, regression by R². Both models see the same
    number of rows (at most ``max_rows``). ``ratio`` is synthetic score / real score (None when the real
    score is not positive).
    """
    target_column = next(c for c in columns if c.name == target)
    kind = "classification" if target_column.is_discrete else "regression"
    features = [c for c in columns if c.name != target and (c.is_continuous or c.is_discrete)]
    rows = min(len(synthetic), len(train), max_rows)
    rng = np.random.default_rng(seed)
    synthetic = synthetic.iloc[np.sort(rng.choice(len(synthetic), rows, replace=False))]
    train = train.iloc[np.sort(rng.choice(len(train), rows, replace=False))]
    labelled = [t[t[target].notna()] for t in (train, synthetic, test)]
    (real_x, synthetic_x, test_x), categorical = _features(labelled, features)
    if kind == "classification":
        labels = pd.Index(labelled[0][target].astype(str).unique())
        real_y, synthetic_y, test_y = (lookup_labels(t[target], labels) for t in labelled)
    else:
        real_y, synthetic_y, test_y = (t[target].to_numpy(dtype=np.float64) for t in labelled)
    if len(np.unique(synthetic_y)) < 2 or len(np.unique(real_y)) < 2 or len(test_y) == 0:
        return {
            "task": kind,
            "target": target,
            "metric": "f1_macro" if kind == "classification" else "r2",
            "real_score": None,
            "synthetic_score": None,
            "ratio": None,
            "reason": "target has a single value",
        }
    # The two fits run side by side on two threads (scikit-learn's histogram code releases the GIL), each
    # with one OpenMP thread: with torch loaded in the same process (SDV workers) two OpenMP runtimes fight
    # over the cores and a 1-second fit takes 20.
    with threadpool_limits(limits=1, user_api="openmp"), ThreadPoolExecutor(max_workers=2) as pool:
        real_score, synthetic_score = pool.map(
            lambda fit: _fit_score_single_thread(kind, fit[0], fit[1], test_x, test_y, categorical, seed),
            [(real_x, real_y), (synthetic_x, synthetic_y)],
        )
    ratio = max(synthetic_score, 0.0) / real_score if real_score > 0 else None
    return {
        "task": kind,
        "target": target,
        "metric": "f1_macro" if kind == "classification" else "r2",
        "real_score": real_score,
        "synthetic_score": synthetic_score,
        "ratio": ratio,
        "trivial_score": trivial_score(kind, test_y),
        "training_rows": rows,
        "test_rows": int(len(test_y)),
    }


def lookup_labels(values: pd.Series, labels: pd.Index) -> np.ndarray:
    """Class labels as integer codes of ``labels``; unseen labels get the code len(labels)."""
    codes = labels.get_indexer(values.astype(str))
    return np.where(codes < 0, len(labels), codes)


def _cross_fitted_auc(real: np.ndarray, other: np.ndarray, folds: int, seed: int) -> float:
    """AUC over rows each scored by a model that did not see them: ``folds`` ≥ 2 folds, every row scored;
    ``folds`` = 1, one model fitted on a random half and scored on the other half."""
    data = np.vstack([real, other])
    labels = np.concatenate([np.zeros(len(real)), np.ones(len(other))])
    fold = np.random.default_rng(seed).permutation(len(data)) % max(folds, 2)
    scored = np.zeros(len(data), dtype=bool)
    scores = np.zeros(len(data))
    categorical = np.ones(data.shape[1], dtype=bool)
    for part in range(folds):
        fit_rows, test_rows = fold != part, fold == part
        if not test_rows.any():
            # Fewer pooled rows than folds (a table of a few rows): this fold has nothing to score.
            continue
        if len(np.unique(labels[fit_rows])) < 2:
            return math.nan
        model = HistGradientBoostingClassifier(
            max_iter=_MAX_ITER, categorical_features=categorical, random_state=seed, early_stopping=False
        )
        model.fit(data[fit_rows], labels[fit_rows])
        scores[test_rows] = model.predict_proba(data[test_rows])[:, 1]
        scored |= test_rows
    if len(np.unique(labels[scored])) < 2:
        return math.nan
    return float(roc_auc_score(labels[scored], scores[scored]))


def discriminator_aucs(
    real_codes: np.ndarray, other_codes: list[np.ndarray], folds: int, seed: int, n_jobs: int
) -> list[float]:
    """Cross-fitted AUC of a gradient-boosted classifier telling each table of ``other_codes`` from
    ``real_codes`` (binned level codes, all read as categories; equal row counts expected).

    With ``folds`` ≥ 2 every row is scored by the model fitted on the other folds, so small tables use all
    their rows; with 1, half the rows are fitted and the other half scored. 0.5 means indistinguishable,
    1.0 always told apart. Tables run on ``n_jobs`` threads with
    one OpenMP thread each (see :func:`ml_efficacy`).
    """
    with (
        threadpool_limits(limits=1, user_api="openmp"),
        ThreadPoolExecutor(max_workers=max(1, n_jobs)) as pool,
    ):
        return list(pool.map(lambda other: _cross_fitted_auc(real_codes, other, folds, seed), other_codes))


def trivial_score(kind: str, labels: np.ndarray) -> float:
    """What a model that ignores every feature scores on ``labels``: macro F1 of always predicting the most
    frequent class (classification), R² of predicting the mean (regression, 0)."""
    if kind != "classification" or len(labels) == 0:
        return 0.0
    counts = np.bincount(labels)
    share = counts.max() / counts.sum()
    return float(2 * share / (1 + share) / np.count_nonzero(counts))
