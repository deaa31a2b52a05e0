"""Celery tasks of the ledger (queue ``default``)."""

from __future__ import annotations

from celery import shared_task

from exchange.ledger import services


@shared_task(acks_late=True, soft_time_limit=60, time_limit=120)
def publish_tree_head_task() -> int | None:
    """Publish a signed tree head when entries are uncovered past the entry or time threshold (beat it every
    minute). Safe to run twice or concurrently: heads are written under the log lock. Returns the head id."""
    head = services.maybe_publish_tree_head()
    return head.pk if head is not None else None
