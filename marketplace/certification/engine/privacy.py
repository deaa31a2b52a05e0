"""Privacy figures, each against a baseline of real rows the generator never saw (the holdout).

Inputs are cleaned tables (``schema.clean_table``); distances are those of ``distance.py`` and are reported
as d = √(mean per-column squared discrepancy), so 0 means identical rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from .config import EngineConfig
from .distance import Encoding, fit_encoding, nearest
from .schema import Column, bounded_sample
from .stats import Rate, rank_auc, residual_risk, wilson, wilson_interval

_QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95)
_INFERENCE_TOLERANCE = 0.05
_SELECTIVE_ROWS = 64
_SINGLING_OUT_ROUNDS = 10


def _row_hashes(table: pd.DataFrame, names: list[str]) -> np.ndarray:
    return pd.util.hash_pandas_object(table[names], index=False).to_numpy()


def _summary(distances: np.ndarray) -> dict:
    if len(distances) == 0:
        return {"rows": 0}
    values = np.quantile(distances, _QUANTILES)
    summary = {f"p{round(q * 100)}": float(v) for q, v in zip(_QUANTILES, values, strict=True)}
    summary.update(
        rows=int(len(distances)), mean=float(distances.mean()), zero_share=float(np.mean(distances == 0))
    )
    return summary


def _nndr(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    low, high = np.minimum(first, second), np.maximum(first, second)
    ratio = np.sqrt(low) / np.sqrt(np.where(high > 0, high, 1.0))
    return np.where(high > 0, ratio, 1.0)


@dataclass(frozen=True)
class _Tables:
    synthetic: pd.DataFrame
    train: pd.DataFrame
    holdout: pd.DataFrame | None


def _query_matrix(tables: list[pd.DataFrame], encoding: Encoding) -> list[np.ndarray]:
    """Tables as float64 matrices for predicate queries: continuous values, discrete codes; missing → −inf."""
    result = []
    for table in tables:
        matrix = np.empty((len(table), len(encoding.columns)), dtype=np.float64)
        for index, column in enumerate(encoding.columns):
            if column.is_continuous:
                values = table[column.name].to_numpy(dtype=np.float64)
                matrix[:, index] = np.where(np.isnan(values), -np.inf, values)
            else:
                codes = encoding.codes(table, index).astype(np.float64)
                missing = table[column.name].isna().to_numpy()
                matrix[:, index] = np.where(missing, -np.inf, codes)
        result.append(matrix)
    return result


def _count_matches(data: np.ndarray, columns: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """How many rows of ``data`` satisfy each conjunctive query (columns/low/high are queries × slots)."""
    counts = np.zeros(len(columns), dtype=np.int64)
    batch = max(8, 4_000_000 // max(len(data), 1))
    for start in range(0, len(columns), batch):
        stop = min(start + batch, len(columns))
        mask = np.ones((len(data), stop - start), dtype=bool)
        for slot in range(columns.shape[1]):
            values = data[:, columns[start:stop, slot]]
            mask &= (values >= low[start:stop, slot]) & (values <= high[start:stop, slot])
        counts[start:stop] = mask.sum(axis=0)
    return counts


def _single_counts(
    sorted_columns: list[np.ndarray], columns: np.ndarray, low: np.ndarray, high: np.ndarray
) -> np.ndarray:
    """Rows matching each single condition, from per-column sorted values (queries × slots)."""
    counts = np.zeros(columns.shape, dtype=np.int64)
    for column, values in enumerate(sorted_columns):
        where = columns == column
        if where.any():
            counts[where] = np.searchsorted(values, high[where], side="right") - np.searchsorted(
                values, low[where], side="left"
            )
    return counts


def singling_out(
    synthetic: np.ndarray,
    original: np.ndarray,
    control: np.ndarray,
    discrete: np.ndarray,
    *,
    attacks: int,
    slots: int,
    rng: np.random.Generator,
) -> dict:
    """Anonymeter's multivariate singling-out attack, vectorised.

    Queries are built from random synthetic rows on ``slots`` random columns (category ==, missing is
    null, a number above the synthetic median gives ``>= value`` else ``<= value``) and kept when they
    single out exactly one synthetic row. The attack succeeds on a query that singles out exactly one
    row of ``original`` (train rows); the control attack runs the same queries on ``control`` (holdout
    rows, same size). Risk = (attack − control) / (1 − control) with Wilson rates, as Anonymeter.
    A query whose most selective condition alone matches more than ``_SELECTIVE_ROWS`` synthetic rows
    is not tried (it almost never singles out), which keeps the search to a few passes.
    """
    synthetic = np.unique(synthetic, axis=0)
    original = np.unique(original, axis=0)
    control = np.unique(control, axis=0)
    width = synthetic.shape[1]
    slots = min(slots, width)
    medians = np.array(
        [np.median(col[np.isfinite(col)]) if np.isfinite(col).any() else 0.0 for col in synthetic.T],
        dtype=np.float64,
    )
    sorted_columns = [np.sort(col) for col in synthetic.T]
    kept_columns, kept_low, kept_high, seen = [], [], [], set()
    for _round in range(_SINGLING_OUT_ROUNDS):
        candidates = 10 * attacks
        rows = rng.integers(0, len(synthetic), size=candidates)
        columns = np.argsort(rng.random((candidates, width)), axis=1)[:, :slots]
        columns.sort(axis=1)
        values = synthetic[rows[:, None], columns]
        is_discrete = discrete[columns]
        above = values > medians[columns]
        missing = np.isneginf(values)
        low = np.where(is_discrete | above | missing, values, -np.finfo(np.float64).max)
        high = np.where(is_discrete | ~above | missing, values, np.inf)
        selective = _single_counts(sorted_columns, columns, low, high).min(axis=1)
        unique = selective == 1
        doubtful = np.flatnonzero((selective > 1) & (selective <= _SELECTIVE_ROWS))
        if len(doubtful):
            unique[doubtful] = (
                _count_matches(synthetic, columns[doubtful], low[doubtful], high[doubtful]) == 1
            )
        for index in np.flatnonzero(unique):
            key = (columns[index].tobytes(), low[index].tobytes(), high[index].tobytes())
            if key in seen:
                continue
            seen.add(key)
            kept_columns.append(columns[index])
            kept_low.append(low[index])
            kept_high.append(high[index])
            if len(kept_columns) >= attacks:
                break
        if len(kept_columns) >= attacks:
            break
    if not kept_columns:
        return {"risk": 0.0, "ci": [0.0, 0.0], "queries": 0, "attack_rate": 0.0, "control_rate": 0.0}
    columns, low, high = np.array(kept_columns), np.array(kept_low), np.array(kept_high)
    attack_successes = int(np.sum(_count_matches(original, columns, low, high) == 1))
    control_successes = int(np.sum(_count_matches(control, columns, low, high) == 1))
    return _risk(attack_successes, control_successes, len(columns)) | {"queries": len(columns)}


def _risk(
    attack_successes: int, control_successes: int, total: int, control_total: int | None = None
) -> dict:
    attack = wilson(attack_successes, total)
    control = wilson(control_successes, control_total or total)
    risk, interval = residual_risk(attack, control)
    return {
        "risk": risk,
        "ci": list(interval),
        "attack_rate": attack.value,
        "control_rate": control.value,
        "attacks": total,
    }


def linkability(
    synthetic: np.ndarray,
    targets: np.ndarray,
    control_targets: np.ndarray,
    first_dims: np.ndarray,
    second_dims: np.ndarray,
    n_jobs: int,
) -> dict:
    """Anonymeter's linkability attack (one neighbour): a target row is linked when its nearest synthetic
    row on the first half of the columns is also its nearest on the second half. Control targets are
    holdout rows; risk as Anonymeter's residual."""

    def links(rows: np.ndarray) -> int:
        left = nearest(rows[:, first_dims], synthetic[:, first_dims], n_jobs=n_jobs).index
        right = nearest(rows[:, second_dims], synthetic[:, second_dims], n_jobs=n_jobs).index
        return int(np.sum(left == right))

    return _risk(links(targets), links(control_targets), len(targets), len(control_targets))


