"""Real tables and the synthetic sets a careless or dishonest provider could submit, for certificate v2 tests.

Tables ship inside this repository (Adult) or inside installed packages (scikit-learn, statsmodels); nothing
is downloaded. Every builder is deterministic for its seed. Honest SDV samples are fitted once per test
session and cached on disk (keyed by table, rows and seed), because an SDV fit costs seconds.

Builders (each returns a new DataFrame with the train columns):
- honest: ``gaussian_copula(train, rows)``, ``ctgan(train, rows)``;
- broken structure: ``shuffled(train)`` (each column permuted on its own), ``uniform_garbage(train)``;
- drift: ``drifted(sample, train)`` (one numeric column +1 sd, one category's share doubled);
- mode collapse: ``mode_collapsed(sample, share=0.3, modes=5)``;
- leaks: ``verbatim_copies``, ``one_category_changed``, ``rare_row_copies`` (exact, ±0.5 % noise, one
  category changed), ``holdout_as_synthetic``.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from marketplace.datasets import load_adult

CACHE = Path(tempfile.gettempdir()) / "synthex-test-samples"


def split(
    table: pd.DataFrame, seed: int = 0, holdout_share: float = 0.2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Disjoint train / holdout rows of ``table``, shuffled with ``seed``."""
    order = np.random.default_rng(seed).permutation(len(table))
    cut = int(len(table) * (1 - holdout_share))
    return table.iloc[order[:cut]].reset_index(drop=True), table.iloc[order[cut:]].reset_index(drop=True)


# --- real tables --------------------------------------------------------------------------------------------


def adult(rows: int | None = None) -> pd.DataFrame:
    table = load_adult()
    return table if rows is None else table.sample(rows, random_state=0).reset_index(drop=True)


def breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    table = load_breast_cancer(as_frame=True).frame.copy()
    table["target"] = table["target"].map({0: "malignant", 1: "benign"})
    return table


def wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    table = load_wine(as_frame=True).frame.copy()
    table["target"] = table["target"].map({0: "class_0", 1: "class_1", 2: "class_2"})
    return table


def _statsmodels(name: str) -> pd.DataFrame:
    import statsmodels.api as sm

    return getattr(sm.datasets, name).load_pandas().data.copy()


def fair() -> pd.DataFrame:
    """Fair's affairs survey (6,366 rows): yrs_married <= age, ordinal codes, a count column."""
    return _statsmodels("fair")


def randhie() -> pd.DataFrame:
    """RAND health insurance experiment (20,190 rows): flags, logs, many natural duplicates."""
    return _statsmodels("randhie")


def anes96() -> pd.DataFrame:
    """1996 American National Election Study (944 rows): mostly categorical codes."""
    return _statsmodels("anes96")


TABLES: dict[str, Callable[[], pd.DataFrame]] = {
    "adult": lambda: adult(12_000),
    "breast_cancer": breast_cancer,
    "wine": wine,
    "fair": fair,
    "randhie": randhie,
}


# --- honest generators (SDV, cached) ------------------------------------------------------------------------


def _cache_key(kind: str, train: pd.DataFrame, rows: int, seed: int) -> Path:
    digest = hashlib.sha256(pd.util.hash_pandas_object(train, index=False).to_numpy().tobytes()).hexdigest()
    return CACHE / f"{kind}-{digest[:16]}-{rows}-{seed}.parquet"


