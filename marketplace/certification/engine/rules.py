"""Rules real rows obey, discovered from the train rows alone (docs/engine.md#plausibility).

Kinds: functional dependencies (``A → B`` and ``{A, B} → C``), one-to-one mappings, value implications
(``A = a ⇒ B = b``), order constraints (``A ≤ B``), missing-value co-occurrence, derived columns
(``c = a``, ``c = a²``, ``c = a + b``, ``c = a × b``) and ranges (``flag = (x < k)``, bands of a number).

A candidate becomes a rule only when, on train: it covers at least ``min_support`` rows (and every value
it quotes is seen in that many rows); it is broken in at most ``rule_max_violation`` of the rows it covers;
that rate is at most ``rule_lift`` times the rate the same statement would be broken at if the columns were
independent (the *base* rate); the base alone would break it in at least ``min_support`` rows; and a
one-sided binomial (Chernoff) bound puts the chance of so few violations under independence below
``rule_significance``. A functional dependency counts only groups of at least ``rule_group_min_rows`` rows,
which must cover ``rule_min_coverage`` of the rows, so near-unique columns cannot determine anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from .config import EngineConfig
from .schema import Column

_SCREEN_ROWS = 64
_MAX_DERIVED_COLUMNS = 60
_MAX_PAIR_LHS = 400
_MAX_RANGE_LEVELS = 6
_MAX_WIDE_LEVELS = 500


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
    determining its tax rate); no implication quotes their values."""
    categories: dict[str, pd.Index] = {}
    numeric, wide = [], set()
    for column in columns:
        if column.name not in train.columns:
            continue
        values = train[column.name].dropna()
        levels = values.nunique()
        if column.is_continuous:
            numeric.append(column.name)
            if config.rule_max_levels < levels <= _MAX_WIDE_LEVELS:
                wide.add(column.name)
        if column.is_discrete or (column.is_continuous and levels <= _MAX_WIDE_LEVELS):
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


# --- functional dependencies, one-to-one mappings -------------------------------------------------------------


@dataclass(frozen=True)
class _Dependency:
    lhs: tuple[str, ...]
    rhs: str
    mapping: np.ndarray
    error: float
    support: int
    strength: float


def _lhs_key(coded: Coded, lhs: tuple[str, ...], cards: dict[str, int]) -> np.ndarray:
    key = np.zeros(coded.rows, dtype=np.int64)
    unseen = np.zeros(coded.rows, dtype=bool)
    for name in lhs:
        code = coded.codes[name]
        unseen |= code < 0
        key = key * cards[name] + np.maximum(code, 0)
    key[unseen] = -1
    return key


def _dependency(
    key: np.ndarray,
    groups: int,
    sizes: np.ndarray,
    supported: np.ndarray,
    rhs: np.ndarray,
    rhs_card: int,
    rule: Criteria,
) -> tuple[np.ndarray, int, int, float] | None:
    counts = np.bincount(key * rhs_card + rhs, minlength=groups * rhs_card).reshape(groups, rhs_card)[
        supported
    ]
    covered = int(sizes[supported].sum())
    violations = int(covered - counts.max(axis=1).sum())
    base = 1.0 - counts.sum(axis=0).max() / covered
    if not rule.accepts(violations, covered, base):
        return None
    mapping = np.full(groups, -1, dtype=np.int64)
    mapping[np.flatnonzero(supported)] = counts.argmax(axis=1)
    return mapping, covered, violations, base


def _supported_groups(
    key: np.ndarray, groups: int, rows: int, rule: Criteria
) -> tuple[np.ndarray, np.ndarray] | None:
    sizes = np.bincount(key, minlength=groups)
    supported = sizes >= rule.group_min_rows
    covered = int(sizes[supported].sum())
    if supported.sum() < 2 or covered < rule.min_support or covered < rule.min_coverage * rows:
        return None
    return sizes, supported


