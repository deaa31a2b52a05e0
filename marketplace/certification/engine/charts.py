"""Aggregates for the certificate page: marginals and correlation matrices, never a row or a row's value.

Histogram edges are round numbers between the ``MIN_CELL``-th smallest and largest real values (the
extremes that could point at one person are folded into open-ended outer bins), every bin holds at least
``MIN_CELL`` real rows (thinner neighbours are merged), a column with fewer than ``MIN_HISTOGRAM_ROWS``
real values gets no histogram, and categories seen in fewer than ``MIN_CELL`` real rows are merged into
"(other)".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import Column

MIN_CELL = 5
# Below this many real rows a column gets no histogram at all (two bins of MIN_CELL rows at least).
MIN_HISTOGRAM_ROWS = 2 * MIN_CELL
TOP_CATEGORIES = 20
HISTOGRAM_BINS = 20
MAX_CORRELATION_COLUMNS = 15


def _nice_step(span: float) -> float:
    """The 1, 2 or 5 times a power of ten nearest above ``span`` (a coarse, round bin width)."""
    if not np.isfinite(span) or span <= 0:
        return 1.0
    power = 10.0 ** np.floor(np.log10(span))
    return float(next(factor * power for factor in (1, 2, 5, 10) if factor * power >= span))


def _safe_edges(real: np.ndarray) -> np.ndarray:
    """Round histogram edges whose every bin holds at least ``MIN_CELL`` real rows.

    The range runs from the ``MIN_CELL``-th smallest to the ``MIN_CELL``-th largest real value (so at least
    that many rows lie in each open-ended outer bin), widened to multiples of a round step (1, 2 or 5 times
    a power of ten, about a twentieth of the range): an edge is never an interpolation between two real
    values, so it cannot point at one person's value (a 99th percentile of 20 rows lies on the largest
    one). Neighbouring bins with fewer than ``MIN_CELL`` real rows are then merged.
    """
    ordered = np.sort(real)
    low, high = float(ordered[MIN_CELL - 1]), float(ordered[len(ordered) - MIN_CELL])
    step = _nice_step((high - low) / HISTOGRAM_BINS)
    first, last = np.floor(low / step), np.ceil(high / step)
    if last <= first:
        last = first + 1
    # Rounded to the step's decimals, so 0.1 * 3 is written 0.3 and not 0.30000000000000004.
    edges = np.round(np.arange(first, last + 1) * step, max(0, int(-np.floor(np.log10(step)))))
    counts = np.histogram(np.clip(real, edges[0], edges[-1]), bins=edges)[0]
    kept, running = [edges[0]], 0
    for edge, count in zip(edges[1:-1], counts[:-1], strict=True):
        running += int(count)
        if running >= MIN_CELL:
            kept.append(edge)
            running = 0
    if running + int(counts[-1]) < MIN_CELL and len(kept) > 1:
        kept.pop()
    kept.append(edges[-1])
    return np.array(kept, dtype=float)


def _numeric_marginal(real: np.ndarray, synthetic: np.ndarray) -> dict:
    real = real[~np.isnan(real)]
    synthetic = synthetic[~np.isnan(synthetic)]
    if len(real) < MIN_HISTOGRAM_ROWS:
        # Too few real rows for bins of MIN_CELL rows each: any edge or share would describe individuals.
        return {"kind": "histogram", "bin_edges": [], "real": [], "synthetic": [], "withheld": True}
    edges = _safe_edges(real)
    low, high = edges[0], edges[-1]

    def shares(values: np.ndarray) -> list[float]:
        if len(values) == 0:
            return [0.0] * (len(edges) - 1)
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
