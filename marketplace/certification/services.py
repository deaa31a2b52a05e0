"""Writes for certification: queue a version, run the engine on it, sign and store the certificate.

Guarantees: one job and at most one certificate per (version, engine version), however often the task
runs (the worker claims a job with a conditional UPDATE; the certificate row is unique); a version is
marked certified only in the same transaction that stores its certificate.
"""

from __future__ import annotations

import logging
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from marketplace.catalog.models import FileRole, Product, ProductVersion, VersionFile, VersionStatus
from marketplace.catalog.summary import refresh_product_summary
from marketplace.certification import keys, signing
from marketplace.certification.models import Certificate, CertificateCharts, Job, Revocation
from marketplace.certification.progress import progress_writer
from marketplace.certification.tables import fetch_file, load_table
from marketplace.core import leases
from marketplace.core.page_cache import bump_catalog_version

logger = logging.getLogger(__name__)

ENGINE_VERSION = "2.0.0"


class CertificationFailed(Exception):
    """Certification cannot proceed; the message is shown to the provider as is."""


def request_certification(version: ProductVersion) -> Job:
    """Create (or return) the version's certification job and enqueue it after the transaction commits."""
    job, created = Job.objects.get_or_create(
        kind=Job.Kind.CERTIFY, version=version, engine_version=ENGINE_VERSION
    )
    if created:
        from marketplace.certification.tasks import certify_version_task

        transaction.on_commit(lambda: certify_version_task.delay(str(job.pk)))
    return job


class BaselineRefused(CertificationFailed):
    """The holdout cannot be the baseline (``code``: holdout_overlaps_train, holdout_too_small);
    ``figures`` are the engine's measures."""

    def __init__(self, message: str, figures: dict[str, Any], code: str = "holdout_overlaps_train") -> None:
        super().__init__(message)
        self.figures = figures
        self.code = code


def check_reference_baseline(version: ProductVersion) -> dict[str, Any] | None:
    """Measure a version's holdout against its train rows before any job exists; raise BaselineRefused
    (with the figures) when the holdout overlaps train or is too small a share of the real rows. None when the version has no holdout or the
    tables cannot be read (certification then reports the problem itself)."""
    from marketplace.certification.engine import EngineConfig, EngineError
    from marketplace.certification.engine.baseline import HoldoutRefused, check_holdout

    files = {f.role: f for f in version.files.filter(deleted_at__isnull=True)}
    if FileRole.TRAIN not in files or FileRole.HOLDOUT not in files:
        return None
    sampling: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="synthex-baseline-") as folder:
        try:
            tables = [
                load_table(fetch_file(files[role], Path(folder)), files[role], role, sampling, version.pk)
                for role in (FileRole.TRAIN, FileRole.HOLDOUT)
            ]
        except CertificationFailed:
            return None  # a stored file that changed: the certification job refuses it, saying so
    try:
        return check_holdout(
            tables[0], tables[1], metadata=version.sdv_metadata or None, config=EngineConfig(seed=version.pk)
        )
    except HoldoutRefused as error:
        raise BaselineRefused(str(error), error.figures, error.code) from None
    except EngineError:
        return None


def claim_job(job_id: str) -> Job | None:
    """Move a queued job, or a running one whose worker's heartbeat stopped (``leases``), to running under a
    new attempt number; None when a live worker holds it, it is done, or it used up its attempts."""
    now = timezone.now()
    lost = Q(status=Job.Status.RUNNING) & (
        Q(heartbeat_at__lt=leases.stale_before(now))
        | Q(heartbeat_at__isnull=True, started_at__lt=leases.stale_before(now))
    )
    claimed = Job.objects.filter(
        Q(status=Job.Status.QUEUED) | lost, pk=job_id, attempts__lt=settings.SYNTHEX_JOB_MAX_ATTEMPTS
    ).update(
        status=Job.Status.RUNNING,
        stage="loading",
        progress=0,
        started_at=now,
        heartbeat_at=now,
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    return Job.objects.select_related("version__product").get(pk=job_id)


def renew_job_lease(job: Job) -> bool:
    """Write the heartbeat of ``job`` (as claimed); False when the job is no longer this attempt's."""
    return bool(
        Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts).update(
            heartbeat_at=timezone.now()
        )
    )


