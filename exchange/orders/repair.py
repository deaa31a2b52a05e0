"""Invariant repair: no entitlement without a captured payment; no captured payment without an entitlement
or a refund. Finds either case, repairs it, and logs each repair. Safe to run at any time and twice."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from exchange.delivery.models import Entitlement
from exchange.delivery.services import revoke_entitlement
from exchange.ledger.services import entries_for
from exchange.orders import payouts, services
from exchange.orders import stripe_gateway as gateway
from exchange.orders.models import Order, Payment, Refund
from exchange.orders.webhooks import retry_deferred_events

logger = logging.getLogger(__name__)

# A pending order's intent is asked about only after this long: the confirm call or the webhook is
# normally faster, and asking sooner would race them for nothing.
SYNC_AFTER = timedelta(minutes=2)


@dataclass(frozen=True)
class RepairReport:
    """How many rows each repair touched."""

    payments_applied: int
    entitlements_granted: int
    sales_posted: int
    entitlements_revoked: int
    refunds_sent: int
    payouts_paid: int
    events_resolved: int
    orders_expired: int

    @property
    def total(self) -> int:
        return sum(vars(self).values())


def repair_payment_invariants() -> RepairReport:
    """Run every repair once and return what it did."""
    moment = timezone.now()
    events_resolved = retry_deferred_events()
    payments_applied, orders_expired = _sync_pending_orders(moment)
    entitlements_granted, sales_posted = _complete_paid_orders()
    entitlements_revoked = _revoke_unbacked_entitlements()
    refunds_sent = sum(
        services.send_refund(refund).status == Refund.Status.SUCCEEDED
        for refund in Refund.objects.filter(status=Refund.Status.PENDING)
    )
    payouts_paid = payouts.retry_pending_payouts()
    report = RepairReport(
        payments_applied=payments_applied,
        entitlements_granted=entitlements_granted,
        sales_posted=sales_posted,
        entitlements_revoked=entitlements_revoked,
        refunds_sent=refunds_sent,
        payouts_paid=payouts_paid,
        events_resolved=events_resolved,
        orders_expired=orders_expired,
    )
    if report.total:
        logger.warning("payment invariants repaired: %s", report)
    return report


def _sync_pending_orders(moment: datetime) -> tuple[int, int]:
    """Pending orders whose payment succeeded at Stripe unseen (lost webhook) are applied; stale ones end."""
    applied = expired = 0
    expire_before = moment - timedelta(hours=settings.SYNTHEX_PENDING_ORDER_HOURS)
    pending = Order.objects.filter(status=Order.Status.PENDING, created_at__lt=moment - SYNC_AFTER)
    for order in pending.select_related("payment"):
        try:
            if services.sync_order_payment(order):
                applied += 1
                logger.warning("order %s was paid at Stripe but not here; applied", order.id)
                continue
        except gateway.GatewayError as error:
            logger.warning("could not ask Stripe about order %s: %s", order.id, error)
            continue
        except Payment.DoesNotExist:
            pass
        if order.created_at < expire_before:
            services.cancel_order(order, reason="expired")
            expired += 1
    return applied, expired


def _complete_paid_orders() -> tuple[int, int]:
    """Paid orders lacking their entitlement (not fully refunded) or their sale transaction get them."""
    granted = posted = 0
    missing_entitlement = Order.objects.filter(status=Order.Status.PAID, entitlement__isnull=True)
    for order in missing_entitlement:
        services._grant(order)
        granted += 1
        logger.warning("paid order %s had no entitlement; granted", order.id)
    for order in Order.objects.filter(paid_at__isnull=False, amount_minor__gt=0).select_related("payment"):
        if not any(entry.kind == "sale" for entry in entries_for("order", order.id)):
            services._post_sale(
                order, order.payment.stripe_payment_intent_id or order.payment.idempotency_key
            )
            posted += 1
            logger.warning("paid order %s had no sale in the ledger; posted", order.id)
    return granted, posted


def _revoke_unbacked_entitlements() -> int:
    """Active entitlements from orders that are not paid (refunded in full, canceled, pending) are revoked."""
    revoked = 0
    unbacked = Entitlement.objects.filter(
        status=Entitlement.Status.ACTIVE, source__startswith="order:"
    ).filter(Q(order__isnull=True) | ~Q(order__status=Order.Status.PAID))
    for entitlement in unbacked:
        order = Order.objects.filter(pk=entitlement.source.removeprefix("order:")).first()
        if order is not None and order.status == Order.Status.PAID and order.entitlement_id is None:
            Order.objects.filter(pk=order.pk).update(entitlement=entitlement)
            continue
        revoke_entitlement(entitlement, reason="no captured payment backs it")
        revoked += 1
        logger.warning("entitlement %s had no captured payment; revoked", entitlement.id)
    return revoked
