from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.db import transaction
from django.utils import timezone

from marketplace.generators import selectors
from marketplace.generators.models import GeneratorModel, SampleDraw
from marketplace.generators.services import draws, setup

pytestmark = pytest.mark.django_db
_numbers = itertools.count(1)


@pytest.fixture
def generator(provider: Any, product_factory: Any) -> GeneratorModel:
    from marketplace.catalog.services import LicensePrice

    product = product_factory(
        provider, "Sweep generator", kind="generator", licenses=[LicensePrice("standard", 100, "USD")]
    )
    with transaction.atomic():
        version = setup.new_generator_version(product, provider)
        return GeneratorModel.objects.create(
            version=version,
            kind=GeneratorModel.Kind.UPLOADED,
            synthesizer="uploaded",
            status=GeneratorModel.Status.READY,
            sdv_metadata={},
            row_quotas={"standard": 5000},
        )


def make_draw(
    generator: GeneratorModel, buyer: Any, status: str, age_seconds: int, attempts: int = 0
) -> SampleDraw:
    draw = SampleDraw.objects.create(
        id=f"draw_sweep{next(_numbers)}",
        generator=generator,
        entitlement_id="ent_sweep",
        buyer=buyer,
        rows=1000,
        seed=1,
        seed_sha256="0" * 64,
        commit_hook="",
        status=status,
        attempts=attempts,
    )
    then = timezone.now() - timedelta(seconds=age_seconds)
    SampleDraw.objects.filter(pk=draw.pk).update(
        created_at=then, heartbeat_at=then if status == SampleDraw.Status.RUNNING else None
    )
    return draw


def test_a_draw_that_lost_its_worker_is_queued_again_and_a_live_one_left_alone(generator, buyer):
    stuck = make_draw(generator, buyer, SampleDraw.Status.RUNNING, age_seconds=3 * 3600, attempts=1)
    fresh = make_draw(generator, buyer, SampleDraw.Status.RUNNING, age_seconds=10, attempts=1)
    assert draws.sweep_draws() == {"failed": 0, "requeued": 1, "resent": 0}
    stuck.refresh_from_db()
    fresh.refresh_from_db()
    # The re-sent task ran (eagerly in tests) and claimed the draw as attempt 2; this generator has no model
    # file, so that attempt fails with nothing consumed.
    assert (stuck.status, stuck.attempts, stuck.error_code) == ("failed", 2, "internal_error")
    assert (fresh.status, fresh.attempts) == ("running", 1)


def test_a_draw_that_lost_its_worker_every_time_is_failed_and_its_rows_released(generator, buyer, settings):
    stuck = make_draw(
        generator,
        buyer,
        SampleDraw.Status.RUNNING,
        age_seconds=3 * 3600,
        attempts=settings.SYNTHEX_JOB_MAX_ATTEMPTS,
    )
    assert selectors.reserved_rows("ent_sweep") == 1000
    assert draws.sweep_draws() == {"failed": 1, "requeued": 0, "resent": 0}
    stuck.refresh_from_db()
    assert (stuck.status, stuck.error_code) == ("failed", "worker_lost")
    assert selectors.reserved_rows("ent_sweep") == 0


def test_a_long_queued_draw_is_sent_again(generator, buyer):
    waiting = make_draw(generator, buyer, SampleDraw.Status.QUEUED, age_seconds=3600)
    recent = make_draw(generator, buyer, SampleDraw.Status.QUEUED, age_seconds=30)
    assert draws.sweep_draws() == {"failed": 0, "requeued": 0, "resent": 1}
    waiting.refresh_from_db()
    recent.refresh_from_db()
    # The re-sent task ran (eagerly in tests) and claimed the draw; this generator has no model file, so
    # the draw ends failed with nothing consumed. The recent draw was left alone.
    assert waiting.status == "failed"
    assert recent.status == "queued"
