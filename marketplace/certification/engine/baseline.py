"""Baseline integrity: a holdout that overlaps train makes every privacy comparison meaningless.

Under a random split of one table, a holdout row occurs in train about as often as a train row occurs
again in train (both see the other copies of their value land in train with the same chance), and a
holdout row's nearest train row is as close as a train row's nearest *other* train row. So the overlap a
table's own duplicates explain is measured inside train, and only the excess is refused.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .config import EngineConfig
from .distance import fit_encoding, nearest
from .errors import EngineError
from .matching import counts_in, row_keys
from .schema import Column, bounded_sample, clean_table, resolve_columns

SOURCE = (
    "Synthex: a random split makes holdout→train overlap equal to train's own duplicate rate "
    "(exchangeability); docs/engine.md#baseline-integrity"
)


class HoldoutRefused(EngineError):
    """The holdout cannot serve as the baseline; ``code`` names why and ``figures`` holds the measures."""

    code = "holdout_refused"

    def __init__(self, message: str, figures: dict) -> None:
        super().__init__(message)
        self.figures = figures


class HoldoutOverlapError(HoldoutRefused):
    """The holdout shares rows with train beyond the table's own duplicates; ``figures`` holds the shares."""

    code = "holdout_overlaps_train"


class HoldoutTooSmallError(HoldoutRefused):
    """The holdout is too small a share of the real rows for the privacy tests to see copies."""

    code = "holdout_too_small"


def refuse_if_too_small(train_rows: int, holdout_rows: int, config: EngineConfig) -> None:
    """Raise HoldoutTooSmallError when the holdout has fewer than ``holdout_min_rows`` rows or fewer than
    ``holdout_min_share`` of train's. The copy tests weigh where a copied row's real twins live: a copy of
    a unique train row is evidence only in proportion to the holdout's share of the real rows (a holdout of
    1 % makes every train row look as expected in train), so a provider could otherwise blind them by
    keeping the holdout small."""
    needed = max(config.holdout_min_rows, math.ceil(config.holdout_min_share * train_rows))
    if holdout_rows < needed:
        raise HoldoutTooSmallError(
            f"The holdout has {holdout_rows} rows; the privacy tests need at least {needed} "
            f"(max({config.holdout_min_rows}, {config.holdout_min_share:.0%} of the {train_rows} train rows)) "
            "to see copies of train rows. Split off about 20% of the real rows, at random, as the holdout.",
            {"train_rows": train_rows, "holdout_rows": holdout_rows, "holdout_rows_needed": needed},
        )


def _excess(observed: float, observed_rows: int, expected: float, expected_rows: int) -> tuple[float, float]:
    error = math.sqrt(
        observed * (1 - observed) / max(observed_rows, 1) + expected * (1 - expected) / max(expected_rows, 1)
    )
    return observed - expected, error


def overlap_figures(
    train_keys: np.ndarray,
    holdout_keys: np.ndarray,
    holdout_to_train: np.ndarray,
    train_to_other_train: np.ndarray,
    config: EngineConfig,
) -> dict:
    """Exact and near overlap of holdout with train against train's own duplicate structure.

    ``holdout_to_train``: distance of each holdout row to its nearest train row; ``train_to_other_train``:
    distance of sampled train rows to their nearest *other* train row (same units). Near means within τ,
    the ``config.baseline_near_quantile`` quantile of the train-to-other-train distances.
    """
    holdout_exact = float(np.mean(counts_in(holdout_keys, train_keys) > 0))
    train_repeats = float(np.mean(counts_in(train_keys, train_keys) > 1))
    exact_excess, exact_error = _excess(holdout_exact, len(holdout_keys), train_repeats, len(train_keys))
    tau = float(np.quantile(train_to_other_train, config.baseline_near_quantile))
    holdout_near = float(np.mean(holdout_to_train <= tau))
    train_near = float(np.mean(train_to_other_train <= tau))
    near_excess, near_error = _excess(
        holdout_near, len(holdout_to_train), train_near, len(train_to_other_train)
    )
    z, margin = config.baseline_z, config.baseline_margin
    overlapping = exact_excess > max(margin, z * exact_error) or near_excess > max(margin, z * near_error)
    return {
        "holdout_rows_in_train": holdout_exact,
        "train_rows_repeated_in_train": train_repeats,
        "exact_excess": exact_excess,
        "exact_excess_ci": [exact_excess - 1.96 * exact_error, exact_excess + 1.96 * exact_error],
        "near_distance": tau,
        "holdout_rows_near_train": holdout_near,
        "train_rows_near_other_train": train_near,
        "near_excess": near_excess,
        "near_excess_ci": [near_excess - 1.96 * near_error, near_excess + 1.96 * near_error],
        "allowed_excess": f"max({margin}, {z} standard errors)",
        "overlapping": bool(overlapping),
        "source": SOURCE,
    }


