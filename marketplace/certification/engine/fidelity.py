"""Fidelity of one, two and three columns at a time, on binned columns, as mostlyai-qa's accuracies.

Every statistical column is cut into at most ``bins`` levels fitted on the real reference rows (numbers:
quantile edges, or one level per value when there are at most ``bins`` values; categories: the ``bins``
most frequent, then "other"; missing values: a level of their own). The accuracy of a set of columns is
1 − the total variation distance between the joint level frequencies of two tables, so 1 means identical
binned distributions. Codes are small integers, so each joint table is one ``numpy.bincount``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .schema import Column


@dataclass(frozen=True)
class Binned:
    """Level codes of several tables (each n × p, int64) over the same levels; ``levels[j]`` per column."""

    names: tuple[str, ...]
    levels: tuple[int, ...]
    codes: tuple[np.ndarray, ...]


def _numeric_codes(reference: np.ndarray, values: np.ndarray, bins: int) -> tuple[np.ndarray, int]:
    present = reference[~np.isnan(reference)]
    distinct = np.unique(present)
    if len(distinct) <= bins:
        # One level per real value; other values fall into the level of the nearest real value.
        inner = (distinct[1:] + distinct[:-1]) / 2.0
    else:
        inner = np.unique(np.quantile(present, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    codes = np.searchsorted(inner, values, side="right")
    size = len(inner) + 2
    return np.where(np.isnan(values), size - 1, codes), size


def _kept_levels(reference: pd.Series, bins: int) -> pd.Index:
    counts = reference.dropna().value_counts()
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    return pd.Index([label for label, _ in ordered[:bins]])


def _discrete_codes(kept: pd.Index, values: pd.Series) -> tuple[np.ndarray, int]:
    codes = kept.get_indexer(values)
    codes = np.where(codes < 0, len(kept), codes)
    size = len(kept) + 2
    return np.where(values.isna().to_numpy(), size - 1, codes), size


def levels_for(rows: int, order: int, bins: int) -> int:
    """Levels per column for joint tables of ``order`` columns: at most ``bins``, and few enough that the
    joint table has about 5 rows per cell (so that sampling noise does not swamp small tables)."""
    return int(max(2, min(bins, math.floor((rows / 5) ** (1.0 / order)))))


def bin_tables(
    reference: pd.DataFrame, tables: list[pd.DataFrame], columns: tuple[Column, ...], bins: int
) -> Binned:
    """Level codes of ``tables`` (the reference may be among them) with levels fitted on ``reference``."""
    used = [c for c in columns if c.is_continuous or c.is_discrete]
    matrices = [np.zeros((len(t), len(used)), dtype=np.int64) for t in tables]
    levels = []
    for index, column in enumerate(used):
        size = 2
        kept = _kept_levels(reference[column.name], bins) if column.is_discrete else pd.Index([])
        for matrix, table in zip(matrices, tables, strict=True):
            if column.is_continuous:
                codes, size = _numeric_codes(
                    reference[column.name].to_numpy(dtype=np.float64),
                    table[column.name].to_numpy(dtype=np.float64),
                    bins,
                )
            else:
                codes, size = _discrete_codes(kept, table[column.name])
            matrix[:, index] = codes
        levels.append(size)
    return Binned(names=tuple(c.name for c in used), levels=tuple(levels), codes=tuple(matrices))


def _quantile_matched_codes(reference_codes: np.ndarray, size: int, values: np.ndarray) -> np.ndarray:
    """Levels by rank: a value at quantile u of its own table gets the level the real value at quantile u
    has, so the table's levels follow the real marginal whatever its own marginal looks like."""
    present = ~np.isnan(values)
    codes = np.full(len(values), size - 1, dtype=np.int64)
    real = reference_codes[reference_codes < size - 1]
    if present.any() and len(real):
        cumulative = np.cumsum(np.bincount(real, minlength=size - 1)) / len(real)
        ranks = pd.Series(values[present]).rank(method="average").to_numpy()
        quantiles = (ranks - 0.5) / present.sum()
        codes[present] = np.minimum(np.searchsorted(cumulative, quantiles, side="right"), size - 2)
    return codes


