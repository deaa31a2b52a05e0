"""Column types (SDV sdtypes) and the cleaned, aligned tables every metric works on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import EngineError

CONTINUOUS = frozenset({"numerical", "datetime"})
DISCRETE = frozenset({"categorical", "boolean", "ordinal"})
STATISTICAL = CONTINUOUS | DISCRETE


@dataclass(frozen=True)
class Column:
    """One column: its name and SDV sdtype ("numerical", "datetime", "categorical", "boolean", "id", ...)."""

    name: str
    sdtype: str

    @property
    def is_continuous(self) -> bool:
        return self.sdtype in CONTINUOUS

    @property
    def is_discrete(self) -> bool:
        return self.sdtype in DISCRETE


def _looks_like_datetime(values: pd.Series) -> bool:
    sample = values.dropna().astype(str).head(200)
    if (
        sample.empty
        or not sample.str.contains(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}", regex=True).all()
    ):
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def detect_sdtype(name: str, values: pd.Series) -> str:
    """Guess the SDV sdtype of a column from its pandas dtype and values (no SDV import)."""
    if pd.api.types.is_bool_dtype(values):
        return "boolean"
    if pd.api.types.is_datetime64_any_dtype(values):
        return "datetime"
    non_null = values.dropna()
    unique = non_null.nunique()
    is_unique_key = len(non_null) > 50 and unique == len(values)
    if pd.api.types.is_numeric_dtype(values):
        if is_unique_key and pd.api.types.is_integer_dtype(values) and name.lower().endswith("id"):
            return "id"
        return "numerical"
    if set(non_null.unique()) <= {"True", "False", "true", "false"} and unique == 2:
        return "boolean"
    if _looks_like_datetime(values):
        return "datetime"
    if is_unique_key:
        return "id"
    return "categorical"


def resolve_columns(train: pd.DataFrame, metadata: dict | None) -> tuple[Column, ...]:
    """The columns of ``train`` with their sdtypes, from SDV single-table metadata when given."""
    declared = (metadata or {}).get("columns") if metadata is not None else None
    if metadata is not None and not isinstance(declared, dict):
        raise EngineError("The metadata has no 'columns' mapping (SDV single-table metadata expected).")
    columns = []
    for name in train.columns:
        if declared is not None and name in declared:
            sdtype = str(declared[name].get("sdtype", "categorical"))
        else:
            sdtype = detect_sdtype(str(name), train[name])
        columns.append(Column(name=name, sdtype=sdtype))
    return tuple(columns)


def _to_float(values: pd.Series, sdtype: str) -> pd.Series:
    if sdtype == "datetime":
        stamps = pd.to_datetime(values, errors="coerce", format="mixed")
        if stamps.dt.tz is not None:
            stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
        numbers = stamps.astype("int64").astype("float64")
        return numbers.where(stamps.notna(), np.nan)
    return pd.to_numeric(values, errors="coerce").astype("float64")


def _to_label(values: pd.Series) -> pd.Series:
    labels = values.astype(object)
    return labels.where(values.notna(), np.nan)


def clean_table(table: pd.DataFrame, columns: tuple[Column, ...]) -> pd.DataFrame:
    """The statistical columns of ``table`` as float64 (numerical, datetime in ns) or object labels.

    Missing values are NaN. Columns of other sdtypes (id, text, pii) are dropped.
    """
    table = table.reset_index(drop=True)
    cleaned = {}
    for column in columns:
        if column.sdtype not in STATISTICAL:
            continue
        values = table[column.name]
        cleaned[column.name] = _to_float(values, column.sdtype) if column.is_continuous else _to_label(values)
    return (
        pd.DataFrame(cleaned, index=range(len(table))) if cleaned else pd.DataFrame(index=range(len(table)))
    )


def bounded_sample(table: pd.DataFrame, limit: int, rng: np.random.Generator) -> tuple[pd.DataFrame, bool]:
    """A uniform sample without replacement of at most ``limit`` rows (row order kept), and whether sampled."""
    if len(table) <= limit:
        return table.reset_index(drop=True), False
    chosen = np.sort(rng.choice(len(table), size=limit, replace=False))
    return table.iloc[chosen].reset_index(drop=True), True
