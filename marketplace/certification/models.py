"""Certification jobs, signed certificates and the public half of the platform's signing keys."""

from __future__ import annotations

import uuid

from django.db import models

from marketplace.catalog.models import ProductVersion


class SigningKey(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    key_id = models.CharField(max_length=80, unique=True)
    public_key_pem = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.key_id} ({self.status})"


class Job(models.Model):
    """Long work off the request path. The page and the API read ``status``, ``stage`` and ``progress``."""

    class Kind(models.TextChoices):
        CERTIFY = "certify", "Certify a version"
        FIT = "fit", "Fit or check a generator, then certify it"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    version = models.ForeignKey(ProductVersion, on_delete=models.CASCADE, related_name="jobs")
    engine_version = models.CharField(max_length=20)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=40, default="queued")
    progress = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Written every quarter lease while a worker holds the job, and when the sweep queues it again; a running
    # job whose heartbeat is older than the lease lost its worker (marketplace/core/leases.py).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "version", "engine_version"], name="one_job_per_version_engine"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.version} [{self.status}]"


class Certificate(models.Model):
    """A signed certificate. Immutable: a newer engine makes a new one; revocation is a separate record."""

    id = models.CharField(primary_key=True, max_length=40)
    version = models.ForeignKey(ProductVersion, on_delete=models.PROTECT, related_name="certificates")
    engine_version = models.CharField(max_length=20)
    document = models.JSONField()
    signed_bytes = models.BinaryField(help_text="The RFC 8785 bytes the signature covers.")
    key_id = models.CharField(max_length=80)
    issued_at = models.DateTimeField()
    quality_score = models.FloatField()
    quality_grade = models.CharField(max_length=1)
    privacy_grade = models.CharField(max_length=1)
    privacy_passed = models.BooleanField()
    dcr_share = models.FloatField(null=True)

    class Meta:
        ordering = ["-issued_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["version", "engine_version"], name="one_certificate_per_version_engine"
            ),
        ]

    def __str__(self) -> str:
        return self.id

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise ValueError("Certificates are immutable: issue a new one or publish a revocation.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]


class CertificateCharts(models.Model):
    """The certificate's charts drawn as SVG (by matplotlib, in the worker) from its signed ``charts`` section.

    Derived and unsigned: drawn once after issue so the web process only reads markup. ``svgs`` maps a chart
    key (``marginal-<i>``, ``correlations-real``, ``correlations-synthetic``, ``dcr``) to its ``<svg>``."""

    certificate = models.OneToOneField(
        Certificate, on_delete=models.CASCADE, primary_key=True, related_name="charts"
    )
    svgs = models.JSONField(default=dict)
    rendered_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"charts of {self.certificate_id}"


class Revocation(models.Model):
    """A signed statement that a certificate no longer holds (shown on its page and in the API)."""

    certificate = models.OneToOneField(Certificate, on_delete=models.PROTECT, related_name="revocation")
    reason = models.TextField()
    revoked_at = models.DateTimeField()
    document = models.JSONField(help_text="Signed {certificate_id, status: revoked, reason, revoked_at}.")

    def __str__(self) -> str:
        return f"revocation of {self.certificate_id}"
