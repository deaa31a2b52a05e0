"""The ε ledger of a product: a declared total, spent by each differentially private fit.

Guarantees:
- A spend is one conditional UPDATE (``spent + ε ≤ total``) inside the caller's transaction, so two fits that
  each fit in what is left cannot both take the last of it; a refused spend changes nothing.
- Each declaration and each spend is also a ledger event (a leaf of the Merkle log: kind
  ``privacy.epsilon_spent`` or ``privacy.epsilon_budget_declared``, with product, version, ε, δ and
  mechanism, no personal data) written in the same transaction. ``marketplace`` does not import
  ``exchange``: the recorder is named by the dotted path ``SYNTHEX_EPSILON_LEDGER_HOOK``.
"""

from __future__ import annotations

import math
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils.module_loading import import_string

from marketplace.catalog.models import Product, ProductVersion
from marketplace.core.page_cache import bump_catalog_version
from marketplace.generators.errors import GeneratorError
from marketplace.generators.models import EpsilonSpend, PrivacyBudget

SPENT_KIND = "privacy.epsilon_spent"
DECLARED_KIND = "privacy.epsilon_budget_declared"
MAX_EPSILON_TOTAL = 1000.0


class BudgetError(GeneratorError):
    """A refused budget operation: ``code``, a sentence, and the HTTP status the API answers with."""


def to_micro(epsilon: float) -> int:
    """ε in millionths, rounded up (a spend is never recorded smaller than the fit's ε)."""
    return math.ceil(round(epsilon * 1_000_000, 6))


def epsilon_text(micro: int) -> str:
    """ε in millionths as the shortest exact decimal (``1``, ``0.5``, ``0.000001``), as the ledger holds it."""
    whole, fraction = divmod(micro, 1_000_000)
    return f"{whole}.{fraction:06d}".rstrip("0").rstrip(".")


def _record(kind: str, key: str, refs: dict[str, str]) -> int | None:
    hook = settings.SYNTHEX_EPSILON_LEDGER_HOOK
    if not hook:
        return None
    return int(import_string(hook)(idempotency_key=key, kind=kind, refs=refs))


def check_epsilon_total(value: Any) -> float:
    """A declared total: a finite number in (0, ``MAX_EPSILON_TOTAL``]."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BudgetError("bad_epsilon_total", "epsilon_total must be a number.")
    if not 0 < value <= MAX_EPSILON_TOTAL:
        raise BudgetError("bad_epsilon_total", f"epsilon_total must lie in (0, {MAX_EPSILON_TOTAL:g}].")
    return float(value)


def declare_budget(product: Product, epsilon_total: Any) -> PrivacyBudget:
    """Declare (or change) the product's total ε. A total below what was already spent is refused (409); each
    declaration is a ledger event, so a raised total is visible in the public log."""
    total = to_micro(check_epsilon_total(epsilon_total))
    with transaction.atomic():
        budget, created = PrivacyBudget.objects.select_for_update().get_or_create(
            product=product, defaults={"epsilon_total_micro": total}
        )
        if not created:
            if total < budget.epsilon_spent_micro:
                raise BudgetError(
                    "epsilon_total_below_spent",
                    f"This product already spent ε = {epsilon_text(budget.epsilon_spent_micro)}; the total "
                    "cannot be lower.",
                    409,
                )
            if total == budget.epsilon_total_micro:
                return budget
            PrivacyBudget.objects.filter(pk=budget.pk).update(epsilon_total_micro=total)
            budget.refresh_from_db()
        declarations = budget.product_id, budget.epsilon_total_micro, budget.updated_at.isoformat()
        _record(
            DECLARED_KIND,
            "epsilon-budget:{}:{}:{}".format(*declarations),
            {"product": str(product.pk), "epsilon_total": epsilon_text(total)},
        )
        transaction.on_commit(bump_catalog_version)  # the product page shows the budget
    return budget


def spend(version: ProductVersion, *, epsilon: float, delta: float, mechanism: str) -> EpsilonSpend:
    """Spend ``epsilon`` of the version's product budget for the DP fit of ``version``. Call inside the
    transaction that creates the fit. Refuses (409, nothing spent) without a declared budget or when the spend
    would pass the total."""
    amount = to_micro(epsilon)
    budget = PrivacyBudget.objects.filter(product_id=version.product_id).first()
    if budget is None:
        raise BudgetError(
            "no_privacy_budget",
            "Declare this product's total ε first (epsilon_total): every DP fit spends from it.",
            409,
        )
    taken = PrivacyBudget.objects.filter(
        pk=budget.pk, epsilon_spent_micro__lte=F("epsilon_total_micro") - amount
    ).update(epsilon_spent_micro=F("epsilon_spent_micro") + amount)
    if not taken:
        budget.refresh_from_db()
        left = budget.epsilon_total_micro - budget.epsilon_spent_micro
        raise BudgetError(
            "epsilon_budget_exceeded",
            f"This fit needs ε = {epsilon_text(amount)} but the product has ε = {epsilon_text(left)} left of "
            f"{epsilon_text(budget.epsilon_total_micro)}. Lower ε, or declare a larger total.",
            409,
        )
    record = EpsilonSpend.objects.create(
        budget=budget, version=version, epsilon_micro=amount, delta=delta, mechanism=mechanism
    )
    leaf = _record(SPENT_KIND, f"epsilon-spend:{record.pk}", spend_refs(record))
    if leaf is not None:
        EpsilonSpend.objects.filter(pk=record.pk).update(ledger_leaf=leaf)
        record.ledger_leaf = leaf
    return record


def spend_refs(record: EpsilonSpend) -> dict[str, str]:
    """The refs of a spend's ledger event: ids and numbers only."""
    return {
        "product": str(record.budget.product_id),
        "version": str(record.version_id),
        "epsilon": epsilon_text(record.epsilon_micro),
        "delta": repr(float(record.delta)),
        "mechanism": record.mechanism,
    }


def budget_of(product: Product) -> dict[str, Any]:
    """``epsilon_total``, ``epsilon_spent`` and ``epsilon_remaining`` (None when no budget is declared)."""
    budget = PrivacyBudget.objects.filter(product=product).first()
    if budget is None:
        return {"epsilon_total": None, "epsilon_spent": 0.0, "epsilon_remaining": None}
    return {
        "epsilon_total": budget.epsilon_total_micro / 1e6,
        "epsilon_spent": budget.epsilon_spent_micro / 1e6,
        "epsilon_remaining": (budget.epsilon_total_micro - budget.epsilon_spent_micro) / 1e6,
    }
