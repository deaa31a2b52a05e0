"""The vocabulary of plausibility rules: a rule, a table coded for checking rules, the columns read as
categories or numbers, and the criteria a candidate must pass (docs/engine.md#plausibility).

A candidate becomes a rule only when, on train: it covers at least ``min_support`` rows (and every value
it quotes is seen in that many rows); it is broken in at most ``rule_max_violation`` of the rows it covers;
that rate is at most ``rule_lift`` times the rate the same statement would be broken at if the columns were
independent (the *base* rate); the base alone would break it in at least ``min_support`` rows; and a
one-sided binomial (Chernoff) bound puts the chance of so few violations under independence below
``rule_significance``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .config import EngineConfig
from .schema import Column

_MAX_WIDE_LEVELS = 500
MAX_RULE_COLUMNS = 60


@dataclass(frozen=True)
class Coded:
    """One table as rule checks read it: integer codes per discrete-like column (train categories in
    order, ``missing`` = len(categories), unseen = −1) and float values per numeric column (NaN missing)."""

    rows: int
    codes: dict[str, np.ndarray]
    numbers: dict[str, np.ndarray]
    missing: dict[str, np.ndarray]


@dataclass(frozen=True)
class Rule:
    """One rule: its identity, a plain statement, the train rows it covers, and ``broken(table)`` giving a
    boolean mask of the rows of a coded table that break it."""

    id: str
    kind: str
    columns: tuple[str, ...]
    statement: str
    support: int
    train_violation_rate: float
    broken: Callable[[Coded], np.ndarray] = field(compare=False, repr=False)
    strength: float = 0.0
    source: str = "discovered"


@dataclass(frozen=True)
class Vocabulary:
    """Which columns are read as categories (with their train categories) and which as numbers."""

    categories: dict[str, pd.Index]
    numeric: tuple[str, ...]
    # Numbers with more than rule_max_levels values (up to _MAX_WIDE_LEVELS): coded for dependencies only.
    wide: frozenset[str] = frozenset()

    def code(self, table: pd.DataFrame) -> Coded:
        codes, numbers, missing = {}, {}, {}
        for name in table.columns:
            missing[name] = table[name].isna().to_numpy()
        for name, categories in self.categories.items():
            values = table[name]
            code = categories.get_indexer(values).astype(np.int64)
            code[missing[name]] = len(categories)
            codes[name] = code
        for name in self.numeric:
            numbers[name] = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64)
        return Coded(rows=len(table), codes=codes, numbers=numbers, missing=missing)


def vocabulary(train: pd.DataFrame, columns: tuple[Column, ...], config: EngineConfig) -> Vocabulary:
    """Discrete columns, and numeric ones with at most ``rule_max_levels`` distinct train values, are read
    as categories (ordered by train frequency, then value); continuous columns are also read as numbers.
    Numbers with up to ``_MAX_WIDE_LEVELS`` values are coded too, for functional dependencies only (a state
    determining its tax rate); no implication quotes their values. At most ``MAX_RULE_COLUMNS`` columns of
    each reading are searched (in table order), which bounds the pairwise searches on wide tables."""
    categories: dict[str, pd.Index] = {}
    numeric: list[str] = []
    wide: set[str] = set()
    for column in columns:
        if column.name not in train.columns or (
            len(categories) >= MAX_RULE_COLUMNS and len(numeric) >= MAX_RULE_COLUMNS
        ):
            continue
        values = train[column.name].dropna()
        levels = values.nunique()
        if column.is_continuous and len(numeric) < MAX_RULE_COLUMNS:
            numeric.append(column.name)
            if config.rule_max_levels < levels <= _MAX_WIDE_LEVELS:
                wide.add(column.name)
        if len(categories) < MAX_RULE_COLUMNS and (
            column.is_discrete or (column.is_continuous and levels <= _MAX_WIDE_LEVELS)
        ):
            counts = values.value_counts(sort=False)
            order = sorted(counts.index, key=lambda value: (-counts[value], str(value)))
            categories[column.name] = pd.Index(order, dtype=object if column.is_discrete else None)
    return Vocabulary(categories=categories, numeric=tuple(numeric), wide=frozenset(wide))


def chernoff_p(violations: int, rows: int, base: float) -> float:
    """Upper bound on P(Binomial(rows, base) ≤ violations): exp(−rows · KL(violations/rows ‖ base))."""
    if rows <= 0 or base <= 0:
        return 1.0
    observed = violations / rows
    if observed >= base:
        return 1.0
    if base >= 1:
        return 0.0 if observed < 1 else 1.0
    divergence = (observed * math.log(observed / base) if observed > 0 else 0.0) + (1 - observed) * math.log(
        (1 - observed) / (1 - base)
    )
    return math.exp(-rows * divergence)


@dataclass(frozen=True)
class Criteria:
    """The thresholds a candidate must pass (see the module docstring), resolved for one train table."""

    min_support: int
    max_violation: float
    lift: float
    significance: float
    group_min_rows: int
    min_coverage: float

    def accepts(self, violations: int, rows: int, base: float) -> bool:
        if rows < self.min_support or base * rows < self.min_support:
            return False
        rate = violations / rows
        return (
            rate <= self.max_violation
            and rate <= self.lift * base
            and chernoff_p(violations, rows, base) < self.significance
        )


def criteria(rows: int, config: EngineConfig) -> Criteria:
    return Criteria(
        min_support=max(config.rule_min_support, math.ceil(config.rule_min_support_share * rows)),
        max_violation=config.rule_max_violation,
        lift=config.rule_lift,
        significance=config.rule_significance,
        group_min_rows=config.rule_group_min_rows,
        min_coverage=config.rule_min_coverage,
    )


def label(value: object) -> str:
    """A category or number as the statements print it (13.0 → 13)."""
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value)
