"""Privacy-budget events on the ledger, and the audit's check that the ε ledger and the log agree.

``record_privacy_event`` is the recorder ``marketplace.generators.budget`` calls by dotted path (marketplace
does not import exchange). The check holds both ways: every ε spend row has its ``privacy.epsilon_spent``
event with the same refs, every such event its row, and each product's spent ε equals the sum of its spends.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from django.db.models import Sum

from exchange.ledger import services
from exchange.ledger.audit import Problem, register_check
from exchange.ledger.models import LedgerEvent
from marketplace.generators.budget import SPENT_KIND, spend_refs
from marketplace.generators.models import EpsilonSpend, PrivacyBudget


def record_privacy_event(*, idempotency_key: str, kind: str, refs: Mapping[str, str]) -> int:
    """Record a privacy-budget event (kind ``privacy.*``) and return the index of its leaf."""
    if not kind.startswith("privacy."):
        raise services.LedgerError(f"not a privacy event kind: {kind!r}", "invalid_kind")
    return services.record_event(idempotency_key=idempotency_key, kind=kind, refs=refs).leaf_id


@register_check("privacy.epsilon")
def epsilon_spends_match_events() -> Iterator[Problem]:
    """Each spend has its event (same refs), each spend event its row, and each budget's spent ε is the sum
    of its spends, at most its total."""
    events = {
        event.leaf_id: event for event in LedgerEvent.objects.filter(kind=SPENT_KIND).order_by("leaf_id")
    }
    seen: set[int] = set()
    for record in EpsilonSpend.objects.select_related("budget").order_by("pk"):
        event = events.get(record.ledger_leaf) if record.ledger_leaf is not None else None
        if event is None or event.refs != spend_refs(record):
            yield Problem("privacy.epsilon", f"epsilon spend {record.pk}", "has no matching ledger event")
        else:
            seen.add(event.leaf_id)
    for leaf_id in sorted(set(events) - seen):
        yield Problem("privacy.epsilon", f"event {leaf_id}", "records an ε spend with no spend row")
    for budget in PrivacyBudget.objects.all():
        total = budget.spends.aggregate(total=Sum("epsilon_micro"))["total"] or 0
        if total != budget.epsilon_spent_micro or total > budget.epsilon_total_micro:
            yield Problem(
                "privacy.epsilon",
                f"budget of product {budget.product_id}",
                f"spent {budget.epsilon_spent_micro} µε, its spends add up to {total} (total "
                f"{budget.epsilon_total_micro})",
            )
