"""Reads for certification."""

from __future__ import annotations

from typing import Any

from marketplace.catalog.models import ProductVersion
from marketplace.certification.models import Certificate, Job


def latest_job(version: ProductVersion) -> Job | None:
    return version.jobs.order_by("-created_at").first()


def latest_certificate(version: ProductVersion) -> Certificate | None:
    return version.certificates.order_by("-issued_at").first()


def certification_summary(version: ProductVersion) -> dict[str, Any] | None:
    """What the API and pages show about a version's certification: job progress and certificate grades."""
    job = latest_job(version)
    certificate = latest_certificate(version)
    if job is None and certificate is None:
        return None
    return {
        "job": None
        if job is None
        else {
            "id": str(job.id),
            "status": job.status,
            "stage": job.stage,
            "progress": job.progress,
            "error": job.error,
        },
        "certificate": None
        if certificate is None
        else {
            "id": certificate.id,
            "quality_score": certificate.quality_score,
            "quality_grade": certificate.quality_grade,
            "plausibility_grade": (certificate.document.get("plausibility") or {}).get("grade"),
            "privacy_grade": certificate.privacy_grade,
            "privacy_passed": certificate.privacy_passed,
            "dcr_share": certificate.dcr_share,
            "revoked": hasattr(certificate, "revocation"),
        },
    }
