"""Rules between numbers: order constraints (``A ≤ B``), derived columns (``c = a``, ``c = a²``, ``c = a + b``,
``c = a × b``) and ranges (``flag = (x < k)``, bands of a number)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from .rule_base import Coded, Criteria, Rule, Vocabulary, label

_SCREEN_ROWS = 64
_MAX_DERIVED_COLUMNS = 60
_MAX_RANGE_LEVELS = 6


# --- order constraints ----------------------------------------------------------------------------------------


def orders(train: Coded, vocabulary_: Vocabulary, rule: Criteria) -> list[Rule]:
    """``A ≤ B`` between numeric columns, kept when independent columns would break it often (not implied by
    the two ranges) and the pair is not equal; implied edges (A ≤ B ≤ C gives A ≤ C) are dropped."""
    names = [name for name in vocabulary_.numeric if len(np.unique(train.numbers[name][:5000])) >= 3]
    edges: dict[tuple[str, str], Rule] = {}
    for low, high in ((a, b) for a in names for b in names if a != b):
        x, y = train.numbers[low], train.numbers[high]
        both = ~(np.isnan(x) | np.isnan(y))
        rows = int(both.sum())
        if rows < rule.min_support:
            continue
        x, y = x[both], y[both]
        violations = int((x > y).sum())
        if violations > rule.max_violation * rows or (x == y).mean() >= 1 - rule.max_violation:
            continue
        sorted_y = np.sort(y)
        # Base: how often x > y when each x meets a y of another row (the columns made independent).
        base = float(np.mean(np.searchsorted(sorted_y, x, side="left")) / len(y))
        if rule.accepts(violations, rows, base):
            edges[(low, high)] = Rule(
                id=f"order:{low}<={high}",
                kind="order",
                columns=(low, high),
                statement=f"{low} ≤ {high}",
                support=rows,
                train_violation_rate=violations / rows,
                broken=_order_broken(low, high),
                strength=base * rows,
            )
    return [
        edge
        for (low, high), edge in edges.items()
        if not any((low, middle) in edges and (middle, high) in edges for middle in names)
    ]


def _order_broken(low: str, high: str) -> Callable[[Coded], np.ndarray]:
    return lambda coded: coded.numbers[low] > coded.numbers[high]


# --- derived columns ------------------------------------------------------------------------------------------


def _tolerance(values: np.ndarray) -> float:
    """Half a unit of the column's last written decimal (up to 6 decimals), else a relative 1e-9."""
    finite = values[np.isfinite(values)][:2000]
    for decimals in range(7):
        scaled = finite * 10**decimals
        if np.all(np.abs(scaled - np.round(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled))):
            return 0.5 * 10.0**-decimals * (1 + 1e-6)
    return 0.0


@dataclass(frozen=True)
class _Formula:
    target: str
    operands: tuple[str, ...]
    operator: str

    def value(self, numbers: dict[str, np.ndarray]) -> np.ndarray:
        first = numbers[self.operands[0]]
        if self.operator == "square":
            return first * first
        if self.operator == "equal":
            return first
        second = numbers[self.operands[1]]
        return first + second if self.operator == "sum" else first * second

    @property
    def text(self) -> str:
        a = self.operands[0]
        if self.operator == "square":
            return f"{self.target} = {a}²"
        if self.operator == "equal":
            return f"{self.target} = {a}"
        return f"{self.target} = {a} {'+' if self.operator == 'sum' else '×'} {self.operands[1]}"


def derived_columns(train: Coded, vocabulary_: Vocabulary, rule: Criteria) -> list[Rule]:
    """``c = a``, ``c = a²``, ``c = a + b`` and ``c = a × b`` between numeric columns with at least three
    distinct values, within half a unit of c's last decimal; screened on 64 rows, then checked on all."""
    names = [
        name
        for name in vocabulary_.numeric
        if len(np.unique(train.numbers[name][np.isfinite(train.numbers[name])][:5000])) >= 3
    ][:_MAX_DERIVED_COLUMNS]
    if train.rows < rule.min_support or len(names) < 2:
        return []
    tolerance = {name: _tolerance(train.numbers[name]) for name in names}
    candidates = _screen(train, names, tolerance)
    rules = []
    for formula in candidates:
        result = _check_formula(train, formula, tolerance[formula.target], rule)
        if result is not None:
            rules.append(result)
    return _drop_implied_formulas(rules)