def inference(
    synthetic_matrix: np.ndarray,
    synthetic: pd.DataFrame,
    target_matrix: np.ndarray,
    targets: pd.DataFrame,
    control_count: int,
    encoding: Encoding,
    max_columns: int,
    n_jobs: int,
) -> dict:
    """Anonymeter's attribute-inference attack for each column in turn as the secret: the attacker finds
    the synthetic row nearest to the target on every other column and guesses its secret. A guess is right
    when equal (discrete) or within 5% relative error (continuous). Targets are train rows then
    ``control_count`` holdout rows; the risk is reported per column, and the highest is the headline."""
    columns = encoding.columns[:max_columns]
    weight = 1.0 / len(encoding.columns)
    synthetic32 = np.ascontiguousarray(synthetic_matrix, dtype=np.float32)
    norms = np.einsum("ij,ij->i", synthetic_matrix, synthetic_matrix).astype(np.float32)
    target32 = np.ascontiguousarray(target_matrix, dtype=np.float32)
    guesses = np.zeros((len(columns), len(targets)), dtype=np.int64)
    block = int(min(max(12_000_000 // max(len(synthetic), 1), 16), 1024))
    codes_synthetic = {i: encoding.codes(synthetic, i) for i, c in enumerate(columns) if c.is_discrete}
    codes_targets = {i: encoding.codes(targets, i) for i, c in enumerate(columns) if c.is_discrete}

    def work(start: int) -> None:
        stop = min(start + block, len(targets))
        base = target32[start:stop] @ synthetic32.T
        base *= -2.0
        base += norms
        for index, column in enumerate(columns):
            begin, end = encoding.spans[index]
            if column.is_discrete:
                own = (codes_targets[index][start:stop, None] != codes_synthetic[index][None, :]).astype(
                    np.float32
                )
                own *= weight
            else:
                own = np.zeros_like(base)
                for dim in range(begin, end):
                    gap = target32[start:stop, dim][:, None] - synthetic32[:, dim][None, :]
                    own += gap * gap
            guesses[index, start:stop] = (base - own).argmin(axis=1)

    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(max_workers=max(n_jobs, 1)) as pool:
        list(pool.map(work, range(0, len(targets), block)))
    details = []
    attack_total = len(targets) - control_count
    for index, column in enumerate(columns):
        secret = targets[column.name]
        guess = synthetic[column.name].to_numpy()[guesses[index]]
        both_missing = secret.isna().to_numpy() & pd.isna(guess)
        if column.is_discrete:
            right = both_missing | (secret.to_numpy() == guess)
        else:
            truth = secret.to_numpy(dtype=np.float64)
            guess = guess.astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                right = both_missing | (np.abs(guess - truth) <= _INFERENCE_TOLERANCE * np.abs(guess))
        result = _risk(
            int(right[:attack_total].sum()), int(right[attack_total:].sum()), attack_total, control_count
        )
        details.append({"column": column.name} | result)
    worst = max(details, key=lambda item: (item["ci"][0], item["risk"]))
    return {"risk": worst["risk"], "ci": worst["ci"], "column": worst["column"], "details": details}


def _test(name: str, value: float, threshold: float, strict: float, passed: bool, meaning: str) -> dict:
    return {
        "name": name,
        "value": value,
        "threshold": threshold,
        "strict_threshold": strict,
        "passed": bool(passed),
        "meaning": meaning,
    }


def assess(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame | None,
    columns: tuple[Column, ...],
    config: EngineConfig,
    rng: np.random.Generator,
    progress: Callable[[int], None],
) -> tuple[dict, dict, dict]:
    """Privacy section, DCR chart data and the sizes used; see docs/engine.md for every test."""
    names = [c.name for c in columns if c.is_continuous or c.is_discrete]
    synthetic_hashes = _row_hashes(synthetic, names)
    train_hashes = _row_hashes(train, names)
    exact_rate = float(np.isin(synthetic_hashes, train_hashes).mean())
    result: dict = {
        "exact_match_rate": exact_rate,
        "exact_match_ci": list(wilson_interval(round(exact_rate * len(synthetic)), len(synthetic))),
    }
    encoding = fit_encoding(
        train,
        [synthetic] + ([holdout] if holdout is not None else []),
        columns,
        config.distance_max_categories,
    )
    synthetic_query, synthetic_sampled = bounded_sample(synthetic, config.privacy_max_rows, rng)
    sizes = {
        "synthetic_rows": len(synthetic_query),
        "synthetic_sampled": synthetic_sampled,
        "train_rows": len(train),
    }
    synthetic_matrix = encoding.encode(synthetic_query)
    train_matrix = encoding.encode(train)
    progress(10)
    if holdout is None:
        return _assess_without_holdout(
            result, synthetic_matrix, train_matrix, train, names, sizes, config, progress
        )

    holdout_query, holdout_sampled = bounded_sample(holdout, config.privacy_max_rows, rng)
    holdout_hashes = _row_hashes(holdout, names)
    holdout_rate = float(np.isin(holdout_hashes, train_hashes).mean())
    result["exact_match_rate_holdout"] = holdout_rate
    equal_size = min(len(holdout_query), len(train))
    order = rng.permutation(len(train))
    train_matrix = train_matrix[order]
    train_ordered = train.iloc[order].reset_index(drop=True)
    holdout_matrix = encoding.encode(holdout_query)
    sizes.update(
        holdout_rows=len(holdout_query), holdout_sampled=holdout_sampled, equal_size_train_rows=equal_size
    )

    to_train = nearest(
        synthetic_matrix, train_matrix, second=True, prefix_rows=equal_size, n_jobs=config.n_jobs
    )
    progress(35)
    to_holdout = nearest(synthetic_matrix, holdout_matrix[:equal_size], n_jobs=config.n_jobs)
    progress(45)
    baseline = nearest(holdout_matrix, train_matrix, second=True, n_jobs=config.n_jobs)
    progress(55)
    member_distance = nearest(train_matrix[:equal_size], synthetic_matrix, n_jobs=config.n_jobs).first
    outsider_distance = nearest(holdout_matrix[:equal_size], synthetic_matrix, n_jobs=config.n_jobs).first
    progress(65)

    closer = to_train.prefix < to_holdout.first
    ties = to_train.prefix == to_holdout.first
    successes = float(closer.sum() + 0.5 * ties.sum())
    share = successes / len(closer)
    share_interval = wilson_interval(round(successes), len(closer))
    dcr_train = np.sqrt(to_train.first)
    dcr_holdout_baseline = np.sqrt(baseline.first)
    tau = float(np.quantile(dcr_holdout_baseline, config.close_record_quantile))
    close_rate = float(np.mean(dcr_train <= tau))
    close_baseline = float(np.mean(dcr_holdout_baseline <= tau))
    auc, auc_interval = rank_auc(-np.sqrt(member_distance), -np.sqrt(outsider_distance))
    result.update(
        dcr_share=share,
        dcr_share_ci=list(share_interval),
        dcr_share_ties=float(ties.mean()),
        dcr={
            "synthetic_to_train": _summary(dcr_train),
            "synthetic_to_train_equal_size": _summary(np.sqrt(to_train.prefix)),
            "synthetic_to_holdout": _summary(np.sqrt(to_holdout.first)),
            "holdout_to_train": _summary(dcr_holdout_baseline),
        },
        nndr={
            "synthetic_to_train": _summary(_nndr(to_train.first, to_train.second)),
            "holdout_to_train": _summary(_nndr(baseline.first, baseline.second)),
        },
        close_records={"distance": tau, "synthetic_rate": close_rate, "holdout_rate": close_baseline},
        membership_inference={
            "auc": auc,
            "ci": list(auc_interval),
            "advantage": max(0.0, 2 * auc - 1),
            "members": equal_size,
        },
    )

    attacks = min(config.attack_count, equal_size)
    train_targets = rng.choice(equal_size, size=attacks, replace=False)
    control_targets = rng.choice(len(holdout_query), size=attacks, replace=False)
    synthetic_q, original_q, control_q = _query_matrix(
        [synthetic_query, train_ordered.iloc[:equal_size], holdout_query.iloc[:equal_size]], encoding
    )
    discrete = np.array([c.is_discrete for c in encoding.columns])
    result["singling_out"] = singling_out(
        synthetic_q,
        original_q,
        control_q,
        discrete,
        attacks=attacks,
        slots=config.singling_out_columns,
        rng=rng,
    ) | {"mode": "multivariate", "columns_per_query": min(config.singling_out_columns, len(encoding.columns))}
    progress(75)
    half = len(encoding.columns) // 2
    first_names = {c.name for c in encoding.columns[: max(half, 1)]}
    second_names = {c.name for c in encoding.columns[max(half, 1) :]} or first_names
    result["linkability"] = linkability(
        synthetic_matrix,
        train_matrix[train_targets],
        holdout_matrix[control_targets],
        encoding.dims(first_names),
        encoding.dims(second_names),
        config.n_jobs,
    ) | {"columns": [sorted(first_names), sorted(second_names)]}
    progress(85)
    targets = pd.concat(
        [train_ordered.iloc[train_targets], holdout_query.iloc[control_targets]], ignore_index=True
    )
    target_matrix = np.vstack([train_matrix[train_targets], holdout_matrix[control_targets]])
    result["attribute_inference"] = inference(
        synthetic_matrix,
        synthetic_query,
        target_matrix,
        targets,
        attacks,
        encoding,
        config.inference_max_columns,
        config.n_jobs,
    )
    progress(95)
    result["baseline"] = "holdout"
    result["baseline_statement"] = (
        "Each figure is compared with the same figure for real holdout rows the generator never saw."
    )
    result["tests"] = _tests_with_holdout(result, len(synthetic), len(holdout), len(closer), config)
    charts = _dcr_chart(np.sqrt(to_train.prefix), np.sqrt(to_holdout.first))
    return result, charts, sizes


def _exact_copy_allowance(baseline_rate: float, rows: int, baseline_rows: int, config: EngineConfig) -> float:
    noise = 3.0 * math.sqrt(
        baseline_rate * (1 - baseline_rate) * (1 / max(rows, 1) + 1 / max(baseline_rows, 1))
    )
    return max(config.exact_copy_margin, config.exact_copy_relative_margin * baseline_rate, noise)


def _tests_with_holdout(
    result: dict, synthetic_rows: int, holdout_rows: int, equal_rows: int, config: EngineConfig
) -> list[dict]:
    holdout_rate = result["exact_match_rate_holdout"]
    allowance = _exact_copy_allowance(holdout_rate, synthetic_rows, holdout_rows, config)
    share_noise = 4.0 * math.sqrt(0.25 / max(equal_rows, 1))
    share_threshold = max(config.dcr_share_threshold, 0.5 + share_noise)
    close = result["close_records"]
    close_noise = 3.0 * math.sqrt(
        close["holdout_rate"]
        * (1 - close["holdout_rate"])
        * (1 / max(synthetic_rows, 1) + 1 / max(holdout_rows, 1))
    )
    close_allowance = max(config.close_record_margin, close_noise)
    tests = [
        _test(
            "exact_copies",
            result["exact_match_rate"],
            holdout_rate + allowance,
            holdout_rate + allowance / 2,
            result["exact_match_rate"] <= holdout_rate + allowance,
            "Share of synthetic rows that are exact copies of a training row, against the share of real "
            "holdout rows that also occur in train.",
        ),
        _test(
            "dcr_share",
            result["dcr_share"],
            share_threshold,
            max(config.dcr_share_strict, 0.5 + share_noise / 2),
            result["dcr_share"] <= share_threshold,
            "Share of synthetic rows closer to a training row than to a holdout row, train and holdout "
            "compared at equal size; an honest generator scores about 0.5.",
        ),
        _test(
            "close_records",
            close["synthetic_rate"],
            close["holdout_rate"] + close_allowance,
            close["holdout_rate"] + close_allowance / 2,
            close["synthetic_rate"] <= close["holdout_rate"] + close_allowance,
            "Share of synthetic rows nearer to train than the closest 2% of holdout rows are (near copies, "
            "such as lightly perturbed training rows).",
        ),
        _test(
            "membership_inference",
            result["membership_inference"]["auc"],
            config.mia_auc_threshold,
            config.mia_auc_strict,
            result["membership_inference"]["auc"] <= config.mia_auc_threshold,
            "AUC of telling training rows from holdout rows by their distance to the synthetic data; 0.5 "
            "means no better than a coin.",
        ),
    ]
    for name, label in (
        ("singling_out", "singling out one training row with predicates learnt from the synthetic data"),
        ("linkability", "linking two halves of a training row through the synthetic data"),
        ("attribute_inference", "guessing a training row's attribute from its other attributes"),
    ):
        risk = result[name]
        tests.append(
            _test(
                name,
                risk["ci"][0],
                config.attack_risk_threshold,
                config.attack_risk_strict,
                risk["ci"][0] <= config.attack_risk_threshold,
                f"Lower end of the 95% interval of the Anonymeter-style risk of {label}, beyond the same "
                "attack on holdout rows (the risk itself and its interval are under the attack's name).",
            )
        )
    return tests


def _assess_without_holdout(
    result: dict,
    synthetic_matrix: np.ndarray,
    train_matrix: np.ndarray,
    train: pd.DataFrame,
    names: list[str],
    sizes: dict,
    config: EngineConfig,
    progress: Callable[[int], None],
) -> tuple[dict, dict, dict]:
    to_train = nearest(synthetic_matrix, train_matrix, second=True, n_jobs=config.n_jobs)
    progress(80)
    duplicate_rate = float(pd.Series(_row_hashes(train, names)).duplicated(keep=False).mean())
    allowance = _exact_copy_allowance(duplicate_rate, len(synthetic_matrix), len(train), config)
    dcr_train = np.sqrt(to_train.first)
    unavailable = {"risk": None, "ci": None, "reason": "needs holdout rows"}
    result.update(
        exact_match_rate_holdout=None,
        train_duplicate_rate=duplicate_rate,
        dcr_share=None,
        dcr_share_ci=None,
        dcr={"synthetic_to_train": _summary(dcr_train)},
        nndr={"synthetic_to_train": _summary(_nndr(to_train.first, to_train.second))},
        membership_inference={"auc": None, "ci": None, "reason": "needs holdout rows"},
        singling_out=unavailable,
        linkability=unavailable,
        attribute_inference=unavailable,
        baseline="none",
        baseline_statement=(
            "No holdout was given, so no figure can be compared with real rows the generator never saw; "
            "only exact copies are tested and the privacy grade is capped at C."
        ),
    )
    result["tests"] = [
        _test(
            "exact_copies",
            result["exact_match_rate"],
            duplicate_rate + allowance,
            duplicate_rate + allowance / 2,
            result["exact_match_rate"] <= duplicate_rate + allowance,
            "Share of synthetic rows that are exact copies of a training row, against the share of training "
            "rows that repeat inside train (no holdout baseline).",
        )
    ]
    progress(95)
    return result, _dcr_chart(dcr_train, None), sizes


def _dcr_chart(to_train: np.ndarray, to_holdout: np.ndarray | None) -> dict:
    pooled = to_train if to_holdout is None else np.concatenate([to_train, to_holdout])
    top = float(np.quantile(pooled, 0.99)) if len(pooled) else 1.0
    edges = np.linspace(0.0, top if top > 0 else 1.0, 31)
    chart = {
        "bin_edges": edges.tolist(),
        "synthetic_to_train": np.histogram(np.minimum(to_train, edges[-1]), bins=edges)[0].tolist(),
    }
    if to_holdout is not None:
        chart["synthetic_to_holdout"] = np.histogram(np.minimum(to_holdout, edges[-1]), bins=edges)[
            0
        ].tolist()
    return chart


def grade(result: dict, config: EngineConfig) -> tuple[str, bool]:
    """Privacy grade and verdict: F when any test fails; with a holdout A when every test is within its
    strict threshold, else B; without a holdout (capped) C when strict, else D."""
    tests = result["tests"]
    passed = all(test["passed"] for test in tests)
    if not passed:
        return "F", False
    strict = all(test["value"] <= test["strict_threshold"] for test in tests)
    if result["baseline"] == "holdout":
        return ("A" if strict else "B"), True
    return ("C" if strict else "D"), True


__all__ = ["Rate", "assess", "grade"]
