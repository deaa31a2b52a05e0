"""Aggregates for the certificate page: marginals and correlation matrices, never a row or a row's value.

Histogram edges span the real 1st–99th percentiles (the extremes that could point at one person are
folded into open-ended outer bins), and categories seen in fewer than ``MIN_CELL`` real rows are merged
into "(other)".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import Column

MIN_CELL = 5
TOP_CATEGORIES = 20
HISTOGRAM_BINS = 20
MAX_CORRELATION_COLUMNS = 15


def _numeric_marginal(real: np.ndarray, synthetic: np.ndarray) -> dict:
    real = real[~np.isnan(real)]
    synthetic = synthetic[~np.isnan(synthetic)]
    if len(real) == 0:
        return {"kind": "histogram", "bin_edges": [], "real": [], "synthetic": []}
    low, high = np.quantile(real, [0.01, 0.99])
    if high <= low:
        high = low + 1.0
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)

    def shares(values: np.ndarray) -> list[float]:
        if len(values) == 0:
            return [0.0] * HISTOGRAM_BINS
        counts = np.histogram(np.clip(values, low, high), bins=edges)[0]
        return (counts / len(values)).tolist()

    return {
        "kind": "histogram",
        "bin_edges": edges.tolist(),
        "open_ended": True,
        "real": shares(real),
        "synthetic": shares(synthetic),
    }


def _categorical_marginal(real: pd.Series, synthetic: pd.Series) -> dict:
    real_counts = real.astype(str).where(real.notna(), "(missing)").value_counts()
    synthetic_counts = synthetic.astype(str).where(synthetic.notna(), "(missing)").value_counts()
    frequent = real_counts[real_counts >= MIN_CELL]
    ordered = sorted(frequent.items(), key=lambda item: (-item[1], item[0]))[:TOP_CATEGORIES]
    labels = [label for label, _ in ordered]
    real_total, synthetic_total = max(len(real), 1), max(len(synthetic), 1)
    real_shares = [float(real_counts.get(label, 0)) / real_total for label in labels]
    synthetic_shares = [float(synthetic_counts.get(label, 0)) / synthetic_total for label in labels]
    labels.append("(other)")
    real_shares.append(max(0.0, 1.0 - sum(real_shares)))
    synthetic_shares.append(max(0.0, 1.0 - sum(synthetic_shares)))
    return {"kind": "categories", "labels": labels, "real": real_shares, "synthetic": synthetic_shares}


def _correlations(table: pd.DataFrame, names: list[str]) -> list[list[float | None]]:
    matrix = table[names].corr(method="pearson").to_numpy()
    return [[None if np.isnan(value) else float(value) for value in row] for row in matrix]


def build(real: pd.DataFrame, synthetic: pd.DataFrame, columns: tuple[Column, ...]) -> dict:
    """Per-column real vs synthetic shares and real/synthetic Pearson matrices of up to 15 continuous columns."""
    marginals = []
    for column in columns:
        if column.is_continuous:
            chart = _numeric_marginal(real[column.name].to_numpy(), synthetic[column.name].to_numpy())
        elif column.is_discrete:
            chart = _categorical_marginal(real[column.name], synthetic[column.name])
        else:
            continue
        marginals.append({"column": column.name, "sdtype": column.sdtype} | chart)
    numeric = [c.name for c in columns if c.is_continuous][:MAX_CORRELATION_COLUMNS]
    return {
        "marginals": marginals,
        "correlations": {
            "columns": numeric,
            "real": _correlations(real, numeric) if numeric else [],
            "synthetic": _correlations(synthetic, numeric) if numeric else [],
        },
    }
