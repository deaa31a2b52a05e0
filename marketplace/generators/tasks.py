"""Celery tasks of generators: ``fit_generator_task`` (queue ``fit``), ``sample_generator_task`` (``sample``), and
the sweeps of draws and of certify and fit jobs (queue ``default``)."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from marketplace.certification import services as certification
from marketplace.core import leases
from marketplace.generators import job_sweep, relational
from marketplace.generators.errors import GeneratorError
from marketplace.generators.services import draws, jobs

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, soft_time_limit=3300, time_limit=3600)
def fit_generator_task(job_id: str) -> None:
    """Fit or check the job's generator and certify it. Safe to run twice: a finished job, or one a live worker
    holds, is left alone; the worker's heartbeat keeps its lease while it runs."""
    job = certification.claim_job(job_id)
    if job is None:
        return
    with leases.heartbeat(lambda: certification.renew_job_lease(job)):
        try:
            if relational.is_hma_job(job):
                relational.run_hma_job(job)
            else:
                jobs.run_generator_job(job)
        except GeneratorError as error:
            jobs.fail_generator(job, error.message)
        except certification.CertificationFailed as error:
            jobs.fail_generator(job, str(error))
        except SoftTimeLimitExceeded:
            jobs.fail_generator(job, "Fitting took longer than the time limit; lower the epochs or the rows.")
        except Exception:
            logger.exception("generator job %s crashed", job_id)
            jobs.fail_generator(job, "An internal error stopped this generator; the team has been alerted.")
        else:
            certification.finish_job(job)


@shared_task(acks_late=True, soft_time_limit=1700, time_limit=1800)
def sample_generator_task(draw_id: str) -> None:
    """Make a queued draw's rows. Safe to run twice: only a queued draw, or one whose worker died, is claimed."""
    draws.run_draw(draw_id)


@shared_task
def sweep_draws_task() -> dict[str, int]:
    """Periodic (beat): queue again draws whose worker died, re-send draws whose message was lost."""
    return draws.sweep_draws()


@shared_task
def sweep_jobs_task() -> dict[str, int]:
    """Periodic (beat): queue again certify and fit jobs whose worker died, resend those whose message was lost."""
    return job_sweep.sweep_jobs()
