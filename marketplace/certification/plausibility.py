"""A version's plausibility rules before certification: what the engine will check on its reference rows, the
provider's choices (dismissed rules with reasons, declared rules) and which rules SDV constraints can enforce.

Reads only: the choices are stored by ``certification.submission.submit_version`` and the generators' services.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from marketplace.catalog.models import FileRole, ProductVersion
from marketplace.core.errors import JsonableError

MAX_DECLARED = 50
MAX_TEXT = 500


class RuleChoicesRefused(JsonableError, ValueError):
    """The provider's rule choices cannot be used (``bad_rules``, 400); the message says why in a sentence."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_rules", message)


def check_rule_choices(rules: Any) -> dict[str, list]:
    """Validate ``{"dismissed": [{"id", "reason"}], "declared": [statement, ...]}`` (either key optional) and
    return it normalised (stripped strings). Every dismissal needs a reason: it is written in the certificate.
    """
    if rules in (None, ""):
        return {"dismissed": [], "declared": []}
    if not isinstance(rules, dict) or set(rules) - {"dismissed", "declared"}:
        raise RuleChoicesRefused('rules must be an object with "dismissed" and/or "declared".')
    dismissed, declared = rules.get("dismissed") or [], rules.get("declared") or []
    if not isinstance(dismissed, list) or not isinstance(declared, list):
        raise RuleChoicesRefused("rules.dismissed and rules.declared must be lists.")
    checked_dismissed = []
    for item in dismissed:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"].strip():
            raise RuleChoicesRefused("Each dismissed rule needs the rule's id.")
        reason = item.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise RuleChoicesRefused(
                f"Say why the rule {item['id']!r} does not hold: the reason is written in the certificate."
            )
        checked_dismissed.append({"id": item["id"].strip()[:MAX_TEXT], "reason": reason.strip()[:MAX_TEXT]})
    if len(declared) > MAX_DECLARED or not all(isinstance(item, str) and item.strip() for item in declared):
        raise RuleChoicesRefused(f"rules.declared must be at most {MAX_DECLARED} non-empty statements.")
    if any(len(item) > MAX_TEXT for item in declared):
        raise RuleChoicesRefused(f"A declared rule is at most {MAX_TEXT} characters.")
    return {"dismissed": checked_dismissed, "declared": [item.strip() for item in declared]}


def reference_rules(version: ProductVersion, declared: list[str] | None = None) -> list[dict]:
    """The rules certification will check for ``version``: discovered on its train file, validated on its
    holdout (read as certification reads them, sampled past ``SYNTHEX_CERTIFY_MAX_ROWS``), then ``declared``.
    Empty without a train file. Raises RuleChoicesRefused when a declared statement cannot be read.
    """
    from marketplace.certification.engine import EngineConfig, EngineError
    from marketplace.certification.engine.plausibility import discover_rules
    from marketplace.certification.tables import fetch_file, load_table

    files = {f.role: f for f in version.files.filter(deleted_at__isnull=True)}
    if FileRole.TRAIN not in files:
        return []
    with tempfile.TemporaryDirectory(prefix="synthex-rules-") as folder:
        sampling: dict[str, dict[str, int]] = {}
        tables = {
            role: load_table(fetch_file(files[role], Path(folder)), files[role], role, sampling, version.pk)
            for role in (FileRole.TRAIN, FileRole.HOLDOUT)
            if role in files
        }
    try:
        return discover_rules(
            tables[FileRole.TRAIN],
            tables.get(FileRole.HOLDOUT),
            metadata=version.sdv_metadata or None,
            config=EngineConfig(seed=version.pk),
            declared=declared,
        )
    except EngineError as error:
        raise RuleChoicesRefused(str(error)) from error


def checked_against_reference(version: ProductVersion, choices: dict[str, list]) -> list[dict]:
    """``reference_rules`` with the declared statements of ``choices``, refusing a dismissal that names no
    discovered rule; returns the rules."""
    rules = reference_rules(version, choices["declared"])
    known = {rule["id"] for rule in rules}
    for item in choices["dismissed"]:
        if item["id"] not in known:
            raise RuleChoicesRefused(f"No rule of this version has the id {item['id']!r}.")
    return rules


def enforceable(rules: list[dict], sdv_metadata: dict) -> dict[str, list[dict]]:
    """Which ``rules`` SDV 2.0 constraints can enforce when the platform fits a generator, and which not
    (with the reason): ``{"constraints": [spec], "enforced": [...], "not_enforced": [...]}``."""
    from marketplace.certification.engine.constraints import sdv_constraints

    sdtypes = {
        name: str(spec.get("sdtype", "")) for name, spec in (sdv_metadata.get("columns") or {}).items()
    }
    specs, enforced, refused = sdv_constraints(rules, sdtypes)
    return {"constraints": specs, "enforced": enforced, "not_enforced": refused}
