"""Reads for orders: a buyer's orders, receipts, a provider's sales, fees, payable and payouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Count, QuerySet, Sum

from exchange.ledger.services import build_receipt, entries_for
from exchange.orders.models import Order, Payout
from exchange.orders.payouts import payable_balances
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
    """One currency of an organization's sales, in minor units."""

    currency: str
    orders: int
    gross_minor: int
    fees_minor: int
    refunded_minor: int
    payable_minor: int
    paid_out_minor: int


def sales_summary(organization: Organization) -> list[SalesSummary]:
    """Per currency: paid orders, gross, platform fees, refunds, what is still payable, what was paid out."""
    sold = (
        Order.objects.filter(seller=organization, paid_at__isnull=False)
        .values("currency")
        .annotate(
            orders=Count("id"),
            gross=Sum("amount_minor"),
            fees=Sum("platform_fee_minor"),
            refunded=Sum("refunded_minor"),
        )
    )
    paid = dict(
        Payout.objects.filter(organization=organization, status=Payout.Status.PAID)
        .values("currency")
        .annotate(total=Sum("amount_minor"))
        .values_list("currency", "total")
    )
    payable = {b.currency: b.amount_minor for b in payable_balances(organization)}
    return [
        SalesSummary(
            currency=row["currency"],
            orders=row["orders"],
            gross_minor=row["gross"] or 0,
            fees_minor=row["fees"] or 0,
            refunded_minor=row["refunded"] or 0,
            payable_minor=payable.get(row["currency"], 0),
            paid_out_minor=paid.get(row["currency"], 0),
        )
        for row in sold
    ]


def sales_of(organization: Organization) -> QuerySet[Order]:
    return Order.objects.filter(seller=organization, paid_at__isnull=False).select_related(
        "product", "version"
    )


def payouts_of(organization: Organization) -> QuerySet[Payout]:
    return Payout.objects.filter(organization=organization)
