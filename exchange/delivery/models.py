"""Entitlements: the right of one buyer to one certified version under one license.

An entitlement is granted by a paid (or free) order and revoked by a full refund; both moments are ledger
events. Downloads are served against an active entitlement only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from marketplace.catalog.models import ProductVersion


class Entitlement(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        REVOKED = "revoked", "Revoked"

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="entitlements")
    version = models.ForeignKey(ProductVersion, on_delete=models.PROTECT, related_name="entitlements")
    license_code = models.CharField(max_length=20)
    source = models.CharField(
        max_length=60,
        unique=True,
        help_text="What granted it, e.g. 'order:ord_…'; one entitlement per source.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    granted_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoke_reason = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["buyer", "status"])]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.ACTIVE