def _dependencies(
    train: Coded,
    vocabulary_: Vocabulary,
    rule: Criteria,
    lhs_sets: Sequence[tuple[str, ...]],
    rhs_names: list[str],
) -> list[_Dependency]:
    cards = {name: len(categories) + 1 for name, categories in vocabulary_.categories.items()}
    found = []
    for lhs in lhs_sets:
        groups = int(np.prod([cards[name] for name in lhs]))
        key = _lhs_key(train, lhs, cards)
        grouped = _supported_groups(key, groups, train.rows, rule)
        if grouped is None:
            continue
        sizes, supported = grouped
        for rhs in rhs_names:
            if rhs in lhs:
                continue
            result = _dependency(key, groups, sizes, supported, train.codes[rhs], cards[rhs], rule)
            if result is not None:
                mapping, covered, violations, base = result
                found.append(_Dependency(lhs, rhs, mapping, violations / covered, covered, base * covered))
    return found


def _dependency_broken(
    lhs: tuple[str, ...], rhs: str, mapping: np.ndarray, cards: dict[str, int]
) -> Callable[[Coded], np.ndarray]:
    def broken(coded: Coded) -> np.ndarray:
        key = _lhs_key(coded, lhs, cards)
        expected = np.where(key >= 0, mapping[np.maximum(key, 0)], -1)
        return (expected >= 0) & (coded.codes[rhs] != expected)

    return broken


def functional_dependencies(train: Coded, vocabulary_: Vocabulary, rule: Criteria) -> list[Rule]:
    """Single-column dependencies (merged into one-to-one mappings when they go both ways), then two-column
    left-hand sides that determine a column neither of them determines alone."""
    cards = {name: len(categories) + 1 for name, categories in vocabulary_.categories.items()}
    names = [name for name in vocabulary_.categories if train.rows >= rule.min_support]
    singles = _dependencies(train, vocabulary_, rule, [(name,) for name in names], names)
    by_pair = {(d.lhs[0], d.rhs): d for d in singles}
    rules: list[Rule] = []
    for (lhs, rhs), dependency in by_pair.items():
        reverse = by_pair.get((rhs, lhs))
        if reverse is not None:
            if lhs < rhs:
                rules.append(_one_to_one(dependency, reverse, cards))
            continue
        rules.append(_dependency_rule(dependency, cards))
    determined = {(d.lhs[0], d.rhs) for d in singles}
    small = [name for name in names if cards[name] - 1 <= 20]
    pairs = [
        pair
        for pair in combinations(small, 2)
        if (pair[0], pair[1]) not in determined and (pair[1], pair[0]) not in determined
    ][:_MAX_PAIR_LHS]
    for dependency in _dependencies(train, vocabulary_, rule, pairs, names):
        if any((name, dependency.rhs) in determined for name in dependency.lhs):
            continue
        rules.append(_dependency_rule(dependency, cards))
    return rules


def _dependency_rule(dependency: _Dependency, cards: dict[str, int]) -> Rule:
    lhs, rhs = dependency.lhs, dependency.rhs
    return Rule(
        id=f"fd:{'+'.join(lhs)}->{rhs}",
        kind="functional_dependency",
        columns=(*lhs, rhs),
        statement=f"{rhs} is determined by {' and '.join(lhs)}",
        support=dependency.support,
        train_violation_rate=dependency.error,
        broken=_dependency_broken(lhs, rhs, dependency.mapping, cards),
        strength=dependency.strength,
    )


def _one_to_one(forward: _Dependency, backward: _Dependency, cards: dict[str, int]) -> Rule:
    first, second = forward.lhs[0], forward.rhs
    forward_broken = _dependency_broken(forward.lhs, second, forward.mapping, cards)
    backward_broken = _dependency_broken(backward.lhs, first, backward.mapping, cards)
    return Rule(
        id=f"one_to_one:{first}<->{second}",
        kind="one_to_one",
        columns=(first, second),
        statement=f"{first} and {second} determine each other (one-to-one)",
        support=min(forward.support, backward.support),
        train_violation_rate=max(forward.error, backward.error),
        broken=lambda coded: forward_broken(coded) | backward_broken(coded),
        strength=forward.strength + backward.strength,
    )


# --- value implications ---------------------------------------------------------------------------------------


