"""Celery tasks of the catalog (queue ``default``)."""

from __future__ import annotations

from celery import shared_task

from marketplace.catalog import sweep, upload_sessions


# Hard limit under upload_sessions.STALE_CHECK (40 min), so a check is never taken over while it runs; the
# check itself stops with a clear error after SYNTHEX_VALIDATION_SECONDS (15 min by default).
@shared_task(acks_late=True, soft_time_limit=30 * 60, time_limit=35 * 60)
def validate_upload_task(upload_id: str) -> None:
    """Validate a complete upload. Safe to run twice: an upload already claimed or checked is left alone."""
    upload_sessions.validate_upload(upload_id)


@shared_task
def sweep_uploads_task() -> int:
    """Hourly (beat): drop abandoned upload sessions and their part files."""
    return upload_sessions.sweep_abandoned_uploads()


@shared_task
def sweep_validations_task() -> int:
    """Periodic (beat): send again the checks of uploads whose worker died or whose message was lost."""
    return sweep.sweep_validations()
