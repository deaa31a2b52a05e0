"""Plausibility: the rules real rows obey (``rules.py``), kept when the holdout obeys them at the same rate,
and how often synthetic rows break them, against how often real holdout rows do (docs/engine.md#plausibility).

Rates are shares of a table's rows (0–1). The score is (1 − synthetic share breaking any rule) /
(1 − holdout share breaking any rule), clipped to [0, 1]: real data's own violations are the reference.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from .config import EngineConfig
from .declared import parse_declared
from .errors import EngineError
from .rules import Coded, Rule, Vocabulary, discover
from .schema import Column, bounded_sample, clean_table, resolve_columns
from .stats import wilson_interval

GRADE_SOURCE = (
    "Synthex: bands over (1 − share of synthetic rows breaking any rule) / (1 − share of real holdout rows "
    "breaking any rule); F below the last band. docs/engine.md#plausibility"
)
_REFERENCE_SHARE = 0.25


def _consistent(
    train_broken: int, train_rows: int, reference_broken: int, reference_rows: int, z: float
) -> bool:
    """The reference rate's interval meets train's (Wilson, ``z``): the rule holds in both at the same rate."""
    if reference_rows == 0:
        return True
    train_low, train_high = wilson_interval(train_broken, train_rows, z)
    low, high = wilson_interval(reference_broken, reference_rows, z)
    return low <= train_high and high >= train_low


def _reference(
    train: pd.DataFrame, holdout: pd.DataFrame | None, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Rows to discover on and rows to validate on: train and holdout, or without a holdout a seeded 75/25
    split of train."""
    if holdout is not None:
        return train, holdout, "holdout"
    order = rng.permutation(len(train))
    cut = int(round(len(train) * (1 - _REFERENCE_SHARE)))
    return (
        train.iloc[np.sort(order[:cut])].reset_index(drop=True),
        train.iloc[np.sort(order[cut:])].reset_index(drop=True),
        "25% of train, not used for discovery",
    )


