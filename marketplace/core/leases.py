"""Leases on work rows: a worker that claims a job keeps its lease alive by writing a heartbeat; a job whose
heartbeat stopped (the worker was killed) is claimed again by the sweeper or a redelivered message.

The claim itself is a conditional ``UPDATE`` in each app (``status = expected``, plus an attempt number that
fences out a worker whose lease was taken over); this module holds what every kind of job shares.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)


def lease_seconds() -> int:
    """A running job whose heartbeat is older than this is taken to have lost its worker."""
    return int(settings.SYNTHEX_JOB_LEASE_SECONDS)


def stale_before(now: datetime | None = None) -> datetime:
    """Heartbeats before this moment are stale."""
    return (now or timezone.now()) - timedelta(seconds=lease_seconds())


# With a broker that keeps its messages, a job stays queued without a message only when the process that
# committed it died before publishing; sending it again after this long (or a lease, if longer) bounds the
# duplicates a long backlog would otherwise collect.
RESEND_QUEUED_AFTER_SECONDS = 600


def unsent_before(now: datetime | None = None) -> datetime:
    """A job queued (or last sent) before this moment is sent again: its message may have been lost."""
    seconds = max(lease_seconds(), RESEND_QUEUED_AFTER_SECONDS)
    return (now or timezone.now()) - timedelta(seconds=seconds)


@contextmanager
def heartbeat(beat: Callable[[], bool]) -> Iterator[None]:
    """Call ``beat`` from a background thread every quarter lease while the block runs (the block may hold the
    worker's thread for an hour in one library call). ``beat`` writes the heartbeat and returns False once the
    job is no longer this worker's; the beating then stops (the block still runs to its end, and its final
    write is fenced by the attempt number)."""
    stop = threading.Event()

    def run() -> None:
        try:
            while not stop.wait(lease_seconds() / 4):
                try:
                    if not beat():
                        logger.info("heartbeat stopped: the job is finished, or another worker took it over")
                        return
                except Exception:
                    logger.exception("heartbeat failed; trying again")
        finally:
            connection.close()  # this thread's own database connection

    thread = threading.Thread(target=run, name="lease-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)
