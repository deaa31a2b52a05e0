"""Celery tasks of certification (queue ``certify``); the job sweep is in generators.tasks."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from marketplace.catalog.models import ProductVersion, VersionStatus
from marketplace.certification import services
from marketplace.certification.models import Certificate
from marketplace.core import leases

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=1500, time_limit=1800)
def certify_version_task(job_id: str) -> None:
    """Certify the job's version. Safe to run twice: a finished job, or one a live worker holds, is left alone;
    the worker's heartbeat keeps its lease while it runs."""
    job = services.claim_job(job_id)
    if job is None:
        return
    ProductVersion.objects.filter(pk=job.version_id, status=VersionStatus.SUBMITTED).update(
        status=VersionStatus.CERTIFYING
    )
    with leases.heartbeat(lambda: services.renew_job_lease(job)):
        try:
            services.run_certification(job)
        except services.CertificationFailed as error:
            services.finish_job(job, error=str(error))
        except SoftTimeLimitExceeded:
            services.finish_job(
                job, error="Certification took longer than the time limit; try a smaller sample."
            )
        except Exception:
            logger.exception("certification job %s crashed", job_id)
            services.finish_job(
                job, error="An internal error stopped certification; the team has been alerted."
            )
        else:
            services.finish_job(job)


@shared_task(acks_late=True, soft_time_limit=300, time_limit=360)
def render_certificate_charts_task(certificate_id: str) -> None:
    """Draw and store a certificate's charts as SVG; does nothing when they are stored already."""
    certificate = Certificate.objects.filter(pk=certificate_id).first()
    if certificate is not None:
        services.render_certificate_charts(certificate)