def _bounded(
    discovery: pd.DataFrame,
    reference: pd.DataFrame,
    name: str,
    config: EngineConfig,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Both tables as seeded uniform samples of at most ``config.rule_max_rows`` rows (row order kept), and
    on wide tables of at most ``config.rule_max_cells`` cells (never below 10,000 rows): the searches are
    pairwise in the columns."""
    limit = min(config.rule_max_rows, max(10_000, config.rule_max_cells // max(1, len(discovery.columns))))
    discovery, _ = bounded_sample(discovery, limit, rng)
    reference, _ = bounded_sample(reference, limit, rng)
    return discovery, reference, name


def _validated(rules: list[Rule], train: Coded, reference: Coded, config: EngineConfig) -> list[Rule]:
    kept = []
    for rule in rules:
        train_broken = int(rule.broken(train).sum())
        reference_broken = int(rule.broken(reference).sum())
        if _consistent(train_broken, train.rows, reference_broken, reference.rows, config.rule_validation_z):
            kept.append(rule)
    kept.sort(key=lambda rule: (-rule.strength, rule.id))
    return kept[: config.rule_max_rules]


def _rate(mask: np.ndarray) -> float:
    return float(mask.mean()) if len(mask) else 0.0


def _grade(score: float, config: EngineConfig) -> str:
    for letter, minimum in config.plausibility_grade_bands:
        if score >= minimum:
            return letter
    return "F"


def _reasons(
    rows: list[dict], synthetic_any: float, reference_any: float, score: float, grade: str, reference: str
) -> list[str]:
    if not rows:
        return ["No rule was found that the real rows obey with enough support: nothing to break."]
    reasons = [
        f"{synthetic_any:.1%} of synthetic rows break at least one of {len(rows)} rules, against "
        f"{reference_any:.1%} of real rows ({reference}): score {score:.2f}, grade {grade}."
    ]
    worst = rows[0]
    if worst["synthetic_violation_rate"] > worst["holdout_violation_rate"]:
        reasons.append(
            f"Worst rule: {worst['statement']} — broken in {worst['synthetic_violation_rate']:.1%} of synthetic "
            f"rows, {worst['holdout_violation_rate']:.1%} of real rows."
        )
    return reasons


def _rule_row(rule: Rule, synthetic_broken: np.ndarray, reference_broken: np.ndarray) -> dict:
    broken = int(synthetic_broken.sum())
    return {
        "id": rule.id,
        "kind": rule.kind,
        "source": rule.source,
        "columns": list(rule.columns),
        "statement": rule.statement,
        "support": rule.support,
        "train_violation_rate": rule.train_violation_rate,
        "holdout_violation_rate": _rate(reference_broken),
        "synthetic_violation_rate": _rate(synthetic_broken),
        "synthetic_violation_rate_ci": list(wilson_interval(broken, len(synthetic_broken))),
    }


def _thresholds(config: EngineConfig, min_support: int) -> dict:
    return {
        "grade_bands": [
            {"grade": letter, "min_score": minimum} for letter, minimum in config.plausibility_grade_bands
        ],
        "grade_source": GRADE_SOURCE,
        "min_support": min_support,
        "min_support_rule": (
            f"a rule covers at least max({config.rule_min_support}, {config.rule_min_support_share:.0%} of train) "
            "rows and quotes no value seen in fewer train rows"
        ),
        "group_min_rows": config.rule_group_min_rows,
        "min_coverage": config.rule_min_coverage,
        "max_violation": config.rule_max_violation,
        "lift": config.rule_lift,
        "significance": config.rule_significance,
        "validation": (
            f"kept when the reference rows break it at a rate whose Wilson interval (z = {config.rule_validation_z}) "
            "meets train's"
        ),
    }


def _dismiss(rules: list[Rule], dismissed: list[dict]) -> tuple[list[Rule], list[dict]]:
    reasons = {str(item["id"]): str(item.get("reason") or "") for item in dismissed}
    kept = [rule for rule in rules if rule.id not in reasons]
    written = [
        {"id": rule.id, "statement": rule.statement, "reason": reasons[rule.id]}
        for rule in rules
        if rule.id in reasons
    ]
    return kept, written


def _requested(rules: dict | None) -> tuple[list[dict], list[str]]:
    if rules is None:
        return [], []
    if not isinstance(rules, dict):
        raise EngineError("rules must be an object {dismissed: [{id, reason}], declared: [statement, ...]}.")
    dismissed = rules.get("dismissed") or []
    declared = rules.get("declared") or []
    if not isinstance(dismissed, list) or not all(
        isinstance(item, dict) and "id" in item for item in dismissed
    ):
        raise EngineError("rules.dismissed must be a list of {id, reason}.")
    if not isinstance(declared, list) or not all(isinstance(item, str) for item in declared):
        raise EngineError("rules.declared must be a list of rule statements (strings).")
    return dismissed, declared


def _generator_constraints(rules: dict | None) -> tuple[dict[str, str], list[dict]]:
    """For a generator fitted on the platform: rule id → the SDV constraint enforcing it, and the rules no
    constraint could express with the reason (``version.rules["enforced"/"not_enforced"]``, as recorded)."""
    if not isinstance(rules, dict):
        return {}, []
    enforced = {
        str(item["id"]): str(item.get("constraint", ""))
        for item in rules.get("enforced") or []
        if isinstance(item, dict) and "id" in item
    }
    not_enforced = [
        {
            "id": str(item["id"]),
            "statement": str(item.get("statement", "")),
            "reason": str(item.get("reason", "")),
        }
        for item in rules.get("not_enforced") or []
        if isinstance(item, dict) and "id" in item
    ]
    return enforced, not_enforced


def assess(
    synthetic: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame | None,
    columns: tuple[Column, ...],
    config: EngineConfig,
    rng: np.random.Generator,
    rules: dict | None = None,
) -> dict:
    """The plausibility section: rules discovered on train (validated on the holdout, or on a seeded 25% of
    train without one), minus those the provider dismissed (with the reason written), plus the rules the
    provider declared; each rule's violation rate on synthetic and reference rows, worst first; the share of
    rows breaking any rule; the score and grade with their thresholds and reasons.

    ``rules`` is ``{"dismissed": [{"id", "reason"}], "declared": ["a <= b", ...]}``; a declared statement
    that cannot be read raises EngineError. Inputs are cleaned tables (``schema.clean_table``).
    """
    dismissed_request, declared_text = _requested(rules)
    discovery, reference, reference_name = _bounded(*_reference(train, holdout, rng), config, rng)
    vocabulary_, found = discover(discovery, columns, config)
    discovery_coded, reference_coded = vocabulary_.code(discovery), vocabulary_.code(reference)
    kept = _validated(found, discovery_coded, reference_coded, config)
    kept, dismissed = _dismiss(kept, dismissed_request)
    declared = _declared(declared_text, vocabulary_, discovery, discovery_coded)
    all_rules = kept + declared
    synthetic_coded = vocabulary_.code(synthetic)
    synthetic_masks = [rule.broken(synthetic_coded) for rule in all_rules]
    reference_masks = [rule.broken(reference_coded) for rule in all_rules]
    rows = [
        _rule_row(rule, syn, ref)
        for rule, syn, ref in zip(all_rules, synthetic_masks, reference_masks, strict=True)
    ]
    order = sorted(
        range(len(rows)),
        key=lambda i: (
            -(rows[i]["synthetic_violation_rate"] - rows[i]["holdout_violation_rate"]),
            rows[i]["id"],
        ),
    )
    rows = [rows[i] for i in order]
    enforced, not_enforced = _generator_constraints(rules)
    for row in rows:
        if row["id"] in enforced:
            row["enforced_by"] = enforced[row["id"]]
    synthetic_any = _rate(np.any(synthetic_masks, axis=0)) if synthetic_masks else 0.0
    reference_any = _rate(np.any(reference_masks, axis=0)) if reference_masks else 0.0
    score = min(1.0, max(0.0, (1 - synthetic_any) / max(1e-9, 1 - reference_any)))
    grade = _grade(score, config)
    min_support = max(config.rule_min_support, math.ceil(config.rule_min_support_share * len(discovery)))
    return {
        "score": score,
        "grade": grade,
        "rows_violating_any": synthetic_any,
        "rows_violating_any_ci": list(
            wilson_interval(int(round(synthetic_any * synthetic_coded.rows)), synthetic_coded.rows)
        ),
        "holdout_rows_violating_any": reference_any,
        "reference": reference_name,
        "rules": rows,
        "dismissed": dismissed,
        "not_enforced": not_enforced,
        "reasons": _reasons(rows, synthetic_any, reference_any, score, grade, reference_name),
        "thresholds": _thresholds(config, min_support),
        "rows": {"discovery": len(discovery), "reference": len(reference), "synthetic": len(synthetic)},
        "candidates": len(found),
    }


def discover_rules(
    train: pd.DataFrame,
    holdout: pd.DataFrame | None,
    *,
    metadata: dict | None = None,
    config: EngineConfig = EngineConfig(),
    declared: list[str] | None = None,
) -> list[dict]:
    """The rules a certificate of these reference tables would check, before any synthetic row exists: the
    validated discovered rules (strongest first) and then the ``declared`` statements, each as
    ``{id, kind, source, columns, statement, support, train_violation_rate, holdout_violation_rate}``.

    Takes raw tables (as ``evaluate`` does) and the same seed stream, so the ids match the certificate's.
    Raises EngineError for a declared statement that cannot be read.
    """
    columns = resolve_columns(train, metadata)
    train_clean = clean_table(train, columns)
    holdout_clean = clean_table(holdout, columns) if holdout is not None else None
    rng = np.random.default_rng(np.random.SeedSequence(config.seed).spawn(6)[5])
    discovery, reference, _ = _bounded(*_reference(train_clean, holdout_clean, rng), config, rng)
    vocabulary_, found = discover(discovery, columns, config)
    discovery_coded, reference_coded = vocabulary_.code(discovery), vocabulary_.code(reference)
    kept = _validated(found, discovery_coded, reference_coded, config)
    kept += _declared(declared or [], vocabulary_, discovery, discovery_coded)
    return [
        {
            key: value
            for key, value in _rule_row(
                rule, rule.broken(discovery_coded), rule.broken(reference_coded)
            ).items()
            if not key.startswith("synthetic")
        }
        | {"train_violation_rate": rule.train_violation_rate}
        for rule in kept
    ]


def _declared(
    statements: list[str], vocabulary_: Vocabulary, train: pd.DataFrame, coded: Coded
) -> list[Rule]:
    declared = []
    for statement in statements:
        rule = parse_declared(statement, vocabulary_, train, coded)
        broken = rule.broken(coded)
        declared.append(replace(rule, train_violation_rate=_rate(broken), source="declared"))
    return declared