def _close(target: np.ndarray, value: np.ndarray, tolerance: float) -> np.ndarray:
    return np.abs(target - value) <= tolerance + 1e-9 * np.abs(value)


def _screen(train: Coded, names: list[str], tolerance: dict[str, float]) -> list[_Formula]:
    sample = {name: train.numbers[name][:_SCREEN_ROWS] for name in names}
    targets = np.stack([sample[name] for name in names])
    limits = np.array([tolerance[name] for name in names])[:, None]
    need = 0.9 * targets.shape[1]
    formulas = []
    for operator, operand_sets in (
        ("equal", [(a,) for a in names]),
        ("square", [(a,) for a in names]),
        ("sum", list(combinations(names, 2))),
        ("product", list(combinations(names, 2))),
    ):
        for operands in operand_sets:
            value = _Formula("", operands, operator).value(sample)
            close = (np.abs(targets - value) <= limits + 1e-9 * np.abs(value)).sum(axis=1) >= need
            formulas += [
                _Formula(names[i], operands, operator)
                for i in np.flatnonzero(close)
                if names[i] not in operands and not (operator == "equal" and names[i] < operands[0])
            ]
    return formulas


def _check_formula(train: Coded, formula: _Formula, tolerance: float, rule: Criteria) -> Rule | None:
    target = train.numbers[formula.target]
    value = formula.value(train.numbers)
    both = np.isfinite(target) & np.isfinite(value)
    rows = int(both.sum())
    if rows < rule.min_support:
        return None
    target, value = target[both], value[both]
    violations = int((~_close(target, value, tolerance)).sum())
    # Base: how often the formula would hold by chance, pairing each row's value with another row's target.
    base = 1.0 - float(_close(np.roll(target, rows // 2), value, tolerance).mean())
    if not rule.accepts(violations, rows, base):
        return None

    def broken(coded: Coded) -> np.ndarray:
        computed = formula.value(coded.numbers)
        actual = coded.numbers[formula.target]
        present = np.isfinite(computed) & np.isfinite(actual)
        return present & ~_close(actual, computed, tolerance)

    return Rule(
        id=f"derived:{formula.text}".replace(" ", ""),
        kind="derived",
        columns=(formula.target, *formula.operands),
        statement=formula.text,
        support=rows,
        train_violation_rate=violations / rows,
        broken=broken,
        strength=base * rows,
    )


def _drop_implied_formulas(rules: list[Rule]) -> list[Rule]:
    """One formula per derived column, the simplest (``c = a``, then ``c = a²``, then two operands; then by
    id): a column that is the product of three others can be written several ways, and each is one fact."""
    best: dict[str, Rule] = {}
    for rule_ in rules:
        key = (len(rule_.columns), "²" not in rule_.statement, rule_.id)
        current = best.get(rule_.columns[0])
        if current is None or key < (len(current.columns), "²" not in current.statement, current.id):
            best[rule_.columns[0]] = rule_
    return [rule_ for rule_ in rules if best[rule_.columns[0]] is rule_]


# --- ranges: a category set by thresholds on a number ---------------------------------------------------------


def _round_between(low: float, high: float) -> float:
    """The roundest number k with low < k ≤ high (fewest significant digits), so no row's value is quoted."""
    span = high - low
    if span <= 0:
        return high
    for exponent in range(int(math.floor(math.log10(max(abs(high), span)))) + 1, -13, -1):
        step = 10.0**exponent
        candidate = math.floor(low / step + 1) * step
        if low < candidate <= high:
            return float(f"{candidate:.12g}")
    return high


def ranges(train: Coded, vocabulary_: Vocabulary, rule: Criteria) -> list[Rule]:
    """A category with 2–6 levels (each seen in ``min_support`` rows) that follows cut points of a numeric
    column with at least three values: ``flag = 1 exactly when x < k`` or bands of x."""
    rules = []
    many_values = [name for name in vocabulary_.numeric if len(np.unique(train.numbers[name][:5000])) >= 3]
    # Rows sorted by each number once (missing values last): along it, a category that follows ranges of the
    # number changes level about once per cut, plus twice per violating row; anything else is screened out.
    orders = {name: np.argsort(train.numbers[name], kind="stable") for name in many_values}
    for category, levels in vocabulary_.categories.items():
        codes = train.codes[category]
        level_counts = np.bincount(codes, minlength=len(levels) + 1)[:-1]
        if not 2 <= len(levels) <= _MAX_RANGE_LEVELS or level_counts.min() < rule.min_support:
            continue
        for number in many_values:
            if number == category or not _few_changes(
                train, codes, len(levels), orders[number], number, rule
            ):
                continue
            found = _range_rule(train, category, levels, number, rule)
            if found is not None:
                rules.append(found)
    return rules


def _few_changes(
    train: Coded, codes: np.ndarray, level_count: int, order: np.ndarray, number: str, rule: Criteria
) -> bool:
    along = codes[order]
    along = along[np.isfinite(train.numbers[number][order]) & (along >= 0) & (along < level_count)]
    changes = int(np.count_nonzero(along[1:] != along[:-1]))
    return changes <= level_count - 1 + 2 * rule.max_violation * len(along)


def _range_rule(train: Coded, category: str, levels: pd.Index, number: str, rule: Criteria) -> Rule | None:
    x, codes = train.numbers[number], train.codes[category]
    present = np.isfinite(x) & (codes >= 0) & (codes < len(levels))
    rows = int(present.sum())
    if rows < rule.min_support:
        return None
    x, codes = x[present], codes[present]
    medians = [
        np.median(x[codes == level]) if np.any(codes == level) else np.nan for level in range(len(levels))
    ]
    if np.any(np.isnan(medians)):
        return None
    order = np.argsort(medians, kind="stable")
    found_cuts = [
        _best_cut(x, codes, int(lower), int(upper))
        for lower, upper in zip(order[:-1], order[1:], strict=True)
    ]
    cuts = [cut for cut in found_cuts if cut is not None]
    if len(cuts) < len(found_cuts) or any(b <= a for a, b in zip(cuts[:-1], cuts[1:], strict=True)):
        return None
    cut_values = np.array(cuts, dtype=np.float64)
    predicted = order[np.searchsorted(cut_values, x, side="right")]
    violations = int((predicted != codes).sum())
    base = 1.0 - np.bincount(codes).max() / rows
    if not rule.accepts(violations, rows, base):
        return None
    return _range_statement(category, levels, number, order, cut_values, rows, violations, base)


def _best_cut(x: np.ndarray, codes: np.ndarray, lower: int, upper: int) -> float | None:
    """The threshold k minimising the lower level's rows at or above k plus the upper level's rows below k."""
    mask = (codes == lower) | (codes == upper)
    values, is_upper = x[mask], codes[mask] == upper
    order = np.argsort(values, kind="stable")
    values, is_upper = values[order], is_upper[order]
    distinct = np.flatnonzero(np.diff(values) > 0)
    if len(distinct) == 0:
        return None
    # Cutting after position i: errors = upper rows at ≤ i + lower rows after i.
    upper_before = np.cumsum(is_upper)[distinct]
    lower_after = (~is_upper).sum() - np.cumsum(~is_upper)[distinct]
    best = int(np.argmin(upper_before + lower_after))
    position = distinct[best]
    return _round_between(float(values[position]), float(values[position + 1]))


def _range_statement(
    category: str,
    levels: pd.Index,
    number: str,
    order: np.ndarray,
    cuts: np.ndarray,
    rows: int,
    violations: int,
    base: float,
) -> Rule:
    def broken(coded: Coded) -> np.ndarray:
        x, codes = coded.numbers[number], coded.codes[category]
        present = np.isfinite(x) & (codes != len(levels))
        predicted = order[np.searchsorted(cuts, np.where(present, x, 0.0), side="right")]
        return present & (predicted != codes)

    if len(levels) == 2:
        statement = f"{category} is {label(levels[order[0]])} exactly when {number} < {label(cuts[0])}"
        # A yes/no column set by one threshold is a derived column (flag = (x < k)).
        identifier = f"derived:{category}={label(levels[order[0]])}<=>{number}<{label(cuts[0])}"
    else:
        bands = ", ".join(label(cut) for cut in cuts)
        statement = f"{category} follows ranges of {number} (cut at {bands})"
        identifier = f"range:{category}<-{number}@{bands.replace(' ', '')}"
    return Rule(
        id=identifier,
        kind="derived" if len(levels) == 2 else "range",
        columns=(category, number),
        statement=statement,
        support=rows,
        train_violation_rate=violations / rows,
        broken=broken,
        strength=base * rows,
    )
