"""Reads for entitlements."""

from __future__ import annotations

from django.db.models import QuerySet

from exchange.delivery.models import Entitlement
from marketplace.accounts.models import User


def entitlements_of(buyer: User) -> QuerySet[Entitlement]:
    """The buyer's entitlements, newest first, with version and product loaded."""
    return Entitlement.objects.filter(buyer=buyer).select_related("version__product")
