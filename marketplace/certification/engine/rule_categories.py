"""Rules between categories: functional dependencies (``A → B``, ``{A, B} → C``), one-to-one mappings, value
implications (``A = a ⇒ B = b``) and missing-value co-occurrence.

A functional dependency counts only groups of at least ``rule_group_min_rows`` rows, which must cover
``rule_min_coverage`` of the rows, so near-unique columns cannot determine anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from .rule_base import Coded, Criteria, Rule, Vocabulary, label

# Two-column left-hand sides × right-hand sides tried at most (the first pairs in table order).
_MAX_PAIR_CHECKS = 6_000


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
    ][: _MAX_PAIR_CHECKS // max(1, len(names))]
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
