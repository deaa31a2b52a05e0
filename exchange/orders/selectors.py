"""Reads for orders: a buyer's orders, receipts, a provider's sales, fees, payable and payouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from exchange.ledger.services import build_receipt, entries_for
from exchange.orders.models import Order, Payout, Refund
from marketplace.accounts.models import Organization, User


def orders_of(buyer: User) -> QuerySet[Order]:
    """The buyer's orders, newest first, with product, version and payment loaded."""
    return Order.objects.filter(buyer=buyer).select_related("product", "version", "payment", "entitlement")


def order_for(user: User, order_id: str) -> Order | None:
    """The order if ``user`` is its buyer or staff; None otherwise (so strangers cannot tell it exists)."""
    order = (
        Order.objects.select_related("product", "version", "payment", "entitlement")
        .filter(pk=order_id)
        .first()
    )
    if order is None or not (order.buyer_id == user.pk or user.is_staff):
        return None
    return order


def receipt_facts(order: Order) -> dict[str, Any]:
    """The order facts a receipt states: ids, amounts in minor units, currency, times; no names."""
    return {
        "order": order.id,
        "status": order.status,
        "product": order.product.slug,
        "version": order.version.number,
        "license": order.license_code,
        "amount_minor": order.amount_minor,
        "currency": order.currency,
        "platform_fee_minor": order.platform_fee_minor,
        "provider_share_minor": order.provider_share_minor,
        "refunded_minor": order.refunded_minor,
        "entitlement": order.entitlement_id,
        "created_at": order.created_at.isoformat().replace("+00:00", "Z"),
        "paid_at": order.paid_at.isoformat().replace("+00:00", "Z") if order.paid_at else None,
    }


def signed_receipt(order: Order) -> dict[str, Any]:
    """The signed receipt of a paid order: its facts and every ledger entry about it, with proofs."""
    indexes = {entry.index for entry in entries_for("order", order.id)}
    if order.entitlement_id:
        indexes |= {entry.index for entry in entries_for("entitlement", order.entitlement_id)}
    return build_receipt(receipt=receipt_facts(order), leaf_indexes=sorted(indexes))


@dataclass(frozen=True)
class SalesSummary:
    """One currency of an organization's sales, in minor units. The columns add up, and they are the
    ledger's figures (``exchange.ledger.selectors.provider_summaries``):
    ``gross - refunded - fees + covered = earned`` and ``earned - paid_out = owed``.

    ``refunded_minor`` is what buyers got back (whole refunds); ``fees_minor`` the platform fees kept (net of
    the fee part of refunds); ``covered_minor`` the part of refunds Synthex bore because the provider had
    already been paid out; ``pending_payout_minor`` is part of ``owed_minor`` already on its way."""

    currency: str
    orders: int
    gross_minor: int
    refunded_minor: int
    fees_minor: int
    covered_minor: int
    earned_minor: int
    paid_out_minor: int
    owed_minor: int
    pending_payout_minor: int


def _refund_totals(organization: Organization) -> dict[str, dict[str, int]]:
    rows = (
        Refund.objects.filter(order__seller=organization, status=Refund.Status.SUCCEEDED)
        .values("currency")
        .annotate(fees=Sum("platform_fee_minor"), covered=Sum("platform_covered_minor"))
    )
    return {row["currency"]: {"fees": row["fees"] or 0, "covered": row["covered"] or 0} for row in rows}


def _payout_totals(organization: Organization, status: str) -> dict[str, int]:
    return dict(
        Payout.objects.filter(organization=organization, status=status)
        .values("currency")
        .annotate(total=Sum("amount_minor"))
        .values_list("currency", "total")
    )


def sales_summary(organization: Organization) -> list[SalesSummary]:
    """Per currency: paid orders, gross, refunded, net fees, covered refunds, earned, paid out, owed."""
    sold = (
        Order.objects.filter(seller=organization, paid_at__isnull=False)
        .values("currency")
        .annotate(
            orders=Count("id"),
            gross=Sum("amount_minor"),
            fees=Sum("platform_fee_minor"),
            refunded=Sum("refunded_minor"),
        )
        .order_by("currency")
    )
    refunds = _refund_totals(organization)
    paid = _payout_totals(organization, Payout.Status.PAID)
    pending = _payout_totals(organization, Payout.Status.PENDING)
    summaries = []
    for row in sold:
        currency = row["currency"]
        refund = refunds.get(currency, {"fees": 0, "covered": 0})
        gross, refunded = row["gross"] or 0, row["refunded"] or 0
        fees = (row["fees"] or 0) - refund["fees"]
        earned = gross - refunded - fees + refund["covered"]
        paid_out = paid.get(currency, 0)
        summaries.append(
            SalesSummary(
                currency=currency,
                orders=row["orders"],
                gross_minor=gross,
                refunded_minor=refunded,
                fees_minor=fees,
                covered_minor=refund["covered"],
                earned_minor=earned,
                paid_out_minor=paid_out,
                owed_minor=earned - paid_out,
                pending_payout_minor=pending.get(currency, 0),
            )
        )
    return summaries


def sales_of(organization: Organization) -> QuerySet[Order]:
    """Paid orders with their net figures: ``fee_net_minor`` (fee less the fee part of refunds) and
    ``share_net_minor`` (share less the provider part of refunds the provider bore), so that
    ``amount - refunded - fee_net = share_net - covered`` on each row."""
    succeeded = Refund.objects.filter(order=OuterRef("pk"), status=Refund.Status.SUCCEEDED)

    def refund_sum(expression: Any) -> Any:
        total = succeeded.values("order").annotate(total=Sum(expression)).values("total")
        return Coalesce(Subquery(total), Value(0))

    return (
        Order.objects.filter(seller=organization, paid_at__isnull=False)
        .select_related("product", "version")
        .annotate(
            fee_net_minor=F("platform_fee_minor") - refund_sum("platform_fee_minor"),
            share_net_minor=F("provider_share_minor")
            - refund_sum(F("provider_share_minor") - F("platform_covered_minor")),
        )
    )


def payouts_of(organization: Organization) -> QuerySet[Payout]:
    return Payout.objects.filter(organization=organization)
