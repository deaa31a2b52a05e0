"""The validation sweep: a complete upload whose check lost its worker (stale heartbeat) or whose message was
lost (pending too long) is sent again, a pending one once per lease; a live check and a fresh upload are not."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from marketplace.catalog import sweep, upload_sessions
from marketplace.catalog.models import Upload

pytestmark = pytest.mark.django_db
_numbers = itertools.count(1)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from marketplace.catalog.tasks import validate_upload_task

    sent: list[str] = []
    monkeypatch.setattr(validate_upload_task, "delay", sent.append)
    return sent


def make_upload(owner: Any, validation: str, age_seconds: int) -> Upload:
    upload = Upload.objects.create(
        id=f"upl_sweep{next(_numbers)}",
        owner=owner,
        filename="people.csv",
        size=10,
        chunk_size=1024 * 1024,
        status=Upload.Status.COMPLETE,
        validation=validation,
    )
    Upload.objects.filter(pk=upload.pk).update(updated_at=timezone.now() - timedelta(seconds=age_seconds))
    return upload


def test_lost_and_waiting_checks_are_sent_again_and_live_ones_left_alone(
    provider: Any, sent: list[str]
) -> None:
    lost = make_upload(provider, Upload.Validation.RUNNING, age_seconds=3600)
    live = make_upload(provider, Upload.Validation.RUNNING, age_seconds=5)
    waiting = make_upload(provider, Upload.Validation.PENDING, age_seconds=3600)
    make_upload(provider, Upload.Validation.PENDING, age_seconds=5)
    make_upload(provider, Upload.Validation.VALID, age_seconds=3600)

    assert sweep.sweep_validations() == 2
    assert sorted(sent) == sorted([lost.pk, waiting.pk])
    assert sweep.sweep_validations() == 1  # the lost check again (nobody claimed it); the waiting one not yet
    assert sent[-1] == lost.pk

    assert upload_sessions.validate_upload(live.pk) is False  # a live worker's check is not taken over
    assert upload_sessions.validate_upload(lost.pk) is True  # a dead worker's is