def bin_dependence(
    reference: pd.DataFrame, tables: list[pd.DataFrame], columns: tuple[Column, ...], bins: int
) -> Binned:
    """Level codes that keep only how columns move together (a binned copula): each table's numbers are
    matched to the reference's levels by rank (:func:`_quantile_matched_codes`), so an error in a number's
    distribution does not count again in every pair and triple it belongs to; categories keep the
    reference's most frequent levels."""
    used = [c for c in columns if c.is_continuous or c.is_discrete]
    matrices = [np.zeros((len(t), len(used)), dtype=np.int64) for t in tables]
    levels = []
    for index, column in enumerate(used):
        if column.is_continuous:
            real = reference[column.name].to_numpy(dtype=np.float64)
            reference_codes, size = _numeric_codes(real, real, bins)
            for matrix, table in zip(matrices, tables, strict=True):
                values = table[column.name].to_numpy(dtype=np.float64)
                matrix[:, index] = _quantile_matched_codes(reference_codes, size, values)
        else:
            kept = _kept_levels(reference[column.name], bins)
            for matrix, table in zip(matrices, tables, strict=True):
                matrix[:, index], size = _discrete_codes(kept, table[column.name])
        levels.append(size)
    return Binned(names=tuple(c.name for c in used), levels=tuple(levels), codes=tuple(matrices))


