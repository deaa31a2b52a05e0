"""Reads for entitlements."""

from __future__ import annotations

from django.db.models import QuerySet

from exchange.delivery.models import Entitlement
from marketplace.accounts.models import User


def entitlements_of(buyer: User) -> QuerySet[Entitlement]:
    """The buyer's entitlements, newest first, with version and product loaded."""
    return Entitlement.objects.filter(buyer=buyer).select_related("version__product")


def active_entitlement(buyer: User, version_id: int, license_code: str) -> Entitlement | None:
    """The buyer's active entitlement to a version under a license, if any."""
    return Entitlement.objects.filter(
        buyer=buyer, version_id=version_id, license_code=license_code, status=Entitlement.Status.ACTIVE
    ).first()
