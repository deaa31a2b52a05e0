"""Periodic payment work: invariant repair (which also retries pending refunds and payouts) and payout runs."""

from __future__ import annotations

from celery import shared_task

from exchange.orders.payouts import start_payout_run
from exchange.orders.repair import repair_payment_invariants


@shared_task(soft_time_limit=300, time_limit=360)
def repair_payment_invariants_task() -> dict[str, int]:
    """Run the invariant repairs; returns the counts of what was repaired."""
    return vars(repair_payment_invariants())


@shared_task(soft_time_limit=600, time_limit=660)
def run_payouts_task() -> str:
    """A scheduled payout run (staff can also start one in the admin); returns the run's id."""
    return str(start_payout_run().pk)
