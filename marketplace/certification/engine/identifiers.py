"""Copies of real values in the columns the statistical tests leave out (ids, names, e-mails, free text).

The matching, distance and membership tests read only numerical, datetime, categorical and boolean
columns; a column detected or declared as ``id``, ``pii``, ``text`` (or any other sdtype) is left out of
them, and a whole-number column whose train values are all distinct (account numbers) weighs no more
than any other column in them. A synthetic set could then carry real people's names or e-mail addresses verbatim in such a column,
or a provider could declare a sensitive column ``pii`` to take it out of the tests. Here each such column
is read as text: the share of distinct synthetic values that occur in train, against the share of
distinct values of real rows the generator never saw (the holdout; without one, half of train against the
other half) that occur in train. Fresh real rows share common values (first names, "n/a") with train as
often as an honest generator's rows may; copied identifiers push the synthetic share above that.

Columns that number the rows in train and in the synthetic table (unique integers packed in a range, such as
1..n) are skipped: row numbers carry nothing about anyone and would always overlap. So are whole-number
columns the metadata declares as keys (primary, alternate, or sdtype ``id`` — the foreign keys of related
tables): a generator renumbers them and the links they make are judged at the entity level. Undeclared
sparse unique numbers (customer numbers, account numbers) and every text key are read like any identifier.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .config import EngineConfig
from .schema import STATISTICAL, Column


def _values(table: pd.DataFrame, name: str) -> set[str]:
    values = table[name].dropna()
    return set(values.astype(str).str.strip().str.casefold()) - {""}


def _is_row_number(train: pd.Series, synthetic: pd.Series) -> bool:
    """Both columns are unique integers packed in a range at most twice their count (1..n, 1001..1000+n)."""

    def numbered(values: pd.Series) -> bool:
        numbers = pd.to_numeric(values.dropna(), errors="coerce")
        if len(numbers) == 0 or numbers.isna().any() or not bool(np.all(np.mod(numbers, 1) == 0)):
            return False
        return numbers.is_unique and float(numbers.max() - numbers.min()) + 1 <= 2 * len(numbers)

    return numbered(train) and numbered(synthetic)


def _declared_keys(metadata: dict | None) -> set[str]:
    """Columns the provider's metadata declares as keys: the primary and alternate keys and every column
    of sdtype ``id`` (foreign keys of related tables are declared so)."""
    if not metadata:
        return set()
    keys = {str(k) for k in [metadata.get("primary_key"), *(metadata.get("alternate_keys") or [])] if k}
    for name, spec in (metadata.get("columns") or {}).items():
        if isinstance(spec, dict) and spec.get("sdtype") == "id":
            keys.add(str(name))
    return keys


def _whole_numbers(values: pd.Series) -> bool:
    numbers = pd.to_numeric(values.dropna(), errors="coerce")
    return len(numbers) > 0 and not numbers.isna().any() and bool(np.all(np.mod(numbers, 1) == 0))


def _is_key(values: pd.Series) -> bool:
    """A whole-number column whose train values are all distinct (account or card numbers read as numbers)."""
    numbers = pd.to_numeric(values.dropna(), errors="coerce")
    return (
        len(numbers) > 50
        and not numbers.isna().any()
        and bool(np.all(np.mod(numbers, 1) == 0))
        and numbers.is_unique
    )


def assess(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame | None,
    columns: tuple[Column, ...],
    rng: np.random.Generator,
    metadata: dict | None = None,
) -> dict:
    """Per left-out column: the synthetic and baseline shares of distinct values found in train."""
    figures: dict[str, dict] = {}
    keys = _declared_keys(metadata)
    if holdout is None:
        order = rng.permutation(len(train))
        half = len(train) // 2
        reference, baseline = train.iloc[order[:half]], train.iloc[order[half:]]
        baseline_kind = "half of train against the other half"
    else:
        reference, baseline = train, holdout
        baseline_kind = "holdout"
    for column in columns:
        if column.name not in synthetic:
            continue
        if column.sdtype in STATISTICAL and not _is_key(train[column.name]):
            continue
        if _is_row_number(train[column.name], synthetic[column.name]) or (
            column.name in keys and _whole_numbers(train[column.name])
        ):
            continue
        known = _values(reference, column.name)
        synthetic_values, baseline_values = _values(synthetic, column.name), _values(baseline, column.name)
        if not synthetic_values or not known:
            continue
        synthetic_hits = len(synthetic_values & known)
        baseline_hits = len(baseline_values & known)
        figures[column.name] = {
            "sdtype": column.sdtype,
            "synthetic_distinct": len(synthetic_values),
            "synthetic_in_train": synthetic_hits,
            "synthetic_rate": synthetic_hits / len(synthetic_values),
            "baseline_distinct": len(baseline_values),
            "baseline_in_train": baseline_hits,
            "baseline_rate": baseline_hits / max(len(baseline_values), 1),
        }
    return {"baseline": baseline_kind, "columns": figures}


def test(result: dict, config: EngineConfig) -> dict:
    """``identifier_copies/v1``: fails when a left-out column's synthetic share of real values exceeds the
    baseline's by more than max(copy_margin, comparison_z standard errors) and at least 3 values."""
    from .privacy_tests import SYNTHEX, make_test

    worst_name, worst_excess, failing = None, 0.0, []
    for name, column in result["columns"].items():
        reference = (column["baseline_in_train"] + 1) / (column["baseline_distinct"] + 2)
        error = math.sqrt(
            reference
            * (1 - reference)
            * (1 / column["synthetic_distinct"] + 1 / max(column["baseline_distinct"], 1))
        )
        excess = column["synthetic_rate"] - column["baseline_rate"]
        allowance = max(config.copy_margin, config.comparison_z * error)
        column["allowance"] = allowance
        if excess > allowance and column["synthetic_in_train"] >= 3:
            failing.append(name)
        if worst_name is None or excess - allowance > worst_excess:
            worst_name, worst_excess = name, excess - allowance
    worst = result["columns"].get(worst_name or "", {})
    value = worst.get("synthetic_rate", 0.0)
    threshold = worst.get("baseline_rate", 0.0) + worst.get("allowance", config.copy_margin)
    return make_test(
        "identifier_copies/v1",
        value,
        threshold,
        passed=not failing,
        strict_passed=not failing,
        ci=None,
        source=f"{SYNTHEX}; columns outside the statistical tests, read as text",
        fails_when=f"a column's share of distinct synthetic values found in train > the {result['baseline']}'s "
        f"share + max({config.copy_margin}, {config.comparison_z} standard errors), with at least 3 values",
        meaning="Share of distinct values of an id, name, e-mail or free-text column (every column the other "
        "tests leave out) that are real train values, against real rows the generator never saw. The value "
        "is the worst column's.",
        column=worst_name,
        failing_columns=failing,
        columns_tested=sorted(result["columns"]),
    )
