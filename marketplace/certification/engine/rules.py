"""Rules real rows obey, discovered from the train rows alone (docs/engine.md#plausibility).

Kinds: functional dependencies (``A → B`` and ``{A, B} → C``), one-to-one mappings, value implications
(``A = a ⇒ B = b``) and missing-value co-occurrence (``rule_categories``); order constraints (``A ≤ B``),
derived columns (``c = a``, ``c = a²``, ``c = a + b``, ``c = a × b``) and ranges (``flag = (x < k)``, bands
of a number) (``rule_numbers``). The criteria every candidate must pass are in ``rule_base``.
"""

from __future__ import annotations

from itertools import combinations

import pandas as pd

from .config import EngineConfig
from .rule_base import Coded, Criteria, Rule, Vocabulary, chernoff_p, criteria, label, vocabulary
from .rule_categories import functional_dependencies, implications, missing_together
from .rule_numbers import derived_columns, orders, ranges
from .schema import Column

__all__ = [
    "Coded",
    "Criteria",
    "Rule",
    "Vocabulary",
    "chernoff_p",
    "criteria",
    "discover",
    "label",
    "vocabulary",
]


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
    cuts = ranges(coded, vocabulary_, rule)
    found = (
        dependencies
        + implications(coded, vocabulary_, rule, determined)
        + orders(coded, vocabulary_, rule)
        + missing_together(coded, rule)
        + derived
        + cuts
    )
    return vocabulary_, _without_implied(found, derived, cuts)


def _without_implied(found: list[Rule], derived: list[Rule], cuts: list[Rule]) -> list[Rule]:
    """Drop what a more precise rule already says: an order between columns of one formula, a range on a
    formula's result when its operand carries the same range, a dependency or one-to-one mapping between
    exactly the columns of a formula, a dependency of a category on a number cut into its ranges."""
    related = {frozenset(pair) for formula in derived for pair in combinations(formula.columns, 2)}
    derived_from = {formula.columns[0]: set(formula.columns[1:]) for formula in derived}
    range_numbers = {(rule_.columns[0], rule_.columns[1]) for rule_ in cuts}
    # A number cut into ranges also "determines" the category: the range rule says more.
    ranged = {(number, category) for category, number in range_numbers}
    formulas = {frozenset(formula.columns) for formula in derived}
    kept = []
    for rule_ in found:
        if rule_.kind == "order" and frozenset(rule_.columns) in related:
            continue
        if any(rule_ is cut for cut in cuts) and any(
            (rule_.columns[0], operand) in range_numbers for operand in derived_from.get(rule_.columns[1], ())
        ):
            continue
        if rule_.kind in ("functional_dependency", "one_to_one") and frozenset(rule_.columns) in formulas:
            continue
        if rule_.kind == "functional_dependency" and tuple(rule_.columns) in ranged:
            continue
        kept.append(rule_)
    return kept
