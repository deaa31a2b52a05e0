"""Reads for certification."""

from __future__ import annotations

from typing import Any

from marketplace.catalog.models import ProductVersion
from marketplace.certification import chart_svg
from marketplace.certification.models import Certificate, CertificateCharts, Job


def latest_job(version: ProductVersion) -> Job | None:
    return version.jobs.order_by("-created_at").first()


def latest_certificate(version: ProductVersion | int) -> Certificate | None:
    """The version's (or the version id's) most recently issued certificate, with its revocation if any
    (read as ``hasattr(certificate, "revocation")`` without another query); None before certification."""
    return (
        Certificate.objects.filter(version=version)
        .select_related("revocation")
        .order_by("-issued_at")
        .first()
    )


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


def chart_figures(certificate: Certificate) -> dict[str, Any] | None:
    """The certificate page's charts as stored SVG markup beside what they show, or None while the worker
    has not drawn them yet. ``marginals`` lists ``{"column", "kind", "svg"}`` in the certificate's order
    (a withheld histogram has no svg); ``correlations_real``, ``correlations_synthetic``, ``dcr`` are markup
    or empty."""
    stored = CertificateCharts.objects.filter(certificate=certificate).values_list("svgs", flat=True).first()
    if stored is None:
        return None
    marginals = (certificate.document.get("charts") or {}).get("marginals") or []
    return {
        "marginals": [
            {
                "column": marginal.get("column"),
                "kind": marginal.get("kind"),
                "svg": stored.get(chart_svg.marginal_key(index), ""),
            }
            for index, marginal in enumerate(marginals)
        ],
        "correlations_real": stored.get(chart_svg.CORRELATIONS_REAL, ""),
        "correlations_synthetic": stored.get(chart_svg.CORRELATIONS_SYNTHETIC, ""),
        "dcr": stored.get(chart_svg.DCR, ""),
    }
