"""``manage.py reconcile_payments``: list Stripe's PaymentIntents and Refunds, match each to exactly one ledger
transaction; prints one line per object and exits 1 when any does not match."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from exchange.orders import stripe_gateway as gateway
from exchange.orders.reconcile import reconcile


class Command(BaseCommand):
    help = "Match every Stripe PaymentIntent and Refund to exactly one ledger transaction."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            matches = reconcile()
        except gateway.GatewayError as error:
            raise CommandError(f"Stripe could not be read: {error}") from error
        for match in matches:
            leaves = ",".join(str(i) for i in match.ledger_indexes) or "-"
            self.stdout.write(
                f"{'ok ' if match.ok else 'BAD'} {match.kind:14} {match.stripe_id} {match.status:24} "
                f"{match.amount_minor} {match.currency} order={match.order_id or '-'} leaves={leaves} {match.note}"
            )
        bad = sum(not match.ok for match in matches)
        self.stdout.write(f"{len(matches)} Stripe objects, {bad} not matched")
        if bad:
            raise SystemExit(1)