def statement(figures: dict) -> str:
    """One sentence on the overlap that was found and why it was accepted or refused."""
    shares = (
        f"{figures['holdout_rows_in_train']:.1%} of holdout rows also occur in train and "
        f"{figures['holdout_rows_near_train']:.1%} lie within {figures['near_distance']:.4f} of a train row, "
        f"against {figures['train_rows_repeated_in_train']:.1%} of train rows that repeat inside train and "
        f"{figures['train_rows_near_other_train']:.1%} that lie that near another train row"
    )
    if figures["overlapping"]:
        return (
            f"The holdout overlaps train: {shares}. A holdout must be real rows the generator never saw, "
            "split from the same table; upload a disjoint holdout."
        )
    if figures["holdout_rows_in_train"] > 0:
        return f"Holdout and train share rows only as the table's own duplicates explain: {shares}."
    return f"Holdout and train are disjoint: {shares}."


def refuse_if_overlapping(figures: dict) -> None:
    """Raise HoldoutOverlapError (with the figures) when the overlap exceeds what duplicates explain."""
    if figures["overlapping"]:
        raise HoldoutOverlapError(statement(figures), figures)


def check_holdout(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    *,
    metadata: dict | None = None,
    config: EngineConfig = EngineConfig(),
) -> dict:
    """Measure the holdout's overlap with train before any certification work and refuse a too small
    (HoldoutTooSmallError) or overlapping (HoldoutOverlapError) one — both HoldoutRefused, EngineErrors
    carrying ``figures``; returns the overlap figures otherwise."""
    refuse_if_too_small(len(train), len(holdout), config)
    rng = np.random.default_rng(config.seed)
    columns = resolve_columns(train, metadata)
    train_used, _ = bounded_sample(train, config.max_rows, rng)
    holdout_used, _ = bounded_sample(holdout, config.privacy_max_rows, rng)
    train_clean, holdout_clean = clean_table(train_used, columns), clean_table(holdout_used, columns)
    figures = measure(train_clean, holdout_clean, columns, config, rng)
    refuse_if_overlapping(figures)
    return figures


def measure(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    columns: tuple[Column, ...],
    config: EngineConfig,
    rng: np.random.Generator,
) -> dict:
    """Overlap figures of cleaned tables (see ``overlap_figures``)."""
    names = [c.name for c in columns if c.is_continuous or c.is_discrete]
    encoding = fit_encoding(train, [holdout], columns, config.distance_max_categories, real=(holdout,))
    train_matrix, holdout_matrix = encoding.encode(train), encoding.encode(holdout)
    sample = rng.permutation(len(train))[: config.baseline_train_sample]
    to_train = nearest(holdout_matrix, train_matrix, n_jobs=config.n_jobs).first
    to_other = nearest(train_matrix[sample], train_matrix, second=True, n_jobs=config.n_jobs).second
    return overlap_figures(
        row_keys(train, names), row_keys(holdout, names), np.sqrt(to_train), np.sqrt(to_other), config
    )
