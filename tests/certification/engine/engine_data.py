"""Shared data for the engine tests: Adult (shipped in marketplace/datasets) and scikit-learn's bundled tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_wine

from marketplace.datasets import adult_csv

ADULT = adult_csv()


def split(table: pd.DataFrame, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """80% train / 20% holdout, shuffled with ``seed``."""
    order = np.random.default_rng(seed).permutation(len(table))
    cut = int(len(table) * 0.8)
    return table.iloc[order[:cut]].reset_index(drop=True), table.iloc[order[cut:]].reset_index(drop=True)


def independent_marginals(train: pd.DataFrame, rows: int, seed: int = 1) -> pd.DataFrame:
    """A cheap honest generator: every column drawn on its own from train's marginal (no row is copied)."""
    return pd.DataFrame(
        {
            name: train[name].sample(rows, replace=True, random_state=seed + i).to_numpy()
            for i, name in enumerate(train)
        }
    )


def adult(rows: int | None = None) -> pd.DataFrame:
    table = pd.read_csv(ADULT)
    return table if rows is None else table.sample(rows, random_state=0).reset_index(drop=True)


def breast_cancer() -> pd.DataFrame:
    bunch = load_breast_cancer(as_frame=True)
    table = bunch.frame.copy()
    table["target"] = table["target"].map({0: "malignant", 1: "benign"})
    return table


def wine() -> pd.DataFrame:
    bunch = load_wine(as_frame=True)
    table = bunch.frame.copy()
    table["target"] = table["target"].map({0: "class_0", 1: "class_1", 2: "class_2"})
    return table


DATASETS = {"adult": lambda: adult(10_000), "breast_cancer": breast_cancer, "wine": wine}
