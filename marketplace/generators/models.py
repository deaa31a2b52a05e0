"""Generators (a fitted or uploaded SDV synthesizer behind one product version) and the draws made from them.

The generator file is private: it lives in the ``reference`` storage (a fitted model can carry traces of the
provider's rows), is named by its SHA-256 and is checked against it before every use. Draws name the buyer's
entitlement by id only (entitlements belong to the exchange, which this package does not import).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from marketplace.catalog.models import Product, ProductVersion


class Synthesizer(models.TextChoices):
    GAUSSIAN_COPULA = "gaussian_copula", "Gaussian copula"
    CTGAN = "ctgan", "CTGAN"
    TVAE = "tvae", "TVAE"
    COPULA_GAN = "copula_gan", "CopulaGAN"
    CHOW_LIU = "chow_liu", "Chow-Liu tree (Synthex)"
    DP_MST = "dp_mst", "MST, differentially private (Synthex)"
    HMA = "hma", "HMA, related tables (SDV)"
    UPLOADED = "uploaded", "Uploaded SDV synthesizer"


class GeneratorModel(models.Model):
    class Kind(models.TextChoices):
        FITTED = "fitted", "Fitted on the platform"
        UPLOADED = "uploaded", "Uploaded by the provider"

    class Status(models.TextChoices):
        PENDING = "pending", "Waiting for its fit or checks"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    version = models.OneToOneField(ProductVersion, on_delete=models.CASCADE, related_name="generator")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    synthesizer = models.CharField(max_length=20, choices=Synthesizer.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    storage_name = models.CharField(max_length=300, blank=True)
    sha256 = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the generator file.")
    size_bytes = models.BigIntegerField(null=True, blank=True)
    sdv_metadata = models.JSONField(help_text="The declared schema (SDV 2.0 single-table metadata).")
    constraints = models.JSONField(default=list, blank=True, help_text="SDV 2.0 (sdv.cag) constraints.")
    parameters = models.JSONField(default=dict, blank=True, help_text="Synthesizer arguments, e.g. epochs.")
    holdout_seed = models.BigIntegerField(
        null=True, blank=True, help_text="Seed of the 80/20 split (fitted)."
    )
    holdout_fraction = models.FloatField(default=0.2)
    training_rows = models.BigIntegerField(null=True, blank=True)
    holdout_rows = models.BigIntegerField(null=True, blank=True)
    loss_values = models.JSONField(default=list, blank=True, help_text="Per epoch, for neural synthesizers.")
    scan = models.JSONField(default=dict, blank=True, help_text="Embedded-rows scan of an uploaded model.")
    row_quotas = models.JSONField(
        default=dict,
        blank=True,
        help_text="Rows a buyer may draw per license code, e.g. {'standard': 100000}.",
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.version} {self.synthesizer} ({self.status})"

    @property
    def engine(self) -> Any:
        """The engine that fits and samples this generator (``engines.Engine``: id, name, licence)."""
        from marketplace.generators.engines import engine_of

        return engine_of(self.synthesizer)


class SampleDraw(models.Model):
    """One request for rows. ``rows`` count against the entitlement's quota while queued or running and
    once succeeded; a failed draw counts for nothing. The seed is private; its SHA-256 goes to the ledger.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.CharField(primary_key=True, max_length=40, editable=False)
    generator = models.ForeignKey(GeneratorModel, on_delete=models.PROTECT, related_name="draws")
    entitlement_id = models.CharField(max_length=40, db_index=True)
    buyer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="draws")
    rows = models.BigIntegerField()
    seed = models.BigIntegerField()
    seed_sha256 = models.CharField(max_length=64)
    conditions = models.JSONField(default=dict, blank=True)
    commit_hook = models.CharField(
        max_length=200, help_text="Dotted path called with the draw inside the success transaction."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    storage_name = models.CharField(max_length=300, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    # A worker's claim is attempt n; its heartbeat (and the sweep, when it sends the draw again) writes
    # heartbeat_at. A running draw with a stale heartbeat lost its worker (marketplace/core/leases.py).
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(rows__gt=0), name="draw_rows_positive")]

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"


class PrivacyBudget(models.Model):
    """A product's declared privacy budget: the total ε its DP fits may spend, and what they spent.

    ε is kept in millionths as integers, so sums are exact and a spend is one conditional UPDATE
    (``spent + ε ≤ total``); the check constraint holds the same line in the database.
    """

    product = models.OneToOneField(Product, on_delete=models.CASCADE, related_name="privacy_budget")
    epsilon_total_micro = models.BigIntegerField(help_text="Declared total ε, in millionths.")
    epsilon_spent_micro = models.BigIntegerField(default=0, help_text="ε spent by DP fits, in millionths.")
    declared_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(epsilon_spent_micro__gte=0)
                & models.Q(epsilon_spent_micro__lte=models.F("epsilon_total_micro")),
                name="privacy_budget_within_total",
            )
        ]

    def __str__(self) -> str:
        return f"{self.product} ε {self.epsilon_spent_micro / 1e6:g}/{self.epsilon_total_micro / 1e6:g}"

    @property
    def epsilon_total(self) -> float:
        return self.epsilon_total_micro / 1e6

    @property
    def epsilon_spent(self) -> float:
        return self.epsilon_spent_micro / 1e6

    @property
    def epsilon_remaining(self) -> float:
        return (self.epsilon_total_micro - self.epsilon_spent_micro) / 1e6


class EpsilonSpend(models.Model):
    """One DP fit's spend: ε (millionths), δ and mechanism, with the ledger event that records it."""

    budget = models.ForeignKey(PrivacyBudget, on_delete=models.PROTECT, related_name="spends")
    version = models.OneToOneField(ProductVersion, on_delete=models.PROTECT, related_name="epsilon_spend")
    epsilon_micro = models.BigIntegerField()
    delta = models.FloatField()
    mechanism = models.CharField(max_length=40)
    ledger_leaf = models.BigIntegerField(null=True, blank=True, help_text="Index of the ledger event's leaf.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]
        constraints = [models.CheckConstraint(condition=models.Q(epsilon_micro__gt=0), name="spend_positive")]

    def __str__(self) -> str:
        return f"{self.version} ε {self.epsilon_micro / 1e6:g}"
