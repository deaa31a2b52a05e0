"""Quality figures with SDMetrics 0.32 definitions: column shapes, column pair trends, validity, coverage.

Every function takes the cleaned tables of ``schema.clean_table`` (float64 for continuous columns, object
labels for discrete ones, NaN for missing) and returns plain Python values; scores are in [0, 1].
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .schema import Column

# SDMetrics rounds continuous values to this many decimals before its KS test.
_KS_DECIMALS = sys.float_info.dig - 1


def ks_complement(real: np.ndarray, synthetic: np.ndarray) -> float:
    """1 − the two-sample Kolmogorov–Smirnov D statistic over non-missing values (NaN when a side is empty)."""
    real = np.sort(np.round(real[~np.isnan(real)], _KS_DECIMALS))
    synthetic = np.sort(np.round(synthetic[~np.isnan(synthetic)], _KS_DECIMALS))
    if len(real) == 0 or len(synthetic) == 0:
        return math.nan
    points = np.concatenate([real, synthetic])
    cdf_real = np.searchsorted(real, points, side="right") / len(real)
    cdf_synthetic = np.searchsorted(synthetic, points, side="right") / len(synthetic)
    return float(1.0 - np.max(np.abs(cdf_real - cdf_synthetic)))


def tv_complement(real: pd.Series, synthetic: pd.Series) -> float:
    """1 − the total variation distance between the category frequencies (missing values dropped)."""
    real_counts = real.value_counts(dropna=True)
    synthetic_counts = synthetic.value_counts(dropna=True)
    if real_counts.sum() == 0 or synthetic_counts.sum() == 0:
        return math.nan
    real_share = real_counts / real_counts.sum()
    synthetic_share = synthetic_counts / synthetic_counts.sum()
    union = real_share.index.union(synthetic_share.index)
    difference = (
        real_share.reindex(union, fill_value=0.0) - synthetic_share.reindex(union, fill_value=0.0)
    ).abs()
    return float(1.0 - 0.5 * difference.sum())


def column_shapes(real: pd.DataFrame, synthetic: pd.DataFrame, columns: tuple[Column, ...]) -> dict:
    """KSComplement for numerical/datetime columns, TVComplement for categorical/boolean ones; the mean
    skips columns whose score is undefined (a side with no values)."""
    details: list[dict[str, Any]] = []
    for column in columns:
        if column.is_continuous:
            metric = "KSComplement"
            score = ks_complement(real[column.name].to_numpy(), synthetic[column.name].to_numpy())
        elif column.is_discrete:
            metric = "TVComplement"
            score = tv_complement(real[column.name], synthetic[column.name])
        else:
            continue
        details.append({"column": column.name, "metric": metric, "score": score})
    scores = [item["score"] for item in details if not math.isnan(item["score"])]
    return {"score": float(np.mean(scores)) if scores else math.nan, "details": details}


def _own_bins(values: np.ndarray, bins: int) -> np.ndarray:
    """SDMetrics' QualityReport discretisation: equal-width bins over the table's own range, NaN → bins+1."""
    present = values[~np.isnan(values)]
    edges = np.histogram_bin_edges(present, bins=bins)
    return np.digitize(values, bins=edges)


def _cramers_v(counts: np.ndarray) -> float:
    observed = counts[counts.sum(axis=1) > 0][:, counts.sum(axis=0) > 0]
    total = observed.sum()
    if total == 0 or min(observed.shape) < 2:
        return math.nan
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / total
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    return math.sqrt(chi2 / total / (min(observed.shape) - 1))


def _pearson(first: np.ndarray, second: np.ndarray) -> float:
    keep = ~(np.isnan(first) | np.isnan(second))
    first, second = first[keep], second[keep]
    if len(first) < 2:
        return math.nan
    first = first - first.mean()
    second = second - second.mean()
    # einsum, not BLAS: OpenBLAS runs long dot products on threads, which stall when the cores are busy.
    denominator = math.sqrt(
        float(np.einsum("i,i->", first, first)) * float(np.einsum("i,i->", second, second))
    )
    if denominator == 0:
        return math.nan
    return max(-1.0, min(1.0, float(np.einsum("i,i->", first, second)) / denominator))


@dataclass(frozen=True)
class _Codes:
    real: np.ndarray
    synthetic: np.ndarray
    size: int


def _discrete_codes(real: pd.Series, synthetic: pd.Series) -> _Codes:
    codes, uniques = pd.factorize(pd.concat([real, synthetic], ignore_index=True), use_na_sentinel=False)
    return _Codes(real=codes[: len(real)], synthetic=codes[len(real) :], size=max(len(uniques), 1))


def _binned_codes(real: np.ndarray, synthetic: np.ndarray, bins: int) -> _Codes:
    return _Codes(real=_own_bins(real, bins), synthetic=_own_bins(synthetic, bins), size=bins + 2)


def column_pair_trends(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: tuple[Column, ...],
    *,
    correlation_threshold: float,
    association_threshold: float,
    bins: int,
) -> dict:
    """CorrelationSimilarity (Pearson) for continuous pairs, ContingencySimilarity for the others, as the
    SDMetrics 0.32 QualityReport computes them.

    A pair contributes to the mean only when its real association is strong enough: |Pearson r| above
    ``correlation_threshold`` or Cramér's V above ``association_threshold`` (SDMetrics' defaults 0.5
    and 0.3). The score of a weak pair is still reported, with ``contributes`` false. ``mean_all_pairs``
    averages every defined pair.
    """
    used = [column for column in columns if column.is_continuous or column.is_discrete]
    numbers = {c.name: real[c.name].to_numpy() for c in used if c.is_continuous}
    synthetic_numbers = {c.name: synthetic[c.name].to_numpy() for c in used if c.is_continuous}
    constant = {
        c.name: real[c.name].nunique() == 1 or synthetic[c.name].nunique() == 1
        for c in used
        if c.is_continuous
    }
    codes: dict[str, _Codes] = {}
    for column in used:
        if column.is_discrete:
            codes[column.name] = _discrete_codes(real[column.name], synthetic[column.name])
        else:
            codes[column.name] = _binned_codes(numbers[column.name], synthetic_numbers[column.name], bins)
    details = []
    for index, first in enumerate(used):
        for second in used[index + 1 :]:
            item: dict = {"column_1": first.name, "column_2": second.name}
            if first.is_continuous and second.is_continuous:
                item["metric"] = "CorrelationSimilarity"
                real_r = math.nan if constant[first.name] or constant[second.name] else None
                if real_r is None:
                    real_r = _pearson(numbers[first.name], numbers[second.name])
                    synthetic_r = _pearson(synthetic_numbers[first.name], synthetic_numbers[second.name])
                else:
                    synthetic_r = math.nan
                score = 1.0 - abs(real_r - synthetic_r) / 2.0
                item.update(real_correlation=real_r, synthetic_correlation=synthetic_r, score=score)
                item["contributes"] = bool(not math.isnan(score) and abs(real_r) > correlation_threshold)
            else:
                item["metric"] = "ContingencySimilarity"
                a, b = codes[first.name], codes[second.name]
                cells = a.size * b.size
                real_counts = np.bincount(a.real * b.size + b.real, minlength=cells).astype(np.float64)
                synthetic_counts = np.bincount(a.synthetic * b.size + b.synthetic, minlength=cells).astype(
                    np.float64
                )
                association = _cramers_v(real_counts.reshape(a.size, b.size))
                score = 1.0 - 0.5 * float(
                    np.abs(real_counts / max(len(real), 1) - synthetic_counts / max(len(synthetic), 1)).sum()
                )
                item.update(real_association=association, score=score)
                item["contributes"] = bool(
                    not math.isnan(association) and association > association_threshold
                )
            details.append(item)
    contributing = [item["score"] for item in details if item["contributes"]]
    defined = [item["score"] for item in details if not math.isnan(item["score"])]
    return {
        "score": float(np.mean(contributing)) if contributing else math.nan,
        "mean_all_pairs": float(np.mean(defined)) if defined else math.nan,
        "contributing_pairs": len(contributing),
        "real_correlation_threshold": correlation_threshold,
        "real_association_threshold": association_threshold,
        "details": details,
    }


def _boundary_adherence(
    real: pd.DataFrame, synthetic: pd.DataFrame, column: Column, spec: dict[str, Any]
) -> float | None:
    """The share of a continuous column's synthetic values within the real range (or the declared
    ``range_min``/``range_max`` of a numerical column); missing synthetic values count only when the real
    column has none. None when the real column has no value; NaN without synthetic values."""
    values = real[column.name].to_numpy()
    present = values[~np.isnan(values)]
    if len(present) == 0:
        return None
    low, high = present.min(), present.max()
    if "range_min" in spec and column.sdtype == "numerical":
        low = float(spec["range_min"])
    if "range_max" in spec and column.sdtype == "numerical":
        high = float(spec["range_max"])
    candidate = synthetic[column.name].to_numpy()
    if len(present) < len(values):
        candidate = candidate[~np.isnan(candidate)]
    return float(np.mean((candidate >= low) & (candidate <= high))) if len(candidate) else math.nan


def validity(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    raw_real: pd.DataFrame,
    raw_synthetic: pd.DataFrame,
    columns: tuple[Column, ...],
    key_columns: tuple[str, ...],
    metadata: dict | None,
) -> dict:
    """SDMetrics DiagnosticReport validity: BoundaryAdherence (continuous), CategoryAdherence (discrete),
    KeyUniqueness (key columns), TableStructure (column names and dtypes); each in [0, 1]."""
    declared = (metadata or {}).get("columns", {}) if metadata else {}
    boundary: list[dict[str, Any]] = []
    category: list[dict[str, Any]] = []
    for column in columns:
        if column.is_continuous:
            score = _boundary_adherence(real, synthetic, column, declared.get(column.name, {}))
            if score is not None:
                boundary.append({"column": column.name, "score": score})
        elif column.is_discrete:
            allowed = real[column.name].dropna().unique()
            candidate = synthetic[column.name]
            valid = candidate.isin(allowed)
            if real[column.name].isna().any():
                valid = valid | candidate.isna()
            category.append({"column": column.name, "score": float(valid.mean()) if len(valid) else math.nan})
    keys: list[dict[str, Any]] = []
    for name in key_columns:
        if name in raw_synthetic.columns and len(raw_synthetic):
            values = raw_synthetic[name]
            bad = values.duplicated() | values.isna()
            keys.append({"column": name, "score": float(1.0 - bad.mean())})
    real_pairs = set(zip(map(str, raw_real.columns), map(str, raw_real.dtypes), strict=True))
    synthetic_pairs = set(zip(map(str, raw_synthetic.columns), map(str, raw_synthetic.dtypes), strict=True))
    structure = len(real_pairs & synthetic_pairs) / max(len(real_pairs | synthetic_pairs), 1)
    per_column = [item["score"] for item in boundary + category + keys if not math.isnan(item["score"])]

    def mean(items: list[dict]) -> float:
        scores = [item["score"] for item in items if not math.isnan(item["score"])]
        return float(np.mean(scores)) if scores else math.nan

    return {
        "score": float(np.mean(per_column)) if per_column else math.nan,
        "boundary_adherence": {"score": mean(boundary), "details": boundary},
        "category_adherence": {"score": mean(category), "details": category},
        "key_uniqueness": {"score": mean(keys), "details": keys},
        "table_structure": {
            "score": structure,
            "missing_columns": sorted(map(str, set(raw_real) - set(raw_synthetic))),
        },
    }


def coverage(real: pd.DataFrame, synthetic: pd.DataFrame, columns: tuple[Column, ...]) -> dict:
    """SDMetrics RangeCoverage (continuous) and CategoryCoverage (discrete) per column, and their mean."""
    details: list[dict[str, Any]] = []
    for column in columns:
        if column.is_continuous:
            values = real[column.name].dropna()
            candidate = synthetic[column.name].dropna()
            if values.empty or candidate.empty:
                continue
            low, high = values.min(), values.max()
            if high == low:
                score = float(candidate.min() <= low <= candidate.max())
            else:
                below = max((candidate.min() - low) / (high - low), 0.0)
                above = max((high - candidate.max()) / (high - low), 0.0)
                score = max(1.0 - (below + above), 0.0)
            details.append({"column": column.name, "metric": "RangeCoverage", "score": float(score)})
        elif column.is_discrete:
            categories = real[column.name].dropna().unique()
            if len(categories) == 0:
                continue
            present = pd.Series(categories).isin(synthetic[column.name].dropna().unique())
            details.append(
                {"column": column.name, "metric": "CategoryCoverage", "score": float(present.mean())}
            )
    scores = [item["score"] for item in details]
    return {"score": float(np.mean(scores)) if scores else math.nan, "details": details}


def sdmetrics_report(
    real: pd.DataFrame,
    synthetic: pd.DataFrame,
    columns: tuple[Column, ...],
    *,
    correlation_threshold: float,
    association_threshold: float,
    bins: int,
) -> dict:
    """The SDMetrics QualityReport figures: column shapes, column pair trends and their mean (``score``)."""
    shapes = column_shapes(real, synthetic, columns)
    pairs = column_pair_trends(
        real,
        synthetic,
        columns,
        correlation_threshold=correlation_threshold,
        association_threshold=association_threshold,
        bins=bins,
    )
    defined = [value for value in (shapes["score"], pairs["score"]) if not math.isnan(value)]
    return {
        "score": float(np.mean(defined)) if defined else math.nan,
        "column_shapes": shapes,
        "column_pair_trends": pairs,
    }