def _sdv_sample(kind: str, train: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    path = _cache_key(kind, train, rows, seed)
    if path.exists():
        return pd.read_parquet(path)
    from sdv.metadata import Metadata
    from sdv.single_table import CTGANSynthesizer, GaussianCopulaSynthesizer

    np.random.seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metadata = Metadata.detect_from_dataframes({"table": train})
        if kind == "gaussian_copula":
            model = GaussianCopulaSynthesizer(metadata)
        else:
            import torch

            torch.manual_seed(seed)
            model = CTGANSynthesizer(metadata, epochs=30, batch_size=500)
        model.fit({"table": train})
        sampled = model.sample(rows)
        sample = sampled["table"] if isinstance(sampled, dict) else sampled
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    sample.to_parquet(partial, index=False)
    os.replace(partial, path)
    return pd.read_parquet(path)


def gaussian_copula(train: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """An honest SDV GaussianCopula sample fitted on ``train`` (cached)."""
    return _sdv_sample("gaussian_copula", train, rows, seed)


def ctgan(train: pd.DataFrame, rows: int, seed: int = 0) -> pd.DataFrame:
    """An honest SDV CTGAN sample (30 epochs: weak but honest; cached)."""
    return _sdv_sample("ctgan", train, rows, seed)


# --- structure breakers -------------------------------------------------------------------------------------


def shuffled(train: pd.DataFrame, rows: int | None = None, seed: int = 1) -> pd.DataFrame:
    """Every column permuted on its own: marginals intact, every relationship between columns destroyed."""
    rng = np.random.default_rng(seed)
    size = len(train) if rows is None else rows
    return pd.DataFrame(
        {
            name: train[name].to_numpy()[rng.choice(len(train), size, replace=size > len(train))]
            for name in train
        }
    )


def uniform_garbage(train: pd.DataFrame, rows: int | None = None, seed: int = 2) -> pd.DataFrame:
    """Numbers uniform over each column's range, categories uniform over the seen categories."""
    rng = np.random.default_rng(seed)
    size = len(train) if rows is None else rows
    out = {}
    for name in train:
        column = train[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            low, high = float(column.min()), float(column.max())
            values = rng.uniform(low, high, size)
            out[name] = np.round(values) if pd.api.types.is_integer_dtype(column) else values
        else:
            categories = column.dropna().unique()
            out[name] = categories[rng.integers(0, len(categories), size)]
    return pd.DataFrame(out)


def drifted(sample: pd.DataFrame, train: pd.DataFrame, seed: int = 3) -> tuple[pd.DataFrame, list[str]]:
    """The first numeric column shifted by +1 standard deviation and, in the first categorical column, the
    most frequent category's share doubled (rows taken from the others). Returns the table and the names of
    the drifted columns."""
    rng = np.random.default_rng(seed)
    out = sample.copy()
    names: list[str] = []
    numeric = [
        c
        for c in train
        if pd.api.types.is_float_dtype(train[c])
        or (pd.api.types.is_integer_dtype(train[c]) and train[c].nunique() > 20)
    ]
    if numeric:
        column = numeric[0]
        out[column] = out[column] + float(train[column].std())
        names.append(column)
    categorical = [c for c in train if train[c].dtype == object and 2 <= train[c].nunique() <= 50]
    if categorical:
        column = categorical[0]
        top = (
            train[column]
            .value_counts()
            .index[1 if train[column].value_counts(normalize=True).iloc[0] > 0.5 else 0]
        )
        share = float((out[column] == top).mean())
        others = np.flatnonzero((out[column] != top).to_numpy())
        extra = min(len(others), int(round(share * len(out))))
        out.loc[out.index[rng.choice(others, extra, replace=False)], column] = top
        names.append(column)
    return out, names


def mode_collapsed(sample: pd.DataFrame, share: float = 0.3, modes: int = 5, seed: int = 4) -> pd.DataFrame:
    """``share`` of the rows replaced by copies of ``modes`` rows of the same sample."""
    rng = np.random.default_rng(seed)
    out = sample.copy().reset_index(drop=True)
    chosen = rng.choice(len(out), modes, replace=False)
    replaced = rng.choice(np.setdiff1d(np.arange(len(out)), chosen), int(share * len(out)), replace=False)
    out.iloc[replaced] = out.iloc[chosen[rng.integers(0, modes, len(replaced))]].to_numpy()
    return out.astype(sample.dtypes.to_dict())


# --- leaks --------------------------------------------------------------------------------------------------


def _replace_rows(honest: pd.DataFrame, rows: pd.DataFrame, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = honest.copy().reset_index(drop=True)
    slots = rng.choice(len(out), min(len(rows), len(out)), replace=False)
    out.iloc[slots] = rows.iloc[: len(slots)][list(out.columns)].to_numpy()
    return out.astype(honest.dtypes.to_dict(), errors="ignore")


def verbatim_copies(honest: pd.DataFrame, train: pd.DataFrame, share: float, seed: int = 5) -> pd.DataFrame:
    """``share`` of the honest rows replaced by train rows copied verbatim."""
    rng = np.random.default_rng(seed)
    picked = train.iloc[rng.choice(len(train), int(share * len(honest)), replace=False)]
    return _replace_rows(honest, picked, seed)


def _change_one_category(rows: pd.DataFrame, train: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    out = rows.copy()
    categorical = [
        c for c in train if not pd.api.types.is_numeric_dtype(train[c]) or train[c].nunique() <= 10
    ]
    for position in range(len(out)):
        column = categorical[rng.integers(0, len(categorical))]
        levels = train[column].dropna().unique()
        current = out.iloc[position][column]
        options = [level for level in levels if level != current]
        if options:
            out.iloc[position, out.columns.get_loc(column)] = options[rng.integers(0, len(options))]
    return out


def one_category_changed(
    honest: pd.DataFrame, train: pd.DataFrame, share: float = 0.1, seed: int = 6
) -> pd.DataFrame:
    """``share`` of the rows are train rows with one categorical value swapped; the others copied verbatim."""
    rng = np.random.default_rng(seed)
    picked = train.iloc[rng.choice(len(train), int(share * len(honest)), replace=False)]
    return _replace_rows(honest, _change_one_category(picked, train, rng), seed)


def rarest_rows(train: pd.DataFrame, share: float = 0.02) -> pd.DataFrame:
    """The ``share`` most unusual train rows: lowest mean log-frequency of their values (numbers binned)."""
    scores = np.zeros(len(train))
    for name in train:
        column = train[name]
        if pd.api.types.is_numeric_dtype(column) and column.nunique() > 20:
            column = pd.qcut(column.rank(method="first"), 20, labels=False)
        codes = column.astype(str)
        frequency = codes.map(codes.value_counts(normalize=True))
        scores += np.log(frequency.to_numpy())
    order = np.argsort(scores, kind="stable")
    return train.iloc[order[: max(1, int(share * len(train)))]]


def rare_row_copies(
    honest: pd.DataFrame, train: pd.DataFrame, how: str = "exact", share: float = 0.02, seed: int = 7
) -> pd.DataFrame:
    """The rarest ``share`` of train rows planted in the honest sample: ``how`` is ``exact``, ``noise``
    (numbers × (1 ± 0.5 %)) or ``category`` (one categorical value changed)."""
    rng = np.random.default_rng(seed)
    rows = rarest_rows(train, share).copy()
    if how == "noise":
        for name in rows:
            if pd.api.types.is_float_dtype(rows[name]):
                rows[name] = rows[name] * (1 + rng.uniform(-0.005, 0.005, len(rows)))
            elif pd.api.types.is_integer_dtype(rows[name]) and train[name].nunique() > 20:
                rows[name] = np.round(rows[name] * (1 + rng.uniform(-0.005, 0.005, len(rows)))).astype(
                    rows[name].dtype
                )
    elif how == "category":
        rows = _change_one_category(rows, train, rng)
    return _replace_rows(honest, rows, seed)


def holdout_as_synthetic(holdout: pd.DataFrame) -> pd.DataFrame:
    """Real holdout rows sold as synthetic."""
    return holdout.copy().reset_index(drop=True)