def combinations(columns: int, order: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    """All index tuples of ``order`` distinct columns (sorted), or a seeded uniform choice of ``limit`` of them."""
    total = math.comb(columns, order)
    if total == 0:
        return np.zeros((0, order), dtype=np.int64)
    if total <= limit:
        return np.array(list(itertools.combinations(range(columns), order)), dtype=np.int64)
    chosen: set[tuple[int, ...]] = set()
    while len(chosen) < limit:
        draw = np.sort(rng.choice(columns, size=(limit, order), replace=True), axis=1)
        for row in draw:
            if len(set(row.tolist())) == order:
                chosen.add(tuple(row.tolist()))
            if len(chosen) == limit:
                break
    return np.array(sorted(chosen), dtype=np.int64)


def _joint_shares(columns: np.ndarray, combo: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Frequencies of the joint levels of the columns ``combo`` (``columns`` is p × n)."""
    key = columns[combo[0]].copy()
    stride = 1
    for position in range(1, len(combo)):
        stride *= int(levels[combo[position - 1]])
        key += columns[combo[position]] * stride
    return np.bincount(key, minlength=int(np.prod(levels[combo]))) / max(len(key), 1)


def accuracies(binned: Binned, reference: int, others: list[int], combos: np.ndarray) -> list[float]:
    """Mean over the column tuples in ``combos`` of 1 − the TV distance between the joint level frequencies
    of each table in ``others`` and of table ``reference`` (one mean per table of ``others``)."""
    columns = [np.ascontiguousarray(codes.T) for codes in binned.codes]
    levels = np.array(binned.levels, dtype=np.int64)
    totals = np.zeros(len(others))
    for combo in combos:
        real = _joint_shares(columns[reference], combo, levels)
        for index, other in enumerate(others):
            shares = _joint_shares(columns[other], combo, levels)
            totals[index] += 1.0 - 0.5 * float(np.abs(shares - real).sum())
    return (totals / len(combos)).tolist() if len(combos) else [math.nan] * len(others)


def skill(value: float, reference: float, baseline: float, minimum_gap: float) -> float:
    """Where ``value`` sits between a trivial ``baseline`` (0) and the fresh-real-data ``reference`` (1),
    clipped to [0, 1]; NaN when the reference is not at least ``minimum_gap`` above the baseline (the real
    data then shows nothing this measure can see)."""
    if any(math.isnan(x) for x in (value, reference, baseline)) or reference - baseline < minimum_gap:
        return math.nan
    return float(min(max((value - baseline) / (reference - baseline), 0.0), 1.0))


def schema_only(
    reference: pd.DataFrame, columns: tuple[Column, ...], rows: int, rng: np.random.Generator
) -> pd.DataFrame:
    """The trivial baseline of column shapes: rows that know only the schema (numbers uniform over the real
    min–max, whole numbers when the real ones are; categories uniform over the real categories)."""
    out = {}
    for column in columns:
        if not (column.is_continuous or column.is_discrete):
            continue
        values = reference[column.name]
        if column.is_continuous:
            present = values.dropna().to_numpy(dtype=np.float64)
            low, high = (float(present.min()), float(present.max())) if len(present) else (0.0, 0.0)
            drawn = rng.uniform(low, high, rows)
            whole = len(present) > 0 and bool(np.all(present == np.round(present)))
            out[column.name] = np.round(drawn) if whole else drawn
        else:
            categories = values.dropna().unique()
            out[column.name] = (
                categories[rng.integers(0, len(categories), rows)]
                if len(categories)
                else np.full(rows, np.nan)
            )
    return pd.DataFrame(out, index=range(rows))


def independent_columns(table: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """The trivial baseline of joint structure: ``table`` with each column permuted on its own (marginals
    kept exactly, every relationship between columns broken)."""
    return pd.DataFrame(
        {name: table[name].to_numpy()[rng.permutation(len(table))] for name in table}, index=range(len(table))
    )


def _cramers_v(codes: np.ndarray, first: int, second: int, sizes: tuple[int, int]) -> float:
    counts = np.bincount(codes[:, first] * sizes[1] + codes[:, second], minlength=sizes[0] * sizes[1])
    table = counts.reshape(sizes).astype(np.float64)
    table = table[table.sum(axis=1) > 0][:, table.sum(axis=0) > 0]
    if min(table.shape) < 2:
        return 0.0
    total = table.sum()
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / total
    chi2 = float(((table - expected) ** 2 / expected).sum())
    return math.sqrt(chi2 / total / (min(table.shape) - 1))


def _rank_correlations(table: pd.DataFrame, names: list[str]) -> np.ndarray:
    """Spearman correlation matrix (ranks with ties averaged; a missing value takes the mean rank)."""
    ranks = table[names].rank(method="average")
    ranks = (ranks - ranks.mean()).fillna(0.0).to_numpy(dtype=np.float64)
    norms = np.sqrt((ranks**2).sum(axis=0))
    norms[norms == 0] = np.inf
    scaled = ranks / norms
    return scaled.T @ scaled


def associations(
    binned: Binned, tables: list[pd.DataFrame], columns: tuple[Column, ...], pairs: np.ndarray
) -> list[np.ndarray]:
    """The association of every column pair in each table: Spearman's ρ (signed) for two numbers, Cramér's
    V on the levels of ``binned`` (a :func:`bin_dependence` result) for any pair with a category."""
    used = [c for c in columns if c.is_continuous or c.is_discrete]
    continuous = np.array([c.is_continuous for c in used], dtype=bool)
    numeric_names = [c.name for c in used if c.is_continuous]
    numeric_position = {name: index for index, name in enumerate(numeric_names)}
    result = []
    for codes, table in zip(binned.codes, tables, strict=True):
        correlations = _rank_correlations(table, numeric_names) if numeric_names else np.zeros((0, 0))
        values = np.empty(len(pairs))
        for position, (first, second) in enumerate(pairs):
            if continuous[first] and continuous[second]:
                values[position] = correlations[
                    numeric_position[used[first].name], numeric_position[used[second].name]
                ]
            else:
                sizes = (binned.levels[first], binned.levels[second])
                values[position] = _cramers_v(codes, first, second, sizes)
        result.append(values)
    return result
