"""Diversity and support: duplicated rows (mode collapse) and how much of the real data's support is covered.

- ``distinct_share``: distinct rows / rows over the statistical columns (exact equality of cleaned values).
- ``top_rows_share``: the share of rows that are one of the 10 most frequent rows (mode collapse puts a
  large share of the rows on a few points).
- ``coverage`` (Naeem et al. 2020, "Reliable fidelity and diversity metrics for generative models"): the
  share of real rows whose k-nearest-neighbour ball among the real rows holds at least one candidate row.
- ``precision`` (same paper, the support-based precision of Kynkäänniemi et al. 2019): the share of
  candidate rows inside at least one real row's k-nearest-neighbour ball.

Distances are the engine's mixed-type distance (``distance.py``), fitted on the real rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from .distance import fit_encoding, nearest
from .schema import Column

_BLOCK_ROWS = 1024
# float32 products can misjudge "inside the ball" by ~1e-6 of a squared distance; the radius is widened by
# this much so that a row at exactly the radius (a duplicate of the k-th neighbour) counts as inside.
_TOLERANCE = 1e-6


def distinct_share(table: pd.DataFrame) -> float:
    """Distinct rows / rows (1.0 when no row repeats; NaN for an empty table)."""
    if len(table) == 0:
        return float("nan")
    hashes = pd.util.hash_pandas_object(table, index=False).to_numpy()
    return float(len(np.unique(hashes)) / len(hashes))


def top_rows_share(table: pd.DataFrame, rows: int) -> float:
    """Share of the table's rows that repeat one of its ``rows`` most frequent rows (mass on a few modes)."""
    if len(table) == 0:
        return float("nan")
    hashes = pd.util.hash_pandas_object(table, index=False).to_numpy()
    _, counts = np.unique(hashes, return_counts=True)
    return float(np.sort(counts)[::-1][:rows].sum() / len(hashes))


def _squared(query: np.ndarray, reference: np.ndarray, reference_norms: np.ndarray) -> np.ndarray:
    block = query.astype(np.float32) @ reference.T
    block *= -2.0
    block += reference_norms[None, :]
    block += np.einsum("ij,ij->i", query, query).astype(np.float32)[:, None]
    return np.maximum(block, 0.0)


def _knn_radius(real: np.ndarray, norms: np.ndarray, k: int) -> np.ndarray:
    """Squared distance from each real row to its k-th nearest other real row."""
    radii = np.empty(len(real))
    k = min(k, len(real) - 1)
    for start in range(0, len(real), _BLOCK_ROWS):
        block = _squared(real[start : start + _BLOCK_ROWS], real, norms)
        rows = np.arange(len(block))
        block[rows, start + rows] = np.inf
        radii[start : start + len(block)] = np.partition(block, k - 1, axis=1)[:, k - 1]
    return radii


def _inside_any_ball(
    candidate: np.ndarray, real: np.ndarray, norms: np.ndarray, radii: np.ndarray
) -> np.ndarray:
    inside = np.zeros(len(candidate), dtype=bool)
    limit = (radii + _TOLERANCE).astype(np.float32)[None, :]
    for start in range(0, len(candidate), _BLOCK_ROWS):
        block = _squared(candidate[start : start + _BLOCK_ROWS], real, norms)
        inside[start : start + len(block)] = (block <= limit).any(axis=1)
    return inside


def support(
    real: pd.DataFrame,
    candidates: dict[str, pd.DataFrame],
    columns: tuple[Column, ...],
    *,
    k: int,
    max_categories: int,
) -> dict[str, dict[str, float]]:
    """Coverage and precision of each candidate table against the ``real`` rows' k-NN balls.

    Returns ``{name: {"coverage": ..., "precision": ...}}``, both shares in [0, 1].
    """
    if len(real) <= k:
        return {name: {"coverage": float("nan"), "precision": float("nan")} for name in candidates}
    encoding = fit_encoding(real, list(candidates.values()), columns, max_categories)
    real_matrix = encoding.encode(real)
    real32 = real_matrix.astype(np.float32)
    norms = np.einsum("ij,ij->i", real_matrix, real_matrix).astype(np.float32)
    result = {}
    with threadpool_limits(limits=1, user_api="blas"):
        radii = _knn_radius(real32, norms, k)
        for name, table in candidates.items():
            matrix = encoding.encode(table)
            closest = nearest(real_matrix, matrix, n_jobs=1).first
            result[name] = {
                "coverage": float(np.mean(closest <= radii + _TOLERANCE)),
                "precision": float(np.mean(_inside_any_ball(matrix, real32, norms, radii))),
            }
    return result
