"""Rules a provider declares, written as short statements (docs/engine.md#plausibility):

- ``a <= b`` (or ``b >= a``): order;
- ``a -> b``, ``a, b -> c``: b (c) is determined by a (a and b), the mapping read from train;
- ``a <-> b``: one-to-one;
- ``a = x => b = y``: value implication;
- ``a missing => b missing``, ``a missing <=> b missing``: missing-value co-occurrence;
- ``c = a``, ``c = a^2``, ``c = a + b``, ``c = a * b``: derived columns;
- ``f = x <=> n < k``: a flag set by a threshold.

Operators are written with a space on each side; a column name may be wrapped in backticks.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from .config import EngineConfig
from .errors import EngineError
from .rules import Coded, Rule, Vocabulary, label

_NAME = r"`?(?P<{}>[^`]+?)`?"


def _column(name: str, train: pd.DataFrame) -> str:
    name = name.strip().strip("`")
    if name not in train.columns:
        raise EngineError(f"The declared rule names {name!r}, which is not a column of the train table.")
    return name


def _categorical(name: str, vocabulary: Vocabulary) -> pd.Index:
    if name not in vocabulary.categories:
        raise EngineError(f"The column {name!r} has too many distinct values to be read as categories.")
    return vocabulary.categories[name]


def _numeric(name: str, vocabulary: Vocabulary) -> None:
    if name not in vocabulary.numeric:
        raise EngineError(f"The column {name!r} is not numeric.")


def _level(name: str, text: str, vocabulary: Vocabulary, coded: Coded) -> int:
    """The position of a quoted value among ``name``'s categories; like a discovered rule, a declared one
    quotes no value seen in fewer than the minimum support of train rows (it is printed in the certificate)."""
    levels = _categorical(name, vocabulary)
    for position, value in enumerate(levels):
        if label(value) == text.strip():
            if int((coded.codes[name] == position).sum()) < _minimum_support(coded.rows):
                raise EngineError(
                    f"The value {text.strip()!r} of {name!r} is seen in fewer than {_minimum_support(coded.rows)} "
                    "train rows: a certificate quotes no value that rare."
                )
            return position
    raise EngineError(f"The value {text.strip()!r} is not a value of {name!r} in the train rows.")


def _minimum_support(rows: int) -> int:
    defaults = EngineConfig()
    return max(defaults.rule_min_support, math.ceil(defaults.rule_min_support_share * rows))


def _rule(statement: str, kind: str, columns: tuple[str, ...], broken, coded: Coded) -> Rule:
    return Rule(
        id=f"declared:{statement}",
        kind=kind,
        columns=columns,
        statement=statement,
        support=int(coded.rows),
        train_violation_rate=0.0,
        broken=broken,
        source="declared",
    )


def _dependency(lhs: tuple[str, ...], rhs: str, vocabulary: Vocabulary, coded: Coded):
    cards = {name: len(_categorical(name, vocabulary)) + 1 for name in (*lhs, rhs)}

    def key_of(table: Coded) -> np.ndarray:
        key = np.zeros(table.rows, dtype=np.int64)
        unseen = np.zeros(table.rows, dtype=bool)
        for name in lhs:
            unseen |= table.codes[name] < 0
            key = key * cards[name] + np.maximum(table.codes[name], 0)
        key[unseen] = -1
        return key

    groups = int(np.prod([cards[name] for name in lhs]))
    key = key_of(coded)
    seen = key >= 0
    counts = np.bincount(
        key[seen] * cards[rhs] + np.maximum(coded.codes[rhs][seen], 0), minlength=groups * cards[rhs]
    ).reshape(groups, cards[rhs])
    mapping = np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), -1)

    def broken(table: Coded) -> np.ndarray:
        table_key = key_of(table)
        expected = np.where(table_key >= 0, mapping[np.maximum(table_key, 0)], -1)
        return (expected >= 0) & (table.codes[rhs] != expected)

    return broken


def _close(actual: np.ndarray, value: np.ndarray) -> np.ndarray:
    return np.abs(actual - value) <= 1e-6 * np.maximum(1.0, np.abs(value))


def parse_declared(statement: str, vocabulary: Vocabulary, train: pd.DataFrame, coded: Coded) -> Rule:
    """One declared statement as a rule whose violations are checked like a discovered rule's; raises
    EngineError, naming the statement, when it cannot be read or names unknown columns or values."""
    text = statement.strip()
    for parser in (_order, _one_to_one, _implication_or_range, _missing, _dependency_rule, _derived):
        rule = parser(text, vocabulary, train, coded)
        if rule is not None:
            return rule
    raise EngineError(f"The declared rule {statement!r} cannot be read (see docs/engine.md#plausibility).")


def _order(text: str, vocabulary: Vocabulary, train: pd.DataFrame, coded: Coded) -> Rule | None:
    match = re.fullmatch(r"(.+?) (<=|≤|>=|≥) (.+)", text)
    if match is None or "=>" in text:
        return None
    first, operator, second = match.groups()
    low, high = (first, second) if operator in ("<=", "≤") else (second, first)
    low, high = _column(low, train), _column(high, train)
    _numeric(low, vocabulary)
    _numeric(high, vocabulary)
    return _rule(text, "order", (low, high), lambda t: t.numbers[low] > t.numbers[high], coded)


def _one_to_one(text: str, vocabulary: Vocabulary, train: pd.DataFrame, coded: Coded) -> Rule | None:
    match = re.fullmatch(r"(.+?) <-> (.+)", text)
    if match is None:
        return None
    first, second = (_column(name, train) for name in match.groups())
    forward = _dependency((first,), second, vocabulary, coded)
    backward = _dependency((second,), first, vocabulary, coded)
    return _rule(text, "one_to_one", (first, second), lambda t: forward(t) | backward(t), coded)


def _dependency_rule(text: str, vocabulary: Vocabulary, train: pd.DataFrame, coded: Coded) -> Rule | None:
    match = re.fullmatch(r"(.+?) -> (.+)", text)
    if match is None:
        return None
    lhs = tuple(_column(name, train) for name in match.group(1).split(","))
    rhs = _column(match.group(2), train)
    return _rule(text, "functional_dependency", (*lhs, rhs), _dependency(lhs, rhs, vocabulary, coded), coded)


def _implication_or_range(
    text: str, vocabulary: Vocabulary, train: pd.DataFrame, coded: Coded
) -> Rule | None:
    match = re.fullmatch(r"(.+?) = (.+?) (=>|<=>) (.+?) (=|<) (.+)", text)
    if match is None:
        return None
    first, a_text, arrow, second, operator, b_text = match.groups()
    first, second = _column(first, train), _column(second, train)
    a = _level(first, a_text, vocabulary, coded)
    if operator == "<" and arrow == "<=>":
        _numeric(second, vocabulary)
        try:
            threshold = float(b_text)
        except ValueError as error:
            raise EngineError(f"The declared rule {text!r} needs a number after '<'.") from error

        def threshold_broken(t: Coded) -> np.ndarray:
            x, code = t.numbers[second], t.codes[first]
            present = np.isfinite(x) & (code != len(vocabulary.categories[first]))
            return present & ((x < threshold) != (code == a))

        return _rule(text, "derived", (first, second), threshold_broken, coded)
    if operator != "=" or arrow != "=>":
        return None
    b = _level(second, b_text, vocabulary, coded)
    return _rule(
        text, "implication", (first, second), lambda t: (t.codes[first] == a) & (t.codes[second] != b), coded
    )


def _missing(text: str, vocabulary: Vocabulary, train: pd.DataFrame, coded: Coded) -> Rule | None:
    match = re.fullmatch(r"(.+?) missing (=>|<=>) (.+?) missing", text)
    if match is None:
        return None
    first, arrow, second = match.groups()
    first, second = _column(first, train), _column(second, train)
    if arrow == "<=>":
        return _rule(text, "missing", (first, second), lambda t: t.missing[first] != t.missing[second], coded)
    return _rule(text, "missing", (first, second), lambda t: t.missing[first] & ~t.missing[second], coded)


def _derived(text: str, vocabulary: Vocabulary, train: pd.DataFrame, coded: Coded) -> Rule | None:
    match = re.fullmatch(r"(.+?) = (.+?)(?: (\+|\*|×) (.+))?", text)
    if match is None:
        return None
    target, first, operator, second = match.groups()
    square = first.endswith("^2") or first.endswith("²")
    first = first.removesuffix("^2").removesuffix("²")
    names = [_column(target, train), _column(first, train)] + ([_column(second, train)] if second else [])
    for name in names:
        _numeric(name, vocabulary)

    def value(t: Coded) -> np.ndarray:
        a = t.numbers[names[1]]
        if operator is None:
            return a * a if square else a
        b = t.numbers[names[2]]
        return a + b if operator == "+" else a * b

    def broken(t: Coded) -> np.ndarray:
        computed, actual = value(t), t.numbers[names[0]]
        return np.isfinite(computed) & np.isfinite(actual) & ~_close(actual, computed)

    return _rule(text, "derived", tuple(names), broken, coded)