@dataclass(frozen=True)
class VersionEvaluation:
    """The engine's evaluation of a version (``evaluation``, unsigned), the synthetic files it covers, and
    the tables certified on a bounded sample (``sampling``: role → total and sampled rows)."""

    evaluation: dict[str, Any]
    synthetic_files: list[VersionFile]
    sampling: dict[str, dict[str, int]]


def run_certification(job: Job) -> Certificate:
    """Evaluate the job's version with the engine, then sign and store its certificate."""
    version = job.version
    if isinstance((version.sdv_metadata or {}).get("tables"), dict):
        from marketplace.certification.relational import run_relational_certification

        return run_relational_certification(job)
    progress = progress_writer(job)
    progress("loading", 0)
    evaluated = evaluate_version(version, progress)
    progress("signing", 100)
    return issue_certificate(
        version, evaluated.evaluation, evaluated.synthetic_files, sampling=evaluated.sampling
    )


def evaluate_version(version: ProductVersion, progress: Callable[[str, int], None]) -> VersionEvaluation:
    """Run the engine on the version's first synthetic table against its reference train (and holdout), each
    read whole or, past ``SYNTHEX_CERTIFY_MAX_ROWS``, as a seeded uniform sample. ``progress(stage, percent)``
    gets the engine's 0–100. Raises ``CertificationFailed`` without a train file or when the engine refuses.
    """
    from marketplace.certification.engine import EngineConfig, EngineError, evaluate

    files = {f.role: f for f in version.files.filter(deleted_at__isnull=True)}
    synthetic_files = list(version.files.filter(role=FileRole.SYNTHETIC).order_by("table_name"))
    if FileRole.TRAIN not in files:
        raise CertificationFailed(
            "This version has no reference train file: upload the real rows the synthetic data imitates "
            "(and a holdout the generator never saw) to certify it."
        )
    sampling: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="synthex-certify-") as folder:
        tables = {
            role: load_table(fetch_file(item, Path(folder)), item, role, sampling, version.pk)
            for role, item in (
                ("synthetic", synthetic_files[0]),
                ("train", files[FileRole.TRAIN]),
                ("holdout", files.get(FileRole.HOLDOUT)),
            )
            if item is not None
        }
        try:
            evaluation = evaluate(
                tables["synthetic"],
                tables["train"],
                tables.get("holdout"),
                target=version.target_column or None,
                metadata=version.sdv_metadata or None,
                config=EngineConfig(seed=version.pk),
                progress=progress,
                rules=version.rules or None,
            ).to_dict()
        except EngineError as error:
            raise CertificationFailed(str(error)) from error
    return VersionEvaluation(evaluation=evaluation, synthetic_files=synthetic_files, sampling=sampling)


def issue_certificate(
    version: ProductVersion,
    evaluation: dict[str, Any],
    synthetic_files: list[VersionFile],
    *,
    sampling: dict[str, dict[str, int]] | None = None,
    extra_sections: dict[str, Any] | None = None,
) -> Certificate:
    """Sign ``evaluation`` as the certificate of ``version``; idempotent per engine version.
    ``extra_sections`` adds top-level sections (a relational version's ``tables`` and ``relational``)."""
    existing = Certificate.objects.filter(version=version, engine_version=ENGINE_VERSION).first()
    if existing is not None:
        return existing
    now = timezone.now().replace(microsecond=0)
    certificate_id = f"cert_{uuid.uuid4().hex}"
    unsigned = signing.build_certificate(
        certificate_id=certificate_id,
        issued_at=now,
        artifacts=[
            {"name": f.table_name, "sha256": f.sha256, "rows": f.rows, "columns": f.column_count}
            for f in synthetic_files
        ],
        evaluation=evaluation,
        subject_extra={
            "product": version.product.slug,
            "version": version.number,
            "provider": version.product.organization.slug,
            "target": version.target_column or None,
            # Tables larger than one worker handles are certified on a uniform random sample (seeded).
            "sampling": {"method": "uniform", "seed": version.pk, "tables": sampling} if sampling else None,
        },
    )
    unsigned.update({key: value for key, value in (extra_sections or {}).items() if key not in unsigned})
    document = signing.sign_certificate(unsigned, keys.active_private_key())
    quality, privacy = document["quality"], document["privacy"]
    try:
        with transaction.atomic():
            certificate = Certificate.objects.create(
                id=certificate_id,
                version=version,
                engine_version=ENGINE_VERSION,
                document=document,
                signed_bytes=signing.signed_bytes(document),
                key_id=document["signature"]["key_id"],
                issued_at=now,
                quality_score=quality["score"],
                quality_grade=quality["grade"],
                privacy_grade=privacy["grade"],
                privacy_passed=bool(privacy["passed"]),
                dcr_share=privacy.get("dcr_share"),
            )
            ProductVersion.objects.filter(pk=version.pk).update(
                status=VersionStatus.CERTIFIED, certified_at=now
            )
            refresh_certified_summary(version.product)
            transaction.on_commit(lambda: schedule_chart_rendering(certificate_id))
    except IntegrityError:
        return Certificate.objects.get(version=version, engine_version=ENGINE_VERSION)
    return certificate


