"""A fit job taken over after its worker died: the new attempt certifies its own model and evaluation sample,
keeps the model an earlier attempt already certified, and an attempt that lost the job cannot fail it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.utils import timezone

from marketplace.catalog.models import FileRole
from marketplace.certification import services as certification
from marketplace.certification.models import Certificate, Job
from marketplace.generators.models import GeneratorModel
from marketplace.generators.services import jobs, setup
from marketplace.generators.tasks import fit_generator_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued_fit(provider: Any, generator_product: Any, people: pd.DataFrame, upload: Any) -> Job:
    """A Gaussian copula fit, queued (its task not sent: on-commit callbacks do not run here)."""
    generator = setup.create_fitted_generator(
        generator_product, user=provider, data=upload(people, "people.csv"), synthesizer="gaussian_copula"
    )
    return Job.objects.get(version=generator.version, kind=Job.Kind.FIT)


def _worker_dies(job: Job) -> None:
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))


def test_a_second_attempt_certifies_its_own_evaluation_sample_not_the_dead_attempts(
    queued_fit: Job, people: pd.DataFrame, tmp_path: Path
) -> None:
    first = certification.claim_job(str(queued_fit.pk))
    assert first is not None
    leftover = setup.store_table(
        first.version,
        FileRole.SYNTHETIC,
        people.head(50),
        tmp_path,
        table_name="evaluation_sample",
        original="evaluation_sample.parquet",
    )
    _worker_dies(queued_fit)

    fit_generator_task(str(queued_fit.pk))

    queued_fit.refresh_from_db()
    assert (queued_fit.status, queued_fit.attempts) == ("succeeded", 2)
    (sample,) = queued_fit.version.files.filter(role=FileRole.SYNTHETIC)
    assert sample.sha256 != leftover.sha256
    generator = GeneratorModel.objects.get(version=queued_fit.version)
    artifacts = Certificate.objects.get(version=queued_fit.version).document["subject"]["artifacts"]
    assert [artifact["sha256"] for artifact in artifacts] == [sample.sha256, generator.sha256]


def test_a_model_an_earlier_attempt_certified_is_kept(
    queued_fit: Job, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = certification.claim_job(str(queued_fit.pk))
    assert first is not None
    jobs.run_generator_job(first)  # certified; the worker dies before marking the job finished
    certified = GeneratorModel.objects.get(version=queued_fit.version)
    GeneratorModel.objects.filter(pk=certified.pk).update(status=GeneratorModel.Status.PENDING)
    _worker_dies(queued_fit)
    monkeypatch.setattr(jobs, "fit", lambda *args: pytest.fail("the certified model was fitted again"))

    fit_generator_task(str(queued_fit.pk))

    queued_fit.refresh_from_db()
    assert (queued_fit.status, queued_fit.attempts) == ("succeeded", 2)
    generator = GeneratorModel.objects.get(version=queued_fit.version)
    assert (generator.status, generator.sha256, generator.storage_name) == (
        "ready",
        certified.sha256,
        certified.storage_name,
    )
    assert Certificate.objects.filter(version=queued_fit.version).count() == 1


def test_an_attempt_that_lost_the_job_cannot_fail_it(queued_fit: Job) -> None:
    first = certification.claim_job(str(queued_fit.pk))
    _worker_dies(queued_fit)
    second = certification.claim_job(str(queued_fit.pk))
    assert first is not None and second is not None

    jobs.fail_generator(first, "the first attempt's late error")

    queued_fit.refresh_from_db()
    assert (queued_fit.status, queued_fit.error, queued_fit.attempts) == ("running", "", 2)
    assert GeneratorModel.objects.get(version=queued_fit.version).status == "pending"
