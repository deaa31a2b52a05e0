"""Audit checks of the orders app: each Stripe charge's fee is posted at most once, and posted right."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from exchange.ledger.audit import Problem, register_check
from exchange.ledger.models import JournalTransaction
from exchange.orders import cross_checks  # noqa: F401  (registers the business ↔ ledger checks)
from exchange.orders.models import Order
from exchange.orders.services import STRIPE_FEE_KIND, stripe_fee_key


@register_check("orders.stripe_fees")
def stripe_fees_posted_once() -> Iterator[Problem]:
    """Every ``stripe_fee`` transaction names a charge no other fee transaction names, carries that charge's
    key, belongs to a paid order and moves one amount from Stripe clearing to Stripe fees."""
    fees = JournalTransaction.objects.filter(kind=STRIPE_FEE_KIND).prefetch_related("postings__account")
    charges = Counter(str(fee.refs.get("stripe_charge", "")) for fee in fees)
    paid_orders = set(
        Order.objects.filter(
            pk__in=[fee.refs.get("order", "") for fee in fees], paid_at__isnull=False
        ).values_list("pk", flat=True)
    )
    for fee in fees:
        charge_id = str(fee.refs.get("stripe_charge", ""))
        where = f"transaction {fee.pk}"
        if not charge_id or fee.idempotency_key != stripe_fee_key(charge_id):
            yield Problem("orders.stripe_fees", where, "a Stripe fee not keyed by its charge")
        elif charges[charge_id] > 1:
            yield Problem("orders.stripe_fees", where, f"charge {charge_id} has {charges[charge_id]} fees")
        if fee.refs.get("order") not in paid_orders:
            yield Problem("orders.stripe_fees", where, "a Stripe fee of an order that is not paid")
        legs = sorted((posting.account.kind, posting.amount_minor) for posting in fee.postings.all())
        if (
            len(legs) != 2
            or [kind for kind, _ in legs] != ["stripe_clearing", "stripe_fees"]
            or legs[0][1] != -legs[1][1]
            or legs[1][1] <= 0
        ):
            yield Problem("orders.stripe_fees", where, "not a Stripe fees debit against Stripe clearing")