def schedule_chart_rendering(certificate_id: str) -> None:
    """Queue the drawing of a certificate's charts (worker side: matplotlib and numpy stay out of the web)."""
    from marketplace.certification.tasks import render_certificate_charts_task

    # The certify queue's workers already hold numpy; charts take seconds, not the default queue's milliseconds.
    render_certificate_charts_task.apply_async(args=[certificate_id], queue="certify")


def render_certificate_charts(certificate: Certificate) -> CertificateCharts:
    """Draw the certificate's ``charts`` section as SVG and store it; idempotent (a stored set is returned
    as is). The signed document is only read. Cached public pages are invalidated so they show the charts."""
    from marketplace.certification.chart_svg import render_charts

    existing = CertificateCharts.objects.filter(certificate=certificate).first()
    if existing is not None:
        return existing
    svgs = render_charts(certificate.document.get("charts") or {})
    charts, _ = CertificateCharts.objects.get_or_create(
        certificate=certificate, defaults={"svgs": svgs, "rendered_at": timezone.now()}
    )
    bump_catalog_version()
    return charts


def refresh_certified_summary(product: Product) -> None:
    """Copy the grades of the version on sale (else of the latest certificate) onto the product for catalog
    filters and cards: a newer version whose certificate failed does not replace the one buyers can buy."""
    current = Certificate.objects.filter(version__product=product, revocation__isnull=True)
    latest = (
        current.filter(privacy_passed=True, version__status=VersionStatus.CERTIFIED)
        .order_by("-version__number", "-issued_at")
        .first()
    ) or current.order_by("-version__number", "-issued_at").first()
    Product.objects.filter(pk=product.pk).update(
        quality_score=latest.quality_score if latest else None,
        quality_grade=latest.quality_grade if latest else "",
        privacy_grade=latest.privacy_grade if latest else "",
        dcr_share=latest.dcr_share if latest else None,
    )
    refresh_product_summary(product)


def finish_job(job: Job, *, error: str = "") -> None:
    """Mark the attempt ``job`` (as claimed) succeeded or failed; an attempt whose lease another worker took
    over changes nothing (the job finishes once, by the attempt that holds it). A failed job keeps the
    progress its run wrote (the claimed ``job`` still holds the claim's 0 %: every failure read "at 0 %")."""
    bump_catalog_version()  # the product page shows the version's certification state
    finished = Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts).update(
        status=Job.Status.FAILED if error else Job.Status.SUCCEEDED,
        stage="failed" if error else "done",
        progress=F("progress") if error else 100,
        error=error,
        finished_at=timezone.now(),
    )
    if error and finished:
        ProductVersion.objects.filter(
            pk=job.version_id, status__in=[VersionStatus.SUBMITTED, VersionStatus.CERTIFYING]
        ).update(status=VersionStatus.FAILED)


@transaction.atomic
def revoke_certificate(certificate: Certificate, *, reason: str) -> Revocation:
    """Publish a signed revocation; the certificate itself never changes."""
    if hasattr(certificate, "revocation"):
        return certificate.revocation
    now = timezone.now().replace(microsecond=0)
    statement = {
        "schema": "synthex.revocation/v1",
        "certificate_id": certificate.id,
        "status": "revoked",
        "reason": reason,
        "revoked_at": signing.format_issued_at(now),
    }
    signed = signing.sign_document(statement, keys.active_private_key())
    revocation = Revocation.objects.create(
        certificate=certificate, reason=reason, revoked_at=now, document=signed
    )
    refresh_certified_summary(certificate.version.product)
    return revocation
