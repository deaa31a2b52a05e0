"""Job leases and the job sweep: a live worker's job is never taken over, a dead worker's is (as a new attempt),
the stale attempt cannot finish it, and a job that kills its worker every time ends failed, not looping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from marketplace.catalog.models import VersionStatus
from marketplace.certification import services
from marketplace.certification.models import Job
from marketplace.generators import job_sweep as sweep

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(provider: Any, product_factory: Any, version_factory: Any) -> Job:
    version = version_factory(product_factory(provider), provider)
    version.status = VersionStatus.CERTIFYING
    version.save(update_fields=["status"])
    return Job.objects.create(kind=Job.Kind.CERTIFY, version=version, engine_version=services.ENGINE_VERSION)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Job ids the sweep sends to the broker (instead of running them eagerly)."""
    sent: list[str] = []
    monkeypatch.setattr(sweep, "send", lambda job: sent.append(str(job.pk)))
    return sent


def _age(job: Job, seconds: int, **fields: Any) -> None:
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=seconds), **fields)


def test_a_live_workers_job_is_not_claimed_and_a_dead_workers_is_claimed_as_a_new_attempt(job: Job) -> None:
    first = services.claim_job(str(job.pk))
    assert first is not None and (first.status, first.attempts) == ("running", 1)
    assert services.claim_job(str(job.pk)) is None  # the heartbeat is fresh: a live worker holds it
    _age(job, 10_000)
    second = services.claim_job(str(job.pk))
    assert second is not None and (second.status, second.attempts) == ("running", 2)

    services.finish_job(first, error="the first attempt's late failure")  # fenced out: changes nothing
    assert services.renew_job_lease(first) is False
    job.refresh_from_db()
    assert (job.status, job.error, job.version.status) == ("running", "", VersionStatus.CERTIFYING)

    services.finish_job(second)
    job.refresh_from_db()
    assert (job.status, job.progress, job.attempts) == ("succeeded", 100, 2)
    assert services.claim_job(str(job.pk)) is None


def test_a_failed_job_keeps_the_progress_its_run_reached(job: Job) -> None:
    claimed = services.claim_job(str(job.pk))
    assert claimed is not None and claimed.progress == 0
    Job.objects.filter(pk=job.pk).update(stage="certifying: years", progress=72)  # as the run writes it
    services.finish_job(claimed, error="the engine stopped")
    job.refresh_from_db()
    assert (job.status, job.progress, job.error) == ("failed", 72, "the engine stopped")


def test_the_sweep_requeues_a_job_whose_worker_died_and_leaves_a_live_one(
    job: Job, sent: list[str], provider: Any, product_factory: Any, version_factory: Any
) -> None:
    live_version = version_factory(product_factory(provider), provider)
    live = Job.objects.create(
        kind=Job.Kind.CERTIFY, version=live_version, engine_version=services.ENGINE_VERSION
    )
    services.claim_job(str(job.pk))
    services.claim_job(str(live.pk))
    _age(job, 10_000)
    assert sweep.sweep_jobs() == {"requeued": 1, "failed": 0, "resent": 0}
    assert sent == [str(job.pk)]
    job.refresh_from_db()
    live.refresh_from_db()
    assert (job.status, job.attempts) == ("queued", 1)
    assert (live.status, live.attempts) == ("running", 1)
    claimed = services.claim_job(str(job.pk))
    assert claimed is not None and claimed.attempts == 2
    assert sweep.sweep_jobs() == {"requeued": 0, "failed": 0, "resent": 0}


def test_a_job_that_lost_its_worker_every_time_fails_with_a_reason(
    job: Job, sent: list[str], settings: Any
) -> None:
    services.claim_job(str(job.pk))
    _age(job, 10_000, attempts=settings.SYNTHEX_JOB_MAX_ATTEMPTS)
    assert services.claim_job(str(job.pk)) is None
    assert sweep.sweep_jobs() == {"requeued": 0, "failed": 1, "resent": 0}
    assert sent == []
    job.refresh_from_db()
    assert job.status == "failed"
    assert job.error.startswith(
        f"The worker running this job stopped {settings.SYNTHEX_JOB_MAX_ATTEMPTS} times"
    )
    assert job.version.status == VersionStatus.FAILED


def test_a_queued_job_whose_message_was_lost_is_sent_again_once_per_lease(job: Job, sent: list[str]) -> None:
    assert sweep.sweep_jobs() == {"requeued": 0, "failed": 0, "resent": 0}  # just queued
    Job.objects.filter(pk=job.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert sweep.sweep_jobs() == {"requeued": 0, "failed": 0, "resent": 1}
    assert sweep.sweep_jobs() == {"requeued": 0, "failed": 0, "resent": 0}
    assert sent == [str(job.pk)]
