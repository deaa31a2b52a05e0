"""The validation sweep (Celery beat, every ``SYNTHEX_SWEEP_SECONDS``): no upload check is lost to a crash.

A complete upload whose check is running with a heartbeat older than the lease (its worker was killed), or
still pending after ``leases.RESEND_QUEUED_AFTER_SECONDS`` (its message lost), has its task sent again; the task claims it with a conditional UPDATE, so a duplicate does nothing.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from marketplace.catalog.models import Upload
from marketplace.core import leases


def sweep_validations(*, now: datetime | None = None) -> int:
    """Send again the checks of complete uploads that are waiting or lost; returns how many were sent."""
    from marketplace.catalog.tasks import validate_upload_task

    moment = now or timezone.now()
    waiting = Upload.objects.filter(
        Q(validation=Upload.Validation.PENDING, updated_at__lt=leases.unsent_before(moment))
        | Q(validation=Upload.Validation.RUNNING, updated_at__lt=leases.stale_before(moment)),
        status=Upload.Status.COMPLETE,
    ).values_list("pk", "validation", "updated_at")
    sent = 0
    for upload_id, validation, updated_at in waiting:
        # A pending check's updated_at records when it was last sent, so it is sent once per resend period.
        if validation == Upload.Validation.PENDING and not Upload.objects.filter(
            pk=upload_id, validation=validation, updated_at=updated_at
        ).update(updated_at=moment):
            continue
        validate_upload_task.delay(upload_id)
        sent += 1
    return sent
