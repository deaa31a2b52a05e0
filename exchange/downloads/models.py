"""Delivered copies (converted, fingerprinted, cached) and the log of every download attempt.

A ``Fingerprint`` is the secret marking key of one entitlement; every copy delivered under that entitlement
carries it. A ``Delivery`` is one cached copy: (source file hash, format, fingerprint) → stored file, with its
signed receipt. Its source is a catalog ``VersionFile``, a generator's succeeded ``SampleDraw``, or a whole
relational ``ProductVersion`` (exactly one of the three); a *table set* (a version's set, or an HMA draw) is
delivered as one zip of every table in the format, with one receipt. A ``Download`` row is written, with its ledger event, for every request served or refused.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from exchange.delivery.models import Entitlement
from marketplace.catalog.models import ProductVersion, VersionFile
from marketplace.generators.models import SampleDraw


class Fingerprint(models.Model):
    id = models.CharField(primary_key=True, max_length=40, editable=False)
    entitlement = models.OneToOneField(Entitlement, on_delete=models.PROTECT, related_name="fingerprint")
    secret_hex = models.CharField(max_length=64, editable=False, help_text="32 random bytes; never shown.")
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.id

    @property
    def key(self) -> bytes:
        return bytes.fromhex(self.secret_hex)


class Delivery(models.Model):
    id = models.CharField(primary_key=True, max_length=40, editable=False)
    fingerprint = models.ForeignKey(Fingerprint, on_delete=models.PROTECT, related_name="deliveries")
    entitlement = models.ForeignKey(Entitlement, on_delete=models.PROTECT, related_name="deliveries")
    version_file = models.ForeignKey(
        VersionFile, null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries"
    )
    draw = models.ForeignKey(
        SampleDraw, null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries"
    )
    version = models.ForeignKey(
        ProductVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="set_deliveries",
        help_text="A relational version delivered as one table set.",
    )
    is_table_set = models.BooleanField(
        default=False, help_text="A zip of every table of a set (a relational version or an HMA draw)."
    )
    format = models.CharField(max_length=10)
    source_sha256 = models.CharField(max_length=64, db_index=True)
    sha256 = models.CharField(max_length=64, db_index=True, help_text="SHA-256 of the delivered copy.")
    blake3 = models.CharField(
        max_length=64,
        blank=True,
        default="",
        help_text="BLAKE3 of the delivered copy, offered with its links to check a download quickly.",
    )
    size_bytes = models.BigIntegerField()
    rows = models.BigIntegerField()
    storage_name = models.CharField(max_length=300)
    plan = models.JSONField(help_text="The fingerprint plan (column roles and units) used for tracing.")
    receipt = models.JSONField(help_text="Signed delivery receipt with its ledger inclusion proof.")
    ledger_index = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["source_sha256", "format", "fingerprint", "version_file"], name="one_cached_copy"
            ),
            models.UniqueConstraint(
                fields=["source_sha256", "format", "fingerprint", "draw"], name="one_cached_draw_copy"
            ),
            models.UniqueConstraint(
                fields=["source_sha256", "format", "fingerprint", "version"], name="one_cached_set_copy"
            ),
            models.CheckConstraint(
                condition=models.Q(version_file__isnull=False, draw__isnull=True, version__isnull=True)
                | models.Q(version_file__isnull=True, draw__isnull=False, version__isnull=True)
                | models.Q(version_file__isnull=True, draw__isnull=True, version__isnull=False),
                name="delivery_one_source",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.id} {self.format}"

    @property
    def filename(self) -> str:
        if self.version is not None:
            return f"{self.version.product.slug}-v{self.version.number}.{self.format}.zip"
        if self.is_table_set:
            return f"{self.draw_id}.{self.format}.zip"
        if self.version_file is None:
            return f"{self.draw_id}.{self.format}"
        stem = self.version_file.original_filename.rsplit(".", 1)[0] or self.version_file.table_name
        return f"{stem}.{self.format}"


class Download(models.Model):
    class Outcome(models.TextChoices):
        SERVED = "served", "Served"
        REFUSED = "refused", "Refused"

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    reason = models.CharField(max_length=40, blank=True)
    delivery = models.ForeignKey(Delivery, null=True, on_delete=models.PROTECT, related_name="downloads")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    range_start = models.BigIntegerField(null=True)
    range_end = models.BigIntegerField(null=True, help_text="Inclusive, in bytes.")
    starts_copy = models.BooleanField(
        default=False,
        help_text="A served request that counts toward the license's download limit: a first request, or "
        "one starting at or before a byte already requested for the copy (a resume moves forward).",
    )
    ledger_index = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["delivery", "outcome"])]

    def __str__(self) -> str:
        return f"{self.id} {self.outcome}"