def implications(
    train: Coded, vocabulary_: Vocabulary, rule: Criteria, determined: set[tuple[str, str]]
) -> list[Rule]:
    """``A = a ⇒ B = b`` for values a and b each seen in at least ``min_support`` train rows, when A does not
    determine B already. For two yes/no columns the contrapositive is the same rule and is listed once."""
    rules: dict[frozenset, Rule] = {}
    names = [name for name in vocabulary_.categories if name not in vocabulary_.wide]
    for first in names:
        for second in names:
            if first == second or (first, second) in determined:
                continue
            rules.update(_implications_between(train, vocabulary_, rule, first, second))
    return list(rules.values())


def _implications_between(
    train: Coded, vocabulary_: Vocabulary, rule: Criteria, first: str, second: str
) -> dict[frozenset, Rule]:
    first_levels, second_levels = vocabulary_.categories[first], vocabulary_.categories[second]
    first_card, second_card = len(first_levels) + 1, len(second_levels) + 1
    counts = np.bincount(
        train.codes[first] * second_card + train.codes[second], minlength=first_card * second_card
    ).reshape(first_card, second_card)
    row_totals, column_totals = counts.sum(axis=1), counts.sum(axis=0)
    found: dict[frozenset, Rule] = {}
    for a in np.flatnonzero(row_totals[:-1] >= rule.min_support):
        for b in np.flatnonzero(column_totals[:-1] >= rule.min_support):
            violations = int(row_totals[a] - counts[a, b])
            base = 1.0 - column_totals[b] / train.rows
            if not rule.accepts(violations, int(row_totals[a]), base):
                continue
            key = _implication_key(first, int(a), first_levels, second, int(b), second_levels)
            if key in found:
                continue
            found[key] = _implication_rule(
                first,
                int(a),
                first_levels,
                second,
                int(b),
                second_levels,
                int(row_totals[a]),
                violations,
                base,
            )
    return found


def _implication_key(
    first: str, a: int, first_levels: pd.Index, second: str, b: int, second_levels: pd.Index
) -> frozenset:
    # Between two yes/no columns, "A = a ⇒ B = b" and "B = not b ⇒ A = not a" break on the same rows.
    if len(first_levels) == 2 and len(second_levels) == 2:
        return frozenset({(first, a), (second, 1 - b)})
    return frozenset({("if", first, a), ("then", second, b)})


def _implication_rule(
    first: str,
    a: int,
    first_levels: pd.Index,
    second: str,
    b: int,
    second_levels: pd.Index,
    support: int,
    violations: int,
    base: float,
) -> Rule:
    a_label, b_label = label(first_levels[a]), label(second_levels[b])

    def broken(coded: Coded) -> np.ndarray:
        return (coded.codes[first] == a) & (coded.codes[second] != b)

    return Rule(
        id=f"implication:{first}={a_label}=>{second}={b_label}",
        kind="implication",
        columns=(first, second),
        statement=f"when {first} is {a_label}, {second} is {b_label}",
        support=support,
        train_violation_rate=violations / support,
        broken=broken,
        strength=base * support,
    )


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


# --- missing-value co-occurrence ------------------------------------------------------------------------------


def missing_together(train: Coded, rule: Criteria) -> list[Rule]:
    """``A missing ⇒ B missing`` (one rule "missing together" when it goes both ways)."""
    names = [name for name, mask in train.missing.items() if mask.sum() >= rule.min_support]
    holds = {}
    for first in names:
        for second in names:
            if first == second:
                continue
            rows = int(train.missing[first].sum())
            violations = int((train.missing[first] & ~train.missing[second]).sum())
            base = 1.0 - train.missing[second].mean()
            if rule.accepts(violations, rows, base):
                holds[(first, second)] = (rows, violations, base)
    rules = []
    for (first, second), (rows, violations, base) in holds.items():
        both = (second, first) in holds
        if both and first > second:
            continue
        if both:
            statement = f"{first} and {second} are missing together"
            broken = _missing_broken(first, second, both=True)
        else:
            statement = f"when {first} is missing, {second} is missing too"
            broken = _missing_broken(first, second, both=False)
        rules.append(
            Rule(
                id=f"missing:{first}{'<=>' if both else '=>'}{second}",
                kind="missing",
                columns=(first, second),
                statement=statement,
                support=rows,
                train_violation_rate=violations / rows,
                broken=broken,
                strength=base * rows,
            )
        )
    return rules


