"""Celery tasks of the catalog (queue ``default``)."""

from __future__ import annotations

from celery import shared_task

from marketplace.catalog import upload_sessions


@shared_task(acks_late=True)
def validate_upload_task(upload_id: str) -> None:
    """Validate a complete upload. Safe to run twice: an upload already claimed or checked is left alone."""
    upload_sessions.validate_upload(upload_id)


@shared_task
def sweep_uploads_task() -> int:
    """Hourly (beat): drop abandoned upload sessions and their part files."""
    return upload_sessions.sweep_abandoned_uploads()
