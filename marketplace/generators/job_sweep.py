"""The job sweep (Celery beat, every ``SYNTHEX_SWEEP_SECONDS``): no certify or fit job is lost to a crash.

- a running job whose heartbeat is older than the lease lost its worker (``kill -9``, OOM, a host gone): it is
  put back to queued with a conditional UPDATE and its task sent again; a worker claims it as a new attempt;
- a job that used up ``SYNTHEX_JOB_MAX_ATTEMPTS`` that way fails with a message saying so;
- a job queued for longer than ``leases.RESEND_QUEUED_AFTER_SECONDS`` (or a lease) since it was last sent (its
  message lost: the web process died between commit and publish) is sent again. Duplicate messages are
  harmless: one worker claims the job.

It lives in generators, the layer above certification: a job is a certify job (certification's) or a fit job
(generators'), and only this layer may reach both without an import cycle.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from marketplace.certification import services
from marketplace.certification.models import Job
from marketplace.core import leases
from marketplace.generators.services.jobs import fail_generator

logger = logging.getLogger(__name__)


def send(job: Job) -> None:
    """Send the task that runs ``job`` (a claim decides whether it does anything)."""
    # The tasks modules import this one (the beat task): imported when sending.
    from marketplace.certification.tasks import certify_version_task
    from marketplace.generators.tasks import fit_generator_task

    task = fit_generator_task if job.kind == Job.Kind.FIT else certify_version_task
    task.delay(str(job.pk))


def _give_up(job: Job) -> None:
    message = (
        f"The worker running this job stopped {job.attempts} times (killed or out of memory); "
        "it was not tried again. Try a smaller table, or contact the team."
    )
    logger.error("job %s lost its worker %s times; failing it", job.pk, job.attempts)
    if job.kind == Job.Kind.FIT:
        fail_generator(job, message)
    else:
        services.finish_job(job, error=message)


def sweep_jobs(*, now: datetime | None = None) -> dict[str, int]:
    """Requeue jobs that lost their worker, fail those out of attempts, resend those whose message was lost;
    returns how many of each."""
    moment = now or timezone.now()
    stale = leases.stale_before(moment)
    lost = Job.objects.filter(status=Job.Status.RUNNING).filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale)
    )
    counts = {"requeued": 0, "failed": 0, "resent": 0}
    for job in lost:
        if job.attempts >= settings.SYNTHEX_JOB_MAX_ATTEMPTS:
            _give_up(job)
            counts["failed"] += 1
            continue
        requeued = Job.objects.filter(
            pk=job.pk, status=Job.Status.RUNNING, attempts=job.attempts, heartbeat_at=job.heartbeat_at
        ).update(status=Job.Status.QUEUED, stage="queued again", heartbeat_at=moment)
        if requeued:
            logger.warning(
                "job %s (%s) lost its worker at attempt %s; queued again", job.pk, job.kind, job.attempts
            )
            send(job)
            counts["requeued"] += 1
    unsent = leases.unsent_before(moment)
    waiting = Job.objects.filter(status=Job.Status.QUEUED).filter(
        Q(heartbeat_at__lt=unsent) | Q(heartbeat_at__isnull=True, created_at__lt=unsent)
    )
    for job in waiting:
        if Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED, heartbeat_at=job.heartbeat_at).update(
            heartbeat_at=moment
        ):
            send(job)
            counts["resent"] += 1
    return counts