def _missing_broken(first: str, second: str, *, both: bool) -> Callable[[Coded], np.ndarray]:
    def broken(coded: Coded) -> np.ndarray:
        one, two = coded.missing[first], coded.missing[second]
        return (one != two) if both else (one & ~two)

    return broken


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
    many_values = [
        name for name in vocabulary_.numeric if len(np.unique(train.numbers[name][:5000])) >= 3
    ]
    for category, levels in vocabulary_.categories.items():
        codes = train.codes[category]
        level_counts = np.bincount(codes, minlength=len(levels) + 1)[:-1]
        if not 2 <= len(levels) <= _MAX_RANGE_LEVELS or level_counts.min() < rule.min_support:
            continue
        for number in many_values:
            if number == category:
                continue
            found = _range_rule(train, category, levels, number, rule)
            if found is not None:
                rules.append(found)
    return rules


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
        identifier = f"range:{category}={label(levels[order[0]])}<=>{number}<{label(cuts[0])}"
    else:
        bands = ", ".join(label(cut) for cut in cuts)
        statement = f"{category} follows ranges of {number} (cut at {bands})"
        identifier = f"range:{category}<-{number}@{bands.replace(' ', '')}"
    return Rule(
        id=identifier,
        kind="range",
        columns=(category, number),
        statement=statement,
        support=rows,
        train_violation_rate=violations / rows,
        broken=broken,
        strength=base * rows,
    )


# --- all kinds ------------------------------------------------------------------------------------------------


def discover(
    train: pd.DataFrame, columns: tuple[Column, ...], config: EngineConfig
) -> tuple[Vocabulary, list[Rule]]:
    """Every rule the cleaned ``train`` table supports (before validation on the reference rows)."""
    vocabulary_ = vocabulary(train, columns, config)
    coded = vocabulary_.code(train)
    rule = criteria(len(train), config)
    if len(train) < rule.min_support:
        return vocabulary_, []
    dependencies = functional_dependencies(coded, vocabulary_, rule)
    determined = set()
    for dependency in dependencies:
        if dependency.kind == "one_to_one":
            first, second = dependency.columns
            determined |= {(first, second), (second, first)}
        elif len(dependency.columns) == 2:
            determined.add((dependency.columns[0], dependency.columns[1]))
    derived = derived_columns(coded, vocabulary_, rule)
    found = (
        dependencies
        + implications(coded, vocabulary_, rule, determined)
        + orders(coded, vocabulary_, rule)
        + missing_together(coded, rule)
        + derived
        + ranges(coded, vocabulary_, rule)
    )
    return vocabulary_, _without_implied(found, derived)


def _without_implied(found: list[Rule], derived: list[Rule]) -> list[Rule]:
    """Drop what a more precise rule already says: an order between columns of one formula, a range on a
    formula's result when its operand carries the same range, a dependency or one-to-one mapping between
    exactly the columns of a formula, a dependency of a category on a number cut into its ranges."""
    related = {frozenset(pair) for formula in derived for pair in combinations(formula.columns, 2)}
    derived_from = {formula.columns[0]: set(formula.columns[1:]) for formula in derived}
    range_numbers = {(rule_.columns[0], rule_.columns[1]) for rule_ in found if rule_.kind == "range"}
    # A number cut into ranges also "determines" the category: the range rule says more.
    ranged = {(number, category) for category, number in range_numbers}
    formulas = {frozenset(formula.columns) for formula in derived}
    kept = []
    for rule_ in found:
        if rule_.kind == "order" and frozenset(rule_.columns) in related:
            continue
        if rule_.kind == "range" and any(
            (rule_.columns[0], operand) in range_numbers for operand in derived_from.get(rule_.columns[1], ())
        ):
            continue
        if rule_.kind in ("functional_dependency", "one_to_one") and frozenset(rule_.columns) in formulas:
            continue
        if rule_.kind == "functional_dependency" and tuple(rule_.columns) in ranged:
            continue
        kept.append(rule_)
    return kept
