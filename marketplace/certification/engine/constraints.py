"""Plausibility rules as SDV 2.0 constraint specs (``sdv.cag``), for generators fitted on the platform.

Pure: the specs are plain dicts ``{"type": "FixedCombinations", "column_names": [...]}`` /
``{"type": "Inequality", "low_column_name": ..., "high_column_name": ...}`` that the generators app turns
into ``sdv.cag`` objects; this module imports no SDV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_CATEGORICAL = frozenset({"categorical", "boolean", "ordinal"})
_NUMERIC = frozenset({"numerical", "datetime"})
_COMBINATION_KINDS = frozenset({"functional_dependency", "one_to_one", "implication"})
_NO_CONSTRAINT = {
    "missing": "no SDV 2.0 constraint ties the missing values of two columns together",
    "derived": "no SDV 2.0 constraint computes a column from others (a formula)",
    "range": "no SDV 2.0 constraint sets a category from a threshold on a number",
}


def sdv_constraints(
    rules: Sequence[Mapping], sdtypes: Mapping[str, str]
) -> tuple[list[dict], list[dict], list[dict]]:
    """Split ``rules`` (plausibility rule rows) into SDV constraint specs, the rules they enforce
    (``{id, statement, constraint}``) and the rules no constraint can express (``{id, statement, reason}``).

    Dependencies, one-to-one mappings and implications become ``FixedCombinations`` (only value combinations
    seen in the real rows are sampled) when every column is categorical, boolean or ordinal; orders become
    ``Inequality`` between numerical or datetime columns. ``sdtypes`` maps column → SDV sdtype.
    """
    specs: list[dict] = []
    enforced: list[dict] = []
    refused: list[dict] = []
    for rule in rules:
        spec, reason = _spec(rule, sdtypes)
        if spec is None:
            refused.append({"id": rule["id"], "statement": rule["statement"], "reason": reason})
            continue
        if spec not in specs:
            specs.append(spec)
        enforced.append({"id": rule["id"], "statement": rule["statement"], "constraint": spec["type"]})
    return specs, enforced, refused


def _spec(rule: Mapping, sdtypes: Mapping[str, str]) -> tuple[dict | None, str]:
    kind, columns = rule["kind"], list(rule["columns"])
    if kind in _COMBINATION_KINDS:
        others = [name for name in columns if sdtypes.get(name) not in _CATEGORICAL]
        if others:
            return None, (
                f"FixedCombinations needs categorical columns; {', '.join(others)} "
                f"{'is' if len(others) == 1 else 'are'} not (declare it categorical to enforce this rule)"
            )
        return {"type": "FixedCombinations", "column_names": columns}, ""
    if kind == "order":
        others = [name for name in columns if sdtypes.get(name) not in _NUMERIC]
        if others:
            return None, f"Inequality needs numerical or datetime columns; {', '.join(others)} is not"
        return {"type": "Inequality", "low_column_name": columns[0], "high_column_name": columns[1]}, ""
    return None, _NO_CONSTRAINT.get(kind, f"no SDV 2.0 constraint expresses a {kind} rule")
